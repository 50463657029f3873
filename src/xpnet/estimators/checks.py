"""The estimators' checks of their arguments and inputs, and the small conversions they share."""

from __future__ import annotations

import functools
import numbers
import re
import types
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from ..device import xp as _xp
from ..device.random import check_seed
from ..errors import ConfigError, InputTypeError, InvalidValueError, LabelError, ShapeError, XpnetError


class NotFittedError(XpnetError, _SklearnNotFittedError):
    """An estimator used (``predict``, ``score``, ``xpnet.save``, ...) before ``fit``: an xpnet error that is also
    scikit-learn's ``NotFittedError`` (so scikit-learn's tools recognise it), a ``ValueError`` and an
    ``AttributeError``."""


class PartialFitUnavailableError(ConfigError, AttributeError):
    """``partial_fit`` of an estimator whose solver is not stochastic (``"lbfgs"``): hidden as scikit-learn's MLP
    hides it (``hasattr(est, "partial_fit")`` is False); an xpnet :class:`~xpnet.errors.ConfigError` that is also
    the ``AttributeError`` scikit-learn raises."""


def _has_partial_fit(est: Any) -> bool:
    """The ``available_if`` check of ``partial_fit``: True unless ``solver`` is ``"lbfgs"`` (an unknown solver
    passes, so the call names it as ``fit`` does)."""
    solver = est.solver.strip().lower() if isinstance(est.solver, str) else est.solver
    if solver == "lbfgs":
        raise PartialFitUnavailableError(
            f"partial_fit is only available for stochastic solvers (adam, sgd, ...); solver={est.solver!r} "
            "optimizes over the whole data in fit: call fit, or set_params(solver='adam') first")
    return True


class _StochasticOnly:
    """Decorator of ``partial_fit``: scikit-learn's ``available_if(_has_partial_fit)``, except that the refusal is
    the check's own :class:`PartialFitUnavailableError` (scikit-learn's replaces it by a bare ``AttributeError``
    that does not say why)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self.fn
        _has_partial_fit(obj)
        return types.MethodType(self.fn, obj)


def _check_fitted(est: Any, action: str) -> None:
    """Raise :class:`NotFittedError` unless ``est`` is fitted (it has ``network_``)."""
    try:
        check_is_fitted(est, "network_")
    except _SklearnNotFittedError:
        raise NotFittedError(f"this {type(est).__name__} is not fitted yet, so it cannot {action}: call fit(X, y) "
                             "(or partial_fit) first") from None


def _check_same_architecture(est: Any) -> None:
    """``warm_start`` goes on with the fitted network: ``hidden_layer_sizes`` and ``activation`` set since
    must still describe it (else get_params and saved files would claim a network that is not inside)."""
    net = est.network_
    sizes, activation = est._hidden_sizes(), est._hidden_activation()
    if sizes != list(net.layer_dims[1:-1]) or activation != net.hidden.name:
        raise ConfigError(
            f"warm_start=True continues the fitted network ({list(net.layer_dims[1:-1])} hidden units, "
            f"{net.hidden.name}), but hidden_layer_sizes={est.hidden_layer_sizes!r}, "
            f"activation={est.activation!r} now describe another: set them back, or set warm_start=False "
            "to train a new network")


def _normalized_weights(sample_weight: Any, m: int, alpha: float) -> tuple[Any, float]:
    """``(w, alpha')``: ``sample_weight`` (m,) checked and scaled to mean 1 (``w = sample_weight m / S``, ``S`` its
    sum) and the L2 strength ``alpha m / S``, so that ``(1/m) sum w_j loss_j + alpha'/(2m) ||W||^2`` is
    scikit-learn's ``sum sample_weight_j loss_j / S + alpha/(2S) ||W||^2``; ``(None, alpha)`` without weights."""
    if sample_weight is None:
        return None, alpha
    try:
        w = np.asarray(_xp.to_numpy(sample_weight) if _xp.is_array(sample_weight) else sample_weight,
                       dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputTypeError(f"sample_weight must hold real numbers, one per sample: {exc}") from None
    if w.ndim == 0:
        w = np.full(m, float(w))
    if w.shape != (m,):
        raise ShapeError(f"sample_weight has shape {w.shape} but X has {m} samples: pass one weight per sample")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise InvalidValueError("sample_weight must be finite, >= 0 and not all zero weights, got values from "
                                f"{np.nanmin(w):g} to {np.nanmax(w):g} (sum {w.sum():g})")
    total = float(w.sum())
    return w * (m / total), alpha * m / total


def _check_score_lengths(X: Any, y: Any, sample_weight: Any) -> None:
    """``score``'s ``y`` and ``sample_weight`` must hold one entry per row of ``X``."""
    n = _num_rows(X)
    shape = getattr(sample_weight, "shape", None)
    if sample_weight is not None and (tuple(shape) == () if shape is not None else not hasattr(sample_weight,
                                                                                                "__len__")):
        # scikit-learn's own error for a scalar is numpy's "Axis must be specified when shapes ... differ".
        raise ShapeError(f"score: sample_weight must hold one weight per row of X, got the scalar {sample_weight!r}; "
                         "pass an array of length n_samples (or None for equal weights)")
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        got = _num_rows(value) if value is not None else None
        if n is not None and got is not None and got != n:
            raise ShapeError(f"score: {name} has {got} entries but X has {n} rows; pass one per row of X")


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _input_error(exc: Exception) -> Exception:
    """scikit-learn's input validation error as the matching xpnet error, its message kept word for word
    (scikit-learn's own estimator checks match on it): values that are not numbers -> InputTypeError, NaN,
    infinity or complex numbers -> InvalidValueError, anything else (dimensions, sample or feature counts,
    feature names) -> ShapeError."""
    text = str(exc)
    if not re.search(r"\b[Xy]\b", text):  # scikit-learn's "Found array with 0 sample(s)" is about X
        text = f"X: {text}"
    if isinstance(exc, TypeError) or "convert" in text or "string" in text or "bytes" in text:
        return InputTypeError(f"{text} (xpnet needs real numbers: bool, integer or float; encode or convert "
                              "non-numeric columns first)")
    if "NaN" in text or "infinity" in text or "Complex" in text:
        # The first line: scikit-learn appends the whole array to "Complex data not supported".
        return InvalidValueError(f"{text.splitlines()[0]} (xpnet needs finite real numbers: drop, impute or convert "
                                 "those values first)")
    return ShapeError(text)


def _num_rows(a: Any) -> int | None:
    """The number of rows of an array or a list, or None (None, scalars, anything else)."""
    shape = getattr(a, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) >= 1 else None
    return len(a) if isinstance(a, (list, tuple)) else None


def _check_y_values(y: Any) -> None:
    """NaN or infinity in float labels or targets (a NumPy array: ``y`` is read on the host anyway) is an
    InvalidValueError naming ``y``, the count and the first bad value."""
    if isinstance(y, np.ndarray) and y.dtype.kind == "f" and y.size and not np.all(np.isfinite(y)):
        _xp.check_finite(_xp.namespace_of(y), y, "y")
    if isinstance(y, np.ndarray) and y.dtype == object and y.size:
        # Sorting the classes would raise TypeError ('<' between None and str) deep inside NumPy.
        flat = y.reshape(-1)
        missing = [i for i, v in enumerate(flat) if v is None or (isinstance(v, float) and v != v)]
        if missing:
            raise LabelError(f"y holds a missing label (None or NaN) at {len(missing)} position(s), the first "
                             f"y[{missing[0]}]; drop those samples or fill them in")
        kinds = {"text" if isinstance(v, str) else "numbers" if isinstance(v, numbers.Number) else type(v).__name__
                 for v in flat}
        if len(kinds) > 1:
            raise LabelError(f"y mixes {' and '.join(sorted(kinds))}; labels must all be text or all numbers "
                             "(convert them with y.astype(str))")


def _seed_from(random_state: Any) -> int | None:
    """scikit-learn's ``random_state`` (None, int or RandomState) -> xpnet's seed (an int, or None for
    fresh entropy). An int is used as is, so ``random_state=3`` gives the same weights on every backend."""
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    return check_seed(random_state)


def _refuse_partial_standardize(est: Any) -> None:
    if est.standardize:
        raise ConfigError("standardize=True learns the feature mean and scale in fit, from all of the training "
                          "data; partial_fit sees one batch at a time: standardize with a StandardScaler fitted "
                          "beforehand (in a Pipeline) and set standardize=False")


def _column(xp: Any, v: Any) -> Any:
    """A (n,) vector as a (n, 1) column, to broadcast over the columns of a lecture-layout X."""
    return xp.reshape(v, (-1, 1))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _on_device(method: Any) -> Any:
    """Run an estimator method with its fitted backend's device current (CuPy allocates and launches on the
    current device: an estimator on cupy:1 needs device 1 current for everything it computes); as it is before
    a fit (the method then raises NotFittedError)."""
    import contextlib
    import functools

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        backend = getattr(self, "_backend_", None)
        with backend.activate() if backend is not None else contextlib.nullcontext():
            return method(self, *args, **kwargs)

    return wrapper

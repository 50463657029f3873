"""The regressor, :class:`DNNRegressor`: a linear output trained on the mean squared error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.callback import with_callbacks

from ..device import xp as _xp
from ..device.backend import Backend
from ..errors import ConfigError, InputTypeError, InvalidValueError, ShapeError
from .base import _DNNEstimator
from .checks import (
    _check_score_lengths,
    _check_y_values,
    _on_device,
    _refuse_partial_standardize,
    _StochasticOnly,
)


class DNNRegressor(RegressorMixin, _DNNEstimator):
    """A dense network regressor with scikit-learn's API, on any xpnet backend.

    A linear output trained on the mean squared error (``1/(2m) sum (AL - Y)^2``, so ``dZL = AL - Y``);
    ``y`` may be ``(n_samples,)`` or ``(n_samples, n_targets)``. Parameters, attributes and conventions
    are those of :class:`DNNClassifier` without ``class_weight``/``classes_``; ``score`` is R^2.
    """

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] | int = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: int = 0,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        backend: str | Backend | None = None,
        dtype: str | None = None,
        dropout: float | Sequence[float] = 0.0,
        init: Any = "glorot_uniform",
        loss: str = "squared_error",
        standardize: bool = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start,
            momentum=momentum, nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, backend=backend,
            dtype=dtype, dropout=dropout, init=init, standardize=standardize,
        )
        self.loss = loss

    def _output_activation(self) -> str:
        return "linear"  # "exp" for loss="poisson" is set on the network by _new_network

    def _poisson(self) -> bool:
        if self.loss not in ("squared_error", "poisson"):
            raise ConfigError(f"loss must be 'squared_error' or 'poisson', got {self.loss!r}")
        return self.loss == "poisson"

    def _targets(self, y: Any, Xb: Any, *, first: bool, classes: Any = None) -> tuple[Any, Any, int]:
        """``y`` -> float targets ``(n_targets, m)`` on the backend in ``Xb``'s dtype (standardized when
        ``standardize``; ``first`` learns that scaling), no class index, and ``m``."""
        bk = self._backend_
        m = Xb.shape[0]
        try:
            y_host = np.asarray(_xp.to_numpy(y) if _xp.is_array(y) else y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"y must hold real numbers (regression targets): {exc}") from None
        _check_y_values(y_host)
        given = y_host.shape
        if y_host.ndim == 1:
            y_host = y_host.reshape(-1, 1)
        if y_host.ndim != 2 or y_host.shape[0] != m:
            raise ShapeError(f"y has shape {given} but X has {m} samples: y must be (n_samples,) or "
                             "(n_samples, n_targets)")
        if not first and hasattr(self, "network_") and y_host.shape[1] != self.network_.layer_dims[-1]:
            raise ShapeError(f"y has {y_host.shape[1]} targets but the model was fitted with "
                             f"{self.network_.layer_dims[-1]}")
        dtype = Xb.dtype  # already the dtype this fit computes in
        limit = float(np.finfo(_xp.dtype_name(bk.xp, dtype)).max)
        if y_host.size and np.abs(y_host).max() > limit:
            where = tuple(int(i) for i in np.unravel_index(np.abs(y_host).argmax(), y_host.shape))
            shown = f"y[{where[0]}]" if len(given) == 1 else f"y[{where[0]}, {where[1]}]"
            raise InvalidValueError(
                f"y holds values beyond the range of {_xp.dtype_name(bk.xp, dtype)} (largest {limit:.3g}), which this "
                f"estimator computes in: {shown} = {y_host[where]:g}; rescale y or use dtype='float64'")
        poisson = (self._poisson() if first else self.network_.output.name == "exp")
        if poisson and y_host.size and y_host.min() < 0:
            raise InvalidValueError(f"loss='poisson' needs targets >= 0 (counts, rates), but y holds {y_host.min():g}; "
                                    "use loss='squared_error'")
        if first:
            self.y_mean_ = self.y_scale_ = None
            if self.standardize and not poisson:  # a Poisson target keeps its scale: e^Z models it as it is
                # Targets too: a linear output starting near 0 would need thousands of steps to reach y ~ 50.
                # Learned from all of fit's y (the validation split, a part of it, included).
                mean, std = y_host.mean(axis=0), y_host.std(axis=0)
                self.y_mean_ = mean
                self.y_scale_ = np.where(std <= 1e-12 * np.maximum(np.abs(mean), 1.0), 1.0, std)
                self._y_mean_b = bk.asarray(self.y_mean_.reshape(1, -1), dtype=dtype)
                self._y_scale_b = bk.asarray(self.y_scale_.reshape(1, -1), dtype=dtype)
        if getattr(self, "y_mean_", None) is not None:
            y_host = (y_host - self.y_mean_) / self.y_scale_
        return bk.asarray(np.ascontiguousarray(y_host.T), dtype=dtype), None, m

    def _sample_weights(self, index: Any, T: Any) -> Any:
        return None

    @_StochasticOnly  # scikit-learn's MLP hides it for solver='lbfgs' (available_if)
    @with_callbacks
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> DNNRegressor:
        """One epoch over ``(X, y)``, continuing from the current state (``early_stopping=True`` is refused, as
        scikit-learn refuses it, and ``standardize`` is learned by ``fit`` only)."""
        if not hasattr(self, "network_"):
            _refuse_partial_standardize(self)
        return self._fit(X, y, epochs=1, validation_data=None, incremental=True, sample_weight=sample_weight)

    @_on_device
    def predict(self, X: Any, *, batch_size: int | None = None) -> Any:
        """Predictions, shape ``(n_samples,)`` for one target (as scikit-learn's MLPRegressor, also when fitted
        on a ``(n_samples, 1)`` y), else ``(n_samples, n_targets)``. ``batch_size``: samples per forward pass
        (None: automatic, bounded device memory); it changes only the memory taken, not the result (beyond the
        last bits of rounding)."""
        P, give_numpy = self._forward(X, batch_size)
        if getattr(self, "y_mean_", None) is not None:
            P = P * self._y_scale_b + self._y_mean_b
        if P.shape[1] == 1:
            P = self._backend_.xp.reshape(P, (-1,))
        return self._backend_.to_numpy(P) if give_numpy else P

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2 of ``predict(X)`` against ``y``."""
        from sklearn.metrics import r2_score

        _check_score_lengths(X, y, sample_weight)
        y_true = _xp.to_numpy(y) if _xp.is_array(y) else y
        _check_y_values(y_true)
        return float(r2_score(y_true, _xp.to_numpy(self.predict(X)), sample_weight=sample_weight))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

"""Losses, each in two forms.

* The lecture's form works on the output activations ``AL`` and is what :mod:`xpnet.functional` uses,
  so a learner's numbers match the lecture's (including its NaN when a sigmoid saturates to exactly 0
  or 1).
* The fused form works on the output layer's *logits* ``ZL`` and is what training uses: it is stable for
  any ``ZL`` and, paired with its output activation, its gradient is simply ``dZL = AL - Y``.

Shapes: ``AL``, ``ZL`` and ``Y`` are ``(n_L, m)``; costs are 0-d arrays in the inputs' namespace.

| loss                      | output  | lecture cost J(AL, Y)                | fused cost J(ZL, Y)                 |
| ------------------------- | ------- | ------------------------------------ | ----------------------------------- |
| binary_cross_entropy      | sigmoid | -1/m sum(Y log AL + (1-Y) log(1-AL)) | 1/m sum(logaddexp(0, ZL) - Y ZL)    |
| categorical_cross_entropy | softmax | -1/m sum(Y log AL)                   | 1/m sum(Y (lse(ZL) - ZL))           |
| mse                       | linear  | 1/(2m) sum((AL - Y)^2)               | the same, with AL = ZL              |

``lse`` is the per-column log-sum-exp, computed max-shifted. ``mse`` is half the squared error summed
over outputs and averaged over examples, the scaling whose gradient is exactly ``AL - Y``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _xp
from ._registry import lookup
from .errors import ConfigError, LabelError, ShapeError

__all__ = ["LOSSES", "Loss", "as_targets", "default_loss_for", "get_loss"]


def _bce_cost(xp: Any, AL: Any, Y: Any) -> Any:
    m = AL.shape[1]
    return -(1.0 / m) * xp.sum(Y * xp.log(AL) + (1.0 - Y) * xp.log(1.0 - AL))


def _bce_gradient(xp: Any, AL: Any, Y: Any) -> Any:
    return -(Y / AL - (1.0 - Y) / (1.0 - AL))


def _weighted_mean(xp: Any, terms: Any, weights: Any) -> Any:
    # (1/m) sum_j w_j loss_j: weights (1, m) scale whole examples (class weights); None means all ones.
    m = terms.shape[1]
    if weights is not None:
        terms = terms * weights
    return (1.0 / m) * xp.sum(terms)


def _bce_fused(xp: Any, ZL: Any, Y: Any, weights: Any = None) -> Any:
    # -[y log s(z) + (1-y) log(1-s(z))] == log(1 + e^z) - y z, and logaddexp(z, 0) never overflows.
    return _weighted_mean(xp, xp.logaddexp(ZL, 0.0) - Y * ZL, weights)


def _cce_cost(xp: Any, AL: Any, Y: Any) -> Any:
    m = AL.shape[1]
    return -(1.0 / m) * xp.sum(Y * xp.log(AL))


def _cce_gradient(xp: Any, AL: Any, Y: Any) -> Any:
    return -(Y / AL)


def _cce_fused(xp: Any, ZL: Any, Y: Any, weights: Any = None) -> Any:
    # -sum_i y_i log softmax(z)_i == sum_i y_i (lse(z) - z_i); holds for soft labels too.
    top = xp.max(ZL, axis=0, keepdims=True)
    lse = top + xp.log(xp.sum(xp.exp(ZL - top), axis=0, keepdims=True))
    return _weighted_mean(xp, Y * (lse - ZL), weights)


def _mse_cost(xp: Any, AL: Any, Y: Any) -> Any:
    m = AL.shape[1]
    D = AL - Y
    return (0.5 / m) * xp.sum(D * D)


def _mse_gradient(xp: Any, AL: Any, Y: Any) -> Any:
    return AL - Y


def _mse_fused(xp: Any, ZL: Any, Y: Any, weights: Any = None) -> Any:
    D = ZL - Y
    return 0.5 * _weighted_mean(xp, D * D, weights)


@dataclass(frozen=True)
class Loss:
    """A loss: the lecture's ``cost(xp, AL, Y)`` and ``gradient(xp, AL, Y) -> dAL``, the stable
    ``fused_cost(xp, ZL, Y, weights=None)`` (``weights``: optional (1, m) per-example weights, the cost
    becoming ``(1/m) sum_j w_j loss_j``), and the ``output`` activation it fuses with (``dZL = AL - Y``)."""

    name: str
    output: str
    cost: Callable[[Any, Any, Any], Any]
    gradient: Callable[[Any, Any, Any], Any]
    fused_cost: Callable[..., Any]

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (get_loss, (self.name,))


LOSSES: dict[str, Loss] = {
    "binary_cross_entropy": Loss("binary_cross_entropy", "sigmoid", _bce_cost, _bce_gradient, _bce_fused),
    "categorical_cross_entropy": Loss("categorical_cross_entropy", "softmax", _cce_cost, _cce_gradient,
                                      _cce_fused),
    "mse": Loss("mse", "linear", _mse_cost, _mse_gradient, _mse_fused),
}
_ALIASES = {
    "bce": "binary_cross_entropy",
    "binary_crossentropy": "binary_cross_entropy",
    "cce": "categorical_cross_entropy",
    "categorical_crossentropy": "categorical_cross_entropy",
    "cross_entropy": "categorical_cross_entropy",
    "squared_error": "mse",
}
_DEFAULT_FOR_OUTPUT = {loss.output: name for name, loss in LOSSES.items()}


def get_loss(loss: str | Loss) -> Loss:
    """Look up a loss by name; :class:`~xpnet.errors.ConfigError` lists the valid names for an unknown one."""
    if isinstance(loss, Loss):
        return loss
    return lookup(loss, LOSSES, kind="loss", plural="losses", aliases=_ALIASES)


def default_loss_for(output: Any) -> Loss:
    """The loss that pairs with an output activation: sigmoid -> binary cross-entropy, softmax ->
    categorical cross-entropy, linear -> mse."""
    from .activations import get_activation

    name = get_activation(output).name
    if name not in _DEFAULT_FOR_OUTPUT:
        raise ConfigError(
            f"output activation {name!r} has no default loss; use one of "
            f"{', '.join(f'{o} ({n})' for o, n in _DEFAULT_FOR_OUTPUT.items())} or pass loss= explicitly"
        )
    return LOSSES[_DEFAULT_FOR_OUTPUT[name]]


def as_targets(xp: Any, Y: Any, n_out: int, m: int, dtype: Any, loss: Loss, *, device: Any = None) -> Any:
    """Bring labels ``Y`` to the float ``(n_out, m)`` array the losses expect.

    Accepted: ``(n_out, m)`` arrays of any numeric dtype (cast to ``dtype``); a 1-D ``(m,)`` vector when
    ``n_out == 1``; and, for categorical cross-entropy with ``n_out = C > 1``, integer class labels of
    shape ``(m,)`` or ``(1, m)``, which are one-hot encoded to ``(C, m)``.

    Raises :class:`~xpnet.errors.ShapeError` for a shape that fits none of these and
    :class:`~xpnet.errors.LabelError` for class labels outside ``0 .. C-1``, binary labels outside
    ``[0, 1]`` or non-numeric labels. (Checking values reads one boolean back from the device: done once per
    call, never inside a training loop.)
    """
    shape = tuple(Y.shape)
    device = device if device is not None else _xp.device_of(Y)
    if not xp.isdtype(Y.dtype, ("bool", "integral", "real floating")):
        raise LabelError(f"Y has dtype {Y.dtype}; labels must be real numbers (bool, integer or float)")
    integral = xp.isdtype(Y.dtype, "integral")
    if loss.name == "categorical_cross_entropy" and n_out > 1 and integral and shape in ((m,), (1, m)):
        # Compared in the index dtype: a narrow label dtype (uint8) could not hold 0..C-1 for C > 256.
        labels = xp.astype(xp.reshape(Y, (1, m)), _xp.index_dtype(xp, device))
        if m and bool(xp.any((labels < 0) | (labels >= n_out))):
            raise LabelError(
                f"class labels must lie in 0..{n_out - 1} for an output layer of {n_out} units; "
                f"got labels from {int(xp.min(labels))} to {int(xp.max(labels))}"
            )
        classes = xp.reshape(xp.arange(n_out, dtype=labels.dtype, device=device), (n_out, 1))
        return xp.astype(labels == classes, dtype)
    if len(shape) == 1 and n_out == 1 and shape[0] == m:
        Y = xp.reshape(Y, (1, m))
    elif shape != (n_out, m):
        hint = ""
        if loss.name == "categorical_cross_entropy" and n_out > 1:
            hint = f"; for {n_out} classes pass one-hot labels ({n_out}, {m}) or integer class labels ({m},)"
        raise ShapeError(f"Y has shape {shape} but the output is ({n_out}, {m}): Y must be ({n_out}, {m}){hint}")
    if Y.dtype != dtype:
        Y = xp.astype(Y, dtype)
    if loss.name == "binary_cross_entropy" and m and bool(xp.any((Y < 0.0) | (Y > 1.0))):
        raise LabelError(
            f"binary cross-entropy needs labels in [0, 1] (0/1 classes); got values from {float(xp.min(Y))} "
            f"to {float(xp.max(Y))}: map your two classes to 0 and 1"
        )
    return Y

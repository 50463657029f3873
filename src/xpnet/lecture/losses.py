"""Losses, each in two forms.

* The lecture's form works on the output activations ``AL`` and is what :mod:`xpnet.functional` uses,
  so a learner's numbers match the lecture's. Its ``y log a`` terms take the limit ``0 log 0 = 0``, so an
  output that saturated to exactly its label (``AL == 1`` for ``Y == 1``) costs 0, not NaN; one that
  saturated to exactly the wrong end (``AL == 0`` for ``Y == 1``) makes the formula infinite, and the cost
  raises :class:`~xpnet.errors.InvalidValueError` pointing at the fused form instead of returning inf or NaN.
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

from ..device import xp as _xp
from ..errors import ConfigError, InvalidValueError, LabelError, ShapeError
from .registry import lookup

__all__ = ["LOSSES", "Loss", "as_targets", "default_loss_for", "get_loss"]


def _y_log_a(xp: Any, Y: Any, A: Any) -> Any:
    # y log a with its limit 0 log 0 = 0: a label of 0 takes nothing from its probability, even an exact 0
    # (log is taken of 1 there, so no log(0) is evaluated: no inf * 0 = NaN, no warning).
    return Y * xp.log(xp.where(Y == 0, 1.0, A))


def _refuse_zero_probabilities(xp: Any, AL: Any, pairs: list[tuple[Any, Any]], loss: str, formula: str) -> None:
    # y log a is -inf where a label weight y != 0 meets a probability a of exactly 0: an output that saturated,
    # whose logits still have a finite cost. Say so instead of returning inf/NaN. AL holding NaN or numbers
    # outside [0, 1] is no probability at all (a broken forward pass, or logits passed as AL): said apart.
    # Both are found with one read-back (the lecture's form is never used in a training loop).
    hopeless = [(Yk != 0) & ~(Ak > 0) for Yk, Ak in pairs]
    for more in hopeless[1:]:
        hopeless[0] = hopeless[0] | more
    invalid = ~((AL >= 0.0) & (AL <= 1.0))  # NaN compares false
    flags = xp.astype(xp.any(invalid), xp.int32) * 2 + xp.astype(xp.any(hopeless[0]), xp.int32)
    found = int(flags)
    if found >= 2:
        raise InvalidValueError(
            f"{loss}: AL holds NaN / values outside [0, 1], so it is not a probability and the lecture's cost "
            f"{formula} is meaningless (NaN means the forward pass broke, e.g. diverged parameters; values outside "
            "[0, 1] are not the output of a sigmoid or softmax: logits passed as AL?). Pass the output "
            f"activations as AL, or compute the cost from the logits ZL with xpnet.get_loss({loss!r})"
            ".fused_cost(xp, ZL, Y), as training does"
        )
    if found:
        raise InvalidValueError(
            f"{loss}: the lecture's cost {formula} is infinite for this AL: an output saturated to exactly 0 or 1 "
            "on the wrong side of its label, where log 0 = -inf (a sigmoid rounds to exactly 1 beyond a logit of "
            "about 17 in float32, 37 in float64). The cost of the logits is finite: compute it "
            f"from ZL (model_forward's caches[-1][1]) with the fused form, xpnet.get_loss({loss!r})"
            ".fused_cost(xp, ZL, Y), as training does"
        )


def _bce_cost(xp: Any, AL: Any, Y: Any, *, check: bool = True) -> Any:
    m = AL.shape[1]
    if check:
        _refuse_zero_probabilities(xp, AL, [(Y, AL), (1.0 - Y, 1.0 - AL)], "binary_cross_entropy",
                                   "-(1/m) sum(Y log AL + (1-Y) log(1-AL))")
    return -(1.0 / m) * xp.sum(_y_log_a(xp, Y, AL) + _y_log_a(xp, 1.0 - Y, 1.0 - AL))


def _bce_gradient(xp: Any, AL: Any, Y: Any) -> Any:
    # -(Y/AL - (1-Y)/(1-AL)), each term taken only where its label weight is nonzero (as in _y_log_a): an output
    # saturated to exactly its label (AL == 1 for Y == 1, AL == 0 for Y == 0) gets a finite gradient, not 0/0 =
    # NaN. Saturated to the wrong end (AL == 0 for Y == 1) the formula is infinite, and so is this.
    return -(Y / xp.where(Y == 0, 1.0, AL) - (1.0 - Y) / xp.where(Y == 1, 1.0, 1.0 - AL))


def _weighted_mean(xp: Any, terms: Any, weights: Any) -> Any:
    # (1/m) sum_j w_j loss_j: weights (1, m) scale whole examples (class weights); None means all ones.
    m = terms.shape[1]
    if weights is not None:
        terms = terms * weights
    return (1.0 / m) * xp.sum(terms)


def _bce_fused(xp: Any, ZL: Any, Y: Any, weights: Any = None) -> Any:
    # -[y log s(z) + (1-y) log(1-s(z))] == log(1 + e^z) - y z, and logaddexp(z, 0) never overflows.
    return _weighted_mean(xp, xp.logaddexp(ZL, _xp.scalar_operand(xp, 0.0, ZL)) - Y * ZL, weights)


def _cce_cost(xp: Any, AL: Any, Y: Any, *, check: bool = True) -> Any:
    m = AL.shape[1]
    if check:
        _refuse_zero_probabilities(xp, AL, [(Y, AL)], "categorical_cross_entropy", "-(1/m) sum(Y log AL)")
    return -(1.0 / m) * xp.sum(_y_log_a(xp, Y, AL))


def _cce_gradient(xp: Any, AL: Any, Y: Any) -> Any:
    # -(Y/AL), 0 where Y == 0 even for AL == 0 (not 0/0 = NaN); infinite where a label meets AL == 0.
    return -(Y / xp.where(Y == 0, 1.0, AL))


def _cce_fused(xp: Any, ZL: Any, Y: Any, weights: Any = None) -> Any:
    # -sum_i y_i log softmax(z)_i == sum_i y_i (lse(z) - z_i); holds for soft labels too. Both terms are taken
    # relative to the column's max t, lse(z) - z_i == lse(z - t) - (z_i - t): z_i - t is exact for logits near
    # the max, so a float32 loss of log(1 + e^-1) beside logits of 1e4 is not lost rounding lse(z) to 1e4.
    shifted = ZL - xp.max(ZL, axis=0, keepdims=True)
    lse_shifted = xp.log(xp.sum(xp.exp(shifted), axis=0, keepdims=True))
    return _weighted_mean(xp, Y * (lse_shifted - shifted), weights)


def _mse_cost(xp: Any, AL: Any, Y: Any, *, check: bool = True) -> Any:
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
    """A loss: the lecture's ``cost(xp, AL, Y, check=True)`` and ``gradient(xp, AL, Y) -> dAL``, the stable
    ``fused_cost(xp, ZL, Y, weights=None)`` (``weights``: optional (1, m) per-example weights, the cost
    becoming ``(1/m) sum_j w_j loss_j``), and the ``output`` activation it fuses with (``dZL = AL - Y``).

    ``AL``, ``ZL``, ``Y`` are ``(n_L, m)``; costs are 0-d arrays. The cross-entropies' ``cost`` takes
    ``0 log 0 = 0`` and, with ``check`` (one number read back), raises :class:`~xpnet.errors.InvalidValueError` where
    a label meets a probability of exactly 0 (the formula is infinite there; the fused cost is not) or where
    ``AL`` holds NaN or values outside ``[0, 1]``; ``check=False`` skips that read and returns ``inf``. Their
    ``gradient`` likewise takes each ``Y/AL`` term only where its label weight is nonzero: finite for outputs
    saturated to exactly their label, infinite (as the formula is) for ones saturated to the wrong end."""

    name: str
    output: str
    cost: Callable[..., Any]
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


def _label_range(xp: Any, Y: Any) -> tuple[int, int]:
    """The smallest and largest integer label, exactly (``uint64``'s ``2**64 - 1`` too)."""
    try:
        return int(xp.min(Y)), int(xp.max(Y))
    except (NotImplementedError, RuntimeError, TypeError):  # torch has no min/max for uint64: on the host
        host = _xp.to_numpy(Y)
        return int(host.min()), int(host.max())


def as_targets(xp: Any, Y: Any, n_out: int, m: int, dtype: Any, loss: Loss, *, device: Any = None,
               check_range: bool = True) -> Any:
    """Bring labels ``Y`` to the float ``(n_out, m)`` array the losses expect.

    Accepted: ``(n_out, m)`` arrays of any numeric dtype (cast to ``dtype``); a 1-D ``(m,)`` vector when
    ``n_out == 1``; and, for categorical cross-entropy with ``n_out = C > 1``, integer class labels of
    shape ``(m,)`` or ``(1, m)``, which are one-hot encoded to ``(C, m)``.

    Raises :class:`~xpnet.errors.ShapeError` for a shape that fits none of these and
    :class:`~xpnet.errors.LabelError` for class labels outside ``0 .. C-1``, binary labels or one-hot
    targets outside ``[0, 1]`` or non-numeric labels. (Checking values reads one boolean back from the
    device: done once per call, never inside a training loop.) ``check_range=False`` skips the ``[0, 1]``
    check of float targets: the lecture's formulas are defined for any finite real ``Y`` (the building blocks
    compute them as written); the training entry points keep the check, where such labels are a mistake.
    """
    shape = tuple(Y.shape)
    device = device if device is not None else _xp.device_of(Y)
    if not xp.isdtype(Y.dtype, ("bool", "integral", "real floating")):
        raise LabelError(f"Y has dtype {Y.dtype}; labels must be real numbers (bool, integer or float)")
    integral = xp.isdtype(Y.dtype, "integral")
    if loss.name == "categorical_cross_entropy" and n_out > 1 and integral and shape in ((m,), (1, m)):
        # Checked in Y's own dtype (uint64's 2**64 - 1 would wrap to -1 in the index dtype and be misreported),
        # then compared in the index dtype (a narrow label dtype, uint8, could not hold 0..C-1 for C > 256).
        low, high = _label_range(xp, Y) if m else (0, 0)
        if low < 0 or high >= n_out:
            raise LabelError(
                f"class labels must lie in 0..{n_out - 1} for an output layer of {n_out} units; "
                f"got labels from {low} to {high}"
            )
        labels = xp.astype(xp.reshape(Y, (1, m)), _xp.index_dtype(xp, device))
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
    if check_range and loss.name == "binary_cross_entropy" and m and bool(xp.any((Y < 0.0) | (Y > 1.0))):
        raise LabelError(
            f"binary cross-entropy needs labels in [0, 1] (0/1 classes); got values from {float(xp.min(Y))} "
            f"to {float(xp.max(Y))}: map your two classes to 0 and 1"
        )
    if check_range and loss.name == "categorical_cross_entropy" and m and bool(xp.any((Y < 0.0) | (Y > 1.0))):
        # One-hot (or soft) targets are probabilities: -1 or 2 would train to a negative "cost" silently.
        raise LabelError(
            f"categorical cross-entropy needs one-hot (or probability) targets in [0, 1]; got values from "
            f"{float(xp.min(Y))} to {float(xp.max(Y))}: pass integer class labels (m,) or one-hot columns"
        )
    return Y

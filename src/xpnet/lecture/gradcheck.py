"""Two-sided numerical gradient check, the lecture's way.

For every parameter ``theta_i`` (all of ``W1, b1, ..., WL, bL`` flattened into one vector ``theta``)::

    gradapprox_i = (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)
    difference   = ||grad - gradapprox|| / (||grad|| + ||gradapprox||)

and the check passes when ``difference < threshold`` (the lecture's ``eps = 1e-7``, ``2e-7``).

It runs in float64 on the device of the inputs (parameters in float32 are cast up for the check), so it
checks the backend's own arithmetic; a device without float64 gets a clear :class:`DTypeError`. The
perturbations are built on the device (``theta + eps * (arange(n) == i)``) and all costs are read back in
one transfer at the end. Cost: ``2n`` forward passes for ``n`` parameters: meant for small networks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..device import xp as _xp
from ..errors import ConfigError, DTypeError, GradientCheckError, ShapeError
from .activations import Activation, get_activation
from .functional import _model_forward, model_backward, model_forward, num_layers
from .losses import Loss, as_targets, default_loss_for, get_loss
from .network import fused_gradients, training_loss

__all__ = ["GradCheckResult", "gradient_check"]


@dataclass
class GradCheckResult:
    """Outcome of :func:`gradient_check`; truthy when it passed.

    Attributes
    ----------
    difference : ``||g - g_num|| / (||g|| + ||g_num||)`` over all parameters
    threshold : the bound it was compared with
    passed : ``difference < threshold``
    n_parameters : the number of scalars perturbed (the length of theta)
    per_parameter : the same relative difference for each array (``"W1"``, ``"b1"``, ...)
    """

    difference: float
    threshold: float
    passed: bool
    n_parameters: int
    per_parameter: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        worst = max(self.per_parameter, key=self.per_parameter.get) if self.per_parameter else "-"
        return (f"gradient check {verdict}: difference {self.difference:.3e} (threshold {self.threshold:.1e}) "
                f"over {self.n_parameters} parameters; worst {worst}")


def _relative_difference(xp: Any, g: Any, g_num: Any) -> Any:
    num = xp.sqrt(xp.sum((g - g_num) ** 2))
    den = xp.sqrt(xp.sum(g * g)) + xp.sqrt(xp.sum(g_num * g_num))
    # Both gradients exactly zero: they agree.
    return xp.where(den > 0, num / xp.where(den > 0, den, 1.0), 0.0 * num)


def gradient_check(
    parameters: Mapping[str, Any],
    X: Any,
    Y: Any,
    *,
    hidden: str | Activation = "relu",
    output: str | Activation = "sigmoid",
    loss: str | Loss | None = None,
    path: str = "training",
    epsilon: float = 1e-7,
    threshold: float = 2e-7,
    raise_on_failure: bool = False,
    lambd: float = 0.0,
    keep_masks: Mapping[int, Any] | None = None,
) -> GradCheckResult:
    """Compare analytic gradients with two-sided finite differences.

    Parameters
    ----------
    parameters : ``W1, b1, ..., WL, bL`` arrays
    X : (n_x, m) array, same namespace and device as the parameters
    Y : labels in any form :func:`xpnet.functional.compute_cost` accepts
    hidden, output : activation names
    loss : loss name; ``None`` pairs it with ``output``
    path : ``"training"`` checks the fused gradients training uses (:func:`xpnet.network.fused_gradients`,
        cost from the logits); ``"lecture"`` checks :func:`xpnet.functional.model_backward` against
        :func:`xpnet.functional.compute_cost`'s formula (any output/loss pair)
    epsilon, threshold : the lecture's 1e-7 and 2e-7
    raise_on_failure : raise :class:`~xpnet.errors.GradientCheckError` instead of returning a failed result
    lambd : L2 strength, checked with the training path (cost ``+ lambd/(2m) sum ||W||^2``)
    keep_masks : ``{l: M[l]}`` fixed inverted-dropout masks (``0`` or ``1/keep_prob``, shape (n_l, m)) for the
        training path; fixed masks make the cost a deterministic function of the parameters, so dropout's
        backward pass can be checked too

    Returns
    -------
    GradCheckResult with the overall ``difference`` and one per parameter array.
    """
    if path not in ("training", "lecture"):
        raise ConfigError(f"path must be 'training' or 'lecture', got {path!r}")
    if path == "lecture" and (lambd or keep_masks):
        raise ConfigError("lambd and keep_masks are checked on the training path (path='training'); the "
                          "lecture's functional chain has neither")
    if isinstance(lambd, bool) or not isinstance(lambd, numbers.Real) or not (0 <= lambd < math.inf):
        raise ConfigError(f"lambd must be a finite number >= 0, got {lambd!r}")
    L = num_layers(parameters)
    hidden_act, output_act = get_activation(hidden), get_activation(output)
    if path == "training":
        loss_ = training_loss(output_act, loss)
    else:
        loss_ = default_loss_for(output_act) if loss is None else get_loss(loss)
    for name, value in (("epsilon", epsilon), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 < value < math.inf):
            raise ConfigError(f"{name} must be a positive number, got {value!r}")
    W1 = parameters["W1"]
    # CuPy runs kernels on the current device: arrays on cupy:N need N current for the whole check.
    with _xp.device_context(_xp.namespace_of(W1), _xp.device_of(W1)):
        return _check(parameters, X, Y, L, hidden_act, output_act, loss_, path, float(epsilon), float(threshold),
                      raise_on_failure, float(lambd), keep_masks)


def _check(parameters: Mapping[str, Any], X: Any, Y: Any, L: int, hidden_act: Activation, output_act: Activation,
           loss_: Loss, path: str, epsilon: float, threshold: float, raise_on_failure: bool, lambd: float = 0.0,
           keep_masks: Mapping[int, Any] | None = None) -> GradCheckResult:
    # One forward pass in the caller's dtype checks every shape, namespace, device and dtype up front.
    model_forward(X, parameters, hidden=hidden_act, output=output_act)
    W1 = parameters["W1"]
    xp = _xp.namespace_of(X, W1, Y)
    device = _xp.check_same_device({"W1": W1, "X": X, "Y": Y})
    if X.shape[1] == 0:
        raise ShapeError("X has no examples (0 columns)")
    if not _xp.supports_float64(xp, device):
        raise DTypeError(f"the gradient check needs float64, which device {device!r} does not have "
                         "(its finite differences are meaningless in float32): run it on a float64 device")
    f64 = _xp.resolve_float_dtype(xp, device, "float64")

    keys = [f"{p}{l}" for l in range(1, L + 1) for p in ("W", "b")]
    shapes = [tuple(parameters[k].shape) for k in keys]
    sizes = [int(parameters[k].shape[0]) * int(parameters[k].shape[1]) for k in keys]
    X64 = xp.astype(X, f64)
    Y64 = as_targets(xp, Y, shapes[-1][0], X.shape[1], f64, loss_, device=device)
    theta = xp.concat([xp.reshape(xp.astype(parameters[k], f64), (-1,)) for k in keys])
    masks = None
    if keep_masks is not None and not isinstance(keep_masks, Mapping):
        raise ConfigError(f"keep_masks must be a dict {{layer: mask}} (hidden layers 1..{L - 1}), got "
                          f"{type(keep_masks).__name__}")
    if keep_masks:
        masks = {}
        for l, M in keep_masks.items():
            if not (isinstance(l, int) and 1 <= l < L) or tuple(M.shape) != (shapes[2 * (l - 1)][0], X.shape[1]):
                raise ShapeError(f"keep_masks[{l!r}] must be a mask of hidden layer 1..{L - 1} with shape "
                                 f"(n_l, m); got shape {tuple(M.shape)}")
            masks[l] = xp.astype(M, f64)

    def unflatten(vector: Any) -> dict[str, Any]:
        out, start = {}, 0
        for k, shape, size in zip(keys, shapes, sizes, strict=True):
            out[k] = xp.reshape(vector[start:start + size], shape)
            start += size
        return out

    def cost(vector: Any) -> Any:
        params = unflatten(vector)
        if path == "training":
            return fused_gradients(xp, params, X64, Y64, hidden_act, output_act, loss_, want_cost=True,
                                   lambd=lambd, keep_masks=masks)[1]
        # X was checked once above; one read-back per perturbation (the cost itself) is enough.
        AL, _ = _model_forward(X64, params, hidden_act, output_act, check_values=False)
        return loss_.cost(xp, AL, Y64, check=False)

    params64 = unflatten(theta)
    if path == "training":
        grads = fused_gradients(xp, params64, X64, Y64, hidden_act, output_act, loss_, want_cost=False,
                                lambd=lambd, keep_masks=masks)[0]
    else:
        AL, caches = model_forward(X64, params64, hidden=hidden_act, output=output_act)
        grads = model_backward(AL, Y64, caches, hidden=hidden_act, output=output_act, loss=loss_)
    grad = xp.concat([xp.reshape(grads[f"d{k}"], (-1,)) for k in keys])

    n = theta.shape[0]
    index = xp.arange(n, device=device)
    plus, minus = [], []
    for i in range(n):
        step = epsilon * xp.astype(index == i, f64)
        plus.append(cost(theta + step))
        minus.append(cost(theta - step))
    approx = (xp.stack(plus) - xp.stack(minus)) / (2.0 * epsilon)

    per_parameter, start = {}, 0
    for k, size in zip(keys, sizes, strict=True):
        per_parameter[k] = float(_relative_difference(xp, grad[start:start + size], approx[start:start + size]))
        start += size
    difference = float(_relative_difference(xp, grad, approx))
    result = GradCheckResult(difference, threshold, difference < threshold, int(n), per_parameter)
    if raise_on_failure and not result.passed:
        raise GradientCheckError(str(result))
    return result

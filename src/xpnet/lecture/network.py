"""The network's math as training runs it: the fused forward/backward pass over all layers.

The lecture's building blocks (:mod:`xpnet.lecture.functional`) chain one layer at a time and keep every
cache; training takes a fused path instead:

* the output activation is fused with its loss, so ``dZL = AL - Y`` and the cost comes from the logits
  ``ZL`` (``logaddexp`` / max-shifted log-sum-exp): no NaN when a sigmoid saturates;
* the backward pass stops at ``dW1, db1``: the gradient with respect to the input features (``dA0``) is
  not needed to train the weights;
* the namespace is resolved once per call (``xp`` is passed in), not once per layer.

Layout is the lecture's: ``X`` is ``(n_x, m)``, ``W[l]`` is ``(n_l, n_{l-1})``. ``X`` may be a transposed
view of sample-major ``(m, n_x)`` data (the engine's batches are): matrix products take it without a copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .activations import Activation, get_activation
from .functional import num_layers
from .losses import Loss, default_loss_for, get_loss

__all__ = ["forward_output", "fused_gradients", "l2_penalty", "training_loss"]


def training_loss(output: str | Activation, loss: str | Loss | None = None) -> Loss:
    """The loss training fuses with ``output`` (sigmoid: binary cross-entropy, softmax: categorical
    cross-entropy, linear: mse), for which ``dZL = AL - Y``; an explicit ``loss`` must be that one."""
    default = default_loss_for(output)
    if loss is not None and get_loss(loss).name != default.name:
        raise ConfigError(
            f"training fuses the output activation with its loss: output {get_activation(output).name!r} "
            f"trains with {default.name!r}, not {get_loss(loss).name!r} (change output= instead)"
        )
    return default


def l2_penalty(xp: Any, parameters: Mapping[str, Any]) -> Any:
    """``sum_l ||W[l]||_F^2`` over the weights ``W1 .. WL`` (biases are not regularized), a 0-d array."""
    L = num_layers(parameters, exact=False)  # a dict missing only W{L} is refused, not run shorter
    return sum(xp.sum(parameters[f"W{l}"] * parameters[f"W{l}"]) for l in range(1, L + 1))


def forward_output(xp: Any, parameters: Mapping[str, Any], X: Any, hidden: Activation, output: Activation
                   ) -> tuple[Any, Any]:
    """Forward pass without caches: ``Z[l] = W[l] A[l-1] + b[l]``, ``A[l] = g(Z[l])``; returns the output
    layer's logits ``ZL`` and activations ``AL``, both ``(n_L, m)`` (the fused costs take ``ZL``)."""
    L = num_layers(parameters, exact=False)  # a dict missing only W{L} is refused, not run shorter
    A = X
    for l in range(1, L + 1):
        Z = parameters[f"W{l}"] @ A + parameters[f"b{l}"]
        A = (output if l == L else hidden).forward(xp, Z)
    return Z, A


def fused_gradients(
    xp: Any,
    parameters: Mapping[str, Any],
    X: Any,
    Y: Any,
    hidden: Activation,
    output: Activation,
    loss: Loss,
    *,
    want_cost: bool = True,
    lambd: float = 0.0,
    keep_masks: Mapping[int, Any] | None = None,
    sample_weight: Any = None,
    l2_gradients: bool = True,
) -> tuple[dict[str, Any], Any, Any]:
    """Forward and backward through the network, the way training does it.

    Forward: ``Z[l] = W[l] A[l-1] + b[l]``, ``A[l] = g(Z[l])``, and with inverted dropout on hidden layer
    ``l``, ``A[l] = A[l] * M[l]`` where ``M[l] = D[l] / keep_prob`` (``D`` a 0/1 mask). Backward:
    ``dZ[L] = w * (A[L] - Y) / m`` (the fused output/loss gradient, ``w`` the per-example weights, 1 by
    default, and the ``1/m`` of the lecture's ``dW`` and ``db`` carried along from here),
    then ``dW[l] = dZ[l] A[l-1]^T + (lambd/m) W[l]``, ``db[l] = sum_cols dZ[l]``,
    ``dA[l-1] = W[l]^T dZ[l]`` (times ``M[l-1]`` under dropout), ``dZ[l-1] = dA[l-1] * g'(Z[l-1])``, stopping
    at layer 1 (no ``dA0``). The cost is ``(1/m) sum_j w_j loss_j + (lambd/(2m)) sum_l ||W[l]||_F^2``,
    computed from the logits ``Z[L]``.

    Parameters
    ----------
    xp : the Array API namespace of all arrays (resolved once by the caller)
    parameters : ``W1, b1, ..., WL, bL`` (other keys are ignored)
    X : (n_x, m) array in the parameters' dtype
    Y : (n_L, m) float targets (see :func:`xpnet.losses.as_targets`)
    hidden, output, loss : resolved objects; ``loss`` must be the one fused with ``output``
    want_cost : compute the cost (from the logits) as well
    lambd : L2 regularization strength (the lecture's ``lambd``, scikit-learn's ``alpha``), >= 0
    keep_masks : ``{l: M[l]}`` for hidden layers ``l`` with dropout, each (n_l, m) holding ``0`` or
        ``1 / keep_prob`` (see :func:`xpnet.engine.dropout.dropout_masks`)
    sample_weight : (1, m) per-example weights in the parameters' dtype, or None
    l2_gradients : add ``(lambd/m) W[l]`` to ``dW[l]`` here (True) or leave it to the caller, who adds it after
        a gradient hook (:func:`xpnet.engine.hooks.add_l2_gradients`); the cost carries the penalty either way

    Returns
    -------
    grads : dict with ``dW{l}`` (n_l, n_{l-1}) and ``db{l}`` (n_l, 1)
    cost : 0-d array, or None when ``want_cost`` is False
    AL : (n_L, m) output activations
    """
    L = num_layers(parameters, exact=False)  # a dict missing only W{L} is refused, not run shorter
    masks = keep_masks or {}
    activations = [X]  # A[0] .. A[L-1]: the inputs of each layer (after dropout), needed for dW
    pre_activations = []  # Z[1] .. Z[L]
    A = X
    for l in range(1, L + 1):
        Z = parameters[f"W{l}"] @ A + parameters[f"b{l}"]
        pre_activations.append(Z)
        A = (output if l == L else hidden).forward(xp, Z)
        if l < L:
            if l in masks:
                A = A * masks[l]
            activations.append(A)
    m = X.shape[1]
    cost = None
    if want_cost:
        cost = loss.fused_cost(xp, pre_activations[-1], Y, sample_weight)
        if lambd:
            cost = cost + (0.5 * lambd / m) * l2_penalty(xp, parameters)
    inv_m = 1.0 / m
    # The 1/m of every gradient rides on dZ[L]: the backward pass is linear in it, so dW and db come out
    # scaled without a pass over each of them (and per-example weights join it as one (1, m) row).
    dZ = (A - Y) * (inv_m if sample_weight is None else sample_weight * inv_m)
    grads: dict[str, Any] = {}
    for l in range(L, 0, -1):
        dW = dZ @ activations[l - 1].T
        if lambd and l2_gradients:
            dW = dW + (lambd * inv_m) * parameters[f"W{l}"]
        grads[f"dW{l}"] = dW
        grads[f"db{l}"] = xp.sum(dZ, axis=1, keepdims=True)
        if l > 1:
            dA = parameters[f"W{l}"].T @ dZ
            if l - 1 in masks:
                dA = dA * masks[l - 1]
            dZ = hidden.backward(xp, dA, pre_activations[l - 2])
    return grads, cost, A

"""The generic training step: the Array API way, on every backend (DESIGN principle 1).

``fused_gradients`` (forward, fused cost, backward without ``dA0``), the gradient hook, the L2 term, then the
optimizer's update, each building new arrays. This is the reference every faster step is proven equal to.
"""

from __future__ import annotations

from typing import Any

from ...device import xp as _xp
from ...lecture.network import fused_gradients
from ..hooks import IDENTITY, GradientHook, add_l2_gradients, run_hook

__all__ = ["GenericStep"]


class GenericStep:
    """One optimization step on one batch, with new arrays for every result.

    ``step(network, optimizer, X, Y, lr, masks, w) -> (cost, AL)``: ``X`` (n_x, b), ``Y`` (n_L, b), the
    learning rate ``lr``, dropout ``masks`` (``{l: M[l]}`` or None) and per-example weights ``w`` ((1, b) or
    None). Computes the gradients (:func:`xpnet.lecture.network.fused_gradients`), passes them through the
    hook, adds ``(lambd/b) W[l]`` to each ``dW[l]``, and sets ``network.parameters`` to the optimizer's update
    (a new dict; old arrays are never written into, so a dict held from before is a snapshot). ``cost`` is
    ``(1/b) sum_j w_j loss_j + (lambd/(2b)) sum_l ||W[l]||_F^2``, a 0-d device array; ``AL`` is (n_L, b).
    """

    writes_in_place = False

    def __init__(self, lambd: float = 0.0, hook: GradientHook = IDENTITY) -> None:
        self.lambd = float(lambd)
        self.hook = hook

    def __call__(self, network: Any, optimizer: Any, X: Any, Y: Any, lr: float, masks: Any, w: Any
                 ) -> tuple[Any, Any]:
        xp = network.backend.xp
        with _xp.no_autograd(xp):  # on torch: no autograd history chained through every update
            return self._step(xp, network, optimizer, X, Y, lr, masks, w)

    def _step(self, xp: Any, network: Any, optimizer: Any, X: Any, Y: Any, lr: float, masks: Any, w: Any
              ) -> tuple[Any, Any]:
        params = network.parameters
        identity = self.hook.is_identity
        # With the identity hook the L2 term joins dW inside the backward pass: the same expression, the same
        # bits, one pass fewer over the gradient dict.
        grads, cost, AL = fused_gradients(xp, params, X, Y, network.hidden, network.output, network.loss,
                                          lambd=self.lambd, keep_masks=masks, sample_weight=w,
                                          l2_gradients=identity)
        if not identity:
            grads = run_hook(self.hook, xp, grads, X.shape[1])
            grads = add_l2_gradients(xp, grads, params, self.lambd, self.hook.l2_batch_size(X.shape[1]))
        network.parameters = optimizer.update(xp, params, grads, lr)
        return cost, AL

    def release(self) -> None:
        """Nothing to drop: the generic step keeps no buffers."""

"""Gradient hooks: the seam between a step's backward pass and its update.

A step computes the data gradients of its batch, ``dW[l] = dZ[l] A[l-1]^T`` and ``db[l] = sum_cols dZ[l]``
(each already carrying the batch's ``1/b``), hands them to the hook, and then adds the L2 term
``(lambd/b) W[l]`` and updates the parameters with what the hook returned. Summing gradients across
processes is a hook (it follows with the distributed engine); training on one process uses
:data:`IDENTITY`, for which the steps keep their fastest order of operations (the L2 term and each layer's
update right after that layer's gradient), with the same bits.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from ..errors import ConfigError

__all__ = ["IDENTITY", "GradientHook", "IdentityHook", "add_l2_gradients", "run_hook"]


class GradientHook:
    """Called once per step between backward and update. Subclass it and define ``__call__``.

    ``hook(xp, grads, batch_size)`` gets ``grads`` (``{"dW1": (n_1, n_0), "db1": (n_1, 1), ...}``, arrays of
    the network's namespace ``xp``) and returns the gradients the update uses, ``{"dW1", "db1", ...}`` with the
    same shapes. It may write into the arrays it was given (the in-place step hands it buffers it owns) and
    return the same dict. ``is_identity`` tells the steps they may skip the hook.
    """

    is_identity = False

    def __call__(self, xp: Any, grads: MutableMapping[str, Any], batch_size: int) -> MutableMapping[str, Any]:
        raise NotImplementedError

    def l2_batch_size(self, batch_size: int) -> int:
        """The ``m`` of the L2 term ``(lambd/m) W[l]`` that the step adds after the hook: the batch the summed
        gradients stand for. The local batch's size here; a sum across processes returns the global batch's
        (so that L2 is counted once, at the global batch's scale)."""
        return batch_size


class IdentityHook(GradientHook):
    """The hook of a single process: the gradients are used as computed."""

    is_identity = True

    def __call__(self, xp: Any, grads: MutableMapping[str, Any], batch_size: int) -> MutableMapping[str, Any]:
        return grads


def run_hook(hook: GradientHook, xp: Any, grads: MutableMapping[str, Any], batch_size: int
             ) -> MutableMapping[str, Any]:
    """Call ``hook`` and check what it returned: every key of ``grads``, each with the shape and dtype it had
    (attribute checks only, no device work). A hook that got this wrong would otherwise train the network into
    parameters of another shape or dtype, or fail deep inside the update."""
    shapes = {k: (tuple(g.shape), g.dtype) for k, g in grads.items()}
    out = hook(xp, grads, batch_size)
    name = type(hook).__name__
    if not isinstance(out, MutableMapping):
        raise ConfigError(f"gradient hook {name} returned {type(out).__name__}; it must return the gradients, a dict "
                          f"with the keys {', '.join(shapes)}")
    for key, (shape, dtype) in shapes.items():
        g = out.get(key)
        if g is None or tuple(getattr(g, "shape", ())) != shape or getattr(g, "dtype", None) != dtype:
            got = "nothing" if g is None else f"{getattr(g, 'shape', type(g).__name__)} {getattr(g, 'dtype', '')}"
            raise ConfigError(f"gradient hook {name} returned {got} for {key}; it must keep each gradient's shape "
                              f"{shape} and dtype {dtype}")
    return out


#: The hook every trainer uses unless given another.
IDENTITY = IdentityHook()


def add_l2_gradients(xp: Any, grads: MutableMapping[str, Any], parameters: Any, lambd: float, m: int
                     ) -> MutableMapping[str, Any]:
    """``dW[l] = dW[l] + (lambd/m) W[l]`` for every layer (new arrays; biases are not regularized): the L2
    term, added after the gradient hook so that a sum of gradients across processes counts it once."""
    if lambd:
        scale = lambd * (1.0 / m)
        for key in grads:
            if key[:2] == "dW":
                grads[key] = grads[key] + scale * parameters[key[1:]]
    return grads

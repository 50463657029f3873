"""Training steps: one forward, cost, backward and update on one mini-batch (the engine's second seam).

Every step has the same call, ``step(network, optimizer, X, Y, lr, masks, w) -> (cost, AL)``, a
``writes_in_place`` flag (whether it updates the parameter and optimizer-state arrays in place) and
``release()``. :func:`choose_step` is the one place that picks one:

* :class:`~xpnet.engine.steps.inplace.InplaceStep` for NumPy, CuPy and torch networks with xpnet's own
  activations and optimizers, scikit-learn's solvers included (the estimators' default fit); buffers reused
  across steps, updates in place; proven bit-for-bit equal to the generic step on NumPy and torch by
  ``tests/test_fast.py`` (on torch through :mod:`~xpnet.engine.steps.torch_ops`, torch's ``out=`` operations);
* :class:`~xpnet.engine.steps.generic.GenericStep` everywhere else (the Array API reference).

A device-specific step joins here, behind the same call, with a test proving it equal to the generic one
(DESIGN principle 8): :class:`~xpnet.engine.steps.fused.FusedStep` (CuPy, its elementwise chains as single
kernels) is experimental and chosen only with ``XPNET_FUSED=1`` until a GPU run proves it (``tests/test_gpu.py``);
so is :class:`~xpnet.engine.steps.graph.GraphStep` (the in-place step captured in a CUDA graph and replayed, on
CuPy and torch CUDA), chosen only with ``XPNET_CUDA_GRAPH=1`` (``tests/test_graph_step.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..hooks import IDENTITY, GradientHook
from . import fused, graph, inplace, torch_ops
from .generic import GenericStep

__all__ = ["GenericStep", "choose_step", "fused", "graph", "inplace", "torch_ops"]


def choose_step(network: Any, optimizer: Any, lambd: float, keep: Mapping[int, float],
                hook: GradientHook = IDENTITY) -> Any:
    """The fastest step proven equal to the generic one for this network and optimizer: the in-place step
    where it applies (``XPNET_FAST=0`` turns it off), else :class:`GenericStep`. ``XPNET_CUDA_GRAPH=1`` asks for
    the captured step first, ``XPNET_FUSED=1`` for the fused CuPy step (both experimental: not yet run on a
    GPU)."""
    captured = graph.graph_step(network, optimizer, lambd, keep, hook=hook)
    if captured is not None:
        if fused.enabled():  # the captured step is the in-place one: the fused kernels are not in it
            graph.not_applied("XPNET_FUSED=1", "a step XPNET_CUDA_GRAPH=1 captures (the in-place step, unfused)")
        return captured
    return (fused.fused_step(network, optimizer, lambd, keep, hook=hook)
            or inplace.inplace_step(network, optimizer, lambd, keep, hook=hook) or GenericStep(lambd, hook))

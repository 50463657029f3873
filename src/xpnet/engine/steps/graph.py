"""The in-place step captured in a CUDA graph and replayed (issue 16, section 3): **experimental, off by default,
never run on a GPU yet**.

On a GPU a small network's step is bound by kernel launches, not arithmetic: the in-place step issues 43 library
calls per gradient-descent step on the mnist network and 109 with Adam, each costing 4-8 us of host time. A CUDA
graph records the step's kernels once and replays them with one launch. What that takes, and how it is done here:

* **Fixed addresses.** A replay reads and writes the memory the capture saw. The in-place step already keeps its
  buffers, parameters and optimizer state at fixed addresses; the batch, its targets and its weights are copied
  into input buffers of the graph's own before each replay (one copy kernel each), laid out as the batch was at
  capture (the engine's batches are transposed views of row-major buffers; the copy keeps that, so the products
  see the same layouts). A graph is kept per batch size and weighting, holding every array it uses.
* **No host scalars.** Values that change from step to step (the learning rate of a schedule, Adam's bias
  corrections ``1/(1 - beta^t)``) would be frozen into a captured kernel's arguments. The step reads them from
  0-d device arrays instead (``InplaceStep.sc``, :func:`~xpnet.engine.steps.inplace.step_scalars`), and this step
  fills those before each step (one fill kernel each, one to three per step); its eager steps read them too, so
  the kernels a capture records have all run (and been compiled) before. Everything else the step passes
  as a number (``1/m``, ``lambd/m``, the betas, epsilon) is constant for a graph's batch size.
* **Memory.** Arrays the capture allocates (the cost, the loss reduction's temporaries) come from a memory pool
  that only captures use (CuPy: a ``MemoryPool`` of the capturer's own; torch: a graph pool), so no array of the
  fit ever takes memory a replay writes into. Before the first capture of a batch size, one step runs eagerly on
  the capture stream with the usual allocator (a real training step: it allocates the step's buffers and the
  optimizer state there, and lets cuBLAS set up its workspace for that stream). A workspace set by hand with
  ``cublasSetWorkspace`` would not last: CuPy sets the handle's stream before every product, and cuBLAS then
  goes back to its default workspace.
* **Ordering.** The capture runs on a side stream (CUDA cannot capture the legacy default stream); replays are
  launched on the current stream, so they stay in order with the rest of the fit.

It applies where the in-place step does, on CuPy and on torch CUDA tensors, with the identity gradient hook (one
process) and no dropout (a new mask per step would be one more input; not done). Each batch size first
runs eagerly until a step creates no new optimizer state (the first update creates it); a step whose parameter
or state arrays are not those captured (a restore, a resume, a user assigning ``parameters["W1"]``) runs eagerly
and the next one captures again. The cost is
returned as a copy (the captured one is overwritten by the next replay); ``AL`` is the graph's buffer, as the
in-place step's is its own.

Results: the arithmetic is the in-place step's, kernel for kernel, so the bits are the eager in-place step's
(``tests/test_graph_step.py`` proves the replay logic on the CPU with a stand-in that records ufunc calls at
capture and re-executes them at replay: a scalar frozen at capture fails it). Chosen only with
``XPNET_CUDA_GRAPH=1`` until ``XPNET_CUDA_GRAPH=1 python -m pytest -m gpu tests/test_graph_step.py`` passes on a
GPU (``scripts/gpu_check.sh``, section ``cupygraph``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from ...device import xp as _xp
from ..hooks import IDENTITY, GradientHook
from .inplace import InplaceStep, inplace_step, step_scalars

__all__ = ["GraphStep", "enabled", "graph_step"]


def enabled() -> bool:
    """True only when ``XPNET_CUDA_GRAPH=1`` asks for the captured step (off by default until a GPU run proves it)."""
    return os.environ.get("XPNET_CUDA_GRAPH", "0").strip().lower() in ("1", "true", "yes", "on")


def graph_step(network: Any, optimizer: Any, lambd: float, keep: Mapping[int, float],
               hook: GradientHook = IDENTITY, capturer: Any = None) -> GraphStep | None:
    """The captured step for ``network`` where ``XPNET_CUDA_GRAPH=1`` is set, the in-place step applies, the
    network is on CuPy or a torch CUDA device, the hook is the identity and dropout is off; else None.
    ``capturer`` stands in for the library's graph API (tests)."""
    if not enabled():
        return None
    if keep or not hook.is_identity:
        return not_applied("XPNET_CUDA_GRAPH=1", "dropout or a multi-process gradient hook")
    inner = inplace_step(network, optimizer, lambd, keep, hook=hook)
    if inner is None or type(inner) is not InplaceStep:
        return not_applied("XPNET_CUDA_GRAPH=1", "a network, optimizer or setting the in-place step does not run "
                                                 "(XPNET_FAST=0 too)")
    if capturer is None:
        capturer = _capturer_for(network.backend)
    if capturer is None:
        return not_applied("XPNET_CUDA_GRAPH=1", f"a network on {network.backend.spec} (CuPy or torch CUDA only)")
    return GraphStep(inner, capturer)


_SAID: set[str] = set()


def not_applied(flag: str, why: str) -> None:
    """Warn once per process and reason that the experimental step ``flag`` asks for does not apply (``why``):
    someone who set it wants to know that the uncaptured step runs instead. Returns None (no step)."""
    text = f"{flag} is set but does not apply to {why}: another step runs"
    if text not in _SAID:
        _SAID.add(text)
        warnings.warn(text, RuntimeWarning, stacklevel=2)


def _capturer_for(backend: Any) -> Any:
    xp = backend.xp
    if _xp.is_cupy_namespace(xp):
        return CupyCapturer()
    if _xp.is_torch_namespace(xp) and getattr(backend.device, "type", None) == "cuda":
        return TorchCapturer(backend.device)
    return None


class CupyCapturer:
    """CuPy's stream capture: a side stream, a memory pool of the graphs' own, graphs launched on the current
    stream."""

    def __init__(self) -> None:
        import cupy

        self.cupy = cupy
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.pool = cupy.cuda.MemoryPool()

    def on_side(self, pool: bool = False) -> AbstractContextManager[Any]:
        """Run the block on the side stream (under the graphs' pool with ``pool``), ordered after the current
        stream's work, and the current stream after it."""
        return _CupySide(self, pool)

    def capture(self, fn: Any) -> Any:
        """``fn()`` captured on the side stream (relaxed mode, CuPy's default), its allocations from the graphs'
        pool: returns ``(graph, fn's result)``."""
        with self.on_side(pool=True):
            self.stream.begin_capture()
            try:
                result = fn()
            finally:
                graph = self.stream.end_capture()
        return graph, result

    def launch(self, graph: Any) -> None:
        graph.launch(self.cupy.cuda.get_current_stream())


class _CupySide:
    def __init__(self, cap: CupyCapturer, pool: bool) -> None:
        self.cap, self.pool = cap, pool

    def __enter__(self) -> None:
        cupy = self.cap.cupy
        self.current = cupy.cuda.get_current_stream()
        self.cap.stream.wait_event(self.current.record())
        self.alloc = cupy.cuda.using_allocator(self.cap.pool.malloc) if self.pool else None
        if self.alloc is not None:
            self.alloc.__enter__()
        self.cap.stream.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.cap.stream.__exit__(*exc)
        if self.alloc is not None:
            self.alloc.__exit__(*exc)
        self.current.wait_event(self.cap.stream.record())


class TorchCapturer:
    """PyTorch's ``torch.cuda.graph``: capture on its side stream into a graph pool shared by this step's graphs;
    replays on the current stream."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.pool = torch.cuda.graph_pool_handle()
        self.stream = torch.cuda.Stream(device=device)

    def on_side(self) -> AbstractContextManager[Any]:
        return _TorchSide(self)

    def capture(self, fn: Any) -> Any:
        graph = self.torch.cuda.CUDAGraph()
        # thread_local: the file sources' prefetch thread may allocate and copy on the GPU during a capture, which
        # the default "global" mode would turn into an error
        with self.torch.cuda.graph(graph, pool=self.pool, stream=self.stream, capture_error_mode="thread_local"):
            result = fn()
        return graph, result

    def launch(self, graph: Any) -> None:
        graph.replay()


class _TorchSide:
    def __init__(self, cap: TorchCapturer) -> None:
        self.cap = cap

    def __enter__(self) -> None:
        torch = self.cap.torch
        self.current = torch.cuda.current_stream(self.cap.device)
        self.cap.stream.wait_stream(self.current)
        self.ctx = torch.cuda.stream(self.cap.stream)
        self.ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.ctx.__exit__(*exc)
        self.current.wait_stream(self.cap.stream)


class _Graph:
    """One captured step: the graph, its input buffers, outputs and every array it uses."""

    def __init__(self, graph: Any, inputs: dict[str, Any], cost: Any, AL: Any,
                 params: dict[str, Any], state: dict[str, Any], held: list[Any]) -> None:
        self.graph, self.inputs, self.cost, self.AL = graph, inputs, cost, AL
        self.params, self.state, self.held = params, state, held

    def fits(self, params: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
        """Whether the parameter and state arrays are those captured (the same objects, none added)."""
        return (len(params) == len(self.params) and len(state) == len(self.state)
                and all(params.get(k) is a for k, a in self.params.items())
                and all(state.get(k) is a for k, a in self.state.items()))


class GraphStep:
    """The in-place step (``inner``), captured once per batch size and replayed; same call as every step,
    ``step(network, optimizer, X, Y, lr, masks, w) -> (cost, AL)``, updating parameters and optimizer state in
    place. See the module docstring for what is captured and when it runs eagerly instead."""

    writes_in_place = True

    def __init__(self, inner: InplaceStep, capturer: Any) -> None:
        self.inner = inner
        self.mod = inner.mod
        self.capturer = capturer
        self._graphs: dict[tuple[int, bool], _Graph] = {}
        self._warm: set[tuple[int, bool]] = set()
        self._slots: dict[str, Any] | None = None
        self._vector: Any = None
        self.replays = 0  # how many steps ran as graph launches (tests and the GPU check read it)
        self.failed: str | None = None  # why a capture failed, after which every step runs uncaptured

    def __call__(self, network: Any, optimizer: Any, X: Any, Y: Any, lr: float, masks: Any, w: Any
                 ) -> tuple[Any, Any]:
        if masks or self.failed:  # dropout (graph_step leaves it to the in-place step), or a capture failed
            return self.inner(network, optimizer, X, Y, lr, masks, w)
        # Eager steps read the same device scalars as replays: the same kernels run (and are compiled) before
        # any capture. Filled on the current stream, before the side stream or a replay reads them.
        self._device_scalars(optimizer, lr)
        params, state = network.parameters, optimizer.state
        key = (int(X.shape[1]), w is not None)
        g = self._graphs.get(key)
        if g is not None and not g.fits(params, state):
            del self._graphs[key]  # other arrays than those captured: eager now, capture again next step
            self._warm.discard(key)
            g = None
        if g is None:
            if key not in self._warm:
                # The warm-up: a real step, eager, on the capture stream (buffers and optimizer state made there).
                # A step that made no new optimizer state shows the state complete: the next one may capture.
                n_state = len(state)
                with self.capturer.on_side():
                    cost, AL = self._run(network, optimizer, X, Y, lr, w)
                if len(optimizer.state) == n_state:
                    self._warm.add(key)
                return cost, AL
            try:
                g = self._graphs[key] = self._capture(network, optimizer, X, Y, w)
            except Exception as exc:  # nothing ran on the device: this step and the rest run uncaptured
                self.failed = f"{type(exc).__name__}: {exc}"
                not_applied("XPNET_CUDA_GRAPH=1", f"this step, whose capture failed ({self.failed[:300]})")
                return self._run(network, optimizer, X, Y, lr, w)
        self._feed(g, X, Y, w)
        self.capturer.launch(g.graph)
        self.replays += 1
        return _xp.copy_array(g.cost), g.AL

    def _device_scalars(self, optimizer: Any, lr: float) -> dict[str, Any]:
        """The step's scalars (:func:`~xpnet.engine.steps.inplace.step_scalars`) as 0-d views of one device
        vector (made once; every graph reads it), filled with this step's values."""
        values = step_scalars(optimizer, lr)
        if self._slots is None or self._slots.keys() != values.keys():
            self._graphs.clear()  # graphs read the old vector
            self._vector = self.mod.empty((len(values),), dtype=self.inner.dtype)
            self._slots = {n: self._vector[i:i + 1].reshape(()) for i, n in enumerate(values)}
        for name, slot in self._slots.items():
            _fill(slot, values[name])
        return self._slots

    def _run(self, network: Any, optimizer: Any, X: Any, Y: Any, lr: float, w: Any) -> tuple[Any, Any]:
        """The in-place step reading its per-step scalars from the device slots."""
        inner = self.inner
        inner.device_scalars, inner.sc = True, self._slots
        try:
            return inner(network, optimizer, X, Y, lr, None, w)
        finally:
            inner.device_scalars = False

    def _capture(self, network: Any, optimizer: Any, X: Any, Y: Any, w: Any) -> _Graph:
        mod, inner = self.mod, self.inner
        inputs = {"X": _like(mod, X), "Y": _like(mod, Y)}
        if w is not None:
            inputs["w"] = _like(mod, w)
        # lr 0.0: with the optimizer state complete, no update reads the host rate (a capture would freeze it)
        graph, (cost, AL) = self.capturer.capture(
            lambda: self._run(network, optimizer, inputs["X"], inputs["Y"], 0.0, inputs.get("w")))
        m = int(X.shape[1])
        held = [inner._buffers.get(m), dict(inner._grads), inner._scratch, inner._ones, self._vector]
        return _Graph(graph, inputs, cost, AL, dict(network.parameters), dict(optimizer.state), held)

    def _feed(self, g: _Graph, X: Any, Y: Any, w: Any) -> None:
        """Copy the batch into the graph's inputs."""
        copy = self.mod.copyto
        copy(g.inputs["X"], X)
        copy(g.inputs["Y"], Y)
        if w is not None:
            copy(g.inputs["w"], w)

    def release(self) -> None:
        """Drop the graphs and the in-place step's buffers (the end of a fit)."""
        self._graphs.clear()
        self._warm.clear()
        self.inner.release()


def _like(mod: Any, a: Any) -> Any:
    """A new array of ``a``'s shape and dtype laid out as ``a`` is: the transpose of a row-major array when ``a`` is
    a transposed view (the engine's batches), else row-major."""
    rows, cols = a.shape
    if _transposed(a):
        return mod.empty((cols, rows), dtype=a.dtype).T
    return mod.empty((rows, cols), dtype=a.dtype)


def _transposed(a: Any) -> bool:
    strides = a.stride() if callable(getattr(a, "stride", None)) else a.strides
    return a.shape[0] > 1 and a.shape[1] > 1 and strides[0] < strides[1]


def _fill(slot: Any, value: float) -> None:
    fill = getattr(slot, "fill_", None)  # torch
    (fill or slot.fill)(value)

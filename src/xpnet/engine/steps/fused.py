"""Fused CuPy kernels behind the engine's step seam (issue 16, section 3): **experimental, off by default, never
run yet**.

The in-place step (:mod:`xpnet.engine.steps.inplace`) launches one CuPy kernel per operation: 43 library calls
per gradient-descent step on the mnist network, 109 with Adam, each costing 4-8 us of host time, so small and
mid-size networks are bound by launches, not arithmetic. This step is the in-place step with the elementwise
chains written as single ``cupy.ElementwiseKernel`` s:

* bias + hidden activation: ``Z += b; A = g(Z)`` in one kernel per hidden layer (was 2-8);
* derivative x dA: ``dA *= g'(Z)`` in one kernel per hidden layer (was 1-4);
* the output activation, its loss terms and the output gradient ``dZL = w (AL - Y) / m`` in one kernel
  (sigmoid, linear) or two around the column reductions (softmax) (was 8-14);
* one kernel per parameter update for gradient descent and Adam (Adam was 10 launches per parameter).

The arithmetic is the in-place step's, operation for operation, but the CUDA compiler may contract ``a * b + c``
into fused multiply-adds and CuPy's ``exp``/``log1p`` inside a kernel need not round as the ufuncs do: the
results are equal to the generic step's within a stated tolerance, not to the bit (``tests/test_gpu.py``:
relative 1e-9 in float64 and 1e-4 in float32 after a few epochs, the README's cross-backend tolerances).

**Status: these kernels have never run on a GPU**: no GPU was available when they were written. Their C bodies
are checked on the CPU (``tests/test_device_context.py`` compiles them with the host's C compiler behind a fake
CuPy and trains with them: equal to the generic step within 1e-10 in float64); CUDA's compiler has not seen
them. They are chosen only when ``XPNET_FUSED=1`` is set (and the network is on CuPy, where the in-place step
applies), so nothing changes for anyone until a GPU run of
``XPNET_FUSED=1 python -m pytest -m gpu tests/test_gpu.py -k fused`` proves them equal to the generic step;
then the default can change. Momentum and RMSprop keep the in-place updates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..hooks import IDENTITY, GradientHook
from .graph import not_applied
from .inplace import InplaceStep, _Buffers, inplace_step

__all__ = ["FusedStep", "enabled", "fused_step"]

# Hidden activations: the forward (``a`` from ``z``) and the factor g' that multiplies ``da`` (from ``z``, ``a``),
# as the in-place step computes them (see its _hidden_forward / _hidden_backward for why each form is the
# generic one's); NaN propagates where the generic ufuncs propagate it.
_FORWARD = {
    "relu": "a = (z > (T)0 || z != z) ? z : (T)0;",
    "leaky_relu": "T t = z * (T)0.01; a = (z != z || z > t) ? z : t;",
    "sigmoid": "T e = exp(-fabs(z)); a = (z >= (T)0 ? (T)1 : e) / ((T)1 + e);",
    "tanh": "a = tanh(z);",
    "linear": "a = z;",
}
_DERIVATIVE = {
    "relu": "da = da * (z > (T)0 ? (T)1 : (T)0);",
    "leaky_relu": "da = da * ((z > (T)0 ? (T)1 : (T)0) * (T)(1.0 - 0.01) + (T)0.01);",
    "sigmoid": "da = da * (a * ((T)1 - a));",
    "tanh": "da = da * ((T)1 - a * a);",
}
_KERNELS: dict[str, Any] = {}


def enabled() -> bool:
    """True only when ``XPNET_FUSED=1`` asks for the fused kernels (off by default until a GPU run proves them)."""
    return os.environ.get("XPNET_FUSED", "0").strip().lower() in ("1", "true", "yes", "on")


def _kernel(name: str, inputs: str, outputs: str, body: str) -> Any:
    """A ``cupy.ElementwiseKernel``, built once per process (CuPy compiles it on first use and caches it)."""
    kernel = _KERNELS.get(name)
    if kernel is None:
        import cupy

        kernel = _KERNELS[name] = cupy.ElementwiseKernel(inputs, outputs, body, f"xpnet_{name}")
    return kernel


def fused_step(network: Any, optimizer: Any, lambd: float, keep: Mapping[int, float],
               hook: GradientHook = IDENTITY) -> FusedStep | None:
    """The fused step for a CuPy ``network`` where the in-place step applies and ``XPNET_FUSED=1`` is set, else
    None (the caller falls back to the in-place or the generic step)."""
    if not enabled():
        return None
    base = inplace_step(network, optimizer, lambd, keep, hook=hook)
    if base is None or getattr(base.mod, "__name__", "") != "cupy":
        return not_applied("XPNET_FUSED=1", f"a network on {network.backend.spec} (CuPy only)" if base is not None
                           else "a network, optimizer or setting the in-place step does not run (XPNET_FAST=0 too)")
    return FusedStep(base.mod, network, lambd, keep, hook)


class FusedStep(InplaceStep):
    """:class:`~xpnet.engine.steps.inplace.InplaceStep` with its elementwise chains as single CuPy kernels (see
    the module docstring). Same call, same buffers, same ownership rules; ``writes_in_place`` too."""

    # ------------------------------------------------------------------------------------ forward
    def _bias_hidden(self, Z: Any, b: Any, A: Any, T: Any) -> None:
        _kernel(f"bias_{self.hidden}", "T b", "T z, T a", "z = z + b; " + _FORWARD[self.hidden])(b, Z, A)

    def _hidden_backward(self, dA: Any, Z: Any, A: Any, T: Any) -> None:
        if self.hidden == "linear":
            return
        _kernel(f"grad_{self.hidden}", "T z, T a", "T da", _DERIVATIVE[self.hidden])(Z, A, dA)

    def _output_and_cost(self, buf: _Buffers, Y: Any, w: Any, m: int) -> tuple[Any, Any]:
        """``AL``, the loss terms (in the scratch ``T``) and ``dZL = w (AL - Y) / m`` in one kernel (two around
        the column max and sum for softmax); ``cost = (1/m) sum(T)`` (halved for mse) as the in-place step."""
        mod, L = self.mod, self.L
        ZL, AL, T, dZ = buf.Z[L], buf.A[L], buf.Tl[L], buf.dZL
        inv_m = 1.0 / m
        weighted = w is not None
        # The per-example factor of dZ: w / m, computed as the in-place step does (w * inv_m first).
        s_in, s_expr = ("T w, T inv_m", "(w * inv_m)") if weighted else ("T inv_m", "inv_m")
        s_args = (w, inv_m) if weighted else (inv_m,)
        wt = " t = t * w;" if weighted else ""
        if self.output == "softmax":
            top, total = buf.row, buf.row2
            mod.max(ZL, axis=0, keepdims=True, out=top)
            _kernel("softmax_shift", "T z, T top", "T t, T a", "t = z - top; a = exp(t);")(ZL, top, T, AL)
            self._sum_into(AL, 0, total)
            _kernel(f"softmax_loss{'_w' if weighted else ''}", f"T y, T tot, {s_in}", "T a, T t, T dz",
                    f"a = a / tot; t = y * (log(tot) - t);{wt} dz = (a - y) * {s_expr};")(Y, total, *s_args, AL, T, dZ)
        elif self.output == "sigmoid":
            # losses._bce_fused: logaddexp(z, 0) - y z, with logaddexp(z, 0) = max(z, 0) + log1p(exp(-|z|)).
            _kernel(f"sigmoid_loss{'_w' if weighted else ''}", f"T z, T y, {s_in}", "T a, T t, T dz",
                    "T e = exp(-fabs(z)); a = (z >= (T)0 ? (T)1 : e) / ((T)1 + e); "
                    f"t = ((z > (T)0 ? z : (T)0) + log1p(e)) - y * z;{wt} dz = (a - y) * {s_expr};"
                    )(ZL, Y, *s_args, AL, T, dZ)
        else:
            _kernel(f"mse_loss{'_w' if weighted else ''}", f"T z, T y, {s_in}", "T a, T t, T dz",
                    f"a = z; T d = z - y; t = d * d;{wt} dz = (a - y) * {s_expr};")(ZL, Y, *s_args, AL, T, dZ)
        cost = inv_m * mod.sum(T)
        if self.output == "linear":
            cost = 0.5 * cost
        return AL, cost

    def _output_gradient(self, buf: _Buffers, AL: Any, Y: Any, w: Any, inv_m: float) -> None:
        return None  # written by _output_and_cost's kernel

    # ------------------------------------------------------------------------------------ updates
    def _update_rule(self, name: str) -> Any:
        return {"gd": _gd, "adam": _adam}.get(name) or super()._update_rule(name)


def _gd(step: FusedStep, opt: Any, key: str, p: Any, g: Any, lr: float) -> None:
    """``p = p - lr g`` in one kernel."""
    _kernel("gd", "T g, T lr", "T p", "p = p - g * lr;")(g, lr, p)


def _adam(step: FusedStep, opt: Any, key: str, p: Any, g: Any, lr: float) -> None:
    """Adam in one pass over ``p``, ``g`` and the two moving averages (the generic step's order of operations:
    ``v = beta1 v + (1 - beta1) g``, ``s = beta2 s + (1 - beta2) g^2``, ``p -= (lr c1) v / (c2 sqrt(s) + eps)``
    with ``c1 = 1/(1 - beta1^t)``, ``c2 = 1/sqrt(1 - beta2^t)``). The averages start at zero on the first update,
    which gives the generic first values ``(1 - beta) x`` exactly (``0 * beta + x = x``)."""
    import math

    t = opt.t
    c1 = 1.0 / (1.0 - opt.beta1**t)
    c2 = 1.0 / math.sqrt(1.0 - opt.beta2**t)
    v, s = opt.state.get(f"v_{key}"), opt.state.get(f"s_{key}")
    if v is None:
        v = opt.state[f"v_{key}"] = step.mod.zeros_like(p)
    if s is None:
        s = opt.state[f"s_{key}"] = step.mod.zeros_like(p)
    _kernel("adam", "T g, T b1, T ob1, T b2, T ob2, T c2, T eps, T lrc1", "T p, T v, T s",
            "v = v * b1 + g * ob1; T gg = g * g; s = s * b2 + gg * ob2; "
            "p = p - (v / (sqrt(s) * c2 + eps)) * lrc1;")(
        g, opt.beta1, 1.0 - opt.beta1, opt.beta2, 1.0 - opt.beta2, c2, opt.epsilon, lr * c1, p, v, s)

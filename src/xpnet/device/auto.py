"""What ``auto`` computes on for a given problem: the GPU only where a training step is large enough to win there.

A training step of a dense network is ``3L - 1`` matrix products and a few dozen elementwise kernels. On a GPU
every kernel launch costs host time whatever its size, so a small network is launch-bound: a 2-4-1 network is
several times slower on a GPU than on one CPU core. The rule compares two estimates of one step, for layers
``n_0, ..., n_L`` and batches of ``b`` examples:

* arithmetic: ``flops = 6 b sum_l n_{l-1} n_l`` (forward ``2 b n_{l-1} n_l`` per layer, backward twice that);
* library calls: ``calls = GPU_LAUNCHES_BASE + GPU_LAUNCHES_PER_LAYER L``, the same step code on both (43 per
  gradient-descent step on the 3-layer mnist network, 33 on the 2-layer tiny one, counted in the CuPy step);
* CPU: ``t_cpu = calls CPU_CALL_S + flops / CPU_FLOPS``: NumPy's cost per call on small arrays (about 0.6-0.8 us)
  and its float32 matrix-product rate on one BLAS thread (25 GFLOP/s), both measured on the project's build
  machine with ``scripts/measure_auto_rule.py`` (see the README's GPU section);
* GPU: ``t_gpu = calls GPU_LAUNCH_S + flops / GPU_FLOPS``: 6 us of host time per launch (4-8 us per library
  call in the issue's count) and a conservative 20 TFLOP/s. **Provisional**: no GPU run has measured these
  yet; the GPU check (``scripts/gpu_check.sh``) does, and the constants are to be set from its results.

xpnet's own Python work per step is the same on both and left out. With these figures the GPU wins once a step
has more than about 4 million flops (``calls (GPU_LAUNCH_S - CPU_CALL_S) CPU_FLOPS``): the tiny 2-4-1 network
(3e4 flops at batch 400) stays on the CPU, mnist (1.8e8 at batch 128) goes to the GPU.

``auto`` picks CuPy when a CUDA device works and ``t_cpu > t_gpu``, else NumPy, and says so
(:func:`choose`'s reason, logged on the ``xpnet`` logger at INFO level). Without a problem size (``get_backend``)
``auto`` is the device default: CuPy when a CUDA device works, else NumPy.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from typing import Any

from ..errors import BackendSpecError
from .backend import _CURRENT, ENV_VAR, Backend, _split, get_backend

__all__ = ["choose", "estimate_step_seconds", "resolve_for_problem", "step_flops"]

# CPU: measured on the project's build machine (scripts/measure_auto_rule.py: float32, one BLAS thread).
CPU_CALL_S = 1e-6
CPU_FLOPS = 25e9
# GPU: provisional (no GPU run yet): launches of the CuPy gd step (33 for L=2, 43 for L=3) at 6 us each; the
# arithmetic at a conservative 20 TFLOP/s of float32.
GPU_LAUNCHES_BASE = 13
GPU_LAUNCHES_PER_LAYER = 10
GPU_LAUNCH_S = 6e-6
GPU_FLOPS = 20e12
# The batch assumed when the caller does not know it yet (the estimators' "auto", min(200, m)).
DEFAULT_BATCH = 200

_log = logging.getLogger("xpnet")
_last_logged: str | None = None


def step_flops(layer_dims: Sequence[int], batch_size: int) -> float:
    """``6 b sum_l n_{l-1} n_l``: the multiply-adds (counted as 2 flops) of one training step's matrix products."""
    dims = [int(n) for n in layer_dims]
    return 6.0 * int(batch_size) * sum(a * b for a, b in itertools.pairwise(dims))


def estimate_step_seconds(layer_dims: Sequence[int], batch_size: int) -> tuple[float, float]:
    """``(t_cpu, t_gpu)``: the estimated seconds of one training step on one CPU core and on a GPU (see the
    module docstring for the formulas and where their constants come from)."""
    flops = step_flops(layer_dims, batch_size)
    calls = _calls(layer_dims)
    return calls * CPU_CALL_S + flops / CPU_FLOPS, calls * GPU_LAUNCH_S + flops / GPU_FLOPS


def _calls(layer_dims: Sequence[int]) -> int:
    return GPU_LAUNCHES_BASE + GPU_LAUNCHES_PER_LAYER * max(1, len(layer_dims) - 1)


def choose(layer_dims: Sequence[int], batch_size: int | None = None, *, output_known: bool = True
           ) -> tuple[Backend, str]:
    """``auto`` for a network of ``layer_dims`` trained on batches of ``batch_size`` (None: ``DEFAULT_BATCH``):
    ``(backend, reason)``. CuPy when a CUDA device works and the estimated step is faster there, else NumPy; the
    reason names the estimates. ``output_known=False``: the last entry of ``layer_dims`` stands for an output
    layer not known yet (an estimator before it reads the targets), and the reason says so."""
    device_default = get_backend("auto")
    b = DEFAULT_BATCH if batch_size is None else max(1, int(batch_size))
    if output_known:
        shape = f"{'-'.join(str(int(n)) for n in layer_dims)} on batches of {b}"
    else:
        shape = (f"{'-'.join(str(int(n)) for n in layer_dims[:-1])}-k on batches of {b} (k: the output units, "
                 f"not known before the targets are read, estimated as {int(layer_dims[-1])})")
    if device_default.name != "cupy":
        return device_default, f"auto chose {device_default.spec} for {shape}: no usable CUDA device"
    t_cpu, t_gpu = estimate_step_seconds(layer_dims, b)
    estimate = (f"a step of {step_flops(layer_dims, b):.3g} flops and {_calls(layer_dims)} kernel launches takes "
                f"an estimated {t_cpu * 1e6:.0f} us on one CPU core and {t_gpu * 1e6:.0f} us on the GPU (GPU "
                "figures provisional until a GPU run measures them; name the backend to choose yourself)")
    if t_cpu > t_gpu:
        return device_default, f"auto chose {device_default.spec} for {shape}: {estimate}"
    return get_backend("numpy"), f"auto chose numpy for {shape}: {estimate}"


def _effective_spec(spec: Any) -> Any:
    """What ``get_backend(spec)`` would resolve: ``spec`` itself, else the innermost ``use_backend``, else
    ``$XPNET_BACKEND``, else ``"auto"``."""
    if spec is not None:
        return spec
    current = _CURRENT.get()
    if current is not None:
        return current
    return os.environ.get(ENV_VAR, "").strip() or "auto"


def resolve_for_problem(spec: Any, layer_dims: Sequence[int] | None, batch_size: int | None = None, *,
                        output_known: bool = True) -> tuple[Backend, str | None]:
    """:func:`~xpnet.device.backend.get_backend` for a known problem: where ``spec`` resolves to ``auto``
    (given as ``"auto"``, or ``None`` with no ``use_backend`` context and ``$XPNET_BACKEND`` unset or ``auto``)
    and ``layer_dims`` is known, :func:`choose` decides and its reason is returned and logged; otherwise
    ``(get_backend(spec), None)``."""
    effective = _effective_spec(spec)
    if layer_dims is None or not isinstance(effective, str):
        return get_backend(spec), None
    try:
        name, _ = _split(effective)
    except BackendSpecError:
        return get_backend(spec), None  # get_backend raises the error with its context
    if name != "auto":
        return get_backend(spec), None
    global _last_logged
    backend, reason = choose(layer_dims, batch_size, output_known=output_known)
    if reason != _last_logged:  # an estimator's fit resolves its backend more than once: one line per choice
        _log.info(reason)
        _last_logged = reason
    return backend, reason


def resolve_for_data(spec: Any, X: Any, hidden_sizes: Sequence[int] | None, batch_size: Any
                     ) -> tuple[Backend, str | None]:
    """:func:`resolve_for_problem` for an estimator about to fit ``X`` (``(n_samples, n_features)``, any array-like
    with a shape) with hidden layers ``hidden_sizes`` and its ``batch_size`` (an int, ``"auto"``: ``min(200, m)``,
    or ``"full"``: ``m``). The output layer counts as one unit (it is not known before the targets are read; it
    changes the estimate little). Where the shape or the sizes cannot be read, ``auto`` is the device default."""
    try:
        m, n = (int(d) for d in getattr(X, "shape", None) or _shape_of(X))
        dims = [n, *(int(h) for h in hidden_sizes), 1] if hidden_sizes is not None else None
    except (TypeError, ValueError):
        return resolve_for_problem(spec, None)
    if isinstance(batch_size, str):
        b = m if batch_size.strip().lower() == "full" else min(DEFAULT_BATCH, m)
    elif isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1:
        b = min(batch_size, m)
    else:
        b = None
    return resolve_for_problem(spec, dims, b, output_known=False)


def _shape_of(X: Any) -> tuple[int, ...]:
    import numpy

    return numpy.shape(X)

"""Peak memory measured in a fresh Python process, so that nothing else the bench holds counts.

:func:`measure_memory` runs a step candidate's steps in a child, :func:`measure_fit_memory` one whole fit of a
``--fit`` candidate (:mod:`xpnet.bench.fit`); both go through :func:`run_child`, which starts
:func:`_memory_child` (reachable as ``xpnet.bench._memory_child``) and reads back one JSON line.
:class:`_Meter` reads host RSS (``VmRSS``, ``VmHWM`` after resetting it), the torch CUDA allocator or the CuPy
pool.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

from .configs import BenchConfig, BenchSettings, make_problem
from .environment import _thread_limits
from .peers import Candidate, build_candidate

_MIB = float(1 << 20)
_MARK = "XPNET_BENCH_MEMORY "


# ------------------------------------------------------------------------------------------- memory
def _proc_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) of this process; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _child_settings(settings: BenchSettings) -> dict[str, Any]:
    return {k: getattr(settings, k) for k in ("backend", "dtype", "optimizer", "learning_rate", "threads", "warmup",
                                              "memory_seconds", "memory_min_steps", "seed", "torch", "sklearn")}


def run_child(payload: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
    """Run :func:`_memory_child` with ``payload`` in a fresh Python process (this one's interpreter and this
    xpnet) and return the JSON object it prints, or ``{"error": ...}`` saying why there is none."""
    import xpnet

    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.abspath(xpnet.__file__)))
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = "import sys; from xpnet.bench import _memory_child; sys.exit(_memory_child(sys.argv[1]))"
    try:
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(payload)], capture_output=True, text=True,
                              env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"the measuring process took over {timeout:g} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"the measuring process failed (exit {proc.returncode}): {tail}"}


def _report(out: dict[str, Any]) -> int:
    """The child's answer: one marked JSON line on standard output."""
    print(_MARK + json.dumps(out), flush=True)
    return 0


def _config_payload(config: BenchConfig) -> dict[str, Any]:
    return {"name": config.name, "layers": list(config.layers), "batch": config.batch, "output": config.output}


def _config_from(payload: dict[str, Any]) -> BenchConfig:
    return BenchConfig(**{**payload, "layers": tuple(payload["layers"])})


def measure_memory(name: str, config: BenchConfig, settings: BenchSettings, timeout: float = 600.0) -> dict[str, Any]:
    """Peak memory of candidate ``name``'s steps, measured in a fresh Python process.

    The child builds the model and batch, reads a baseline, runs warm-up plus at least
    ``settings.memory_min_steps`` steps (and at least ``memory_seconds``), and reports ``peak_mib``: the peak
    during the steps minus the baseline (host RSS from ``VmHWM`` after resetting it on the CPU; the torch
    allocator's ``max_memory_allocated`` or the CuPy pool's growth on a GPU), and ``growth_mib``: what was held
    after the last step minus after step 10 (a leak grows it; a steady step keeps it near 0).
    """
    return run_child({"candidate": name, "config": _config_payload(config), "settings": _child_settings(settings)},
                     timeout)


def _step_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """One step candidate's peak memory and growth (see :func:`measure_memory`)."""
    from ..device import get_backend
    from ..engine.steps import inplace  # noqa: F401  (the first step imports it otherwise: a module is not step memory)

    settings = BenchSettings(**spec["settings"], rounds=1, memory=False)
    cfg = _config_from(spec["config"])
    name = spec["candidate"]
    # Only what this candidate runs on is loaded: importing torch alone costs seconds and memory.
    on_torch = name == "torch" or (name in ("xpnet", "gemm") and settings.backend.startswith("torch"))
    with _thread_limits(settings.threads, want_torch=on_torch, want_sklearn=name == "sklearn"):
        bk = get_backend(settings.backend)
        problem = make_problem(cfg, settings.dtype, settings.seed)
        cand = build_candidate(name, problem, settings, bk)
        del problem
        gc.collect()
        meter = _Meter(cand)
        base = meter.start()
        with cand.context():
            for _ in range(max(1, settings.warmup)):
                cand.step()
            cand.sync()
            warm_peak, warm_held = meter.peak(), meter.held()
            meter.reset_peak()
            steps, at10 = 0, None
            started = time.perf_counter()
            while steps < settings.memory_min_steps or time.perf_counter() - started < settings.memory_seconds:
                cand.step()
                steps += 1
                if steps == 10:
                    cand.sync()
                    at10 = meter.held()
                if steps >= 100000:
                    break
            cand.sync()
        steady_peak, end = meter.peak(), meter.held()
    out = {"kind": meter.kind, "peak_mib": max(0.0, max(warm_peak, steady_peak) - base) / _MIB,
           "steady_peak_mib": max(0.0, steady_peak - warm_held) / _MIB,
           "state_mib": (warm_held - base) / _MIB,
           "growth_mib": None if at10 is None else (end - at10) / _MIB,
           "steps": steps + max(1, settings.warmup)}
    if meter.note:
        out["note"] = meter.note
    return out


def measure_fit_memory(name: str, config: BenchConfig, settings: BenchSettings, fit: Any,
                       timeout: float = 600.0) -> dict[str, Any]:
    """Peak memory of one whole fit of :mod:`xpnet.bench.fit`'s candidate ``name`` (``fit``: its
    :class:`~xpnet.bench.fit.FitSettings`), in a fresh process (:func:`xpnet.bench.children._fit_memory_child`):
    ``peak_mib`` (the most held during the fit above what was held before it), ``growth_mib`` (held at the end
    of the last epoch minus at the end of the first), ``epochs``."""
    return run_child({"kind": "fit", "candidate": name, "config": _config_payload(config),
                      "settings": _child_settings(settings), "fit": asdict(fit)}, timeout)


class _Meter:
    """Where a candidate's memory goes: host RSS on the CPU, the torch CUDA allocator or the CuPy pool.

    ``held()`` is what is held now and ``peak()`` the most held since the last ``reset_peak()``, in bytes."""

    def __init__(self, cand: Candidate) -> None:
        self.kind = "host-rss"
        self.note = ""
        if cand.device.startswith("cuda") and cand.library not in ("cupy", "torch"):
            self.kind = "none"
            self.note = f"no device memory statistics for {cand.library}"
        elif cand.device.startswith("cuda"):
            self.kind = "cupy-pool" if cand.library == "cupy" else "torch-cuda"
            if self.kind == "torch-cuda":
                import torch

                self.torch, self.dev = torch, torch.device(cand.device)
            else:
                import cupy

                self.pool = cupy.get_default_memory_pool()

    def held(self) -> float:
        if self.kind == "none":
            return 0.0
        if self.kind == "torch-cuda":
            return float(self.torch.cuda.memory_allocated(self.dev))
        if self.kind == "cupy-pool":
            return float(self.pool.used_bytes())
        return float((_proc_status_kib("VmRSS") or 0) * 1024)

    def peak(self) -> float:
        if self.kind == "none":
            return 0.0
        if self.kind == "torch-cuda":
            return float(self.torch.cuda.max_memory_allocated(self.dev))
        if self.kind == "cupy-pool":
            # The pool keeps every block it once needed: what it holds is the peak demand (to its rounding).
            return float(self.pool.total_bytes())
        if self.resettable:
            return float((_proc_status_kib("VmHWM") or 0) * 1024)
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0

    def reset_peak(self) -> None:
        if self.kind == "torch-cuda":
            self.torch.cuda.reset_peak_memory_stats(self.dev)
        elif self.kind == "host-rss":
            self.resettable = _reset_peak_rss()
            if not self.resettable:
                self.note = "peak RSS could not be reset: an upper bound (the process's lifetime peak)"

    def start(self) -> float:
        """Reset the peak and return the baseline: what is held before the first step."""
        if self.kind == "torch-cuda":
            self.torch.cuda.synchronize(self.dev)
        self.reset_peak()
        return float(self.pool.total_bytes()) if self.kind == "cupy-pool" else self.held()


"""What the numbers were measured with and under: versions, CPU / GPU, BLAS thread pools
(:func:`environment_info`), how busy other processes keep the CPUs (:func:`cpus_busy`), and the thread limits
``--threads`` sets for a run (:func:`_thread_limits`: threadpoolctl and torch)."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from typing import Any

from .configs import BenchSettings
from .peers import _torch_device_for


def _effective_threads() -> int:
    """The most threads any loaded BLAS / OpenMP runtime or torch will use now."""
    counts = [1]
    try:
        from threadpoolctl import threadpool_info

        counts += [int(i.get("num_threads") or 1) for i in threadpool_info()]
    except Exception:  # reporting only
        pass
    if "torch" in sys.modules:
        counts.append(sys.modules["torch"].get_num_threads())
    return max(counts)



# -------------------------------------------------------------------------------------- environment
@contextlib.contextmanager
def _thread_limits(threads: int | None, *, want_torch: bool = True, want_sklearn: bool = True) -> Any:
    """Set every BLAS / OpenMP pool (threadpoolctl) and torch to ``threads`` for the block, then restore.

    The libraries are imported first (torch and scikit-learn when wanted and installed) so that their
    runtimes are among the pools limited."""
    if threads is None:
        yield
        return
    torch = None
    if want_torch:
        with contextlib.suppress(Exception):
            import torch
    import numpy  # noqa: F401  (its BLAS must be loaded to be limited)

    if want_sklearn:
        with contextlib.suppress(Exception):
            import sklearn.neural_network  # noqa: F401
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=int(threads)):
        if torch is not None:
            torch.set_num_threads(int(threads))
        try:
            yield
        finally:
            if torch is not None and before is not None:
                torch.set_num_threads(before)


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment_info(settings: BenchSettings, bk: Any) -> dict[str, Any]:
    """Versions, CPU / GPU, BLAS libraries with their thread counts, torch's threads: what the numbers were
    measured with."""
    from .. import __version__

    versions = {"xpnet": __version__, "python": platform.python_version()}
    for dist in ("numpy", "torch", "scikit-learn", "array-api-compat", "array-api-strict", "threadpoolctl"):
        versions[dist] = _version(dist)
    if bk.name == "cupy":
        versions["cupy"] = next((v for d in ("cupy-cuda13x", "cupy-cuda12x", "cupy") if (v := _version(d))), None)
    if bk.name == "jax":
        versions["jax"] = _version("jax")
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    info: dict[str, Any] = {"versions": versions, "cpu": _cpu_model(), "cpus": cpus,
                            "platform": platform.platform(), "load_average": _load_average(),
                            "cpus_busy_before": cpus_busy()}
    pools = []
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_info

        for p in threadpool_info():
            pools.append({"user_api": p.get("user_api"), "library": p.get("internal_api"),
                          "version": p.get("version"), "architecture": p.get("architecture"),
                          "threads": p.get("num_threads"), "file": os.path.basename(p.get("filepath", ""))})
    info["thread_pools"] = pools
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = {"threads": torch.get_num_threads(), "mkl": bool(torch.backends.mkl.is_available())}
    device = _torch_device_for(bk)
    info["device"] = device
    if device.startswith("cuda"):
        info["gpu"] = _gpu_name(bk, device)
    return info


def _load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _cpu_times() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)  # total, idle + iowait


def cpus_busy(seconds: float = 0.3) -> float | None:
    """How many CPUs other processes keep busy, sampled from ``/proc/stat`` while this one sleeps for
    ``seconds`` (None where there is no ``/proc/stat``). The load average would also count this run's own
    recent work; this does not."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(seconds)
    second = _cpu_times()
    if second is None or second[0] <= first[0]:
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return round((1.0 - idle / total) * (os.cpu_count() or 1), 2)


def _busy_warning(busy: float | None, cpus: int) -> str | None:
    # A multi-threaded BLAS or OpenMP team on a machine where another job runs waits for a descheduled
    # thread at every barrier: times become meaningless long before the CPUs look saturated.
    if busy is not None and busy >= 0.3:
        return (f"warning: other processes keep {busy:.1f} of {cpus} CPU(s) busy: the times are unreliable (the "
                "ratios less so); measure on a quiet machine")
    return None


def _gpu_name(bk: Any, device: str) -> str:
    with contextlib.suppress(Exception):
        if bk.name == "cupy":
            import cupy

            name = cupy.cuda.runtime.getDeviceProperties(bk.device.id)["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return "unknown GPU"


def note_busy_at_end(out: dict[str, Any], cpus: int, emit: Any) -> None:
    """Measure how busy the CPUs were as a run ends (into ``out["cpus_busy_after"]``) and warn through ``emit``
    when other processes kept them busy: the run's ratios may be off."""
    out["cpus_busy_after"] = cpus_busy()
    busy = _busy_warning(out["cpus_busy_after"], cpus)
    if busy:
        emit("")
        emit(busy.replace("warning: ", "warning: at the end of the run, "))

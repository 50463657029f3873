"""The measuring processes of the memory runs: :func:`_memory_child` is what a fresh process started by
:func:`xpnet.bench.memory.run_child` calls (as ``xpnet.bench._memory_child``), for one step candidate or one
whole fit. It sits above :mod:`~xpnet.bench.fit` and :mod:`~xpnet.bench.memory`, which do not import it, so
the benchmark's modules hold no import cycle."""

from __future__ import annotations

import gc
import json
import types
from typing import Any

from ..device import get_backend
from ..engine.steps import inplace  # noqa: F401  (the first step imports it otherwise: a module is not fit memory)
from .configs import BenchConfig, BenchSettings
from .environment import _thread_limits
from .fit import FitSettings, build_fit_candidate, make_fit_data
from .memory import _MIB, _config_from, _Meter, _report, _step_memory
from .peers import _library_of, _torch_device_for

__all__ = ["_memory_child"]


def _memory_child(payload: str) -> int:
    """Entry point of the measuring process (see :func:`run_child`): prints one JSON line. A payload with
    ``"kind": "fit"`` measures a whole fit (:func:`_fit_memory_child`), any other a step."""
    spec = json.loads(payload)
    if spec.get("kind") == "fit":
        return _report(_fit_memory_child(spec))
    return _report(_step_memory(spec))


def _fit_memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    """The measuring process of :func:`measure_fit_memory`: the libraries imported and warmed up by a fit of a
    tiny network, the data made (the baseline), then one fit, the memory read at the end of every epoch."""
    settings = BenchSettings(**spec["settings"], rounds=1, memory=False)
    fit = FitSettings(**spec["fit"])
    cfg = _config_from(spec["config"])
    name = spec["candidate"]
    on_torch = name.startswith("torch") or settings.backend.startswith("torch")
    with _thread_limits(settings.threads, want_torch=on_torch, want_sklearn=True):
        if name == "xpnet-estimator":
            from .. import estimators  # noqa: F401  (scikit-learn's import is not fit memory)
        bk = get_backend(settings.backend)
        # A fit of a 2-3-k network on 4 rows first: what the libraries load and set up on first use (torch's
        # optimizers pull in ~70 MiB of modules) is not the fit's memory, as importing is not.
        small = BenchConfig("warm-up", (2, 3, 3 if cfg.output == "softmax" else 1), 2, cfg.output)
        small_fit = FitSettings(epochs=1, batches=2)
        build_fit_candidate(name, make_fit_data(small, small_fit, settings.dtype), settings, small_fit, bk).fit()
        data = make_fit_data(cfg, fit, settings.dtype, settings.seed)
        library = "torch" if name.startswith("torch") else _library_of(bk)
        meter = _Meter(types.SimpleNamespace(device=_torch_device_for(bk), library=library))
        held: list[float] = []
        cand = build_fit_candidate(name, data, settings, fit, bk, on_epoch_end=lambda: held.append(meter.held()))
        gc.collect()
        base = meter.start()
        summary = cand.fit()
        peak, end = meter.peak(), meter.held()
    out = {"kind": meter.kind, "peak_mib": max(0.0, peak - base) / _MIB, "end_mib": (end - base) / _MIB,
           "growth_mib": (held[-1] - held[0]) / _MIB if len(held) >= 2 else None, "epochs": summary["epochs"]}
    if meter.note:
        out["note"] = meter.note
    return out

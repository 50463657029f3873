"""Timing one step configuration: warm-up and calibration (:func:`_calibrate`), interleaved rounds, medians
and medians of per-round ratios (:func:`_median_ratio`), all in :func:`run_config`."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from .configs import CANDIDATES, SWITCH_PAUSE_S, BenchConfig, BenchSettings, gemm_flops, make_problem
from .correctness import check_correctness
from .environment import _effective_threads
from .memory import measure_memory
from .peers import Candidate, SkippedCandidateError, _on_gpu, build_candidate


# ------------------------------------------------------------------------------------------- timing
def _calibrate(cand: Candidate, warmup: int, min_block: float) -> int:
    """Warm up, then the number of steps ``k`` a timed block needs to last at least ``min_block`` seconds."""
    for _ in range(max(1, warmup)):
        with cand.context():
            cand.step()
    cand.sync()
    k = 1
    for _ in range(40):
        block = cand.time_block(k) * k
        if block >= min_block:
            break
        # Aim 20% over the target, at least doubling: one or two more trials.
        k = max(2 * k, math.ceil(k * 1.2 * min_block / max(block, 1e-9)))
    return k


def _median_ratio(num: list[float], den: list[float]) -> float | None:
    pairs = [a / b for a, b in zip(num, den, strict=True) if b > 0]
    return statistics.median(pairs) if pairs else None




def run_config(config: BenchConfig, settings: BenchSettings, bk: Any, *,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Benchmark one configuration: the correctness check, then interleaved timing rounds, then (unless
    ``settings.memory`` is off) each candidate's peak memory in a fresh process. Returns a JSON-able dict."""
    say = progress or (lambda text: None)
    problem = make_problem(config, settings.dtype, settings.seed)
    flops = gemm_flops(config.layers, config.batch)
    result: dict[str, Any] = {"name": config.name, "layers": list(config.layers), "batch": config.batch,
                              "output": config.output, "gemm_flops_per_step": flops}
    say(f"{config.name}: correctness check")
    result["correctness"] = check_correctness(problem, settings, bk)

    built: list[Candidate] = []
    cands: dict[str, dict[str, Any]] = {}
    for name in CANDIDATES:
        try:
            cand = build_candidate(name, problem, settings, bk)
        except SkippedCandidateError as exc:
            cands[name] = {"status": "skipped", "reason": str(exc)}
            continue
        built.append(cand)
        cands[name] = {"status": "ok", "library": cand.library, "device": cand.device}
    # One library after another: fewer switches, so fewer pauses for spinning threads.
    lead = built[0].library
    built.sort(key=lambda c: c.library != lead)
    pause = not _on_gpu(bk) and _effective_threads() > 1
    say(f"{config.name}: warm-up and calibration")
    for cand in built:
        if pause:
            time.sleep(SWITCH_PAUSE_S)
        cands[cand.name]["steps_per_block"] = _calibrate(cand, settings.warmup, settings.min_block_seconds)
    times: dict[str, list[float]] = {c.name: [] for c in built}
    previous = None
    for r in range(settings.rounds):
        say(f"{config.name}: round {r + 1}/{settings.rounds}")
        for cand in built:
            if pause and cand.library != previous:
                time.sleep(SWITCH_PAUSE_S)
            times[cand.name].append(cand.time_block(cands[cand.name]["steps_per_block"]))
            previous = cand.library
    for cand in built:
        t = times[cand.name]
        entry = cands[cand.name]
        med = statistics.median(t)
        entry.update(ms_per_step=med * 1e3, gflops=flops / med / 1e9, times_ms=[x * 1e3 for x in t])
        entry["gemm_fraction"] = _median_ratio(times["gemm"], t) if "gemm" in times else None
        entry["torch_ratio"] = _median_ratio(t, times["torch"]) if "torch" in times else None
        trainer = cand.extra.get("trainer")
        if trainer is not None and trainer._impl is not None:  # which step the timed steps ran (in-place, graph...)
            entry["step"] = type(trainer._impl).__name__
    ratios: dict[str, float | None] = {
        "xpnet_over_torch": cands["xpnet"].get("torch_ratio"),
        "gemm_fraction_of_xpnet": cands["xpnet"].get("gemm_fraction"),
        "xpnet_over_numpy_ref": _median_ratio(times["xpnet"], times["numpy-ref"]) if "numpy-ref" in times else None,
    }
    result["candidates"] = cands
    result["ratios"] = ratios
    del built, cand, problem  # before the memory runs: the children should not compete with our arrays
    if settings.memory:
        for name, entry in cands.items():
            if entry["status"] == "ok":
                say(f"{config.name}: peak memory of {name}")
                entry["memory"] = measure_memory(name, config, settings)
    return result


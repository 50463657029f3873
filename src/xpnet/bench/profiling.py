"""``xpnet bench --profile``: where one xpnet training step spends its time, operation by operation.

A timing proxy stands in for the numpy module inside the in-place step (:class:`_TimingModule`,
:func:`_instrumented`) and charges every call to a category (:class:`_OpRecorder`); each GEMM is also timed
alone. :func:`profile_config` measures one configuration, :func:`format_profile` prints it,
:func:`run_profile` runs them all.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from .configs import SCHEMA_VERSION, SWITCH_PAUSE_S, BenchConfig, BenchSettings, GemmProduct, gemm_plan, make_problem
from .environment import environment_info, note_busy_at_end
from .peers import build_candidate
from .report import _fmt, format_header
from .timing import _calibrate

# -------------------------------------------------------------------------------------------- profile
PROFILE_SKIP = "profile needs the numpy backend's in-place step"
# The categories of a step's time, in the step's order; the last is what no operation accounts for.
PROFILE_CATEGORIES = ("GEMMs", "forward elementwise", "output and cost", "backward elementwise", "reductions (db)",
                      "optimizer update", "Python and dispatch overhead")
_OVERHEAD = PROFILE_CATEGORIES[-1]


class _OpRecorder:
    """Accumulates ``[calls, seconds]`` per ``(category, item)`` for the timing proxy, and tracks where in the
    step the next operation falls.

    The in-place step performs :func:`gemm_plan`'s products in :func:`gemm_plan`'s order, so the ``i``-th matmul
    of a step is the plan's ``i``-th product (checked against its shapes; a product that does not match is
    labelled by its shape alone). ``phase`` is the category of the next non-GEMM operation: a forward product
    is followed by its bias add and activation, the output's hooks and the reduction hook switch it (see
    :func:`_instrumented`)."""

    def __init__(self, plan: Sequence[GemmProduct], L: int) -> None:
        self.plan = list(plan)
        self.L = L
        self.acc: dict[tuple[str, str], list[float]] = {}
        self.shapes: dict[str, tuple[int, int, int]] = {}
        self.index = 0
        self.phase = PROFILE_CATEGORIES[1]

    def begin_step(self) -> None:
        """Called before every step: the next matmul is the step's first product."""
        self.index = 0
        self.phase = PROFILE_CATEGORIES[1]

    def add(self, key: tuple[str, str], seconds: float) -> None:
        """One call of ``key`` that took ``seconds``."""
        entry = self.acc.get(key)
        if entry is None:
            entry = self.acc[key] = [0, 0.0]
        entry[0] += 1
        entry[1] += seconds

    def gemm(self, a_shape: tuple[int, ...], out_shape: tuple[int, ...], seconds: float) -> None:
        """One matrix product ``out = a @ b``, labelled by its position in the step."""
        i = self.index
        self.index += 1
        shape = (int(a_shape[-2]), int(a_shape[-1]), int(out_shape[-1]))
        p = self.plan[i] if i < len(self.plan) else None
        label = p.label if p is not None and shape == (p.m, p.k, p.n) else "matmul {}x{}x{}".format(*shape)
        self.shapes[label] = shape
        self.add(("GEMMs", label), seconds)
        # Forward: the bias add and the activation follow. Backward: after dW the L2 term (when on), after dA the
        # activation's derivative; the reduction hook moves on to the update.
        self.phase = PROFILE_CATEGORIES[1] if i < self.L else PROFILE_CATEGORIES[3]

    def take(self, steps: int) -> dict[tuple[str, str], tuple[float, float]]:
        """``{key: (calls per step, seconds per step)}`` over the last ``steps`` steps; starts afresh."""
        out = {key: (n / steps, s / steps) for key, (n, s) in self.acc.items()}
        self.acc = {}
        return out


class _TimingModule:
    """Stands in for the numpy module in an :class:`~xpnet.engine.steps.inplace.InplaceStep`: every attribute is
    numpy's, except that callables (ufuncs, ``matmul``, ``sum``, ...) come back wrapped in a clock that charges the
    call to the recorder (its current phase and the function's name; matmuls by their place in the step)."""

    def __init__(self, mod: Any, recorder: _OpRecorder) -> None:
        self._mod = mod
        self._rec = recorder

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._mod, name)
        if not callable(value) or isinstance(value, type):  # dtypes and classes: isinstance checks must still work
            return value
        wrapped = self._timed_matmul(value) if name == "matmul" else self._timed(name, value)
        # Kept on the instance: later look-ups skip __getattr__, so the proxy slows the step as little as it can.
        object.__setattr__(self, name, wrapped)
        return wrapped

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        rec, clock = self._rec, time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            result = fn(*args, **kwargs)
            rec.add((rec.phase, name), clock() - start)
            return result

        return timed

    def _timed_matmul(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        rec, clock = self._rec, time.perf_counter

        def timed_matmul(a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:
            start = clock()
            result = fn(a, b, *args, **kwargs)
            seconds = clock() - start
            rec.gemm(a.shape, result.shape, seconds)
            return result

        return timed_matmul


@contextlib.contextmanager
def _instrumented(step: Any, recorder: _OpRecorder) -> Any:
    """Profile the in-place ``step`` for the block: its ``mod`` is a :class:`_TimingModule`, and three hooks on the
    instance tell the recorder the phase. Everything is restored on exit (nothing in
    :mod:`xpnet.engine.steps.inplace` changes).

    ``_sum_into`` was bound to ``numpy.add.reduce`` when the step was built, past the proxy: it is timed as a
    whole (``add.reduce``), a reduction of the backward pass (``db``) unless the output's softmax calls it.
    ``_output_and_cost`` starts the output phase, which goes on through ``dZ[L] = (A[L] - Y) / m`` (the output's
    gradient); ``_hidden_backward`` is the activation's derivative, and the update follows it."""
    names = ("mod", "_sum_into", "_output_and_cost", "_hidden_backward")
    saved = {n: step.__dict__[n] for n in names if n in step.__dict__}
    proxy = _TimingModule(step.mod, recorder)
    timed_sum = proxy._timed("add.reduce", step._sum_into)
    output_and_cost, hidden_backward = step._output_and_cost, step._hidden_backward
    out_phase, back_phase, db_phase, update_phase = (PROFILE_CATEGORIES[i] for i in (2, 3, 4, 5))

    def sum_into(a: Any, axis: int, out: Any) -> Any:
        if recorder.phase != out_phase:
            recorder.phase = db_phase
        result = timed_sum(a, axis, out)
        if recorder.phase == db_phase:
            recorder.phase = update_phase  # then dA[l-1] (which sets its own phase) or, at layer 1, the update
        return result

    def output(*args: Any, **kwargs: Any) -> Any:
        recorder.phase = out_phase
        return output_and_cost(*args, **kwargs)

    def backward(*args: Any, **kwargs: Any) -> Any:
        recorder.phase = back_phase
        result = hidden_backward(*args, **kwargs)
        recorder.phase = update_phase
        return result

    step.mod, step._sum_into, step._output_and_cost, step._hidden_backward = proxy, sum_into, output, backward
    try:
        yield proxy
    finally:
        for n in names:
            if n in saved:
                setattr(step, n, saved[n])
            else:
                step.__dict__.pop(n, None)


def _timer_overhead(calls: int = 20000, repeats: int = 5) -> float:
    """Seconds the proxy's clock adds to one call it measures: the median of ``repeats`` means over ``calls``
    calls of an empty function through the same wrapper (the two clock reads and the call forwarding)."""
    import types

    rec = _OpRecorder([], 0)
    noop = _TimingModule(types.SimpleNamespace(noop=lambda *a, **k: None), rec).noop
    means = []
    for _ in range(repeats):
        for _ in range(calls):
            noop(1, 2, out=None)
        ((n, s),) = rec.take(calls).values()
        means.append(s / n)
    return statistics.median(means)


def _median_per_key(blocks: list[dict[Any, tuple[float, float]]], overhead: float) -> dict[Any, tuple[float, float]]:
    """Per key: mean calls per step over all blocks and the median over blocks of the time per step, less the
    clock's overhead for those calls (a key missing from a block counts 0 there)."""
    keys = {k for b in blocks for k in b}
    out = {}
    for key in keys:
        calls = statistics.fmean(b.get(key, (0.0, 0.0))[0] for b in blocks)
        secs = statistics.median(b[key][1] - b[key][0] * overhead if key in b else 0.0 for b in blocks)
        out[key] = (calls, secs)
    return out


def profile_config(config: BenchConfig, settings: BenchSettings, bk: Any, *,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Where one xpnet training step of ``config`` spends its time (``xpnet bench --profile``). JSON-able.

    Builds the bench's xpnet candidate (a :class:`~xpnet.engine.Trainer` stepping with the in-place step) and
    the GEMM bound's products, warms up, then runs interleaved rounds of four blocks: unprofiled steps (the step
    time), steps whose ``InplaceStep.mod`` is a timing proxy (every numpy call timed and charged to a category;
    see :func:`_instrumented`), the GEMM bound's products each timed the same way (a GEMM alone), and the GEMM
    bound untimed. Rounds continue until the profiled steps stand for about ``settings.profile_seconds`` of
    step time (and at least 20 steps). Times are medians over blocks, less the clock's own cost per call
    (:func:`_timer_overhead`); "Python and dispatch overhead" is the step time less all operations: the
    trainer's and the step's Python, and the little arithmetic that does not go through the module (the sigmoid
    output's ``T -= Y * ZL``, Python-float scalars).

    Returns ``skipped`` (the reason) on a backend other than NumPy or when the in-place step is off; else
    ``step_us``, ``items`` (sorted by time), ``categories``, ``gemms`` (in the step against alone) and totals.
    """
    import numpy as np

    say = progress or (lambda text: None)
    head: dict[str, Any] = {"name": config.name, "layers": list(config.layers), "batch": config.batch,
                            "output": config.output}
    if bk.name != "numpy":
        return {**head, "skipped": PROFILE_SKIP}
    problem = make_problem(config, settings.dtype, settings.seed)
    xcand = build_candidate("xpnet", problem, settings, bk)
    gcand = build_candidate("gemm", problem, settings, bk)
    trainer = xcand.extra["trainer"]
    say(f"{config.name}: warm-up and calibration")
    k = _calibrate(xcand, settings.warmup, settings.min_block_seconds)
    step = trainer._choose_step()
    if not step:
        return {**head, "skipped": PROFILE_SKIP + " (off here: XPNET_FAST=0)"}
    kg = _calibrate(gcand, settings.warmup, settings.min_block_seconds)
    L = len(config.layers) - 1
    plan = gemm_plan(config.layers, config.batch)
    rec = _OpRecorder(plan, L)
    grec = _OpRecorder(plan, L)
    gemm_mm = _TimingModule(np, grec).matmul
    ops = gcand.extra["ops"]
    quick = settings.profile_seconds < 0.5
    overhead = _timer_overhead(calls=2000 if quick else 20000)

    def profiled_block(n: int) -> float:
        with xcand.context(), _instrumented(step, rec):
            start = time.perf_counter()
            for _ in range(n):
                rec.begin_step()
                xcand.step()
            return (time.perf_counter() - start) / n

    def gemm_timed_block(n: int) -> None:
        for _ in range(n):
            grec.begin_step()
            for a, b, out in ops:
                gemm_mm(a, b, out=out)

    # One profiled and one timed GEMM sequence first: the proxy's wrappers are made on first use.
    profiled_block(1)
    rec.take(1)
    gemm_timed_block(1)
    grec.take(1)
    t_step = xcand.time_block(k)
    # At least 20 profiled steps; at most 400 rounds (a tiny step's blocks are short).
    rounds = min(400, max(5, math.ceil(20 / k), math.ceil(settings.profile_seconds / (k * t_step))))
    plain: list[float] = []
    profiled: list[float] = []
    bound: list[float] = []
    step_blocks: list[dict[Any, tuple[float, float]]] = []
    gemm_blocks: list[dict[Any, tuple[float, float]]] = []
    for r in range(rounds):
        say(f"{config.name}: profile round {r + 1}/{rounds}")
        plain.append(xcand.time_block(k))
        profiled.append(profiled_block(k))
        step_blocks.append(rec.take(k))
        gemm_timed_block(kg)
        gemm_blocks.append(grec.take(kg))
        bound.append(gcand.time_block(kg))

    step_us = statistics.median(plain) * 1e6
    in_step = _median_per_key(step_blocks, overhead)
    alone = _median_per_key(gemm_blocks, overhead)
    items = [{"item": key[1], "category": key[0], "calls_per_step": calls, "us_per_step": secs * 1e6,
              "percent_of_step": 100 * secs * 1e6 / step_us} for key, (calls, secs) in in_step.items()]
    ops_us = sum(i["us_per_step"] for i in items)
    items.append({"item": _OVERHEAD, "category": _OVERHEAD, "calls_per_step": None, "us_per_step": step_us - ops_us,
                  "percent_of_step": 100 * (step_us - ops_us) / step_us})
    items.sort(key=lambda i: -i["us_per_step"])
    categories = {}
    for cat in PROFILE_CATEGORIES:
        mine = [i for i in items if i["category"] == cat]
        if mine:
            us = sum(i["us_per_step"] for i in mine)
            calls = None if cat == _OVERHEAD else sum(i["calls_per_step"] for i in mine)
            categories[cat] = {"calls_per_step": calls, "us_per_step": us, "percent_of_step": 100 * us / step_us}
    gemms = []
    for p in plan:
        got, ref = in_step.get(("GEMMs", p.label)), alone.get(("GEMMs", p.label))
        in_us = None if got is None else got[1] * 1e6
        alone_us = None if ref is None else ref[1] * 1e6
        gemms.append({"label": p.label, "shape": [p.m, p.k, p.n], "in_step_us": in_us, "alone_us": alone_us,
                      "ratio": in_us / alone_us if in_us is not None and alone_us else None})
    gemm_in_us = categories.get("GEMMs", {}).get("us_per_step", 0.0)
    gemm_alone_us = sum(g["alone_us"] or 0.0 for g in gemms)
    elementwise_us = sum(c["us_per_step"] for n, c in categories.items() if n not in ("GEMMs", _OVERHEAD))
    return {**head, "optimizer": settings.optimizer, "dtype": settings.dtype, "threads": settings.threads,
            "rounds": rounds, "steps_per_block": k, "gemm_steps_per_block": kg, "steps_profiled": rounds * k,
            "step_us": step_us, "profiled_step_us": statistics.median(profiled) * 1e6,
            "gemm_bound_us": statistics.median(bound) * 1e6, "timer_overhead_us_per_call": overhead * 1e6,
            "ops_us": ops_us, "overhead_us": step_us - ops_us,
            "matmuls_per_step": sum(i["calls_per_step"] for i in items if i["category"] == "GEMMs"),
            "items": items, "categories": categories, "gemms": gemms,
            "over_gemm_bound": {"step_minus_gemms_alone_us": step_us - gemm_alone_us,
                                "gemms_slower_in_step_us": gemm_in_us - gemm_alone_us,
                                "elementwise_and_reductions_us": elementwise_us,
                                "python_and_dispatch_us": step_us - ops_us}}


def format_profile(prof: dict[str, Any]) -> str:
    """One configuration's profile as text: the items sorted by time, the totals per category, each GEMM in the
    step against alone, and the step's time over the GEMMs alone split into its three causes."""
    title = f"{prof['name']}: {'-'.join(map(str, prof['layers']))} {prof['output']}, batch {prof['batch']}"
    if "skipped" in prof:
        return f"{title}: profile skipped: {prof['skipped']}"
    lines = [f"{title} ({prof['optimizer']}, {prof['dtype']}): profile of {prof['steps_profiled']} steps "
             f"({prof['rounds']} blocks of {prof['steps_per_block']}, interleaved with unprofiled ones)",
             f"  step {prof['step_us']:.1f} us (unprofiled median; {prof['profiled_step_us']:.1f} us under the "
             f"profiler), GEMM bound {prof['gemm_bound_us']:.1f} us; the clock's "
             f"{prof['timer_overhead_us_per_call']:.2f} us per call is subtracted"]

    def table(head: Sequence[str], rows: list[Sequence[str]]) -> None:
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for row in [head, *rows]:
            lines.append("  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(row, widths, strict=True))))

    def calls(x: float | None) -> str:
        return "-" if x is None else (f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.2f}")

    def shape_of(item: dict[str, Any]) -> str:
        g = next((g for g in prof["gemms"] if g["label"] == item["item"]), None)
        return f"{item['item']}  ({'x'.join(map(str, g['shape']))})" if g else item["item"]

    rows = [(shape_of(i), i["category"] if i["category"] != i["item"] else "", calls(i["calls_per_step"]),
             f"{i['us_per_step']:.1f}", f"{i['percent_of_step']:.1f}%") for i in prof["items"]]
    table(("item", "category", "calls/step", "us/step", "% of step"), rows)
    lines.append("  by category:")
    rows = [(name, "", calls(c["calls_per_step"]), f"{c['us_per_step']:.1f}", f"{c['percent_of_step']:.1f}%")
            for name, c in sorted(prof["categories"].items(), key=lambda kv: -kv[1]["us_per_step"])]
    rows.append(("step (total)", "", calls(sum(c["calls_per_step"] or 0 for c in prof["categories"].values())),
                 f"{prof['step_us']:.1f}", "100.0%"))
    table(("category", "", "calls/step", "us/step", "% of step"), rows)
    lines.append("  each GEMM in the step against alone (the GEMM bound's products back to back, each timed):")
    rows = [(g["label"], "x".join(map(str, g["shape"])), _fmt(g["in_step_us"], ".1f"), _fmt(g["alone_us"], ".1f"),
             _fmt(g["ratio"], ".2f", "x")) for g in prof["gemms"]]
    total_in = prof["categories"].get("GEMMs", {}).get("us_per_step")
    total_alone = sum(g["alone_us"] or 0.0 for g in prof["gemms"])
    rows.append(("all", "", _fmt(total_in, ".1f"), f"{total_alone:.1f}",
                 _fmt(total_in / total_alone if total_in and total_alone else None, ".2f", "x")))
    table(("product", "m x k x n", "in step us", "alone us", "step/alone"), rows)
    o = prof["over_gemm_bound"]
    lines.append(f"  step - GEMMs alone = {o['step_minus_gemms_alone_us']:.1f} us: GEMMs slower in the step "
                 f"{o['gemms_slower_in_step_us']:+.1f}, elementwise and reductions "
                 f"{o['elementwise_and_reductions_us']:.1f}, Python and dispatch {o['python_and_dispatch_us']:.1f}")
    return "\n".join(lines)


def run_profile(configs: Sequence[BenchConfig], settings: BenchSettings, *, emit: Callable[[str], None] = print,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``xpnet bench --profile``: :func:`profile_config` for every configuration, each printed as soon as it is
    ready. Returns ``environment``, ``settings`` and ``profile`` (one dict per configuration), JSON-able."""
    from ..device import get_backend

    bk = get_backend(settings.backend)
    env = environment_info(settings, bk)
    emit(format_header(env, settings, bk, profile=True))
    out: dict[str, Any] = {"schema": SCHEMA_VERSION, "environment": env, "backend": bk.spec,
                           "settings": {**{k: getattr(settings, k) for k in settings.__dataclass_fields__},
                                        "lr": settings.lr}, "profile": [], "ok": True}
    for cfg in configs:
        prof = profile_config(cfg, settings, bk, progress=progress)
        out["profile"].append(prof)
        emit("")
        emit(format_profile(prof))
    # Our own OpenBLAS workers spin for ~0.1 s after the last GEMM: let them stop before sampling the machine.
    time.sleep(SWITCH_PAUSE_S)
    note_busy_at_end(out, env["cpus"], emit)
    return out


"""The benchmark's text: the header (:func:`format_header`), the step table of one configuration with the
issue's targets (:func:`format_config_report`, :func:`_targets`), the whole-fit table (:func:`format_fit_report`)
and the end-to-end table (:func:`format_end_to_end`); number formatting the profile shares (:func:`_fmt`)."""

from __future__ import annotations

from typing import Any

from .configs import BenchSettings
from .environment import _busy_warning


# --------------------------------------------------------------------------------------------- report
def _fmt_ms(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.3f}"
    return f"{x:.4f}"


def _fmt(x: float | None, spec: str, suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def format_header(env: dict[str, Any], settings: BenchSettings, bk: Any, *, profile: bool = False,
                  timing: str | None = None) -> str:
    """The lines above the tables: where and with what it ran (``profile``: for ``--profile``, whose timing is
    described per configuration; ``timing``: the last line, how the times were taken, for ``--fit``)."""
    v = env["versions"]
    shown = ", ".join(f"{k} {v[k]}" for k in ("xpnet", "numpy", "torch", "scikit-learn", "array-api-compat",
                                                "array-api-strict", "cupy", "jax", "python") if v.get(k))
    lines = [f"xpnet bench: backend {bk.spec} (device {env['device']}), {settings.dtype}, {settings.optimizer} "
             f"lr {settings.lr:g}" + (", Adam betas 0.9/0.999 eps 1e-8" if settings.optimizer == "adam" else ""),
             f"versions: {shown}",
             f"CPU: {env['cpu']} ({env['cpus']} usable)" + (f"; GPU: {env['gpu']}" if env.get("gpu") else "")]
    blas = [p for p in env["thread_pools"] if p["user_api"] == "blas"]
    parts = [f"{p['library']} {p['version'] or '?'}" + (f" {p['architecture']}" if p.get("architecture") else "") +
             f" ({p['file']}): {p['threads']} thread(s)" for p in blas]
    lines.append("BLAS: " + ("; ".join(parts) if parts else "none found by threadpoolctl"))
    if "torch" in env:
        lines.append(f"torch: {env['torch']['threads']} thread(s), MKL {'yes' if env['torch']['mkl'] else 'no'}")
    busy = _busy_warning(env.get("cpus_busy_before"), env["cpus"])
    if busy:
        lines.append(busy)
    threads = f"threads: {'as found' if settings.threads is None else settings.threads}; "
    if timing is not None:
        lines.append(timing)
    elif profile:
        lines.append(threads + f"profile: ~{settings.profile_seconds:g} s of profiled steps per configuration after "
                     f"{settings.warmup} warm-up step(s), interleaved with unprofiled blocks of >= "
                     f"{settings.min_block_seconds:g} s; medians over blocks")
    else:
        lines.append(threads + f"timing: {settings.rounds} interleaved rounds after {settings.warmup} warm-up "
                     f"step(s), blocks of >= {settings.min_block_seconds:g} s, medians (ratios: medians of per-round "
                     "ratios)")
    return "\n".join(lines)


def _targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for this configuration (CPU float32): name, value, limit, met."""
    name = result["name"]
    c = result["candidates"]
    r = result["ratios"]
    out = []

    def add(label: str, value: float | None, limit: float, upper: bool) -> None:
        if value is not None:
            out.append({"target": label, "value": value, "limit": limit, "op": "<=" if upper else ">=",
                        "met": bool(value <= limit if upper else value >= limit)})

    add("xpnet/torch", r["xpnet_over_torch"], 0.8 if name in ("tiny", "mnist") else 1.0, True)
    if name in ("wide", "mnist-1024", "lecture"):
        add("GEMM fraction", r["gemm_fraction_of_xpnet"], 0.9, False)
    if name == "tiny":
        add("xpnet/numpy-ref", r["xpnet_over_numpy_ref"], 1.3, True)
    mx = (c["xpnet"].get("memory") or {})
    mt = (c.get("torch", {}).get("memory") or {})
    if mx.get("peak_mib") is not None and mt.get("peak_mib") is not None:
        add("peak MiB xpnet/torch", mx["peak_mib"], mt["peak_mib"], True)
    if mx.get("growth_mib") is not None:
        add("growth MiB", mx["growth_mib"], 1.0, True)
    return out


def format_config_report(result: dict[str, Any], *, meaningful: bool = True, targets: bool = True) -> str:
    """One configuration's table: candidate, ms/step, GFLOP/s, GEMM fraction, ratio to torch, peak and growth
    memory; then the correctness check and the target ratios."""
    lines = [f"{result['name']}: {'-'.join(map(str, result['layers']))} {result['output']}, batch "
             f"{result['batch']}, {result['gemm_flops_per_step'] / 1e9:.4g} GFLOP of GEMMs per step"
             + ("" if meaningful else "  [times NOT meaningful on this backend: correctness only]")]
    head = ("candidate", "ms/step", "GFLOP/s", "GEMM frac", "vs torch", "peak MiB", "growth MiB")
    rows = []
    for name, e in result["candidates"].items():
        if e["status"] != "ok":
            rows.append((name, f"skipped: {e['reason']}"))
            continue
        mem = e.get("memory") or {}
        if "error" in mem:
            peak, growth = "error", "error"
        else:
            peak, growth = _fmt(mem.get("peak_mib"), ".1f"), _fmt(mem.get("growth_mib"), ".2f")
        ratio = e.get("torch_ratio") if meaningful else None
        rows.append((name, _fmt_ms(e["ms_per_step"]), f"{e['gflops']:.1f}", _fmt(e.get("gemm_fraction"), ".0%"),
                     _fmt(ratio, ".2f", "x"), peak, growth))
    widths = [max(len(r[i]) for r in [head, *rows] if len(r) == len(head)) for i in range(len(head))]
    for row in [head, *rows]:
        if len(row) == 2:
            lines.append(f"  {row[0].ljust(widths[0])}  {row[1]}")
        else:
            lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    for e in result["candidates"].values():
        if (e.get("memory") or {}).get("error"):
            lines.append(f"  memory: {e['memory']['error']}")
    check = result["correctness"]
    parts = []
    for p in check["pairs"]:
        text = (f"{p['candidate']} ({p['optimizer']}) cost {p['cost_rel_diff']:.1e}, update "
                f"{p['update_rel_diff']:.1e}")
        if p.get("entries_left_out"):
            text += f" ({p['entries_left_out']} noise-gradient entries left out)"
        if not p["ok"]:
            text += f" > tolerance {p['tolerance']['cost']:g} / {p['tolerance']['update']:g} <- MISMATCH"
        parts.append(text)
    verdict = "ok" if check["ok"] else "MISMATCH"
    lines.append(f"  check against {check['reference']} after one step: {verdict}; relative differences: "
                 + "; ".join(parts))
    r = result["ratios"]
    if meaningful:
        lines.append("  ratios: xpnet/torch " + _fmt(r["xpnet_over_torch"], ".2f", "x") + ", GEMM fraction of xpnet "
                     + _fmt(r["gemm_fraction_of_xpnet"], ".0%") + ", xpnet/numpy-ref "
                     + _fmt(r["xpnet_over_numpy_ref"], ".2f", "x"))
    if targets and result.get("targets"):
        lines.append("  targets (NumPy, CPU, float32): " + "; ".join(
            f"{t['target']} {t['value']:.3g} {t['op']} {t['limit']:.3g} {'ok' if t['met'] else 'MISS'}"
            for t in result["targets"]))
    return "\n".join(lines)



def format_end_to_end(res: dict[str, Any]) -> str:
    """The end-to-end comparison as a small table."""
    lines = [f"end to end: {res['dataset']} ({res['n_train']} train / {res['n_test']} test, standardized), "
             f"{res['network']}, {res['optimizer']} lr {res['learning_rate']:g}, batch {res['batch_size']}, "
             f"{res['epochs']} epochs, no early stopping, {res['dtype']}, median of {res['repeats']} interleaved "
             "run(s)"]
    head = ("model", "fit seconds", "ms/epoch", "test accuracy", "epochs")
    rows = [head]
    for name, r in res["results"].items():
        label = f"xpnet ({res['backend']})" if name == "xpnet" else "scikit-learn MLPClassifier"
        epochs = sorted(set(r["epochs_run"]))
        rows.append((label, f"{r['seconds']:.3f}", f"{1e3 * r['seconds'] / max(1, epochs[0]):.1f}",
                     f"{r['accuracy']:.4f}", "/".join(map(str, epochs))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    lines.append("  time xpnet/scikit-learn: " + _fmt(res["time_ratio_xpnet_over_sklearn"], ".2f", "x"))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- fit
def _fit_timing_line(settings: BenchSettings, rounds: int, warmup: int, min_block_seconds: float) -> str:
    """The header's last line for ``--fit``: how the fits were timed."""
    threads = f"threads: {'as found' if settings.threads is None else settings.threads}; "
    return (threads + f"fit timing: {rounds} interleaved rounds after {warmup} warm-up fit(s), blocks of "
            f">= {min_block_seconds:g} s of whole fits, medians (ratios: medians of per-round ratios)")


def format_fit_report(result: dict[str, Any], *, meaningful: bool = True, targets: bool = True) -> str:
    """One configuration's fit table: candidate, validation, seconds per fit, ms per epoch, ratio to its PyTorch
    loop and to scikit-learn, the last epoch's training loss, peak and growth memory; then the targets."""
    r = result
    lines = [f"fit {r['name']}: {'-'.join(map(str, r['layers']))} {r['output']}, batch {r['batch']}; "
             f"{r['epochs']} epochs x {r['batches_per_epoch']} batches ({r['rows']} rows, validation "
             f"{r['validation_rows']} rows where marked)"
             + ("" if meaningful else "  [times NOT meaningful on this backend]")]
    head = ("candidate", "validation", "fit s", "ms/epoch", "vs torch loop", "vs sklearn", "final loss",
            "peak MiB", "growth MiB")
    rows: list[tuple[str, ...]] = []
    for name, e in r["candidates"].items():
        if e["status"] != "ok":
            rows.append((name, f"skipped: {e['reason']}"))
            continue
        mem = e.get("memory") or {}
        peak, growth = (("error", "error") if "error" in mem else
                        (_fmt(mem.get("peak_mib"), ".1f"), _fmt(mem.get("growth_mib"), ".2f")))
        vs_torch = "-" if e.get("vs_torch") is None or not meaningful else f"{e['vs_torch']:.2f}x ({e['peer']})"
        vs_sk = _fmt(e.get("vs_sklearn") if meaningful else None, ".2f", "x")
        rows.append((name, "yes" if e["validation"] else "no", f"{e['seconds_per_fit']:.4g}",
                     f"{e['ms_per_epoch']:.4g}", vs_torch, vs_sk, f"{e['final_loss']:.4g}", peak, growth))
    widths = [max(len(row[i]) for row in [head, *rows] if len(row) == len(head)) for i in range(len(head))]
    for row in [head, *rows]:
        if len(row) == 2:
            lines.append(f"  {row[0].ljust(widths[0])}  {row[1]}")
        else:
            lines.append("  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    for name, e in r["candidates"].items():
        if (e.get("memory") or {}).get("error"):
            lines.append(f"  memory of {name}: {e['memory']['error']}")
    if targets and r.get("targets"):
        lines.append("  targets (NumPy, CPU, float32): " + "; ".join(
            f"{t['target']} {t['value']:.3g} {t['op']} {t['limit']:.3g} {'met' if t['met'] else 'MISSED'}"
            for t in r["targets"]))
    return "\n".join(lines)

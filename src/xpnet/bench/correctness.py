"""The step benchmark's correctness check: one xpnet step (and one step of the NumPy script) against one
PyTorch step from the same weights and batch, within a tolerance per dtype (:func:`check_correctness`)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from .configs import BenchSettings, Problem
from .peers import _BUILDERS, skip_reason


# -------------------------------------------------------------------------------------- correctness
def _tolerance(dtype: str) -> dict[str, float]:
    # float32: the products' summation order differs between BLAS libraries (relative error ~1e-6 per
    # product, amplified through the layers); float64 leaves room for the same with 9 more digits. ``noise``:
    # a gradient entry under this fraction of its parameter's largest is rounding noise, whose sign Adam's
    # normalization g / (|g| + eps) turns into a full-size step (see _compare).
    if dtype == "float32":
        return {"cost": 1e-4, "update": 2e-3, "noise": 1e-4}
    return {"cost": 1e-10, "update": 1e-7, "noise": 1e-12}


def _compare(name: str, optimizer: str, got: tuple[float, dict[str, Any]], ref: tuple[float, dict[str, Any]],
             before: dict[str, Any], grads: dict[str, Any] | None, tol: dict[str, float]) -> dict[str, Any]:
    """Relative differences of one step's cost and parameter updates ``u = after - before`` against a reference:
    per parameter ``max|u - u_ref| / max|u_ref|``, the worst parameter reported.

    With Adam the first update is ``lr g / (|g| + eps)``: every entry moves by about ``lr``, and an entry whose
    gradient is rounding noise moves by ``+-lr`` at random. Those entries (``|g_ref| < noise * max|g_ref|`` in
    the parameter) are left out and counted; the gradient-descent check, where ``u = -lr g``, covers them.
    """
    import numpy as np

    cost, after = got
    ref_cost, ref_after = ref
    cost_diff = abs(cost - ref_cost) / max(abs(ref_cost), 1e-30)
    worst, worst_key, left_out = 0.0, None, 0
    for key, start in before.items():
        s = start.astype(np.float64)
        du = after[key].astype(np.float64) - s
        du_ref = ref_after[key].astype(np.float64) - s
        if grads is not None:
            g = np.abs(grads[key].astype(np.float64))
            keep = g >= tol["noise"] * float(g.max(initial=0.0))
            left_out += int(np.count_nonzero(~keep & (g > 0)))  # exact zeros (dead units) are not noise
            du, du_ref = du[keep], du_ref[keep]
        scale = float(np.max(np.abs(du_ref), initial=0.0))
        err = float(np.max(np.abs(du - du_ref), initial=0.0))
        rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
        if not np.isfinite(after[key]).all():
            rel = math.inf
        if rel > worst or worst_key is None:
            worst, worst_key = rel, key
    ok = bool(cost_diff <= tol["cost"] and worst <= tol["update"] and math.isfinite(cost))
    out = {"candidate": name, "optimizer": optimizer, "cost": cost, "reference_cost": ref_cost,
           "cost_rel_diff": cost_diff, "update_rel_diff": worst, "worst_parameter": worst_key,
           "tolerance": {"cost": tol["cost"], "update": tol["update"]}, "ok": ok}
    if grads is not None:
        out["entries_left_out"] = left_out
    return out


def _one_step(name: str, problem: Problem, settings: BenchSettings, bk: Any
              ) -> tuple[float, dict[str, Any], dict[str, Any] | None]:
    """``(cost, parameters after, gradients or None)`` of one step of candidate ``name``, all on the host."""
    import numpy as np

    # Built directly, not through build_candidate: the NumPy script checks on the host even when the timing
    # leaves it out (a GPU run), and the caller has made sure torch is there.
    with bk.activate():
        cand = _BUILDERS[name](problem, settings, bk)
    with cand.context():
        cost = cand.step()
        cand.sync()
    if name == "xpnet":
        params = cand.extra["network"].parameters
        return float(bk.to_numpy(cost)), {k: np.asarray(bk.to_numpy(v)) for k, v in params.items()}, None
    if name == "numpy-ref":
        return float(cost), cand.extra["params"], {k[1:]: v for k, v in cand.extra["grads"].items()}
    model = cand.extra["model"]
    after, grads = {}, {}
    for l in range(1, len(problem.config.layers)):
        lin = model[2 * (l - 1)]
        after[f"W{l}"] = lin.weight.detach().cpu().numpy()
        after[f"b{l}"] = lin.bias.detach().cpu().numpy()[:, None]
        grads[f"W{l}"] = lin.weight.grad.detach().cpu().numpy()
        grads[f"b{l}"] = lin.bias.grad.detach().cpu().numpy()[:, None]
    return float(cost.item()), after, grads


def check_correctness(problem: Problem, settings: BenchSettings, bk: Any) -> dict[str, Any]:
    """One step of xpnet (and of the NumPy script) from the problem's weights and batch, against one step of
    PyTorch (without torch: against the NumPy script). The cost and the parameter updates must agree within a
    tolerance for the dtype, for a gradient-descent step (``u = -lr g``: checks forward, cost and backward)
    and, when the run uses Adam, for an Adam step too. Returns ``{"reference", "pairs": [...], "ok"}``."""
    tol = _tolerance(settings.dtype)
    reference = "torch" if skip_reason("torch", settings, bk) is None else "numpy-ref"
    names = [n for n in ("xpnet", "numpy-ref") if n != reference]
    optimizers = ["gd"] + (["adam"] if settings.optimizer == "adam" else [])
    pairs = []
    for opt in optimizers:
        step_settings = replace(settings, optimizer=opt, learning_rate=settings.lr if opt == settings.optimizer
                                else None)
        ref_cost, ref_after, grads = _one_step(reference, problem, step_settings, bk)
        for name in names:
            cost, after, _ = _one_step(name, problem, step_settings, bk)
            pairs.append(_compare(name, opt, (cost, after), (ref_cost, ref_after), problem.params,
                                  grads if opt == "adam" else None, tol))
    return {"reference": reference, "pairs": pairs, "ok": all(p["ok"] for p in pairs)}


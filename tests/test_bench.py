"""`xpnet bench`: a smoke test of the harness (its tables, JSON, correctness check, memory runs, exit codes),
never a timing assertion: a test machine is shared and its times mean nothing.

Runs go through ``xpnet.cli.main`` in-process with ``--quick`` (3 short rounds) on the tiny configuration and
one thread (torch with two threads on a busy 2-CPU machine spends its time in OpenMP barriers).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from xpnet import bench
from xpnet.cli import main

QUICK = ["bench", "--quick", "--threads", "1"]
HAS_TORCH = bench._torch_available()[0]
ROWS = ("xpnet", "numpy-ref", "torch", "gemm", "sklearn")


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(out: str) -> dict[str, list[str]]:
    """The candidate rows of the printed tables: name -> the rest of the row's words."""
    rows = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("  ") and words and words[0] in ROWS:
            rows[words[0]] = words[1:]
    return rows


def load(path) -> dict:
    with open(path) as fh:
        return json.load(fh)


# ------------------------------------------------------------------------------------------ arithmetic
def test_flop_count_matches_a_hand_count():
    # 5-4-3-2 at batch 6: forward 2*6*(4*5 + 3*4 + 2*3) = 456, dW the same, dA (layers 2 and 3 only)
    # 2*6*(3*4 + 2*3) = 216.
    assert bench.gemm_flops((5, 4, 3, 2), 6) == 456 + 456 + 216
    # mnist at batch 128: 2*128*234752 twice, plus 2*128*(256*128 + 128*10).
    assert bench.gemm_flops((784, 256, 128, 10), 128) == 2 * 60_096_512 + 8_716_288
    for layers, b in (((5, 4, 3, 2), 6), ((2, 4, 1), 400), ((12288, 20, 7, 5, 1), 209)):
        assert sum(p.flops for p in bench.gemm_plan(layers, b)) == bench.gemm_flops(layers, b)


def test_gemm_bound_performs_exactly_the_steps_products():
    cfg = bench.custom_config((5, 4, 3, 2), 6, "softmax")
    problem = bench.make_problem(cfg)
    calls = []

    def recording_matmul(a, b, out):
        calls.append((a.shape, b.shape, out.shape, a.flags.f_contiguous and not a.flags.c_contiguous,
                      b.flags.f_contiguous and not b.flags.c_contiguous))
        return np.matmul(a, b, out=out)

    from xpnet import get_backend

    bk = get_backend("numpy")
    cand = bench._build_gemm(problem, bench.BenchSettings(), bk, matmul=recording_matmul)
    cand.step()
    # (a, b, out, a is a transposed view, b is a transposed view): forward, then per layer dW and dA (no dA0).
    assert calls == [
        ((4, 5), (5, 6), (4, 6), False, False),  # Z1 = W1 @ X
        ((3, 4), (4, 6), (3, 6), False, False),  # Z2 = W2 @ A1
        ((2, 3), (3, 6), (2, 6), False, False),  # Z3 = W3 @ A2
        ((2, 6), (6, 3), (2, 3), False, True),   # dW3 = dZ3 @ A2.T
        ((3, 2), (2, 6), (3, 6), True, False),   # dA2 = W3.T @ dZ3
        ((3, 6), (6, 4), (3, 4), False, True),   # dW2 = dZ2 @ A1.T
        ((4, 3), (3, 6), (4, 6), True, False),   # dA1 = W2.T @ dZ2
        ((4, 6), (6, 5), (4, 5), False, True),   # dW1 = dZ1 @ X.T
    ]
    plan = bench.gemm_plan((5, 4, 3, 2), 6)
    assert [(p.m, p.k, p.n) for p in plan] == [(a[0], a[1], o[1]) for a, _, o, _, _ in calls]
    # The default (native) product writes into the preallocated outputs.
    native = bench._build_gemm(problem, bench.BenchSettings(), bk)
    native.step()
    for a, b, out in native.extra["ops"]:
        np.testing.assert_allclose(out, a @ b, rtol=1e-6)


def test_numpy_reference_step_agrees_with_xpnet_step():
    """The bare NumPy script and xpnet's Trainer.step compute the same update (float64, tight)."""
    from xpnet import get_backend

    cfg = bench.custom_config((6, 5, 4, 3), 9, "softmax")
    settings = bench.BenchSettings(dtype="float64", torch=False)
    problem = bench.make_problem(cfg, "float64")
    check = bench.check_correctness(problem, settings, get_backend("numpy"))
    assert check["reference"] == "numpy-ref" and check["ok"]
    (pair,) = check["pairs"]
    assert pair["candidate"] == "xpnet" and pair["update_rel_diff"] < 1e-12 and pair["cost_rel_diff"] < 1e-12


# ------------------------------------------------------------------------------------------ the command
BACKENDS = ["numpy", "torch:cpu", "array_api_strict"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bench_tiny_runs_on_the_backend(backend, tmp_path, capsys):
    if backend.startswith("torch") and not HAS_TORCH:
        pytest.skip("torch is not installed")
    if backend == "array_api_strict":
        pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    path = tmp_path / "bench.json"
    code, out, err = run([*QUICK, "--config", "tiny", "--no-memory", "--backend", backend, "--json", path], capsys)
    assert code == 0, err
    assert "CORRECTNESS" not in err
    rows = table_rows(out)
    expected = {"xpnet", "numpy-ref", "gemm", "sklearn"} | ({"torch"} if HAS_TORCH else set())
    assert expected <= set(rows), out
    check_line = next(line for line in out.splitlines() if "after one step" in line)
    assert "check against " + ("torch" if HAS_TORCH else "numpy-ref") + " after one step: ok" in check_line

    result = load(path)
    assert {"schema", "environment", "backend", "settings", "configs", "ok", "timing_meaningful"} <= set(result)
    assert result["ok"] is True
    assert result["settings"]["threads"] == 1
    assert result["environment"]["versions"]["xpnet"]
    (cfg,) = result["configs"]
    assert cfg["name"] == "tiny" and cfg["layers"] == [2, 4, 1] and cfg["batch"] == 400
    assert cfg["gemm_flops_per_step"] == bench.gemm_flops((2, 4, 1), 400)
    assert cfg["correctness"]["ok"] and cfg["correctness"]["pairs"]
    for name in expected:
        entry = cfg["candidates"][name]
        assert entry["status"] == "ok", entry
        assert len(entry["times_ms"]) == 3
        assert all(math.isfinite(t) and t > 0 for t in entry["times_ms"])
        assert entry["ms_per_step"] > 0 and entry["steps_per_block"] >= 1
    meaningful = backend != "array_api_strict"
    assert result["timing_meaningful"] is meaningful
    ratio = cfg["ratios"]["xpnet_over_torch"]
    if HAS_TORCH and meaningful:
        assert ratio is not None and ratio > 0
        assert rows["xpnet"][3].endswith("x")  # the "vs torch" column
        assert "ratios: xpnet/torch " in out
    else:
        assert ratio is None
    # The issue's targets are stated (and summarized) for NumPy on the CPU in float32 only.
    assert ("targets (NumPy, CPU, float32):" in out) is (backend == "numpy")
    if backend == "numpy":
        assert {"xpnet/numpy-ref"} | ({"xpnet/torch"} if HAS_TORCH else set()) <= {t["target"] for t in cfg["targets"]}
    if not meaningful:
        assert "NOT meaningful" in out
        assert "ratios: xpnet/torch" not in out and rows["xpnet"][3] == "-"


def test_without_torch_the_run_goes_on(capsys):
    code, out, err = run([*QUICK, "--config", "tiny", "--no-memory", "--no-torch", "--no-sklearn"], capsys)
    assert code == 0, err
    rows = table_rows(out)
    assert rows["torch"][:2] == ["skipped:", "--no-torch"]
    assert rows["sklearn"][:2] == ["skipped:", "--no-sklearn"]
    assert "check against numpy-ref after one step: ok" in out


def test_memory_is_measured_in_fresh_processes(tmp_path, capsys):
    path = tmp_path / "bench.json"
    code, out, err = run([*QUICK, "--config", "tiny", "--no-sklearn", "--json", path], capsys)
    assert code == 0, err
    (cfg,) = load(path)["configs"]
    measured = [n for n, e in cfg["candidates"].items() if e["status"] == "ok"]
    assert "xpnet" in measured and "gemm" in measured
    for name in measured:
        mem = cfg["candidates"][name]["memory"]
        assert "error" not in mem, mem
        assert mem["kind"] == "host-rss"
        assert 0 <= mem["peak_mib"] < 500 and math.isfinite(mem["growth_mib"])
        assert mem["steps"] >= 12
    assert rows_have_memory(out)


def rows_have_memory(out: str) -> bool:
    rows = table_rows(out)
    return all(len(rows[n]) == 6 and rows[n][4] != "-" for n in ("xpnet", "gemm"))


def test_custom_layers_with_a_linear_output(tmp_path, capsys):
    path = tmp_path / "custom.json"
    code, out, err = run([*QUICK, "--layers", "6,5,3", "--batch", "7", "--output", "linear", "--no-memory",
                          "--optimizer", "adam", "--json", path], capsys)
    assert code == 0, err
    assert out.count("after one step: ok") == 1
    (cfg,) = load(path)["configs"]
    assert (cfg["name"], cfg["layers"], cfg["batch"], cfg["output"]) == ("custom", [6, 5, 3], 7, "linear")
    assert cfg["candidates"]["sklearn"]["status"] == "ok"  # MLPRegressor
    assert {p["optimizer"] for p in cfg["correctness"]["pairs"]} == {"gd", "adam"}


def test_custom_layers_default_to_batch_128(capsys):
    code, out, err = run([*QUICK, "--layers", "20,10,3", "--no-memory", "--no-sklearn", "--rounds", "1"], capsys)
    assert code == 0, err
    assert "custom: 20-10-3 softmax, batch 128," in out


def test_a_wrong_step_fails_the_check_with_exit_1(monkeypatch, capsys):
    from dataclasses import replace

    build = bench._BUILDERS["xpnet"]
    # xpnet with twice the learning rate: the forward pass and the cost agree, the update does not.
    monkeypatch.setitem(bench._BUILDERS, "xpnet",
                        lambda problem, settings, bk: build(problem, replace(settings, learning_rate=2 * settings.lr),
                                                            bk))
    code, out, err = run([*QUICK, "--config", "tiny", "--no-memory", "--no-sklearn", "--rounds", "1"], capsys)
    assert code == 1
    assert "MISMATCH" in out
    assert err.startswith("xpnet: error: CORRECTNESS CHECK FAILED") and "tiny (xpnet)" in err


def test_unknown_config_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "--config", "tiny,huge"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown configuration 'huge'" in err
    for name in bench.CONFIGS:
        assert name in err


def test_batch_without_layers_is_refused(capsys):
    code, _, err = run(["bench", "--batch", "64"], capsys)
    assert code == 1 and err.startswith("xpnet: error: --batch and --output describe a custom network")


def test_end_to_end_smoke(tmp_path, capsys):
    path = tmp_path / "e2e.json"
    code, out, err = run([*QUICK, "--end-to-end", "--epochs", "2", "--json", path], capsys)
    assert code == 0, err
    assert "end to end: digits" in out and "2 epochs" in out
    e2e = load(path)["end_to_end"]
    assert e2e["epochs"] == 2 and e2e["repeats"] == 1
    for name in ("xpnet", "sklearn"):
        r = e2e["results"][name]
        assert r["epochs_run"] == [2]
        assert r["seconds"] > 0 and 0.5 < r["accuracy"] <= 1.0  # two epochs of Adam already learn digits
    assert "after one step" not in out  # --end-to-end alone runs no step benchmark


# ------------------------------------------------------------------------------------------ --profile
OP_CATEGORIES = ("GEMMs", "forward elementwise", "output and cost", "backward elementwise", "reductions (db)",
                 "optimizer update")


def test_profile_tiny_accounts_for_the_step(tmp_path, capsys):
    path = tmp_path / "profile.json"
    code, out, err = run([*QUICK, "--profile", "--config", "tiny", "--json", path], capsys)
    assert code == 0, err
    assert "tiny: 2-4-1 sigmoid, batch 400 (gd, float32): profile of" in out
    for name in (*OP_CATEGORIES, "Python and dispatch overhead", "step - GEMMs alone = "):
        assert name in out
    assert "after one step" not in out and "torch" not in table_rows(out)  # a profile, not the comparison

    (prof,) = load(path)["profile"]
    assert prof["steps_profiled"] >= 20 and prof["step_us"] > 0
    assert set(prof["categories"]) == {*OP_CATEGORIES, "Python and dispatch overhead"}
    ops = [i for i in prof["items"] if i["category"] != "Python and dispatch overhead"]
    assert all(i["us_per_step"] > 0 and i["calls_per_step"] > 0 for i in ops), ops
    times = [i["us_per_step"] for i in prof["items"]]
    assert times == sorted(times, reverse=True)
    # The operations happen inside the step: together no longer than it (noise allowed for on a shared machine).
    assert prof["ops_us"] == pytest.approx(sum(i["us_per_step"] for i in ops))
    assert prof["ops_us"] <= 1.25 * prof["step_us"] + 5
    # Exactly the step's 3L - 1 products, each once per step, labelled as gemm_plan labels them.
    plan = bench.gemm_plan((2, 4, 1), 400)
    assert prof["matmuls_per_step"] == pytest.approx(3 * 2 - 1) == len(plan)
    gemm_items = {i["item"]: i["calls_per_step"] for i in ops if i["category"] == "GEMMs"}
    assert gemm_items == pytest.approx({p.label: 1.0 for p in plan})
    assert [g["label"] for g in prof["gemms"]] == [p.label for p in plan]
    assert all(g["in_step_us"] > 0 and g["alone_us"] > 0 and g["ratio"] > 0 for g in prof["gemms"])
    over = prof["over_gemm_bound"]
    parts = over["gemms_slower_in_step_us"] + over["elementwise_and_reductions_us"] + over["python_and_dispatch_us"]
    assert parts == pytest.approx(over["step_minus_gemms_alone_us"])


def test_profiling_changes_no_result_and_restores_the_step():
    """The timing proxy only watches: the same steps give the same bits, and the step is left as it was."""
    from xpnet import get_backend

    bk = get_backend("numpy")
    cfg = bench.custom_config((5, 4, 3, 2), 6, "softmax")
    problem = bench.make_problem(cfg)
    settings = bench.BenchSettings(optimizer="adam")
    plain, watched = (bench.build_candidate("xpnet", problem, settings, bk) for _ in range(2))
    for cand in (plain, watched):
        cand.step()  # builds the in-place step
    step = watched.extra["trainer"]._choose_step()
    def kept(step: object) -> dict[str, object]:  # sc: the per-step scalars, new at every step
        return {k: v for k, v in vars(step).items() if k != "sc"}

    before = kept(step)
    plan = bench.gemm_plan(cfg.layers, cfg.batch)
    rec = bench._OpRecorder(plan, 3)
    with bench._instrumented(step, rec):
        for _ in range(3):
            rec.begin_step()
            watched.step()
            plain.step()
    assert kept(step) == before and step.mod is np
    for key, value in plain.extra["network"].parameters.items():
        assert np.array_equal(value, watched.extra["network"].parameters[key]), key
    counts = rec.take(3)
    assert {cat for cat, _ in counts} == set(OP_CATEGORIES)
    assert [name for cat, name in counts if cat == "GEMMs"] == [p.label for p in plan]
    assert counts[("reductions (db)", "add.reduce")][0] == 3  # one db per layer
    assert counts[("output and cost", "add.reduce")][0] == 1  # the softmax's column sums
    assert counts[("backward elementwise", "greater")][0] == 2  # relu' of the two hidden layers


def test_profile_needs_the_numpy_backend(capsys):
    pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    code, out, err = run([*QUICK, "--profile", "--config", "tiny", "--backend", "array_api_strict"], capsys)
    assert code == 0, err
    assert "tiny: 2-4-1 sigmoid, batch 400: profile skipped: profile needs the numpy backend's in-place step" in out


def test_json_results_are_strict_json():
    import json
    import math

    from xpnet.bench import _json_safe

    raw = {"ratio": math.inf, "diff": [1.0, math.nan, {"x": -math.inf}], "ok": True, "n": 3}
    safe = _json_safe(raw)
    assert safe == {"ratio": None, "diff": [1.0, None, {"x": None}], "ok": True, "n": 3}
    json.dumps(safe, allow_nan=False)  # raises on any NaN/inf left

"""`xpnet bench --fit`: the whole-fit benchmark's harness (candidates, pairing, ratios, JSON, memory runs), never a
timing assertion: a test machine is shared and its times mean nothing.

Runs go through the command (``xpnet bench --fit ...``, :func:`xpnet.cli.main`) in-process with ``--quick``
(two rounds of single fits) on small custom networks and one thread.
"""

from __future__ import annotations

import json
import math

import pytest

from xpnet import bench
from xpnet.bench import fit as fitbench
from xpnet.cli import main as xpnet_main

HAS_TORCH = bench._torch_available()[0]
QUICK_FIT = ["--fit", "--quick", "--threads", "1"]


def run(argv, capsys):
    code = xpnet_main(["bench", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return code, out, err


def load(path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def fit_rows(out: str) -> dict[str, list[str]]:
    """The candidate rows of the printed fit tables: name -> the rest of the row's words."""
    rows = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("  ") and words and words[0] in fitbench.FIT_CANDIDATES:
            rows[words[0]] = words[1:]
    return rows


# ------------------------------------------------------------------------------------------ the helpers
def test_ratios_are_medians_of_per_round_ratios():
    # Round by round the estimator takes 0.5x, 2x and 0.6x the loop's time: the median of those is 0.6. The ratio
    # of the medians (3 / 4 = 0.75) and the mean ratio (1.03) are different numbers, so a helper computing
    # either fails here.
    times = {"xpnet-estimator": [1.0, 8.0, 3.0], "torch-loop": [2.0, 4.0, 5.0],
             "xpnet-train": [3.0, 3.0, 9.0], "torch-loop-val": [1.0, 6.0, 3.0],
             "sklearn": [4.0, 2.0, 6.0]}
    r = fitbench.fit_ratios(times)
    assert r["xpnet-estimator"]["vs_torch"] == pytest.approx(0.6)
    assert r["xpnet-estimator"]["vs_sklearn"] == pytest.approx(0.5)  # 0.25, 4, 0.5
    assert r["xpnet-train"]["vs_torch"] == pytest.approx(3.0)  # 3, 0.5, 3: each against torch-loop-val
    assert r["torch-loop"]["vs_torch"] is None and r["torch-loop"]["vs_sklearn"] == pytest.approx(5 / 6)
    assert r["sklearn"] == {"vs_torch": None, "vs_sklearn": None}
    # A peer that did not run gives no ratio.
    assert fitbench.fit_ratios({"xpnet-estimator": [1.0]})["xpnet-estimator"] == {"vs_torch": None,
                                                                                  "vs_sklearn": None}


def test_targets_follow_the_issue():
    assert [fitbench.fit_limit(n) for n in ("mnist", "mnist-1024", "tiny", "wide", "lecture", "custom")] == \
        [0.85, 0.85, 0.5, 1.0, 1.0, 1.0]
    result = {"name": "tiny", "candidates": {"xpnet-estimator": {"vs_torch": 0.49}, "xpnet-train": {"vs_torch": 0.51}}}
    targets = {t["target"]: t["met"] for t in fitbench._fit_targets(result)}
    assert targets == {"xpnet-estimator/torch-loop": True, "xpnet-train/torch-loop-val": False}


def test_fit_data_has_every_class_and_the_shapes_users_hand_in():
    cfg = bench.custom_config((5, 4, 3), 7, "softmax")
    settings = fitbench.FitSettings(batches=3)
    data = fitbench.make_fit_data(cfg, settings)
    assert data.X.shape == (21, 5) and data.X.dtype.name == "float32" and data.X.flags.c_contiguous
    assert sorted(set(data.y.tolist())) == [0, 1, 2] and data.Xv.shape == (7, 5) and data.yv.shape == (7,)
    again = fitbench.make_fit_data(cfg, settings)
    assert (again.X == data.X).all() and (again.y == data.y).all()  # seeded
    binary = fitbench.make_fit_data(bench.custom_config((2, 4, 1), 8, "sigmoid"), settings)
    assert sorted(set(binary.y.tolist())) == [0, 1]


def test_candidates_that_would_build_another_network_are_skipped_with_the_reason():
    from xpnet import get_backend

    bk = get_backend("numpy")
    settings = bench.BenchSettings()
    two = bench.custom_config((4, 3, 2), 8, "softmax")
    labels = bench.custom_config((4, 3, 2), 8, "sigmoid")
    for cfg, words in ((two, "one logistic output"), (labels, "multilabel")):
        for name in ("xpnet-estimator", "sklearn"):
            assert words in fitbench.fit_skip_reason(name, cfg, settings, bk)
        assert fitbench.fit_skip_reason("xpnet-train", cfg, settings, bk) is None
    assert fitbench.fit_skip_reason("torch-loop", two, bench.BenchSettings(torch=False), bk) == "--no-torch"


# ------------------------------------------------------------------------------------------ the command
def test_fit_bench_runs_end_to_end(tmp_path, capsys):
    path = tmp_path / "fit.json"
    code, out, err = run([*QUICK_FIT, "--layers", "6,5,4", "--batch", "16", "--fit-epochs", "2", "--fit-batches",
                          "3", "--no-memory", "--json", path], capsys)
    assert code == 0, err
    assert "fit custom: 6-5-4 softmax, batch 16; 2 epochs x 3 batches (48 rows, validation 16 rows" in out
    rows = fit_rows(out)
    expected = {"xpnet-estimator", "xpnet-train", "sklearn"} | ({"torch-loop", "torch-loop-val"} if HAS_TORCH
                                                               else set())
    assert set(rows) == set(fitbench.FIT_CANDIDATES)
    for name in set(fitbench.FIT_CANDIDATES) - expected:  # without torch: skipped, with the reason
        assert rows[name][0] == "skipped:"
    assert "after one step" not in out  # a fit bench, not the step comparison

    result = load(path)
    assert {"schema", "environment", "backend", "settings", "fit", "ok", "timing_meaningful"} <= set(result)
    assert "configs" not in result and result["ok"] is True and result["settings"]["threads"] == 1
    assert result["fit"]["settings"] == {"epochs": 2, "batches": 3, "rounds": 2, "warmup": 1,
                                         "min_block_seconds": 0.0}
    (cfg,) = result["fit"]["configs"]
    assert (cfg["name"], cfg["layers"], cfg["batch"], cfg["output"]) == ("custom", [6, 5, 4], 16, "softmax")
    assert (cfg["epochs"], cfg["batches_per_epoch"], cfg["rows"], cfg["validation_rows"]) == (2, 3, 48, 16)
    for name in expected:
        e = cfg["candidates"][name]
        assert e["status"] == "ok", e
        assert len(e["times_s"]) == 2 and all(math.isfinite(t) and t > 0 for t in e["times_s"])
        assert e["seconds_per_fit"] == pytest.approx(sorted(e["times_s"])[0] / 2 + sorted(e["times_s"])[1] / 2)
        assert e["ms_per_epoch"] == pytest.approx(1e3 * e["seconds_per_fit"] / 2)
        assert e["epochs_run"] == 2  # nobody stops early: the same work for all
        assert math.isfinite(e["final_loss"]) and e["final_loss"] > 0
        assert e["validation"] is (name in ("xpnet-train", "torch-loop-val"))
        assert e["fits_per_block"] == 1 and "memory" not in e
    est, train = cfg["candidates"]["xpnet-estimator"], cfg["candidates"]["xpnet-train"]
    assert (est["peer"], train["peer"]) == ("torch-loop", "torch-loop-val")
    # The same seed, network and batches: the estimator and DNN.train learn the same thing.
    assert est["final_loss"] == pytest.approx(train["final_loss"], rel=1e-5)
    if HAS_TORCH:
        assert est["vs_torch"] > 0 and train["vs_torch"] > 0
        assert est["vs_torch"] == pytest.approx(fitbench.fit_ratios(
            {n: cfg["candidates"][n]["times_s"] for n in expected})["xpnet-estimator"]["vs_torch"])
        assert rows["xpnet-estimator"][3] == f"{est['vs_torch']:.2f}x" and rows["xpnet-estimator"][4] == "(torch-loop)"
    assert est["vs_sklearn"] > 0
    assert cfg["targets"] == [] or {t["target"] for t in cfg["targets"]} <= {"xpnet-estimator/torch-loop",
                                                                              "xpnet-train/torch-loop-val"}


def test_fit_memory_is_measured_in_fresh_processes(tmp_path, capsys):
    path = tmp_path / "fit.json"
    code, out, err = run([*QUICK_FIT, "--layers", "6,5,1", "--batch", "16", "--fit-epochs", "3", "--fit-batches", "2",
                          "--fit-rounds", "1", "--no-sklearn", "--json", path], capsys)
    assert code == 0, err
    (cfg,) = load(path)["fit"]["configs"]
    assert cfg["output"] == "sigmoid"
    for name in ("xpnet-estimator", "xpnet-train", *(("torch-loop", "torch-loop-val") if HAS_TORCH else ())):
        mem = cfg["candidates"][name]["memory"]
        assert "error" not in mem, mem
        assert mem["kind"] == "host-rss" and mem["epochs"] == 3
        assert 0 <= mem["peak_mib"] < 200 and math.isfinite(mem["growth_mib"])
    assert "memory" not in cfg["candidates"]["sklearn"]  # skipped: --no-sklearn
    assert fit_rows(out)["xpnet-train"][6] != "-"  # the peak MiB column


def test_an_estimator_that_stops_early_is_caught(monkeypatch, tmp_path, capsys):
    """Planted bug: the estimator's stopping rule is left at its default patience of one epoch without progress,
    so it may stop before the other candidates; the run must say how many epochs each ran."""
    params = fitbench._estimator_params

    def stopping_early(config, settings, fit, sklearn):
        return {**params(config, settings, fit, sklearn), "n_iter_no_change": 1, "tol": 1e9}

    monkeypatch.setattr(fitbench, "_estimator_params", stopping_early)
    path = tmp_path / "fit.json"
    code, _, err = run([*QUICK_FIT, "--layers", "4,3,3", "--batch", "8", "--fit-epochs", "4", "--fit-batches", "2",
                        "--fit-rounds", "1", "--no-memory", "--no-torch", "--json", path], capsys)
    assert code == 0, err
    (cfg,) = load(path)["fit"]["configs"]
    assert cfg["candidates"]["xpnet-estimator"]["epochs_run"] < 4
    assert cfg["candidates"]["xpnet-train"]["epochs_run"] == 4


def test_fit_and_profile_are_different_runs(capsys):
    code, _, err = run(["--fit", "--profile", "--config", "tiny", "--quick"], capsys)
    assert code == 1 and "--fit and --profile" in err


def test_fit_options_are_checked(capsys):
    with pytest.raises(SystemExit) as info:
        xpnet_main(["bench", "--fit", "--fit-epochs", "0"])
    assert info.value.code == 2
    assert "--fit-epochs: must be a whole number >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["torch:cpu", "array_api_strict"])
def test_fit_bench_on_other_backends(backend, tmp_path, capsys):
    if backend.startswith("torch") and not HAS_TORCH:
        pytest.skip("torch is not installed")
    if backend == "array_api_strict":
        pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    path = tmp_path / "fit.json"
    code, out, err = run([*QUICK_FIT, "--layers", "5,4,3", "--batch", "8", "--fit-batches", "2", "--fit-rounds", "1",
                          "--no-memory", "--no-sklearn", "--backend", backend, "--json", path], capsys)
    assert code == 0, err
    result = load(path)
    (cfg,) = result["fit"]["configs"]
    assert cfg["candidates"]["xpnet-train"]["status"] == "ok" and cfg["candidates"]["xpnet-estimator"]["status"] == "ok"
    meaningful = backend != "array_api_strict"
    assert result["timing_meaningful"] is meaningful and ("NOT meaningful" in out) is not meaningful
    assert cfg["targets"] == []  # stated for NumPy only
    if not meaningful:
        assert fit_rows(out)["xpnet-estimator"][3] == "-"  # no ratio claimed

#!/usr/bin/env bash
# scripts/gpu_check.sh - xpnet's GPU acceptance run: one command, at most 8 minutes, on a machine with a CUDA GPU.
#
#   bash scripts/gpu_check.sh            # from anywhere; results go to results/<UTC date>-<device>/ in the checkout
#   DRYRUN=1 bash scripts/gpu_check.sh   # no GPU: the same checks with CPU stand-ins (numpy, torch:cpu, jax:cpu)
#                                        # into /tmp/xpnet-gpu-check-<date>-cpu-dryrun (proves the script runs)
#
# Adapted from the session-prepared ../shared/gpu/check.sh (written for one H200, CUDA 13, python3 3.12 with
# cupy-cuda13x, torch, jax, scikit-learn, safetensors, pytest, pytest-timeout/xdist there) to the engine's
# package layout (xpnet.bench.peers, xpnet.engine, xpnet.device.auto) and the repository's results folder.
#
# What it checks, in this order (the core first), each step time-limited, every step run even when an earlier
# one failed, a summary table last:
#   env        versions, `xpnet backends`, what `auto` picks (and, per bench configuration, what it picks by size
#              and why: xpnet.device.auto), CuPy accelerators (CUB), nvidia-smi
#   firstfit   the first DNNClassifier fit on CuPy with a cold kernel cache (again at the end, new process)
#   agree      whole estimator fits (digits, Adam, dropout, L2, 10 epochs) on cupy f32 and f64 against NumPy,
#              plus DNN.fit (the lecture path)
#   io         save on the GPU, load in a process with the GPU hidden (auto -> numpy), predictions equal;
#              a CPU-trained model loaded on the GPU; a GPU-pickled estimator unpickled on the CPU (info)
#   bench      `xpnet bench --backend cupy:0` (all configs, gd) against torch CUDA, JSON kept
#   pytest     `python -m pytest -m gpu` (the cupy and torch-cuda matrix entries and tests/test_gpu.py)
#   oom        a training batch too large for the GPU: DeviceMemoryError with a batch size, memory released
#   agree      (extras) the in-place step against the generic one on CuPy; torch-cuda f32 against NumPy
#   kernels    kernels per step (CUPTI trace via torch.profiler), GPU-busy vs wall time, torch eager and a
#              captured torch CUDA graph for each bench config (gd, adam); the summary derives auto's GPU
#              constants (launches per step, host us per launch) from it
#   bench2     bench with adam; xpnet on torch:cuda:0 (step, and whole fits: in-place vs generic vs a torch loop);
#              peak-memory runs (mnist, wide); --end-to-end on the GPU
#   cupygraph  xpnet's CuPy step captured in a CUDA graph and replayed by hand (a trial); then the captured step
#              behind the step seam (XPNET_CUDA_GRAPH=1, experimental): its GPU tests and benches on CuPy (gd, adam)
#              and torch CUDA (bench_graph.json, bench_graph_adam.json, bench_graph_torch.json)
#   jax        the estimator agreement on jax:gpu:0 (float32)
#   fused      the experimental fused CuPy step (XPNET_FUSED=1): tests against the generic step, kernels per step,
#              bench against the in-place step (bench_fused.json)
#   cli        tests/test_cli.py acceptance runs through `auto` (CuPy or NumPy by problem size there)
#
# A GPU machine without network lacks array-api-compat and array-api-strict: bring them as wheels in .whl/ at
# the checkout's root (excluded from git with `echo /.whl/ >> .git/info/exclude`), downloaded elsewhere with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl array-api-compat==1.16.0 array-api-strict==2.6.1
#   (only if the machine's scikit-learn is older than 1.6, which `env` reports: add scikit-learn too)
# The summary names the steps the deadline skipped; a second, shorter run can take them:
#   DEADLINE=200 SECTIONS='kernels bench2' bash scripts/gpu_check.sh
# Commit the results folder (summary.txt, results.jsonl, bench_*.json, pytest_gpu.xml; all.log when small) and
# quote the summary in the README's GPU section (README.md, "The GPU").
#
# Knobs: DEADLINE (seconds for the whole script, default 480: steps that no longer fit are skipped and said so),
# SECTIONS (default: all, in the order above), GPU_SPEC (cupy:0), TORCH_SPEC (torch:cuda:0), JAX_SPEC
# (jax:gpu:0), PY (python3), PYTEST_WORKERS (6; 1 = no xdist), XPNET_ROOT, WHL (the wheel folder), OUT (the
# results folder), DRYRUN (1: CPU stand-ins).
# Files in $OUT: all.log, summary.txt, results.jsonl, pytest_gpu.xml, bench_gd.json, bench_adam.json,
# bench_torch.json, bench_mem.json, bench_fused.json, fit_torch_inplace.json, bench_graph*.json.

set -u -o pipefail
START=$(date +%s)
DEADLINE=${DEADLINE:-480}
PY=${PY:-python3}
DRYRUN=${DRYRUN:-0}
if [[ $DRYRUN == 1 ]]; then
  GPU_SPEC=${GPU_SPEC:-numpy}; TORCH_SPEC=${TORCH_SPEC:-torch:cpu}; JAX_SPEC=${JAX_SPEC:-jax:cpu}
  DEVICE_SLUG=cpu-dryrun
else
  GPU_SPEC=${GPU_SPEC:-cupy:0}; TORCH_SPEC=${TORCH_SPEC:-torch:cuda:0}; JAX_SPEC=${JAX_SPEC:-jax:gpu:0}
  # The device's name as a folder name: "NVIDIA H200" -> nvidia-h200.
  DEVICE_SLUG=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 \
    | tr '[:upper:]' '[:lower:]' | sed -e 's/[^a-z0-9]\{1,\}/-/g' -e 's/^-//' -e 's/-$//')
  DEVICE_SLUG=${DEVICE_SLUG:-unknown-gpu}
fi
PYTEST_WORKERS=${PYTEST_WORKERS:-6}
SECTIONS=${SECTIONS:-"env firstfit agree io bench pytest oom kernels bench2 cupygraph jax fused cli"}
CALLER_DIR=$PWD
# The checkout this script lives in (scripts/..), unless XPNET_ROOT names another.
ROOT=${XPNET_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# Results: results/<UTC date>-<device>/ in the checkout (to commit); a dry run's go to /tmp (nothing to commit).
# On a lent device machine whose runner sets $OUT (files written there come back), they go there: copy them to
# results/<date>-<device>/ afterwards.
if [[ $DRYRUN == 1 ]]; then
  OUT=${OUT:-${TMPDIR:-/tmp}/xpnet-gpu-check-$(date -u +%Y-%m-%d)-$DEVICE_SLUG}
else
  OUT=${OUT:-$ROOT/results/$(date -u +%Y-%m-%d)-$DEVICE_SLUG}
fi
WORK=${WORK:-/tmp/gpu_check.$$}
mkdir -p "$OUT" "$WORK" || { echo "cannot create $OUT or $WORK"; exit 2; }
: > "$OUT/all.log"
export GPU_CHECK_RESULTS="$OUT/results.jsonl"
: > "$GPU_CHECK_RESULTS"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # JAX would take 75% of the GPU from CuPy and torch in the same process
export CUPY_CACHE_DIR="$WORK/cupy_kernel_cache"  # cold on purpose: firstfit measures compilation
unset XPNET_BACKEND XPNET_FAST XPNET_FUSED XPNET_CUDA_GRAPH
# On the GPU machine a GPU test that skips (a library or the device missing) hides a failure: make it fail. A dry
# run on a CPU has no GPU by design.
if [[ $DRYRUN == 1 ]]; then REQUIRE_GPU=0; else REQUIRE_GPU=1; fi

SUMMARY=()
record() { SUMMARY+=("$(printf '%-16s %-7s %4ss  %s' "$1" "$2" "$3" "$4")"); }
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
left() { echo $(( DEADLINE - ($(date +%s) - START) )); }
say() { echo "$*" | tee -a "$OUT/all.log"; }

# run_step NAME LIMIT CMD...: one time-limited step. Its whole output goes to all.log, its tail to the console;
# the status comes from the exit code (0 pass, 3 skip, 124/137 timeout) or the helper's STATUS: line.
run_step() {
  local name=$1 cap=$2; shift 2
  local l; l=$(left)
  if (( l < 20 )); then record "$name" SKIP 0 "no time left (DEADLINE=${DEADLINE}s)"; return 0; fi
  if (( cap > l - 10 )); then cap=$(( l - 10 )); fi
  local log="$WORK/log.$name" t0; t0=$(date +%s)
  echo; echo "=== $name (limit ${cap}s, ${l}s left): $*"
  timeout -k 10 "$cap" "$@" > "$log" 2>&1 &
  CHILD=$!
  wait "$CHILD"
  local rc=$? dt=$(( $(date +%s) - t0 ))
  CHILD=
  { echo; echo "=== $name rc=$rc ${dt}s: $*"; cat "$log"; } >> "$OUT/all.log"
  tail -n "${TAILN:-12}" "$log" | cut -c1-400
  local st note helper
  case $rc in 0) st=PASS ;; 3) st=SKIP ;; 124|137) st=TIMEOUT ;; *) st=FAIL ;; esac
  helper=$(grep -a '^STATUS: ' "$log" | tail -n 1 | cut -c9-)
  if [[ -n "$helper" && $st != TIMEOUT ]]; then st=$helper; fi
  note=$(grep -a '^NOTE: ' "$log" | tail -n 1 | cut -c7-)
  [[ -z "$note" ]] && note=$(grep -av '^\s*$' "$log" | tail -n 1)
  [[ $st == TIMEOUT ]] && note="killed after ${cap}s; last line: $note"
  record "$name" "$st" "$dt" "$(echo "$note" | cut -c1-230)"
  return $rc
}

finish() {
  trap - EXIT TERM INT
  local total=$(( $(date +%s) - START ))
  {
    echo
    echo "================================ xpnet GPU check: summary (${total}s) ================================"
    "$PY" "$WORK/summarize.py" "$OUT" 2>&1 || echo "(summarize.py failed)"
    echo
    printf '%-16s %-7s %5s  %s\n' step status time note
    printf '%s\n' "${SUMMARY[@]}"
    echo "files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
  } > "$OUT/summary.txt" 2>&1
  cat "$OUT/summary.txt" >> "$OUT/all.log"
  cat "$OUT/summary.txt"
  rm -rf "$WORK/io"
}
trap finish EXIT
CHILD=
trap '[[ -n "$CHILD" ]] && kill -TERM "$CHILD" 2>/dev/null; say "terminated: summary of what ran"; exit 143' TERM INT

# ------------------------------------------------------------------------------------- locate xpnet
if [[ ! -f "$ROOT/src/xpnet/__init__.py" ]]; then say "xpnet's source (src/xpnet) not found under $ROOT: set XPNET_ROOT"; exit 2; fi
cd "$ROOT" || exit 2
say "xpnet at $ROOT ($(git rev-parse --short HEAD 2>/dev/null || echo 'no git')), work $WORK, out $OUT, deadline ${DEADLINE}s, gpu spec $GPU_SPEC"

# ----------------------------------------------------------------------------- wheels and PYTHONPATH
SITE="$WORK/site"
WHL=${WHL:-}
for c in "$WHL" "$CALLER_DIR/.whl" "$ROOT/.whl"; do
  if [[ -n "$c" && -d "$c" ]]; then WHL=$c; break; fi
done
if [[ -n "$WHL" && -d "$WHL" ]]; then
  wheels=()
  for w in "$WHL"/*.whl; do
    [[ -e "$w" ]] || continue
    case $(basename "$w") in scikit_learn-*) ;; *) wheels+=("$w") ;; esac
  done
  if (( ${#wheels[@]} )); then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "${wheels[@]}" >> "$OUT/all.log" 2>&1 && say "installed ${#wheels[@]} wheel(s) from $WHL into $SITE" \
      || say "WARNING: installing the wheels from $WHL failed (see all.log)"
  fi
else
  say "no wheel folder (.whl) found: array-api-compat must already be installed"
fi
export PYTHONPATH="$ROOT/src:$SITE${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import sklearn, sys; sys.exit(tuple(map(int, sklearn.__version__.split('.')[:2])) < (1, 6))" 2>/dev/null; then
  sk=$(ls "$WHL"/scikit_learn-*.whl 2>/dev/null | head -n 1)
  if [[ -n "$sk" ]]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$sk" \
      >> "$OUT/all.log" 2>&1 && say "scikit-learn < 1.6 here: installed $(basename "$sk")"
  else
    say "WARNING: scikit-learn is missing or older than 1.6 and no scikit_learn wheel was carried"
  fi
fi
if ! "$PY" -c "import array_api_compat, xpnet" >> "$OUT/all.log" 2>&1; then
  say "FATAL: 'import xpnet' fails (array-api-compat missing? see all.log); nothing else can run"
  record setup FAIL 0 "import xpnet failed"
  exit 1
fi
H="$WORK/xpnet_gpu_check.py"
cat > "$H" <<'XPNET_GPU_CHECK_PY'
"""Helper of scripts/gpu_check.sh (written out by it): one subcommand per check. Each prints what it measured and ends
with one line 'NOTE: ...'; exit 0 = pass, 1 = fail, 3 = skipped (library or device missing). Results are also
appended as JSON lines to $GPU_CHECK_RESULTS."""
from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import statistics
import sys
import time
import traceback
import warnings

import numpy as np

RESULTS = os.environ.get("GPU_CHECK_RESULTS")
SKIP = 3


def emit(section, status, note, **data):
    print(f"STATUS: {status}", flush=True)
    print(f"NOTE: {note}", flush=True)
    if RESULTS:
        with open(RESULTS, "a") as fh:
            fh.write(json.dumps({"section": section, "status": status, "note": note, **data}, default=str) + "\n")
    return {"PASS": 0, "INFO": 0, "WARN": 0, "FAIL": 1, "SKIP": SKIP}[status]


def backend_or_skip(section, spec):
    import xpnet

    try:
        return xpnet.get_backend(spec)
    except Exception as exc:  # BackendUnavailableError and anything a broken install raises
        sys.exit(emit(section, "SKIP", f"{spec} unavailable: {type(exc).__name__}: {exc}"))


def digits_split(seed=0):
    import xpnet
    from sklearn.model_selection import train_test_split

    X, y = xpnet.datasets.load_digits()
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)


def quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        est.fit(X, y)
        return time.perf_counter() - t


def relmax(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = float(np.max(np.abs(b), initial=0.0))
    err = float(np.max(np.abs(a - b), initial=0.0))
    return err / scale if scale > 0 else err


# ------------------------------------------------------------------------------------------- firstfit
def cmd_firstfit(a):
    """Time the first estimator fit in this process (kernel compilation when the cache is cold) and a second."""
    import xpnet

    backend_or_skip("firstfit", a.spec)
    Xtr, Xte, ytr, yte = digits_split()
    times = []
    for _ in range(2):
        clf = xpnet.DNNClassifier((128, 64), learning_rate_init=0.003, batch_size=64, max_iter=3, random_state=0,
                                  dtype="float32", backend=a.spec, standardize=True)
        times.append(quiet_fit(clf, Xtr, ytr))
    acc = clf.score(Xte, yte)
    cache = os.environ.get("CUPY_CACHE_DIR")
    n = sum(len(f) for _, _, f in os.walk(cache)) if cache and os.path.isdir(cache) else -1
    return emit("firstfit", "INFO", f"{a.tag}: 1st fit {times[0]:.2f}s, 2nd {times[1]:.2f}s (3 epochs digits, "
                f"{a.spec}); kernel-cache files {n}; acc {acc:.3f}", tag=a.tag, first_s=times[0], second_s=times[1],
                cache_files=n, accuracy=acc)


# ---------------------------------------------------------------------------------------------- agree
def _estimator_run(spec, dtype, epochs, fast=True):
    import xpnet

    os.environ["XPNET_FAST"] = "1" if fast else "0"
    Xtr, Xte, ytr, yte = digits_split()
    clf = xpnet.DNNClassifier((128, 64), learning_rate_init=0.003, batch_size=64, max_iter=epochs, random_state=0,
                              dtype=dtype, backend=spec, dropout=0.1, alpha=1e-4, standardize=True,
                              n_iter_no_change=10**6, tol=0.0)
    secs = quiet_fit(clf, Xtr, ytr)
    out = {"loss": np.array(clf.loss_curve_), "coefs": clf.coefs_, "inter": clf.intercepts_,
           "P": np.asarray(clf.predict_proba(Xte)), "pred": np.asarray(clf.predict(Xte)),
           "acc": float(clf.score(Xte, yte)), "secs": secs, "backend": clf.history_.backend,
           "epochs": len(clf.loss_curve_)}
    os.environ["XPNET_FAST"] = "1"
    return out


def _lecture_run(spec, dtype, iters=200):
    import xpnet

    Xtr, _, ytr, _ = digits_split()
    Xs = (Xtr - Xtr.mean(0)) / np.where(Xtr.std(0) > 0, Xtr.std(0), 1.0)
    net = xpnet.DNN([64, 32, 16, 10], hidden="relu", output="softmax", seed=3, dtype=dtype, backend=spec)
    t = time.perf_counter()
    net.fit(Xs.T, ytr, learning_rate=0.1, num_iterations=iters, record_every=10)
    return {"costs": np.array(net.costs), "params": net.get_parameters(), "secs": time.perf_counter() - t}


def _compare(ref, got):
    d = {"loss_rel": relmax(got["loss"], ref["loss"]),
         "coef_rel": max(relmax(g, r) for g, r in zip(got["coefs"] + got["inter"], ref["coefs"] + ref["inter"])),
         "proba_abs": float(np.max(np.abs(got["P"].astype(np.float64) - ref["P"].astype(np.float64)))),
         "pred_agree": float(np.mean(got["pred"] == ref["pred"])), "acc": got["acc"], "acc_ref": ref["acc"],
         "secs": got["secs"], "secs_ref": ref["secs"], "backend": got["backend"]}
    d["bitwise"] = bool(d["loss_rel"] == 0 and d["coef_rel"] == 0 and d["proba_abs"] == 0)
    return d


# Agreement bounds after a whole fit (10 epochs x 23 Adam steps, dropout, L2). Measured numpy vs torch:cpu (two CPU
# BLAS): float32 loss 1.7e-8, coefs 5.4e-7, proba 2.3e-6; float64 3.6e-16, 8.8e-15, 2.0e-14. Bounds ~100x looser.
BOUNDS = {"float64": {"loss_rel": 1e-10, "coef_rel": 1e-8, "proba_abs": 1e-9},
          "float32": {"loss_rel": 1e-4, "coef_rel": 1e-3, "proba_abs": 1e-3}}


def cmd_agree(a):
    import xpnet  # noqa: F401

    bk = backend_or_skip("agree", a.spec)
    tag = f"{a.spec} {a.dtype}"
    if a.dtype == "float64" and not bk.supports_float64:
        return emit("agree", "SKIP", f"{tag}: no float64 on this device")
    ref = _estimator_run("numpy", a.dtype, a.epochs)
    got = _estimator_run(a.spec, a.dtype, a.epochs)
    d = _compare(ref, got)
    b = BOUNDS[a.dtype]
    ok = all(d[k] <= v for k, v in b.items()) and d["pred_agree"] >= 0.99
    print(f"estimator fit {tag} vs numpy {a.dtype}: " + ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items()))
    lec_ref = _lecture_run("numpy", a.dtype)
    lec = _lecture_run(a.spec, a.dtype)
    lec_d = {"cost_rel": relmax(lec["costs"], lec_ref["costs"]),
             "param_rel": max(relmax(lec["params"][k], lec_ref["params"][k]) for k in lec_ref["params"]),
             "secs": lec["secs"], "secs_ref": lec_ref["secs"]}
    lec_ok = lec_d["cost_rel"] <= (1e-10 if a.dtype == "float64" else 1e-4)
    print(f"DNN.fit (lecture path, 200 full-batch iterations) {tag} vs numpy: " +
          ", ".join(f"{k}={v:.3g}" for k, v in lec_d.items()))
    status = "PASS" if ok and lec_ok else "FAIL"
    return emit("agree", status, f"{tag}: fit loss_rel {d['loss_rel']:.2g}, coef_rel {d['coef_rel']:.2g}, "
                f"pred_agree {d['pred_agree']:.3f}, acc {d['acc']:.3f}/{d['acc_ref']:.3f}, fit {d['secs']:.2f}s vs "
                f"numpy {d['secs_ref']:.2f}s; lecture cost_rel {lec_d['cost_rel']:.2g}", spec=a.spec,
                dtype=a.dtype, fit=d, lecture=lec_d)


def cmd_fastgeneric(a):
    """The in-place step (XPNET_FAST=1) against the generic step (XPNET_FAST=0) on the same backend: on NumPy
    they are bit-for-bit equal (tests/test_fast.py); here the same claim is checked on the device."""
    bk = backend_or_skip("fastgeneric", a.spec)
    if a.dtype == "float64" and not bk.supports_float64:
        return emit("fastgeneric", "SKIP", f"{a.spec}: no float64")
    fast = _estimator_run(a.spec, a.dtype, a.epochs, fast=True)
    gen = _estimator_run(a.spec, a.dtype, a.epochs, fast=False)
    d = _compare(gen, fast)
    # On CuPy the in-place step sums db and softmax's denominators as products with a ones vector (no CUB
    # temporary): equal to the generic sums up to rounding, so within the agreement bounds, not bitwise.
    within = all(d[k] <= v for k, v in BOUNDS[a.dtype].items())
    status = "PASS" if d["bitwise"] or within else "FAIL"
    return emit("fastgeneric", status, f"{a.spec} {a.dtype}: in-place vs generic bitwise={d['bitwise']} "
                f"(loss_rel {d['loss_rel']:.2g}, coef_rel {d['coef_rel']:.2g}); fit {fast['secs']:.2f}s in-place vs "
                f"{gen['secs']:.2f}s generic", spec=a.spec, dtype=a.dtype, cmp=d)


# ------------------------------------------------------------------------------------------------- io
def cmd_io_save(a):
    import xpnet

    bk = backend_or_skip("io", a.spec)
    os.makedirs(a.dir, exist_ok=True)
    Xtr, Xte, ytr, yte = digits_split()
    clf = xpnet.DNNClassifier((32,), max_iter=4, random_state=0, dtype="float32", backend=a.spec, standardize=True,
                              batch_size=64)
    quiet_fit(clf, Xtr, ytr)
    xpnet.save(clf, os.path.join(a.dir, "clf.safetensors"))
    net = xpnet.DNN([64, 16, 10], output="softmax", dtype="float32", backend=a.spec, seed=1)
    ckpt = os.path.join(a.dir, "run.ckpt")
    net.train(Xtr.T, ytr, epochs=3, batch_size=64, checkpoint=ckpt)
    xpnet.save(net, os.path.join(a.dir, "dnn.safetensors"))
    expected = {"P_clf": np.asarray(clf.predict_proba(Xte)), "y_clf": np.asarray(clf.predict(Xte)),
                "P_dnn": np.asarray(net.predict_proba(Xte.T)), "Xte": Xte}
    np.savez(os.path.join(a.dir, "expected.npz"), **expected)
    try:
        with open(os.path.join(a.dir, "clf.pkl"), "wb") as fh:
            pickle.dump(clf, fh)
        pickled = "pickled"
    except Exception as exc:
        pickled = f"pickle failed: {type(exc).__name__}: {exc}"
    # The reverse direction in this process: trained on NumPy, saved, loaded on the device.
    cpu = xpnet.DNNClassifier((32,), max_iter=4, random_state=0, dtype="float32", backend="numpy", standardize=True)
    quiet_fit(cpu, Xtr, ytr)
    path = os.path.join(a.dir, "cpu_clf.safetensors")
    xpnet.save(cpu, path)
    on_dev = xpnet.load(path, backend=a.spec)
    diff = float(np.max(np.abs(np.asarray(on_dev.predict_proba(Xte)) - cpu.predict_proba(Xte))))
    ok = diff <= 1e-5 and on_dev.network_.backend.spec == bk.spec
    print(f"saved clf/dnn/checkpoint trained on {bk.spec}; {pickled}; CPU-trained model loaded on "
          f"{on_dev.network_.backend.spec}: max |dP| {diff:.2g}")
    return emit("io-save", "PASS" if ok else "FAIL", f"save on {bk.spec} ok; {pickled}; CPU->device load "
                f"max|dP| {diff:.2g}", diff=diff)


def cmd_io_load(a):
    """Run with the GPU hidden (CUDA_VISIBLE_DEVICES=''): 'auto' must fall back to NumPy and the files saved on
    the device must load and predict the same."""
    import xpnet

    spec = xpnet.get_backend().spec
    exp = np.load(os.path.join(a.dir, "expected.npz"))
    Xte = exp["Xte"]
    rows, ok = [], spec == "numpy"
    rows.append(f"auto -> {spec} with the GPU hidden")
    for backend in (None, "numpy"):
        clf = xpnet.load(os.path.join(a.dir, "clf.safetensors"), backend=backend)
        d1 = float(np.max(np.abs(clf.predict_proba(Xte) - exp["P_clf"])))
        same = float(np.mean(clf.predict(Xte) == exp["y_clf"])) >= 0.995
        net = xpnet.load(os.path.join(a.dir, "dnn.safetensors"), backend=backend)
        d2 = float(np.max(np.abs(net.predict_proba(Xte.T) - exp["P_dnn"])))
        ck = xpnet.load(os.path.join(a.dir, "run.ckpt"), backend=backend)
        d3 = float(np.max(np.abs(ck.predict_proba(Xte.T) - exp["P_dnn"])))
        rows.append(f"backend={backend}: clf max|dP| {d1:.2g} labels equal {same}; dnn {d2:.2g}; checkpoint {d3:.2g}")
        ok = ok and max(d1, d2, d3) <= 1e-5 and same
    try:
        with open(os.path.join(a.dir, "clf.pkl"), "rb") as fh:
            pickle.load(fh)
        unpickle = "GPU-pickled estimator unpickles on CPU"
    except Exception as exc:
        unpickle = f"GPU-pickled estimator does NOT unpickle on CPU ({type(exc).__name__}: {str(exc)[:120]})"
    rows.append(unpickle)
    print("\n".join(rows))
    return emit("io-load", "PASS" if ok else "FAIL", "; ".join(rows[:3]) + "; " + unpickle)


# ------------------------------------------------------------------------------------------------ oom
def cmd_oom(a):
    import xpnet

    bk = backend_or_skip("oom", a.spec)
    if bk.name == "cupy":
        import cupy

        total = cupy.cuda.Device(bk.device.id).mem_info[1]
        held = lambda: cupy.get_default_memory_pool().used_bytes()  # noqa: E731
    elif bk.name == "torch" and getattr(bk.device, "type", "cpu") == "cuda":
        import torch

        total = torch.cuda.get_device_properties(bk.device).total_memory
        held = lambda: torch.cuda.memory_allocated(bk.device)  # noqa: E731
    else:
        return emit("oom", "SKIP", f"{a.spec}: not a CUDA backend")
    m = 2**20
    width = math.ceil(2 * total / (m * 4))
    net = xpnet.DNN([1, width, 1], hidden="relu", output="sigmoid", dtype="float32", backend=bk, seed=0)
    with bk.activate():
        X = bk.asarray(np.linspace(-1, 1, m).reshape(1, m), dtype="float32")
        Y = bk.asarray((np.arange(m) % 2).reshape(1, m), dtype="float32")
    before = held()
    msg, kind = "no error", None
    t = time.perf_counter()
    try:
        net.train(X, Y, epochs=1, batch_size=m, optimizer="gd", learning_rate=0.01, shuffle=False)
    except Exception as exc:
        kind, msg = type(exc).__name__, str(exc)
    secs = time.perf_counter() - t
    after = held()
    ok = kind == "DeviceMemoryError" and f"batch of {m} examples" in msg and f"batch_size={m // 2}" in msg
    leak_mib = (after - before) / 2**20
    print(f"training a batch of {m} x width {width} on {bk.spec}: {kind}: {msg[:300]} ({secs:.2f}s); "
          f"held before {before / 2**20:.1f} MiB, after {after / 2**20:.1f} MiB")
    return emit("oom", "PASS" if ok and leak_mib < 64 else "FAIL", f"{bk.spec} training OOM -> {kind}; memory "
                f"held after the error {leak_mib:+.1f} MiB", error=kind, leak_mib=leak_mib)


# -------------------------------------------------------------------------------- kernels and graphs
def _problem_and_settings(name, optimizer, spec):
    from xpnet import bench

    cfg = bench.CONFIGS[name]
    settings = bench.BenchSettings(backend=spec, optimizer=optimizer)
    return cfg, bench.make_problem(cfg, "float32", 0), settings


def _wall_per_step(step, sync, seconds=0.3, min_steps=20):
    for _ in range(3):
        step()
    sync()
    n, t0 = 0, time.perf_counter()
    while n < min_steps or time.perf_counter() - t0 < seconds:
        step()
        n += 1
        if n % 10 == 0:
            sync()
    sync()
    return (time.perf_counter() - t0) / n


def _trace_counts(step, sync, n=20):
    """Kernels, copies and GPU busy time per step from a torch.profiler (CUPTI) trace of n steps; CUPTI sees
    every kernel of the process, CuPy's included."""
    import tempfile

    import torch
    from torch.profiler import ProfilerActivity, profile

    sync()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            step()
        sync()
    path = tempfile.mktemp(suffix=".json")
    prof.export_chrome_trace(path)
    with open(path) as fh:
        trace = json.load(fh)
    os.unlink(path)
    ev = trace["traceEvents"] if isinstance(trace, dict) else trace
    kern = [e for e in ev if e.get("cat") == "kernel"]
    copies = [e for e in ev if e.get("cat") in ("gpu_memcpy", "gpu_memset")]
    launches = [e for e in ev if e.get("cat") in ("cuda_runtime", "cuda_driver") and "aunch" in e.get("name", "")]
    busy = sum(float(e.get("dur", 0)) for e in kern + copies)
    names = {}
    for e in kern:
        key = e.get("name", "?")[:60]
        names[key] = names.get(key, 0) + 1
    top = sorted(names.items(), key=lambda kv: -kv[1])[:8]
    del torch
    return {"kernels": len(kern) / n, "copies": len(copies) / n, "launch_calls": len(launches) / n,
            "gpu_busy_us": busy / n, "top": [(k, v / n) for k, v in top]}


def cmd_kernels(a):
    """Per bench configuration: kernels per xpnet step (CUPTI trace), GPU busy time, host time per step, and
    the same for PyTorch eager and a captured PyTorch CUDA graph (the launch-free floor of the same network)."""
    from xpnet import bench
    from xpnet.bench import peers

    bk = backend_or_skip("kernels", a.spec)
    try:
        import torch  # noqa: F401
    except Exception as exc:
        return emit("kernels", "SKIP", f"torch unavailable ({exc})")
    rows, data = [], {}
    for name in a.configs.split(","):
        for optimizer in a.optimizers.split(","):
            key = f"{name}/{optimizer}"
            try:
                cfg, problem, settings = _problem_and_settings(name, optimizer, a.spec)
                r = {"gemm_gflop": bench.gemm_flops(cfg.layers, cfg.batch) / 1e9}
                with bk.activate():
                    cand = peers._build_xpnet(problem, settings, bk)
                    with cand.context():
                        r["xpnet_us"] = 1e6 * _wall_per_step(cand.step, cand.sync)
                        r.update({f"x_{k}": v for k, v in _trace_counts(cand.step, cand.sync).items()})
                    try:
                        from cupyx.profiler import benchmark

                        res = benchmark(cand.step, n_repeat=100, n_warmup=5)
                        r["x_cpu_us"] = 1e6 * float(np.median(res.cpu_times))
                        r["x_gpu_us"] = 1e6 * float(np.median(res.gpu_times[0]))
                    except Exception as exc:
                        r["x_cpu_us"] = f"n/a ({type(exc).__name__})"
                tc = peers._build_torch(problem, settings, bk)
                r["torch_us"] = 1e6 * _wall_per_step(tc.step, tc.sync)
                t = _trace_counts(tc.step, tc.sync)
                r["t_kernels"], r["t_gpu_busy_us"] = t["kernels"], t["gpu_busy_us"]
                if optimizer == "gd":
                    r["torch_graph_us"] = _torch_graph_us(problem, settings, bk)
                data[key] = r
                rows.append(key)
                print(f"{key}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in r.items()), flush=True)
            except Exception as exc:
                traceback.print_exc()
                data[key] = {"error": f"{type(exc).__name__}: {exc}"}
    head = f"{'config':16s} {'kern/step':>9s} {'GPU busy us':>11s} {'xpnet us':>9s} {'torch us':>9s} " \
           f"{'t-kern':>6s} {'torch graph us':>14s}"
    print(head)
    for key, r in data.items():
        if "error" in r:
            print(f"{key:16s} error: {r['error']}")
            continue
        g = r.get("torch_graph_us")
        gs = f"{g:14.1f}" if isinstance(g, float) else f"{str(g)[:14]:>14s}"
        print(f"{key:16s} {r['x_kernels']:9.1f} {r['x_gpu_busy_us']:11.1f} {r['xpnet_us']:9.1f} {r['torch_us']:9.1f} "
              f"{r['t_kernels']:6.1f} {gs}")
    short = "; ".join(f"{k} {r['x_kernels']:.0f}k {r['x_gpu_busy_us']:.0f}/{r['xpnet_us']:.0f}us"
                      for k, r in data.items() if "error" not in r)
    bad = [k for k, r in data.items() if "error" in r]
    step = "fused" if os.environ.get("XPNET_FUSED") == "1" else "in-place"
    return emit("kernels", "INFO" if not bad else "WARN", f"{step} step: kernels/step, GPU-busy/wall us: {short}"
                + (f"; errors in {bad}" if bad else ""), data=data, step=step)


def _torch_graph_us(problem, settings, bk):
    """The PyTorch step of this problem captured once in a CUDA graph, then replayed: microseconds per step."""
    import torch

    from xpnet.bench import peers

    try:
        device = peers._torch_device_for(bk)
        model, X, target, loss_fn = peers._torch_model(problem, settings, device)
        opt = peers._torch_optimizer(model, settings)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                loss_fn(model(X), target).backward()
                opt.step()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(g):
            static_loss = loss_fn(model(X), target)
            static_loss.backward()
            opt.step()
        sync = torch.cuda.synchronize
        return 1e6 * _wall_per_step(g.replay, sync)
    except Exception as exc:
        return f"n/a ({type(exc).__name__}: {str(exc)[:80]})"


def cmd_cupygraph(a):
    """xpnet's in-place CuPy step captured in a CUDA graph (stream capture) and replayed: what removing the
    per-kernel launch cost would give. Experimental: run in its own process (a failed capture may poison it)."""
    from xpnet.bench import peers

    bk = backend_or_skip("cupygraph", a.spec)
    if bk.name != "cupy":
        return emit("cupygraph", "SKIP", f"{a.spec} is not CuPy")
    import cupy

    out = {}
    for name in a.configs.split(","):
        try:
            cfg, problem, settings = _problem_and_settings(name, "gd", a.spec)
            with bk.activate():
                cand = peers._build_xpnet(problem, settings, bk)
                eager = 1e6 * _wall_per_step(cand.step, cand.sync)
                s = cupy.cuda.Stream(non_blocking=True)
                with s:
                    for _ in range(5):  # the pool caches this stream's blocks: no cudaMalloc during capture
                        cand.step()
                    s.synchronize()
                    s.begin_capture()
                    try:
                        cand.step()
                    finally:
                        graph = s.end_capture()
                    replay = 1e6 * _wall_per_step(lambda: graph.launch(s), s.synchronize)
            out[name] = {"eager_us": eager, "graph_us": replay, "speedup": eager / replay}
            print(f"{name}: eager {eager:.1f} us/step, CuPy graph replay {replay:.1f} us/step "
                  f"({eager / replay:.1f}x)", flush=True)
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            print(f"{name}: capture failed: {out[name]['error']}", flush=True)
    short = "; ".join(f"{k} {v['eager_us']:.0f}->{v['graph_us']:.0f}us" if "error" not in v else f"{k} failed"
                      for k, v in out.items())
    return emit("cupygraph", "INFO", f"xpnet step eager -> CUDA-graph replay: {short}", data=out)


# ------------------------------------------------------------------------------------------------ env
def cmd_env(a):
    import importlib

    rows = [f"python {sys.version.split()[0]} at {sys.executable}"]
    for mod in ("numpy", "array_api_compat", "array_api_strict", "cupy", "torch", "jax", "sklearn", "safetensors",
                "scipy", "threadpoolctl", "tqdm", "hypothesis", "pytest"):
        try:
            m = importlib.import_module(mod)
            rows.append(f"{mod} {getattr(m, '__version__', '?')}")
        except Exception as exc:
            rows.append(f"{mod} MISSING ({type(exc).__name__})")
    print("\n".join(rows))
    import xpnet

    print(xpnet.format_backends_report())
    try:
        import cupy

        print(f"cupy accelerators: routine {cupy._core._accelerator.get_routine_accelerators()}, reduction "
              f"{cupy._core._accelerator.get_reduction_accelerators()}; CUPY_TF32={os.environ.get('CUPY_TF32')}")
        try:
            hash(cupy.cuda.Device(0))
            hashable = "hashable"
        except TypeError:
            hashable = "NOT hashable"
        print(f"cupy.cuda.Device is {hashable}")
    except Exception as exc:
        print(f"cupy: {type(exc).__name__}: {exc}")
    try:
        import torch

        print(f"torch cuda {torch.version.cuda}, available {torch.cuda.is_available()}, tf32 matmul "
              f"{torch.backends.cuda.matmul.allow_tf32}")
    except Exception as exc:
        print(f"torch: {exc}")
    sk = importlib.import_module("sklearn").__version__
    ok = tuple(int(x) for x in sk.split(".")[:2]) >= (1, 6)
    auto = xpnet.get_backend("auto").spec
    from xpnet.bench import CONFIGS
    from xpnet.device import auto as auto_rule

    for cfg in CONFIGS.values():  # what auto picks for each bench configuration, and why
        print(f"{cfg.name}: {auto_rule.choose(cfg.layers, cfg.batch)[1]}")
    return emit("env", "PASS" if ok else "FAIL", f"auto -> {auto}; sklearn {sk}{'' if ok else ' (< 1.6: xpnet needs it)'}",
                auto=auto, versions=rows)


def main(argv=None):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("env", "firstfit", "agree", "fastgeneric", "io-save", "io-load", "oom", "kernels", "cupygraph"):
        s = sub.add_parser(name)
        s.add_argument("--spec", default="cupy:0")
        s.add_argument("--dtype", default="float32")
        s.add_argument("--epochs", type=int, default=10)
        s.add_argument("--dir", default="/tmp/gpu_check_io")
        s.add_argument("--tag", default="")
        s.add_argument("--configs", default="mnist,mnist-1024,wide,lecture,tiny")
        s.add_argument("--optimizers", default="gd,adam")
    a = p.parse_args(argv)
    fn = globals()["cmd_" + a.cmd.replace("-", "_")]
    try:
        return fn(a)
    except SystemExit:
        raise
    except Exception as exc:
        traceback.print_exc()
        return emit(a.cmd, "FAIL", f"{a.cmd} crashed: {type(exc).__name__}: {str(exc)[:300]}")


if __name__ == "__main__":
    sys.exit(main())
XPNET_GPU_CHECK_PY
cat > "$WORK/summarize.py" <<'XPNET_GPU_CHECK_SUMMARY'
"""Summary of scripts/gpu_check.sh's results (written out by it): pytest counts, bench tables, kernels per step."""
import json
import os
import sys
import xml.etree.ElementTree as ET

out = sys.argv[1]


def fmt(x, spec=".3f"):
    return "-" if x is None else (format(x, spec) if isinstance(x, (int, float)) else str(x))


path = os.path.join(out, "pytest_gpu.xml")
if os.path.exists(path):
    try:
        root = ET.parse(path).getroot()
        fam, fails = {}, []
        for tc in root.iter("testcase"):
            name = tc.get("name", "")
            kind = "cupy" if "cupy" in name else "torch-cuda" if ("torch-cuda" in name or "[torch]" in name) \
                else "other"
            st = "passed"
            for child in tc:
                if child.tag in ("failure", "error"):
                    st = "failed"
                    msg = (child.get("message") or child.text or "").strip().splitlines()
                    fails.append(f"{tc.get('classname', '')}::{name}: {msg[0][:160] if msg else ''}")
                elif child.tag == "skipped":
                    st = "skipped"
            fam.setdefault(kind, {"passed": 0, "failed": 0, "skipped": 0})[st] += 1
        if not fam.get("cupy", {}).get("passed"):
            print("WARNING: no cupy test passed: CuPy did not run at all (see env and all.log)")
        print("pytest -m gpu: " + "; ".join(f"{k}: {v['passed']} passed, {v['failed']} failed, {v['skipped']} skipped"
                                            for k, v in sorted(fam.items())))
        for f in fails[:15]:
            print(f"  FAILED {f}")
        if len(fails) > 15:
            print(f"  ... {len(fails) - 15} more failures (all.log)")
    except Exception as exc:
        print(f"pytest_gpu.xml unreadable: {exc}")
else:
    print("pytest -m gpu: no junit file (did not run or was killed)")

for tag in ("gd", "adam", "torch", "mem", "fused", "graph", "graph_adam", "graph_torch"):
    path = os.path.join(out, f"bench_{tag}.json")
    if not os.path.exists(path):
        continue
    try:
        d = json.load(open(path))
    except Exception as exc:
        print(f"bench_{tag}.json unreadable: {exc}")
        continue
    gpu = d.get("environment", {}).get("gpu", "?")
    steps = sorted({(c.get("candidates", {}).get("xpnet") or {}).get("step", "?") for c in d.get("configs", [])})
    print(f"\nxpnet bench --backend {d.get('backend')} ({tag}, {gpu}; xpnet ran {', '.join(steps)}), ms per step:")
    print(f"  {'config':11s} {'xpnet':>8s} {'torch':>8s} {'x/torch':>7s} {'gemm':>8s} {'GEMMfrac':>8s} {'check':>5s}"
          f" {'peakMiB x/t':>12s}")
    for c in d.get("configs", []):
        cand = c.get("candidates", {})
        x, t, g = cand.get("xpnet", {}), cand.get("torch", {}), cand.get("gemm", {})
        r = c.get("ratios", {})
        mx, mt = (x.get("memory") or {}).get("peak_mib"), (t.get("memory") or {}).get("peak_mib")
        mem = f"{fmt(mx, '.1f')}/{fmt(mt, '.1f')}" if (mx is not None or mt is not None) else "-"
        print(f"  {c['name']:11s} {fmt(x.get('ms_per_step'), '.4f'):>8s} {fmt(t.get('ms_per_step'), '.4f'):>8s} "
              f"{fmt(r.get('xpnet_over_torch'), '.2f'):>7s} {fmt(g.get('ms_per_step'), '.4f'):>8s} "
              f"{fmt(r.get('gemm_fraction_of_xpnet'), '.0%'):>8s} "
              f"{'ok' if c.get('correctness', {}).get('ok') else 'FAIL':>5s} {mem:>12s}")

rows = []
path = os.path.join(out, "results.jsonl")
if os.path.exists(path):
    for line in open(path):
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
for r in rows:
    if r.get("section") == "kernels" and r.get("data"):
        print(f"\nkernels per xpnet CuPy step ({r.get('step', 'in-place')} step; CUPTI), GPU busy vs wall time, against "
              "torch eager and a torch CUDA graph (us):")
        print(f"  {'config/opt':16s} {'kern':>5s} {'copies':>6s} {'GPUbusy':>8s} {'xpnet':>8s} {'us/kern':>7s} "
              f"{'torch':>8s} {'t-kern':>6s} {'t-graph':>8s} {'GFLOP':>7s}")
        for k, v in r["data"].items():
            if "error" in v:
                print(f"  {k:16s} error: {v['error'][:100]}")
                continue
            per = v["xpnet_us"] / v["x_kernels"] if v.get("x_kernels") else None
            print(f"  {k:16s} {fmt(v.get('x_kernels'), '.1f'):>5s} {fmt(v.get('x_copies'), '.1f'):>6s} "
                  f"{fmt(v.get('x_gpu_busy_us'), '.1f'):>8s} {fmt(v.get('xpnet_us'), '.1f'):>8s} {fmt(per, '.2f'):>7s} "
                  f"{fmt(v.get('torch_us'), '.1f'):>8s} {fmt(v.get('t_kernels'), '.1f'):>6s} "
                  f"{fmt(v.get('torch_graph_us'), '.1f')[:8]:>8s} {fmt(v.get('gemm_gflop'), '.3f'):>7s}")
        # xpnet.device.auto's provisional GPU constants, measured: launches per gd step and host time per launch
        # on the launch-bound configurations (GPU busy far below the wall time).
        gd = {k.split("/")[0]: v for k, v in r["data"].items() if k.endswith("/gd") and "error" not in v}
        if gd and r.get("step", "in-place") == "in-place":
            print("\nauto's GPU constants from this run (xpnet.device.auto: GPU_LAUNCHES_BASE + GPU_LAUNCHES_PER_LAYER L,"
                  " GPU_LAUNCH_S):")
            for k, v in gd.items():
                per = v["xpnet_us"] / v["x_kernels"] if v.get("x_kernels") else None
                print(f"  {k:11s} kernels/gd step {fmt(v.get('x_kernels'), '.1f')}, wall us/step {fmt(v.get('xpnet_us'), '.1f')}, "
                      f"GPU busy us {fmt(v.get('x_gpu_busy_us'), '.1f')}, wall us per kernel {fmt(per, '.2f')}")
    if r.get("section") == "cupygraph" and r.get("data"):
        print("\nxpnet CuPy step, eager vs CUDA-graph replay (us/step): " + "; ".join(
            f"{k} {v['eager_us']:.0f} -> {v['graph_us']:.0f}" if "error" not in v else f"{k}: {v['error'][:60]}"
            for k, v in r["data"].items()))
XPNET_GPU_CHECK_SUMMARY

# ------------------------------------------------------------------------------------------- steps
# The brief's core checks first (env, agree, io, bench, pytest), then the extras; a step that no longer fits
# before DEADLINE is skipped and listed, so a second run can take it: SECTIONS='kernels bench2' bash gpu_check.sh
TIMEOUT_FLAG=""
"$PY" -c "import pytest_timeout" 2>/dev/null && TIMEOUT_FLAG="--timeout=120"
XDIST_FLAG=""
if (( PYTEST_WORKERS > 1 )) && "$PY" -c "import xdist" 2>/dev/null; then XDIST_FLAG="-n $PYTEST_WORKERS --dist loadfile"; fi

if want env; then
  [[ $DRYRUN == 1 ]] && say "DRYRUN: CPU stand-ins ($GPU_SPEC, $TORCH_SPEC, $JAX_SPEC); nothing here measures a GPU"
  { nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm --format=csv 2>&1 || true
    "$PY" -c "import cupy; cupy.show_config()" 2>&1 | head -n 40 || true; } >> "$OUT/all.log"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -n 2
  run_step env 90 "$PY" "$H" env
fi

if want firstfit; then  # also compiles the kernels the next steps need (CUPY_CACHE_DIR starts empty)
  run_step firstfit-cold 120 "$PY" "$H" firstfit --spec "$GPU_SPEC" --tag cold-kernel-cache
fi

if want agree; then
  run_step agree-cupy-f32 90 "$PY" "$H" agree --spec "$GPU_SPEC" --dtype float32
  run_step agree-cupy-f64 90 "$PY" "$H" agree --spec "$GPU_SPEC" --dtype float64
fi

if want io; then
  if run_step io-save 90 "$PY" "$H" io-save --spec "$GPU_SPEC" --dir "$WORK/io"; then
    run_step io-load-cpu 60 env CUDA_VISIBLE_DEVICES= "$PY" "$H" io-load --dir "$WORK/io"
  else
    record io-load-cpu SKIP 0 "io-save failed"
  fi
fi

if want bench; then
  run_step bench-gd 120 "$PY" -m xpnet bench --backend "$GPU_SPEC" --no-memory --rounds 5 --json "$OUT/bench_gd.json"
fi

if want pytest; then
  # shellcheck disable=SC2086
  TAILN=25 run_step pytest-gpu 200 env XPNET_REQUIRE_GPU=$REQUIRE_GPU "$PY" -m pytest -m gpu -q -p no:cacheprovider -rfE --maxfail=60 \
    $TIMEOUT_FLAG $XDIST_FLAG --junitxml="$OUT/pytest_gpu.xml" -o junit_family=xunit1 --durations=10
fi

# ------------------------------------------------------------------------------------------ extras
if want oom; then
  run_step oom-cupy 60 "$PY" "$H" oom --spec "$GPU_SPEC"
  run_step oom-torch 60 "$PY" "$H" oom --spec "$TORCH_SPEC"
fi

if want agree; then
  run_step fast-vs-generic 90 "$PY" "$H" fastgeneric --spec "$GPU_SPEC" --dtype float32
  run_step agree-torch-f32 90 "$PY" "$H" agree --spec "$TORCH_SPEC" --dtype float32
fi

if want kernels; then
  TAILN=16 run_step kernels 150 "$PY" "$H" kernels --spec "$GPU_SPEC" --configs mnist,mnist-1024,wide,lecture,tiny \
    --optimizers gd,adam
fi

if want bench2; then
  run_step bench-adam 100 "$PY" -m xpnet bench --backend "$GPU_SPEC" --optimizer adam --no-memory --rounds 5 \
    --json "$OUT/bench_adam.json"
fi

if want cupygraph; then
  run_step cupygraph 90 "$PY" "$H" cupygraph --spec "$GPU_SPEC" --configs tiny,mnist,mnist-1024,lecture,wide
  # The captured step (xpnet/engine/steps/graph.py, XPNET_CUDA_GRAPH=1, off by default): replays against the eager
  # in-place step bit for bit on CuPy and torch CUDA, then the step bench with it (bench_graph*.json)
  TAILN=16 run_step graph-tests 120 env XPNET_CUDA_GRAPH=1 XPNET_REQUIRE_GPU=$REQUIRE_GPU "$PY" -m pytest -m gpu -q -p no:cacheprovider -rfE \
    $TIMEOUT_FLAG tests/test_graph_step.py
  run_step bench-graph 100 env XPNET_CUDA_GRAPH=1 "$PY" -m xpnet bench --backend "$GPU_SPEC" \
    --config mnist,mnist-1024,lecture,tiny --no-memory --rounds 5 --json "$OUT/bench_graph.json"
  run_step bench-graph-adam 100 env XPNET_CUDA_GRAPH=1 "$PY" -m xpnet bench --backend "$GPU_SPEC" --optimizer adam \
    --config mnist,mnist-1024,lecture,tiny --no-memory --rounds 5 --json "$OUT/bench_graph_adam.json"
  run_step bench-graph-torch 100 env XPNET_CUDA_GRAPH=1 "$PY" -m xpnet bench --backend "$TORCH_SPEC" \
    --config mnist,tiny --no-memory --rounds 5 --json "$OUT/bench_graph_torch.json"
fi

if want firstfit; then
  run_step firstfit-warm 60 "$PY" "$H" firstfit --spec "$GPU_SPEC" --tag new-process-disk-cache
fi

if want bench2; then
  # xpnet's in-place step on torch CUDA (torch's out= operations, xpnet/engine/steps/torch_ops.py) against torch
  # eager; then whole estimator fits on torch CUDA: in-place vs generic (XPNET_FAST=0) vs a plain torch loop
  run_step bench-torchbk 90 "$PY" -m xpnet bench --backend "$TORCH_SPEC" --config mnist,wide,tiny --no-memory \
    --rounds 3 --json "$OUT/bench_torch.json"
  run_step fit-torch-inplace 90 "$PY" "$ROOT/benchmarks/torch_inplace.py" --backend "$TORCH_SPEC" \
    --configs tiny,mnist,mnist-1024 --rounds 3 --json "$OUT/fit_torch_inplace.json"
fi

if want jax; then
  run_step agree-jax-f32 120 "$PY" "$H" agree --spec "$JAX_SPEC" --dtype float32
fi

if want bench2; then
  run_step bench-memory 120 "$PY" -m xpnet bench --backend "$GPU_SPEC" --config mnist,wide --rounds 3 \
    --json "$OUT/bench_mem.json"
  run_step bench-e2e 120 "$PY" -m xpnet bench --backend "$GPU_SPEC" --end-to-end --epochs 30
fi

if want fused; then
  # The experimental fused CuPy step (xpnet/engine/steps/fused.py, off by default): proven against the generic
  # step first, then its kernels per step and its speed against the in-place step's (bench_fused.json).
  TAILN=16 run_step fused-tests 120 env XPNET_FUSED=1 "$PY" -m pytest -m gpu -q -p no:cacheprovider -rfE \
    $TIMEOUT_FLAG tests/test_gpu.py -k fused
  TAILN=16 run_step kernels-fused 120 env XPNET_FUSED=1 "$PY" "$H" kernels --spec "$GPU_SPEC" \
    --configs mnist,mnist-1024,lecture,tiny --optimizers gd,adam
  run_step bench-fused 100 env XPNET_FUSED=1 "$PY" -m xpnet bench --backend "$GPU_SPEC" --config mnist,mnist-1024,lecture,tiny \
    --no-memory --rounds 5 --json "$OUT/bench_fused.json"
fi

if want cli; then
  # `xpnet train` with no --backend takes auto (by problem size, xpnet.device.auto): the README's first command on
  # a GPU machine.
  # shellcheck disable=SC2086
  run_step pytest-cli-auto 150 "$PY" -m pytest -q -p no:cacheprovider -rfE $TIMEOUT_FLAG tests/test_cli.py \
    -k "acceptance or seed_makes_runs_repeatable or evaluate_test_split or out_writes_a_model"
fi
exit 0

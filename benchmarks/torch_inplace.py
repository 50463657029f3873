"""Whole fits on the torch backend: xpnet's in-place step against its generic step and a plain PyTorch loop.

The in-place step runs on torch tensors through torch's ``out=`` operations (``xpnet.engine.steps.torch_ops``);
``XPNET_FAST=0`` turns it off. This script times, in one run with interleaved rounds, three candidates per
configuration and optimizer, each a whole fit as ``xpnet bench --fit`` defines it (``xpnet.bench.fit``: the
estimator's ``fit(X, y)`` from nothing, E epochs over 8 batches, no validation):

* ``in-place``: ``DNNClassifier``/``DNNRegressor(backend=...)``, the default (the in-place step);
* ``generic``: the same with ``XPNET_FAST=0`` (the Array API step, new arrays for every result);
* ``torch-loop``: the bench's plain PyTorch loop doing the same work (its ``torch-loop`` candidate).

Medians over rounds; ratios are medians of per-round ratios. One BLAS/torch thread by default (``--threads 0``
leaves the pools as found: on a shared machine multi-threaded pools make the ratios meaningless); a warning says
when other processes kept the CPUs busy. Run (OpenBLAS tuning variables unset, as the numbers in the README were
taken)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/torch_inplace.py --threads 1

``--backend torch:cuda:0`` runs the same on a GPU. ``--json PATH`` writes every number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import warnings
from typing import Any

from xpnet.bench.configs import CONFIGS, BenchSettings
from xpnet.bench.environment import _busy_warning, _thread_limits, environment_info, note_busy_at_end
from xpnet.bench.fit import FitSettings, _fit_block, _fits_per_block, build_fit_candidate, make_fit_data
from xpnet.bench.timing import _median_ratio
from xpnet.device import get_backend


def _with_fast(flag: str, fit: Any) -> Any:
    """``fit`` run with ``XPNET_FAST`` set to ``flag`` (read when a trainer takes its first step)."""

    def run() -> Any:
        before = os.environ.get("XPNET_FAST")
        os.environ["XPNET_FAST"] = flag
        try:
            return fit()
        finally:
            if before is None:
                os.environ.pop("XPNET_FAST", None)
            else:
                os.environ["XPNET_FAST"] = before

    return run


def bench(config_name: str, optimizer: str, args: argparse.Namespace) -> dict[str, Any]:
    """One configuration and optimizer: seconds per fit of each candidate (medians) and the ratios."""
    settings = BenchSettings(backend=args.backend, optimizer=optimizer, threads=args.threads, memory=False,
                             sklearn=False)
    fit = FitSettings(epochs=args.epochs, rounds=args.rounds)
    bk = get_backend(args.backend)
    data = make_fit_data(CONFIGS[config_name], fit, settings.dtype, settings.seed)
    est = build_fit_candidate("xpnet-estimator", data, settings, fit, bk)
    cands = {"in-place": _with_fast("1", est.fit), "generic": _with_fast("0", est.fit),
             "torch-loop": build_fit_candidate("torch-loop", data, settings, fit, bk).fit}
    blocks = {}
    for name, run in cands.items():
        blocks[name] = _fits_per_block(type(est)(name, "x", run), fit.warmup, fit.min_block_seconds)[0]
    times: dict[str, list[float]] = {name: [] for name in cands}
    losses: dict[str, float] = {}
    for _ in range(fit.rounds):
        for name, run in cands.items():
            seconds, summary = _fit_block(type(est)(name, "x", run), blocks[name])
            times[name].append(seconds)
            losses[name] = summary["final_loss"]
    out = {"config": config_name, "optimizer": optimizer, "epochs": fit.epochs, "rows": int(data.X.shape[0]),
           "ms_per_fit": {n: 1e3 * statistics.median(t) for n, t in times.items()},
           "in_place_vs_generic": _median_ratio(times["in-place"], times["generic"]),
           "in_place_vs_torch": _median_ratio(times["in-place"], times["torch-loop"]),
           "generic_vs_torch": _median_ratio(times["generic"], times["torch-loop"]),
           "final_loss": losses, "times_s": times}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="torch:cpu")
    parser.add_argument("--configs", default="tiny,mnist,mnist-1024,lecture")
    parser.add_argument("--optimizers", default="gd,adam")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS and torch threads (default 1: multi-threaded pools on a shared machine make the "
                             "ratios meaningless; 0 leaves them as found)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # the estimators' ConvergenceWarning after a few epochs
    with _thread_limits(args.threads or None, want_torch=True, want_sklearn=False):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    env = environment_info(BenchSettings(backend=args.backend, threads=args.threads), get_backend(args.backend))
    print(f"torch backend {args.backend}; {env.get('cpu', '')}; threads {args.threads or 'as found'}; "
          f"{args.rounds} interleaved rounds, medians; whole estimator fits of {args.epochs} epochs x 8 batches")
    busy = _busy_warning(env.get("cpus_busy_before"), env.get("cpus", 1))
    if busy:
        print(busy)
    print(f"{'config':<11s} {'opt':<5s} {'in-place ms':>11s} {'generic ms':>10s} {'torch ms':>9s} "
          f"{'in-place/generic':>16s} {'in-place/torch':>14s} {'generic/torch':>13s}")
    results = []
    for name in args.configs.split(","):
        for opt in args.optimizers.split(","):
            r = bench(name, opt, args)
            results.append(r)
            ms = r["ms_per_fit"]
            print(f"{name:<11s} {opt:<5s} {ms['in-place']:11.1f} {ms['generic']:10.1f} {ms['torch-loop']:9.1f} "
                  f"{r['in_place_vs_generic']:15.2f}x {r['in_place_vs_torch']:13.2f}x {r['generic_vs_torch']:12.2f}x",
                  flush=True)
    note_busy_at_end(env, env.get("cpus", 1), print)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "results": results}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())

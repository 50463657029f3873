"""``xpnet bench``: the runs behind the command.

* :func:`run_bench`: the step comparison over the chosen configurations, printed as it goes;
* :func:`end_to_end`: ``--end-to-end``, ``xpnet train``'s network on digits against ``MLPClassifier``;
* :func:`run_command`: the command with parsed arguments (step comparison, ``--profile``, ``--fit``,
  ``--end-to-end``, ``--json``); :func:`add_fit_arguments` adds the ``--fit`` options to a parser;
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ..errors import ConfigError, XpnetError
from .configs import ADAM, CONFIGS, SCHEMA_VERSION, SWITCH_PAUSE_S, BenchConfig, BenchSettings, custom_config
from .environment import (
    _effective_threads,
    _thread_limits,
    environment_info,
    note_busy_at_end,
)
from .fit import FitSettings, run_fit_bench
from .peers import skip_reason
from .profiling import run_profile
from .report import _targets, format_config_report, format_end_to_end, format_header
from .timing import _median_ratio, run_config


# ------------------------------------------------------------------------------------------ the run
def run_bench(configs: Sequence[BenchConfig], settings: BenchSettings, *, emit: Callable[[str], None] = print,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every configuration; ``emit`` gets the header and each table as soon as it is ready. Returns the
    whole result (JSON-able): ``environment``, ``settings``, ``configs`` (one :func:`run_config` dict each, with
    ``targets``), ``ok`` (every correctness check passed)."""
    from ..device import get_backend

    bk = get_backend(settings.backend)
    meaningful = bk.name != "array_api_strict"
    # Load the libraries the candidates use now, so the header reports their thread pools.
    for name in ("torch", "sklearn"):
        skip_reason(name, settings, bk)
    env = environment_info(settings, bk)
    emit(format_header(env, settings, bk))
    if not meaningful:
        emit("array_api_strict is the Array API's reference implementation, built for checking, not speed: the "
             "times below are NOT meaningful (no ratio is claimed); the correctness check is the point.")
    # The targets are stated for NumPy on the CPU in float32.
    show_targets = bk.name == "numpy" and settings.dtype == "float32"
    out: dict[str, Any] = {"schema": SCHEMA_VERSION, "environment": env, "backend": bk.spec,
                           "settings": {**{k: getattr(settings, k) for k in settings.__dataclass_fields__},
                                        "lr": settings.lr}, "timing_meaningful": meaningful, "configs": []}
    for cfg in configs:
        res = run_config(cfg, settings, bk, progress=progress)
        res["targets"] = _targets(res) if show_targets else []
        if not meaningful:
            for e in res["candidates"].values():
                e.pop("torch_ratio", None)
            res["ratios"] = dict.fromkeys(res["ratios"])
        out["configs"].append(res)
        emit("")
        emit(format_config_report(res, meaningful=meaningful, targets=show_targets))
    out["ok"] = all(c["correctness"]["ok"] for c in out["configs"])
    note_busy_at_end(out, env["cpus"], emit)
    return out


def end_to_end(settings: BenchSettings, *, epochs: int = 30, repeats: int = 3,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``xpnet train``'s default network on digits against scikit-learn's ``MLPClassifier``, same everything.

    Both train a 64-128-64-10 ReLU network with Adam (lr 0.003, betas 0.9/0.999, eps 1e-8), batch 64, no
    L2 (``alpha=0``), shuffling every epoch, for exactly ``epochs`` epochs (no early stopping), on the same
    standardized training split (80%, ``xpnet train``'s test split and seed; mean and standard deviation
    learned on it) in ``settings.dtype``; scored on the same test split. The runs are interleaved ``repeats``
    times; the median wall time of ``fit`` and the test accuracy are reported for each.
    """
    import warnings

    from sklearn.neural_network import MLPClassifier

    from .. import datasets
    from ..estimators import DNNClassifier

    say = progress or (lambda text: None)
    seed = settings.seed
    ds = datasets.load("digits", seed=seed)
    X_train, X_test, y_train, y_test = datasets.train_test_split(ds.X, ds.y, test_size=0.2, seed=seed)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std <= 1e-12] = 1.0  # constant pixels: left as they are (as xpnet's standardize does)
    X_train = ((X_train - mean) / std).astype(settings.dtype)
    X_test = ((X_test - mean) / std).astype(settings.dtype)
    common = {"hidden_layer_sizes": (128, 64), "activation": "relu", "solver": "adam", "learning_rate_init": 0.003,
              "batch_size": 64, "max_iter": epochs, "alpha": 0.0, "shuffle": True, "random_state": seed,
              "tol": 0.0, "n_iter_no_change": epochs + 1, "early_stopping": False,
              "beta_1": ADAM["beta1"], "beta_2": ADAM["beta2"], "epsilon": ADAM["epsilon"]}

    def fit_xpnet() -> tuple[float, float, int]:
        est = DNNClassifier(**common, backend=settings.backend, dtype=settings.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "max_iter reached": asked for, as for scikit-learn
            start = time.perf_counter()
            est.fit(X_train, y_train)
            seconds = time.perf_counter() - start
        return seconds, float(est.score(X_test, y_test)), len(est.history_)

    def fit_sklearn() -> tuple[float, float, int]:
        est = MLPClassifier(**common)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            est.fit(X_train, y_train)
            seconds = time.perf_counter() - start
        return seconds, float(est.score(X_test, y_test)), int(est.n_iter_)

    runs: dict[str, list[tuple[float, float, int]]] = {"xpnet": [], "sklearn": []}
    pause = _effective_threads() > 1
    for r in range(repeats):
        for name, fit in (("xpnet", fit_xpnet), ("sklearn", fit_sklearn)):
            say(f"end-to-end: {name}, run {r + 1}/{repeats}")
            if pause:
                time.sleep(SWITCH_PAUSE_S)
            runs[name].append(fit())
    out: dict[str, Any] = {"dataset": "digits", "n_train": len(y_train), "n_test": len(y_test),
                           "network": "64-128-64-10 relu -> softmax", "optimizer": "adam", "learning_rate": 0.003,
                           "batch_size": 64, "epochs": epochs, "dtype": settings.dtype, "backend": settings.backend,
                           "repeats": repeats, "results": {}}
    for name, rs in runs.items():
        secs = [x[0] for x in rs]
        out["results"][name] = {"seconds": statistics.median(secs), "seconds_all": secs,
                                "accuracy": statistics.median(x[1] for x in rs), "accuracy_all": [x[1] for x in rs],
                                "epochs_run": [x[2] for x in rs]}
    out["time_ratio_xpnet_over_sklearn"] = _median_ratio([x[0] for x in runs["xpnet"]], [x[0] for x in runs["sklearn"]])
    return out




def _progress_printer() -> Callable[[str], None] | None:
    # Progress goes to a terminal only: a log file or a test gets the tables alone.
    if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None

    def show(text: str) -> None:
        sys.stderr.write("\r\033[K" + text)
        sys.stderr.flush()

    return show


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None: strict JSON (a failed check's ``inf``
    difference, a ratio without a denominator) that any parser reads."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--fit``, ``--fit-epochs``, ``--fit-batches`` and ``--fit-rounds`` to the ``bench`` parser (the
    command's parser calls this)."""

    def positive(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
        return value

    default = FitSettings()
    parser.add_argument("--fit", action="store_true",
                        help="instead of single steps, time whole fits (DNNClassifier.fit and DNN.train with "
                             "shuffling, metrics and validation) against a plain PyTorch loop doing the same work "
                             "and MLPClassifier.fit (see xpnet.bench.fit)")
    parser.add_argument("--fit-epochs", type=positive, default=None, metavar="E",
                        help=f"epochs of each --fit (default {default.epochs})")
    parser.add_argument("--fit-batches", type=positive, default=None, metavar="N",
                        help=f"batches per epoch of --fit: N x batch rows of data (default {default.batches})")
    parser.add_argument("--fit-rounds", type=positive, default=None, metavar="R",
                        help=f"timed rounds of --fit (default {default.rounds}; 2 with --quick)")


def _fit_settings(args: Any) -> FitSettings | None:
    """The ``--fit`` run's shape from the arguments, or None without ``--fit``."""
    if not getattr(args, "fit", False):
        return None
    fit = FitSettings.quick() if args.quick else FitSettings()
    changes = {key: value for key, value in (("epochs", getattr(args, "fit_epochs", None)),
                                             ("batches", getattr(args, "fit_batches", None)),
                                             ("rounds", getattr(args, "fit_rounds", None))) if value is not None}
    return replace(fit, **changes)


def run_command(args: Any) -> int:
    """``xpnet bench`` with parsed arguments (see :func:`xpnet.cli.build_parser`); returns the exit code:
    0, or 1 when a correctness check failed."""
    settings = BenchSettings.quick() if args.quick else BenchSettings()
    changes: dict[str, Any] = {"backend": args.backend, "dtype": args.dtype, "optimizer": args.optimizer,
                               "learning_rate": args.lr, "threads": args.threads, "torch": not args.no_torch,
                               "sklearn": not args.no_sklearn, "memory": not args.no_memory, "seed": args.seed}
    for key, value in (("rounds", args.rounds), ("warmup", args.warmup), ("min_block_seconds", args.min_block_seconds)):
        if value is not None:
            changes[key] = value
    settings = replace(settings, **changes)
    configs: list[BenchConfig] = []
    if args.layers is not None:
        configs.append(custom_config(args.layers, 128 if args.batch is None else args.batch, args.output))
    elif args.batch is not None or args.output is not None:
        raise ConfigError("--batch and --output describe a custom network: give --layers too")
    names = args.config
    if names is None and not configs and not args.end_to_end:
        names = tuple(CONFIGS)
    configs = [CONFIGS[n] for n in names or ()] + configs
    progress = _progress_printer()

    def emit(text: str) -> None:
        if progress:
            sys.stderr.write("\r\033[K")
        print(text, flush=True)

    result: dict[str, Any] = {}
    profile = bool(getattr(args, "profile", False))
    fit = _fit_settings(args)
    if profile and fit is not None:
        raise ConfigError("--fit and --profile are two different runs: choose one")
    # A profile runs xpnet and NumPy's GEMMs only: no need to load torch (seconds) or scikit-learn.
    with _thread_limits(settings.threads, want_torch=settings.torch and not profile,
                        want_sklearn=not profile or args.end_to_end):
        if configs and profile:
            result = run_profile(configs, settings, emit=emit, progress=progress)
        elif configs and fit is not None:
            result = run_fit_bench(configs, settings, fit, emit=emit, progress=progress)
        elif configs:
            result = run_bench(configs, settings, emit=emit, progress=progress)
        if args.end_to_end:
            if not configs:
                from ..device import get_backend

                bk = get_backend(settings.backend)
                env = environment_info(settings, bk)
                emit(format_header(env, settings, bk))
                result = {"schema": SCHEMA_VERSION, "environment": env, "backend": bk.spec, "ok": True}
            e2e = end_to_end(settings, epochs=args.epochs, repeats=1 if args.quick else 3, progress=progress)
            result["end_to_end"] = e2e
            emit("")
            emit(format_end_to_end(e2e))
    if progress:
        sys.stderr.write("\r\033[K")
    if args.json:
        from ..files import write_file_atomically

        def failed(path: Any, reason: str) -> Exception:
            return XpnetError(f"cannot write benchmark results {str(path)!r}: {reason}")

        text = json.dumps(_json_safe(result), indent=1, default=str, allow_nan=False)
        write_file_atomically(args.json, (text + "\n").encode("utf-8"), error=failed)
        emit(f"wrote {args.json}")
    if not result.get("ok", True):
        bad = [f"{c['name']} ({', '.join(p['candidate'] for p in c['correctness']['pairs'] if not p['ok'])})"
               for c in result["configs"] if not c["correctness"]["ok"]]
        print("xpnet: error: CORRECTNESS CHECK FAILED: one step differs from the reference beyond the tolerance in "
              + "; ".join(bad), file=sys.stderr)
        return 1
    return 0

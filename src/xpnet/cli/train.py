"""``xpnet train``: train an estimator on a dataset, print its test score, save the model and a plot."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from typing import Any

from ..engine.callbacks import Callback
from ..errors import ConfigError, DatasetError, LabelError, ModelFileError
from .common import (
    CommandError,
    _check_distinct,
    _check_output_dir,
    _describe_data,
    _load_dataset,
    _require_matplotlib,
    _say,
    _write_failed,
)

_PLOT_FORMATS = ("png", "pdf", "svg")
_HISTORY_FORMATS = ("csv", "json")


def _extension(path: str | None, allowed: tuple[str, ...], flag: str) -> str | None:
    """The format a path's extension names, refused before any work when it is not one of ``allowed``."""
    if path is None:
        return None
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in allowed:
        raise CommandError(f"--{flag} {path!r}: the extension names the format, one of "
                           f"{', '.join('.' + a for a in allowed)}; got {'.' + ext if ext else 'none'}")
    return ext


def _best_epoch(history: Any, stopper: Any) -> int | None:
    """The epoch (0-based index into the history) whose weights are kept: early stopping's best, else the lowest
    validation loss, else the lowest training loss."""
    if stopper is not None and stopper.best_epoch is not None:
        return int(stopper.best_epoch) - int(history["epoch"][0])
    column = history["val_loss"] if any(v is not None for v in history["val_loss"]) else history["loss"]
    values = [(v, i) for i, v in enumerate(column) if v is not None and math.isfinite(v)]
    return min(values)[1] if values else None


def _plot_history(history: Any, path: str, title: str, best: int | None) -> None:
    """:func:`xpnet.plot.plot_history`'s curves with the kept (best) epoch marked on each panel, written in the
    format the extension names through the safe writer."""
    plt = _require_matplotlib()
    from ..plot import plot_history, save_figure

    fig = plot_history(history)
    try:
        epochs = [e + 1 for e in history["epoch"]]
        for ax, key in zip(fig.axes, ("loss", "metric"), strict=False):
            if best is None:
                continue
            ax.axvline(epochs[best], color="gray", linestyle="--", linewidth=1, label=f"best epoch {epochs[best]}")
            shown = history[f"val_{key}"][best]
            if shown is None:
                shown = history[key][best]
            ax.plot([epochs[best]], [shown], marker="o", color="black", linestyle="none")
            ax.legend()
        fig.suptitle(title)
        fig.tight_layout()
        save_figure(fig, path)
    finally:
        plt.close(fig)


def _write_history(history: Any, path: str) -> None:
    """The per-epoch history as CSV (one row per epoch, epochs counted from 1, the metric named) or JSON (the
    columns, plus the metric's name, backend, device and dtype), through the safe writer."""
    import csv
    import io as _io
    import json

    from ..files import write_file_atomically

    fmt = _extension(path, _HISTORY_FORMATS, "history")
    name = history.metric_name
    rows = [{"epoch": e + 1, "loss": history["loss"][i], name: history["metric"][i],
             "val_loss": history["val_loss"][i], f"val_{name}": history["val_metric"][i], "lr": history["lr"][i],
             "time": history["time"][i]} for i, e in enumerate(history["epoch"])]
    if fmt == "json":
        meta = {k: v for k, v in history.as_dict().items() if k not in history.KEYS}
        text = json.dumps({**meta, "epochs": rows}, indent=1) + "\n"
    else:
        buffer = _io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["epoch"], lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in r.items()}
                         for r in rows)
        text = buffer.getvalue()
    write_file_atomically(path, text.encode("utf-8"), error=_write_failed("history"))


# --optimizer as the estimators' solver: the command trains with the lecture's Adam (eps added after the bias
# correction, as the lecture writes it), recorded in the model file as 'lecture_adam'.
_SOLVERS = {"adam": "lecture_adam"}


class _Announce(Callback):
    """Prints the ``network ...`` line when training starts (the network exists then), before any epoch."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.arch = ""

    def on_train_begin(self, trainer: Any) -> None:
        a, net, h = self.args, trainer.network, trainer.history
        self.arch = "-".join(str(d) for d in net.layer_dims)
        # The solver's name as the model file records it ('xpnet info' shows it), after the option's when they differ.
        solver = _SOLVERS.get(a.optimizer, a.optimizer)
        named = a.optimizer if solver == a.optimizer else f"{a.optimizer} (solver {solver})"
        _say(a, f"network {self.arch} {net.hidden.name} -> {net.output.name}, {named} lr {a.lr:g}"
                f"{'' if a.schedule == 'constant' else ' ' + a.schedule}, batch {a.batch_size}, {h.dtype} on "
                f"{h.backend}")


def _cmd_train(args: argparse.Namespace) -> int:
    communicator = _communicator(args)
    if communicator is None or communicator.size == 1:
        return _train(args, communicator)
    try:
        return _train(args, communicator)
    except BaseException as exc:
        # The other ranks would wait in their next collective forever: say why here, then end the whole job.
        print(f"xpnet: error on rank {communicator.rank}: {exc}", file=sys.stderr, flush=True)
        communicator.abort(1)
        raise


def _train(args: argparse.Namespace, communicator: Any) -> int:
    import numpy as np

    from .. import datasets
    from ..engine import EarlyStopping
    from ..engine.callbacks import ProgressBar
    from ..engine.optimizers import default_decay_steps, get_schedule
    from ..errors import DivergenceError
    from ..estimators import DNNClassifier, DNNRegressor
    from ..files import save

    if communicator is not None and communicator.rank:  # rank 0 alone prints and writes
        args.quiet, args.out, args.plot, args.history = True, None, None, None
    if args.resume and not args.checkpoint:
        raise CommandError("--resume needs --checkpoint PATH, the checkpoint file to resume from")
    _check_distinct(out=args.out, plot=args.plot, checkpoint=args.checkpoint, history=args.history)
    # The dataset is the command's input: no output may be written over it (a checkpoint is read by --resume
    # and rewritten by design).
    inputs = (args.dataset,)
    _check_output_dir(args.out, "model", inputs, flag="--out")
    _check_output_dir(args.plot, "plot", inputs, flag="--plot")
    _check_output_dir(args.checkpoint, "checkpoint", inputs, flag="--checkpoint")
    _check_output_dir(args.history, "history", inputs, flag="--history")
    # After the destination checks: an output over the command's input is the graver mistake to report.
    _extension(args.plot, _PLOT_FORMATS, "plot")
    _extension(args.history, _HISTORY_FORMATS, "history")
    if args.plot:
        _require_matplotlib()
    decay_steps = args.decay_steps or _resumed_decay_steps(args) or default_decay_steps(args.schedule, args.epochs)
    schedule = get_schedule(args.schedule, args.lr, decay_rate=args.decay_rate, decay_steps=decay_steps)
    ds = _load_dataset(args.dataset, args.label_column, args.seed, args)
    X_train, X_test, y_train, y_test = _split(ds.X, ds.y, args.test_fraction, args.seed, "--test-fraction")
    classify = ds.task == "classification" if args.task == "auto" else args.task == "classification"
    if args.task == "auto" and classify and ds.y.dtype.kind in "biuf":
        _refuse_regression_lookalike(ds.y)
    if not classify and ds.y.dtype.kind not in "biuf":
        raise LabelError(f"{ds.name} has non-numeric labels, which cannot be regression targets; use --task "
                         "classification (or auto)")
    # The validation set is split off here (stratified for classes) and given to fit, so there is a validation
    # curve whether or not early stopping is on.
    X_fit, y_fit, validation = X_train, y_train, None
    if args.val_fraction > 0:
        X_fit, X_val, y_fit, y_val = _split(X_train, y_train, args.val_fraction, args.seed, "--val-fraction")
        if classify:
            # A class too rare to be split both ways goes to training: validating on a class the network
            # never saw in training measures nothing (and its one-hot target would not exist).
            seen = np.isin(y_val, y_fit)
            if not seen.all():
                X_fit, y_fit = np.concatenate([X_fit, X_val[~seen]]), np.concatenate([y_fit, y_val[~seen]])
                X_val, y_val = X_val[seen], y_val[seen]
        validation = (X_val, y_val) if len(y_val) else None
    early = validation is not None and args.patience > 0
    # With a validation set, stopping watches the validation *loss* and keeps the best epoch's weights: on a
    # validation set of ~150 samples the accuracy moves in coarse steps and ties, and keeping its first best
    # epoch kept under-trained networks (test accuracy 0.94-0.98 over seeds 0-9, against 0.96-0.98 this way).
    stopper = EarlyStopping("val_loss", patience=args.patience, min_delta=args.tol) if early else None
    Estimator = DNNClassifier if classify else DNNRegressor
    est = Estimator(
        # The command trains with the lecture's choices (He init, its optimizers), as it always has.
        hidden_layer_sizes=args.layers, activation=args.activation, init="he",
        solver=_SOLVERS.get(args.optimizer, args.optimizer),
        learning_rate_init=args.lr, learning_rate=schedule, max_iter=args.epochs, batch_size=args.batch_size,
        dropout=args.dropout, alpha=args.l2, backend=args.backend, dtype=args.dtype, random_state=args.seed,
        # "Never" when the validation set's stopper (or nothing) decides: a constant, not --epochs + 1, so a
        # resume with more --epochs (the total, as documented) has the same settings as the run it continues.
        n_iter_no_change=args.patience if args.patience > 0 and not early else _NEVER,
        tol=args.tol, standardize=not args.no_standardize,
    )
    # The progress (a bar on a terminal, one line per epoch elsewhere) and the network line are callbacks of the
    # command, not the estimator's verbose output: they print before and during training, in the command's format.
    announce = _Announce(args)
    callbacks: list[Any] = [announce] + ([stopper] if stopper else [])
    if not args.quiet:
        callbacks.append(ProgressBar(1, log_every=args.log_every))
    parts = f"train {len(y_fit)}" + (f" / validation {len(validation[1])}" if validation else "")
    _say(args, f"xpnet train: {ds.name} ({_describe_data(ds)}); {parts} / test {len(y_test)}")
    if getattr(args, "threads_used", None):  # set by main() (a caller of _cmd_train alone has no limit)
        _say(args, f"threads: {args.threads_used}")
    if args.resume and not os.path.exists(args.checkpoint):
        # Not refused: a job script passes --resume from its first run on. Said, so that a mistyped path is seen.
        _say(args, f"no checkpoint {args.checkpoint} to resume from yet: training from the start (it is written "
                   "as training goes)")
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(X_fit, y_fit, validation_data=validation, callbacks=callbacks, checkpoint=args.checkpoint,
                    checkpoint_every=args.checkpoint_every, resume=args.resume, communicator=communicator)
        except DivergenceError as exc:
            kept = f"; {args.checkpoint!r} holds the last checkpointed epoch" if args.checkpoint else ""
            raise DivergenceError(f"{exc}. No model was saved{kept}") from None
        except ConfigError as exc:
            keys = getattr(exc, "differing_settings", None)
            if not keys:
                raise
            flags = sorted({flag for key in keys for flag in _RESUME_FLAGS.get(key, ())})
            raise ConfigError(f"{exc}. The options that decide these: {', '.join(flags)}; pass the values the "
                              "checkpoint's run used (--epochs may change: it is the total)") from None
    elapsed = time.perf_counter() - started
    if est.trainer_.resumed_epoch is not None:
        _say(args, f"resumed from checkpoint {args.checkpoint} after epoch {est.trainer_.resumed_epoch}")
    est.xpnet_data_ = {"dataset": ds.name if ds.name in datasets.DATASETS else str(args.dataset),
                       "test_fraction": args.test_fraction, "seed": args.seed, "task": "classification" if classify
                       else "regression",
                       # The label's header name whenever the file has a header (predict and evaluate find it by
                       # name, wherever the column moved), else the --label-column given.
                       "label_column": getattr(ds, "label_name", None) or args.label_column,
                       # The header's feature names in order: predict and evaluate refuse a file whose columns differ.
                       "feature_names": list(ds.feature_names) if ds.feature_names else None}
    h = est.history_
    arch = "-".join(str(d) for d in est.network_.layer_dims)
    shown = len(h) - 1
    summary = f"epochs {len(h)}"
    if stopper is not None and stopper.best_epoch is not None:
        shown = stopper.best_epoch  # its weights were restored: report the model that is kept
        stop = "early stop; " if stopper.stopped_epoch is not None else ""
        summary += f" ({stop}best epoch {shown + 1} kept)"
    summary += f", loss {h['loss'][shown]:.4f}"
    if h["val_metric"][shown] is not None:
        summary += f", validation {h.metric_name} {h['val_metric'][shown]:.4f}"
    _say(args, f"{summary} in {elapsed:.1f} s")
    if any("converge" in str(w.message) for w in caught) and not early and args.patience > 0:
        _say(args, "note: the training loss was still improving at the last epoch (raise --epochs to train longer)")
    score = est.score(X_test, y_test)
    if communicator is not None and communicator.rank:
        return 0
    print(f"test {'accuracy' if classify else 'R^2'}: {score:.4f}")
    if args.out:
        path = save(est, args.out)
        _say(args, f"saved model to {path}")
    if args.history:
        _write_history(h, args.history)
        _say(args, f"saved history to {args.history}")
    if args.plot:
        _plot_history(h, args.plot, f"xpnet {arch} on {ds.name}", _best_epoch(h, stopper))
        _say(args, f"saved plot to {args.plot}")
    return 0


def _split(X: Any, y: Any, fraction: float, seed: int, flag: str) -> Any:
    """``datasets.train_test_split`` whose failure names the command's flag, not the library's ``test_size``."""
    from .. import datasets  # lazily, like _train: the command's start stays fast

    try:
        return datasets.train_test_split(X, y, test_size=fraction, seed=seed)
    except DatasetError as exc:
        hint = "use more data or change --test-fraction" if flag == "--test-fraction" else \
            "use more data, change --val-fraction, or pass --val-fraction 0 for no validation set"
        raise DatasetError(f"cannot split {len(y)} samples with {flag} {fraction}: "
                           f"{str(exc.__cause__ or exc).rstrip('.')}. Expected at least one sample in each part "
                           f"(and, for classes, enough members of each); {hint}") from exc


def _communicator(args: argparse.Namespace) -> Any:
    """``--distributed``: the MPI world ``mpiexec`` started (:func:`xpnet.distributed.world`), else None."""
    if not getattr(args, "distributed", False):
        return None
    from ..distributed import world

    return world()


# What makes a resumed run's settings differ, as the command's flags (keys of the checkpoint's settings).
_DATA_FLAGS = ("--dataset", "--label-column", "--seed", "--test-fraction", "--val-fraction")
_RESUME_FLAGS: dict[str, tuple[str, ...]] = {
    "network": ("--layers", "--activation", "--dtype", "--dataset"),
    "optimizer": ("--optimizer", "--lr"), "schedule": ("--schedule", "--lr", "--decay-rate", "--decay-steps"),
    # Early stopping is a callback with state: on with --patience > 0 and a validation set (--val-fraction > 0).
    "callbacks": ("--patience", "--val-fraction"),
    "batch_size": ("--batch-size",), "shuffle": (), "l2": ("--l2",), "dropout": ("--dropout",), "seed": ("--seed",),
    "examples": _DATA_FLAGS, "validation_examples": _DATA_FLAGS, "data_fingerprint": _DATA_FLAGS,
    "estimator_standardize": ("--no-standardize",), "estimator_tol": ("--tol",),
    "estimator_n_iter_no_change": ("--patience", "--val-fraction"),
    "estimator_early_stopping": ("--patience", "--val-fraction"), "estimator_validation_fraction": ("--val-fraction",),
    "estimator_class_weight": (),
}
_NEVER = 2**31 - 1  # n_iter_no_change that never fires


def _resumed_decay_steps(args: argparse.Namespace) -> int | None:
    """With ``--resume`` and no ``--decay-steps``: the decay steps of the checkpoint's schedule when it is the same
    schedule, so another ``--epochs`` (the total) continues the run rather than changing its schedule."""
    import os

    if not (args.resume and args.checkpoint and os.path.isfile(args.checkpoint)):
        return None
    from ..files import read_metadata

    try:
        saved = read_metadata(args.checkpoint).get("settings", {}).get("schedule", {})
    except ModelFileError:  # an unreadable checkpoint is reported by the resume itself, with its reason
        return None
    steps = saved.get("decay_steps") if isinstance(saved, dict) and saved.get("name") == args.schedule else None
    return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1 else None


def _refuse_regression_lookalike(y: Any) -> None:
    """Whole-number targets with more than 50 distinct values are classes under ``--task auto`` only when they look
    like class labels: exactly ``0..C-1`` or ``1..C`` (every value present) with at least 3 samples per class on
    average. Anything else (pandas writes a regression target as 151.0; ages 18..107 among 10,000 people; 214
    values among 442 samples) is more likely a quantity: ``auto`` refuses to guess and says which ``--task`` to
    pass. Up to 50 distinct values are classes, as before."""
    import numpy as np

    values = np.unique(y)
    n_classes, m = len(values), len(y)
    if n_classes <= 50:
        return
    low, high = values[0], values[-1]
    labels_like = low in (0, 1) and high - low == n_classes - 1  # unique and whole: so every value is there
    if labels_like and m >= 3 * n_classes:
        return
    shown = f"{low:g}..{high:g}" if np.asarray(values).dtype.kind == "f" else f"{low}..{high}"
    raise LabelError(f"the labels hold {n_classes} distinct whole numbers ({shown}) among {m} samples: that looks "
                     "like a regression target written as whole numbers (e.g. 151.0) rather than classes (labels "
                     "0..C-1 or 1..C with a few samples each); pass --task regression, or --task classification to "
                     f"train a {n_classes}-class classifier")

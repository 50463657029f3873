"""The ``xpnet`` command (also ``python -m xpnet``).

Sub-commands: ``train``, ``evaluate``, ``predict``, ``backends``, ``bench`` (see :mod:`xpnet.bench`).

Exit codes: 0 success, 2 usage errors (argparse's message for a bad option value), 1 runtime errors with a
one-line reason (``xpnet: error: ...``) and no traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .backend import format_backends_report
from .errors import DatasetError, LabelError, ShapeError, XpnetError

_ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")
# No "sgd": scikit-learn's name means descent with momentum; here each name says which.
_OPTIMIZERS = ("adam", "momentum", "rmsprop", "gd")
_SCHEDULES = ("constant", "inverse_time", "step", "exponential", "cosine")


class CommandError(XpnetError, RuntimeError):
    """A command cannot go on (missing optional package, an output path that cannot be written, a model file
    that holds no estimator). Data that does not fit the model raises the library's own types (ShapeError,
    LabelError, DatasetError, ...)."""


# ------------------------------------------------------------------------------------- option types
def _layers(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid layer list {text!r}: expected comma-separated positive integers, e.g. 64,32") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"invalid layer list {text!r}: every layer needs at least 1 unit")
    return sizes


def _number(low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = True,
            kind: type = float) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") \
                from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if below or above:
            lo = "(" if low_open else "["
            hi = ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"{text} is outside {lo}{low:g}, {high:g}{hi}")
        return value

    return parse


_SEED = _number(0, 2**32 - 1, high_open=False, kind=int)


def _batch_size(text: str) -> int | str:
    if text.strip().lower() in ("full", "auto"):
        return text.strip().lower()
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer, 'full' or 'auto'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"batch size must be at least 1, got {value}")
    return value


# ----------------------------------------------------------------------------------------- helpers
def _say(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text)


def _check_output_dir(path: str | None, what: str) -> None:
    # Checked before training starts: minutes of training must not end in "no such directory".
    if path is None:
        return
    target = Path(path).expanduser()
    if target.is_dir():
        raise CommandError(f"cannot write {what} {path!r}: it is a directory; name a file inside it")
    parent = target.resolve().parent
    if not parent.is_dir():
        raise CommandError(f"cannot write {what} {path!r}: directory {str(parent)!r} does not exist")


def _require_matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise CommandError('--plot needs matplotlib, which is not installed: pip install "xpnet[plot]"') from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _write_failed(what: str) -> Any:
    """An error factory for :func:`xpnet.io.write_file_atomically` that names what could not be written."""
    return lambda path, reason: CommandError(f"cannot write {what} {str(path)!r}: {reason}")


def _plot_history(history: Any, path: str, title: str) -> None:
    plt = _require_matplotlib()
    epochs = [e + 1 for e in history["epoch"]]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history["loss"], label="train")
    if any(v is not None for v in history["val_loss"]):
        ax_loss.plot(epochs, history["val_loss"], label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_metric.plot(epochs, history["metric"], label="train")
    if any(v is not None for v in history["val_metric"]):
        ax_metric.plot(epochs, history["val_metric"], label="validation")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel(history.metric_name)
    ax_metric.legend()
    fig.suptitle(title)
    fig.tight_layout()
    import io as _io

    from .io import write_file_atomically

    buffer = _io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    write_file_atomically(path, buffer.getvalue(), error=_write_failed("plot"))


def _load_dataset(source: str, label_column: str | None, seed: int) -> Any:
    from . import datasets

    kwargs: dict[str, Any] = {"seed": seed}
    if label_column is not None:
        kwargs["label_column"] = int(label_column) if label_column.lstrip("-").isdigit() else label_column
    return datasets.load(source, **kwargs)


def _describe_data(ds: Any) -> str:
    if ds.task == "classification":
        import numpy as np

        return f"{ds.n_samples} samples, {ds.n_features} features, {len(np.unique(ds.y))} classes"
    return f"{ds.n_samples} samples, {ds.n_features} features, regression"


# ------------------------------------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    from . import datasets
    from .errors import DivergenceError
    from .estimators import DNNClassifier, DNNRegressor
    from .io import save
    from .optimizers import default_decay_steps, get_schedule
    from .training import EarlyStopping

    _check_output_dir(args.out, "model")
    _check_output_dir(args.plot, "plot")
    if args.resume and not args.checkpoint:
        raise CommandError("--resume needs --checkpoint PATH, the checkpoint file to resume from")
    _check_output_dir(args.checkpoint, "checkpoint")
    if args.plot:
        _require_matplotlib()
    schedule = get_schedule(args.schedule, args.lr, decay_rate=args.decay_rate,
                            decay_steps=args.decay_steps or default_decay_steps(args.schedule, args.epochs))
    ds = _load_dataset(args.dataset, args.label_column, args.seed)
    X_train, X_test, y_train, y_test = datasets.train_test_split(ds.X, ds.y, test_size=args.test_fraction,
                                                                 seed=args.seed)
    classify = ds.task == "classification" if args.task == "auto" else args.task == "classification"
    if not classify and ds.y.dtype.kind not in "biuf":
        raise LabelError(f"{ds.name} has non-numeric labels, which cannot be regression targets; use --task "
                         "classification (or auto)")
    # The validation set is split off here (stratified for classes) and given to fit, so there is a validation
    # curve whether or not early stopping is on.
    X_fit, y_fit, validation = X_train, y_train, None
    if args.val_fraction > 0:
        X_fit, X_val, y_fit, y_val = datasets.train_test_split(X_train, y_train, test_size=args.val_fraction,
                                                               seed=args.seed)
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
        hidden_layer_sizes=args.layers, activation=args.activation, solver=args.optimizer,
        learning_rate_init=args.lr, learning_rate=schedule, max_iter=args.epochs, batch_size=args.batch_size,
        dropout=args.dropout, alpha=args.l2, backend=args.backend, dtype=args.dtype, random_state=args.seed,
        n_iter_no_change=args.patience if args.patience > 0 and not early else args.epochs + 1,
        tol=args.tol, verbose=0 if args.quiet else 1, standardize=not args.no_standardize,
    )
    parts = f"train {len(y_fit)}" + (f" / validation {len(validation[1])}" if validation else "")
    _say(args, f"xpnet train: {ds.name} ({_describe_data(ds)}); {parts} / test {len(y_test)}")
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(X_fit, y_fit, validation_data=validation, callbacks=[stopper] if stopper else [],
                    checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume)
        except DivergenceError as exc:
            kept = f"; {args.checkpoint!r} holds the last checkpointed epoch" if args.checkpoint else ""
            raise DivergenceError(f"{exc}. No model was saved{kept}") from None
    elapsed = time.perf_counter() - started
    if est.trainer_.resumed_epoch is not None:
        _say(args, f"resumed from checkpoint {args.checkpoint} after epoch {est.trainer_.resumed_epoch}")
    est.xpnet_data_ = {"dataset": ds.name if ds.name in datasets.DATASETS else str(args.dataset),
                       "test_fraction": args.test_fraction, "seed": args.seed, "task": "classification" if classify
                       else "regression", "label_column": args.label_column}
    net = est.network_
    h = est.history_
    arch = "-".join(str(d) for d in net.layer_dims)
    _say(args, f"network {arch} {net.hidden.name} -> {net.output.name}, {args.optimizer} lr {args.lr:g}"
               f"{'' if args.schedule == 'constant' else ' ' + args.schedule}, batch {args.batch_size}, "
               f"{h.dtype} on {h.backend}")
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
    print(f"test {'accuracy' if classify else 'R^2'}: {score:.4f}")
    if args.out:
        path = save(est, args.out)
        _say(args, f"saved model to {path}")
    if args.plot:
        _plot_history(h, args.plot, f"xpnet {arch} on {ds.name}")
        _say(args, f"saved plot to {args.plot}")
    return 0


# ------------------------------------------------------------------------------ evaluate / predict
def _load_model(path: str, backend: str | None) -> Any:
    from .io import load

    model = load(path, backend=backend)
    if not hasattr(model, "n_features_in_"):
        raise CommandError(f"{path!r} holds a bare network ({type(model).__name__}), not an estimator saved by "
                           "'xpnet train' or xpnet.save(DNNClassifier/DNNRegressor); load it in Python with "
                           "xpnet.load")
    return model


def _check_features(model: Any, X: Any, source: str) -> None:
    if X.shape[1] != model.n_features_in_:
        raise ShapeError(f"{source} has {X.shape[1]} features but the model takes {model.n_features_in_}: "
                           "use the data the model was trained on (or the same columns)")


def _check_labels(model: Any, y: Any, source: str) -> None:
    import numpy as np


    if not hasattr(model, "classes_"):
        if y.dtype.kind not in "biuf":
            raise LabelError(f"{source} has non-numeric labels (dtype {y.dtype}) but the model is a regressor")
        return
    classes = model.classes_
    if classes.dtype.kind in "biuf" and y.dtype.kind in "biuf":
        # Compared as numbers without truncation: a label 0.5 must not pass for class 0.
        labels, known = y.astype(np.float64), classes.astype(np.float64)
    else:
        labels, known = y.astype(str), classes.astype(str)
    unseen = np.unique(y[~np.isin(labels, known)])
    if unseen.size:
        raise LabelError(f"{source} has labels the model was not trained on: {unseen[:5].tolist()} "
                           f"(model classes: {classes.tolist()})")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import datasets

    model = _load_model(args.model, args.backend)
    # `xpnet train` stores its seed (which also generates moons/circles/flower) and test fraction in the file.
    stored = getattr(model, "xpnet_data_", None) or {}
    seed = args.seed if args.seed is not None else stored.get("seed", 0)
    ds = _load_dataset(args.data, args.label_column, seed)
    X, y, where = ds.X, ds.y, f"all {ds.n_samples} samples"
    if args.split == "test":
        fraction = args.test_fraction if args.test_fraction is not None else stored.get("test_fraction", 0.2)
        _, X, _, y = datasets.train_test_split(ds.X, ds.y, test_size=fraction, seed=seed)
        where = f"the test split ({len(y)} samples, test fraction {fraction:g}, seed {seed})"
    _check_features(model, X, ds.name)
    _check_labels(model, y, ds.name)
    if hasattr(model, "classes_"):
        y = y.astype(model.classes_.dtype) if model.classes_.dtype.kind in "biuf" else y.astype(str)
        print(f"accuracy: {model.score(X, y):.4f} on {where} of {ds.name}")
    else:
        import numpy as np

        pred = model.predict(X)
        mse = float(np.mean((np.asarray(pred).reshape(len(y), -1) - y.reshape(len(y), -1)) ** 2))
        print(f"R^2: {model.score(X, y):.4f}, mse: {mse:.6g} on {where} of {ds.name}")
    return 0


def _read_features(source: str, n_features: int, label_column: str | None = None) -> Any:
    """Features of a file for prediction: an ``.npz`` with ``X`` (``y`` optional) or a ``.csv`` holding either
    exactly the model's features or the features plus a label column (the last one)."""
    import csv

    import numpy as np

    from . import datasets

    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        return datasets.load(source).X
    if not path.is_file():
        raise DatasetError(f"no such file: {source!r}")
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "X" not in archive.files:
                    raise DatasetError(f"{source!r} has no array named 'X' (found: {', '.join(archive.files)})")
                X = archive["X"]
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(f"cannot read {source!r} as an npz archive ({type(exc).__name__}: {exc})") from None
        if X.ndim != 2 or X.dtype.kind not in "biuf":
            raise DatasetError(f"X in {source!r} must be a 2-D numeric array, got {X.dtype} of shape {X.shape}")
        X = X.astype(np.float64)
        if not np.all(np.isfinite(X)):
            row, col = (int(i) for i in np.argwhere(~np.isfinite(X))[0])
            raise DatasetError(f"X in {source!r} must hold finite numbers, but X[{row}, {col}] is {X[row, col]}; "
                               "fill in or drop the missing values first")
        return X
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            # Keep each row's real line number for the messages; blank lines are skipped.
            rows = [(line, r) for line, r in enumerate(csv.reader(fh), start=1) if any(f.strip() for f in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {source!r} as CSV ({exc})") from None
    if not rows:
        raise DatasetError(f"{source!r} is empty")
    width = len(rows[0][1])
    if width == n_features + 1:
        column: int | str = -1
        if label_column is not None:
            column = int(label_column) if label_column.lstrip("-").isdigit() else label_column
        return datasets.load_csv(path, label_column=column)[0]
    if label_column is not None:
        raise DatasetError(f"--label-column given but {source!r} has {width} columns, the model's {n_features} "
                           "features and no label column")
    if width != n_features:
        raise DatasetError(f"{source!r} has {width} columns but the model takes {n_features} features (or "
                           f"{n_features} plus a label column)")

    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    # A header holds text; an empty field is a missing value, which the row check below refuses.
    if any(f.strip() and number(f) is None for f in rows[0][1]):
        rows = rows[1:]
    values = []
    for line, row in rows:
        parsed = [number(f) for f in row]
        if len(row) != width or any(v is None or not math.isfinite(v) for v in parsed):
            raise DatasetError(f"{source!r} row {line} is not {width} finite numbers: {row[:6]}")
        values.append(parsed)
    if not values:
        raise DatasetError(f"{source!r} has a header but no rows")
    return np.asarray(values, dtype=np.float64)


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    model = _load_model(args.model, args.backend)
    _check_output_dir(args.out, "predictions")
    X = _read_features(args.data, model.n_features_in_, args.label_column)
    _check_features(model, X, args.data)
    pred = np.asarray(model.predict(X))
    header = ["prediction"]
    columns = [pred.reshape(len(X), -1)]
    if hasattr(model, "classes_"):
        proba = np.asarray(model.predict_proba(X))
        header += [f"p_{c}" for c in model.classes_]
        columns.append(proba)
    elif columns[0].shape[1] > 1:
        header = [f"prediction_{i}" for i in range(columns[0].shape[1])]
    table = np.concatenate([c.astype(str) if c.dtype.kind not in "f" else np.char.mod("%.8g", c) for c in columns],
                           axis=1)
    text = ",".join(header) + "\n" + "\n".join(",".join(row) for row in table) + "\n"
    if args.out:
        from .io import write_file_atomically

        write_file_atomically(args.out, text.encode("utf-8"), error=_write_failed("predictions"))
        print(f"wrote {len(X)} predictions to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_backends(args: argparse.Namespace) -> int:
    print(format_backends_report())
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_command

    _check_output_dir(args.json, "benchmark results")
    return run_command(args)


# ------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xpnet`` command, one sub-command per job."""
    parser = argparse.ArgumentParser(prog="xpnet", description="Dense neural networks on any Array API backend.")
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser("train", help="train a network on a dataset and print its test score",
                       description="Train a DNNClassifier (or DNNRegressor for float labels) on a dataset, "
                                   "print the test score, optionally save the model and a plot of the curves.")
    t.add_argument("--dataset", default="digits",
                   help="digits (default), breast_cancer, moons, circles, flower, or a .npz/.csv file")
    t.add_argument("--label-column", default=None, metavar="COL",
                   help="label column of a CSV file: index (default -1, the last) or name")
    t.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help="auto (default): classification for text or integer labels, regression for other numbers; "
                        "say regression for integer-valued targets such as counts or prices")
    t.add_argument("--layers", type=_layers, default=(128, 64), metavar="N,N,...",
                   help="hidden layer sizes (default 128,64)")
    t.add_argument("--activation", choices=_ACTIVATIONS, default="relu", help="hidden activation (default relu)")
    t.add_argument("--optimizer", choices=_OPTIMIZERS, default="adam", help="optimizer (default adam)")
    t.add_argument("--lr", type=_number(0, low_open=True), default=0.003, help="learning rate (default 0.003)")
    t.add_argument("--schedule", choices=_SCHEDULES, default="constant",
                   help="learning-rate schedule per epoch (default constant)")
    t.add_argument("--decay-rate", type=_number(0), default=None,
                   help="the schedule's rate (defaults: inverse_time 1, step 0.5, exponential 0.95)")
    t.add_argument("--decay-steps", type=_number(1, kind=int), default=None,
                   help="epochs per decay (defaults: cosine the whole run, step a quarter of it, else 1)")
    t.add_argument("--epochs", type=_number(1, kind=int), default=100, help="maximum epochs (default 100)")
    t.add_argument("--batch-size", type=_batch_size, default=64, help="int, 'auto' or 'full' (default 64)")
    t.add_argument("--dropout", type=_number(0, 1), default=0.0, help="dropout rate of the hidden layers, in [0, 1)")
    t.add_argument("--l2", type=_number(0), default=1e-4, help="L2 strength (alpha / lambd, default 1e-4)")
    t.add_argument("--backend", default=None,
                   help="numpy, cupy[:N], torch[:DEV], jax, array_api_strict or auto (CuPy when a GPU works, else "
                        "NumPy); default: $XPNET_BACKEND, else auto")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    t.add_argument("--seed", type=_SEED, default=0, help="seed of everything random (default 0)")
    t.add_argument("--test-fraction", type=_number(0, 1, low_open=True), default=0.2,
                   help="held-out test fraction (default 0.2)")
    t.add_argument("--val-fraction", type=_number(0, 1), default=0.1,
                   help="validation fraction split off the training data (default 0.1; 0: none, and stopping "
                        "watches the training loss)")
    t.add_argument("--patience", type=_number(0, kind=int), default=10,
                   help="stop after more than this many epochs without improvement and keep the best epoch's "
                        "weights (default 10; 0: never stop early)")
    t.add_argument("--tol", type=_number(0), default=1e-4, help="improvement that counts (default 1e-4)")
    t.add_argument("--no-standardize", action="store_true",
                   help="do not standardize features (default: mean/std learned on the training split)")
    t.add_argument("--out", default=None, metavar="PATH", help="save the model (safetensors)")
    t.add_argument("--plot", default=None, metavar="PNG", help="save loss/metric curves (needs matplotlib)")
    t.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="save the training state here (atomically) every --checkpoint-every epochs")
    t.add_argument("--checkpoint-every", type=_number(1, kind=int), default=1, metavar="N",
                   help="epochs between checkpoints (default 1)")
    t.add_argument("--resume", action="store_true",
                   help="go on from --checkpoint if it exists (same options and data: the result is the one an "
                        "uninterrupted run gives); --epochs stays the total")
    t.add_argument("--quiet", "-q", action="store_true", help="print only the test score")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="score a saved model on a dataset",
                       description="Print the accuracy (classifiers) or R^2 (regressors) of a saved model.")
    e.add_argument("model", help="a model file written by 'xpnet train --out' or xpnet.save")
    e.add_argument("data", help="a dataset name or a .npz/.csv file with labels")
    e.add_argument("--label-column", default=None, metavar="COL", help="label column of a CSV file")
    e.add_argument("--split", choices=("all", "test"), default="all",
                   help="all samples (default) or the test split 'xpnet train' held out (its test fraction and "
                        "seed are read from the model file unless given)")
    e.add_argument("--test-fraction", type=_number(0, 1, low_open=True), default=None)
    e.add_argument("--seed", type=_SEED, default=None)
    e.add_argument("--backend", default=None, help="backend to compute on (default: auto)")
    e.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="predict with a saved model",
                       description="Write one row per sample: the prediction and, for classifiers, the "
                                   "probability of each class.")
    p.add_argument("model", help="a model file written by 'xpnet train --out' or xpnet.save")
    p.add_argument("data", help="a dataset name, a .npz with X, or a .csv of features (a label column is ignored)")
    p.add_argument("--label-column", default=None, metavar="COL",
                   help="label column of a CSV that has one (index or name; default: the last), left out of the "
                        "features")
    p.add_argument("--out", default=None, metavar="CSV", help="write here (default: standard output)")
    p.add_argument("--backend", default=None, help="backend to compute on (default: auto)")
    p.set_defaults(func=_cmd_predict)

    b = sub.add_parser("backends", help="list the backends, whether each is usable here, devices and float64")
    b.set_defaults(func=_cmd_backends)

    from .bench import parse_configs

    bn = sub.add_parser("bench", help="time the training step against PyTorch, a GEMM bound, NumPy and scikit-learn",
                        description="Time xpnet's training step (forward, cost, backward, update) on a backend, side "
                                    "by side with PyTorch eager on the same device, the step's matrix products alone "
                                    "(the GEMM bound), a plain NumPy script and scikit-learn's partial_fit "
                                    "(interleaved rounds, medians), after a one-step correctness check against "
                                    "PyTorch. Exit code 1 when that check fails.")
    bn.add_argument("--config", type=parse_configs, default=None, metavar="NAME[,NAME...]",
                    help="mnist (784-256-128-10 softmax, batch 128), mnist-1024, wide (2048x4-10, batch 512), "
                         "lecture (12288-20-7-5-1 sigmoid, batch 209), tiny (2-4-1 sigmoid, batch 400) or all "
                         "(default: all, unless --layers or --end-to-end is given)")
    bn.add_argument("--layers", type=_layers, default=None, metavar="N0,N1,...,NL",
                    help="a custom network: all layer sizes, input first (hidden layers are ReLU)")
    bn.add_argument("--batch", type=_number(1, kind=int), default=None, help="batch of the custom network "
                    "(default 128)")
    bn.add_argument("--output", choices=("softmax", "sigmoid", "linear"), default=None,
                    help="output of the custom network (default: softmax for several units, sigmoid for one)")
    bn.add_argument("--backend", default="numpy",
                    help="xpnet backend (default numpy); with cupy[:N] or torch:cuda[:N] PyTorch runs on that GPU")
    bn.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    bn.add_argument("--optimizer", choices=("gd", "adam"), default="gd",
                    help="gd (default, lr 0.01) or adam (lr 0.001, betas 0.9/0.999, eps 1e-8), the same for all")
    bn.add_argument("--lr", type=_number(0, low_open=True), default=None, help="learning rate (default: see "
                    "--optimizer)")
    bn.add_argument("--threads", type=_number(1, kind=int), default=None,
                    help="BLAS/OpenMP threads (threadpoolctl) and torch threads (default: as found, reported)")
    bn.add_argument("--rounds", type=_number(1, kind=int), default=None, help="timed rounds (default 20)")
    bn.add_argument("--warmup", type=_number(0, kind=int), default=None, help="warm-up steps (default 3)")
    bn.add_argument("--min-block-seconds", type=_number(0, low_open=True), default=None, metavar="S",
                    help="each timed block runs enough steps to last this long (default 0.05)")
    bn.add_argument("--json", default=None, metavar="PATH", help="also write every number, raw times included")
    bn.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    bn.add_argument("--no-sklearn", action="store_true", help="leave scikit-learn out")
    bn.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs (one process each)")
    bn.add_argument("--profile", action="store_true",
                    help="instead of the comparison, profile xpnet's step (numpy backend): time per numpy call and "
                         "category, Python overhead, each GEMM in the step against alone")
    bn.add_argument("--quick", action="store_true", help="few short rounds: a smoke test, not numbers to quote")
    bn.add_argument("--end-to-end", action="store_true",
                    help="train xpnet train's default network on digits against scikit-learn's MLPClassifier "
                         "(same architecture, Adam, batch, epochs): time and accuracy")
    bn.add_argument("--epochs", type=_number(1, kind=int), default=30, help="epochs of --end-to-end (default 30)")
    bn.add_argument("--seed", type=_SEED, default=0, help="seed of the weights and the batch (default 0)")
    bn.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xpnet`` command with ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    args = build_parser().parse_args(argv)
    shown = warnings.showwarning

    def one_line(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        print(f"xpnet: warning: {message}", file=sys.stderr)

    warnings.showwarning = one_line  # a user reads one line, not a source location
    try:
        return int(args.func(args))
    except XpnetError as exc:
        print(f"xpnet: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        # scikit-learn's input validation and file-system errors: a user's problem, told in one line.
        print(f"xpnet: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

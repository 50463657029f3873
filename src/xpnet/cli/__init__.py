"""The ``xpnet`` command (also ``python -m xpnet``).

Sub-commands: ``train``, ``evaluate``, ``predict``, ``info``, ``backends``, ``bench`` (see :mod:`xpnet.bench`).

Exit codes: 0 success, 2 usage errors (argparse's message for a bad option value), 1 runtime errors with a
one-line reason (``xpnet: error: ...``) and no traceback.

:func:`main` and the parser are here; the commands are in :mod:`~xpnet.cli.train` and
:mod:`~xpnet.cli.predict` (``evaluate``, ``predict``), what they share in :mod:`~xpnet.cli.common` and the option
types in :mod:`~xpnet.cli.args`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..device.backend import format_backends_report
from ..errors import XpnetError
from .args import _ACTIVATIONS, _OPTIMIZERS, _SCHEDULES, _SEED, _batch_size, _layers, _number
from .common import CommandError as CommandError
from .common import _add_csv_options, _add_threads_option, _check_output_dir, _thread_limit, in_command_words
from .export import add_export_parser
from .info import _cmd_info
from .predict import _cmd_evaluate, _cmd_predict
from .train import _cmd_train


def _cmd_backends(args: argparse.Namespace) -> int:
    print(format_backends_report())
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import run_command

    _check_output_dir(args.json, "benchmark results", flag="--json")
    return run_command(args)


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
                   help="digits (default), breast_cancer, moons, circles, flower, or a .npz/.csv/.tsv/.parquet/.npy "
                        "file")
    t.add_argument("--label-column", default=None, metavar="COL",
                   help="label column of a CSV file: index (default -1, the last) or name")
    _add_csv_options(t)
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
                   help="stop once this many epochs in a row bring no improvement of the validation loss and "
                        "keep the best epoch's weights (default 10; 0: never stop early; with --val-fraction 0, "
                        "scikit-learn's rule on the training loss: after more than this many)")
    t.add_argument("--tol", type=_number(0), default=1e-4, help="improvement that counts (default 1e-4)")
    t.add_argument("--no-standardize", action="store_true",
                   help="do not standardize features (default: mean/std learned on the training split)")
    t.add_argument("--out", default=None, metavar="PATH", help="save the model (safetensors)")
    t.add_argument("--plot", default=None, metavar="FILE",
                   help="save the loss/metric curves, the best epoch marked, as .png, .pdf or .svg (by the "
                        "extension; needs matplotlib)")
    t.add_argument("--history", default=None, metavar="FILE",
                   help="save the per-epoch history (epoch, loss, metric, validation loss and metric, learning rate, "
                        "time) as .csv or .json (by the extension)")
    t.add_argument("--log-every", type=_number(1, kind=int), default=1, metavar="N",
                   help="off a terminal, print one line every N epochs (and the first and last; default 1)")
    t.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="save the training state here (atomically) every --checkpoint-every epochs")
    t.add_argument("--checkpoint-every", type=_number(1, kind=int), default=1, metavar="N",
                   help="epochs between checkpoints (default 1)")
    t.add_argument("--resume", action="store_true",
                   help="go on from --checkpoint if it exists (same options and data: the result is the one an "
                        "uninterrupted run gives); --epochs stays the total")
    t.add_argument("--quiet", "-q", action="store_true", help="print only the test score")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over the ranks of mpiexec -n N (pip install 'xpnet[mpi]'): each rank trains on "
                        "its shard of every batch; rank 0 prints and writes the model (README: data-parallel)")
    _add_threads_option(t)
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="score a saved model on a dataset",
                       description="Print the accuracy (classifiers) or R^2 (regressors) of a saved model.")
    e.add_argument("model", help="a model file written by 'xpnet train --out' or xpnet.save")
    e.add_argument("data", help="a dataset name or a .npz/.csv file with labels")
    e.add_argument("--label-column", default=None, metavar="COL", help="label column of a CSV file")
    _add_csv_options(e)
    e.add_argument("--split", choices=("all", "test"), default="all",
                   help="all samples (default) or the test split 'xpnet train' held out (its test fraction and "
                        "seed are read from the model file unless given)")
    e.add_argument("--test-fraction", type=_number(0, 1, low_open=True), default=None)
    e.add_argument("--seed", type=_SEED, default=None)
    e.add_argument("--backend", default=None, help="backend to compute on (default: auto)")
    _add_threads_option(e)
    e.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="predict with a saved model",
                       description="Write one row per sample: the prediction and, for classifiers, the "
                                   "probability of each class.")
    p.add_argument("model", help="a model file written by 'xpnet train --out' or xpnet.save")
    p.add_argument("data", help="a dataset name, a .npz with X, or a .csv of features (a label column is ignored)")
    p.add_argument("--label-column", default=None, metavar="COL",
                   help="label column of a CSV that has one (index or name; default: the last), left out of the "
                        "features")
    _add_csv_options(p)
    p.add_argument("--out", default=None, metavar="CSV", help="write here (default: standard output)")
    p.add_argument("--backend", default=None, help="backend to compute on (default: auto)")
    _add_threads_option(p)
    p.set_defaults(func=_cmd_predict)

    add_export_parser(sub)
    i = sub.add_parser("info", help="describe a model file and verify its checksums",
                       description="Architecture, activations, task, classes, feature names, label column, dtype, "
                                   "the backend and device it was trained on, epochs and best scores, the xpnet "
                                   "version, and whether the file's checksums verify (exit code 1 when not).")
    i.add_argument("model", help="a model file written by 'xpnet train --out' or xpnet.save")
    i.add_argument("--json", action="store_true", help="one JSON object instead of text")
    i.set_defaults(func=_cmd_info)

    b = sub.add_parser("backends", help="list the backends, whether each is usable here, devices and float64")
    b.set_defaults(func=_cmd_backends)

    from ..bench import add_fit_arguments, parse_configs

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
    add_fit_arguments(bn)
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
        with contextlib.ExitStack() as stack:
            if "threads" in vars(args) and args.command != "bench":  # bench sets its own, per measured block
                args.threads_used = stack.enter_context(_thread_limit(args))
            code = int(args.func(args))
        if sys.stdout is not None:
            sys.stdout.flush()  # a reader that went away shows here, among the handlers, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader went away (`xpnet train | head -1`): what it wanted it has. Exit quietly, as a Unix tool
        # killed by SIGPIPE does (status 141), with stdout pointed at /dev/null so that the interpreter's
        # final flush does not fail again.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except XpnetError as exc:
        print(f"xpnet: error: {in_command_words(exc)}", file=sys.stderr)
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

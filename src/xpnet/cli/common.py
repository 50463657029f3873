"""What the ``xpnet`` commands share: :class:`CommandError`, progress messages, checks of output paths before
work starts, and loading a dataset given on the command line."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any

from ..errors import XpnetError


class CommandError(XpnetError, RuntimeError):
    """A command cannot go on (missing optional package, an output path that cannot be written, a model file
    that holds no estimator). Data that does not fit the model raises the library's own types (ShapeError,
    LabelError, DatasetError, ...)."""


# How the dataset loader's messages name its Python keywords, and the command's flags for them: a user of the
# command reads "--delimiter", not "delimiter=..." (the loader keeps the Python spelling for Python callers).
_PYTHON_TO_FLAGS = (
    (r"\bthe right label_column or header\b", "the right --label-column, or --header / --no-header"),
    (r"\bthe right label_column\b", "the right --label-column"),  # the Parquet reader's (no header there)
    (r"\bdelimiter=\.\.\.", "--delimiter CHAR"),
    (r"\bdelimiter=", "--delimiter "),
    (r"\blabel_column=", "--label-column "),
    (r"\bgive label_column as\b", "give --label-column as"),
    (r"\bheader=False\b", "--no-header"),
    (r"\bheader=True \(or 'auto'\)", "--header (or neither)"),
    (r"\bheader=True\b", "--header"),
    (r", or None to detect it\b", ", or leave it out to detect it"),
)


def in_command_words(exc: BaseException) -> str:
    """``exc``'s message, with the Python keywords of a :mod:`xpnet.datasets` error (one raised in that package)
    written as the command's flags (``delimiter=...`` as ``--delimiter CHAR``, ``label_column`` as
    ``--label-column``, ``header=False`` as ``--no-header``); other messages unchanged."""
    text = str(exc)
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename if tb is not None else ""
    if f"{os.sep}datasets{os.sep}" not in where:
        return text
    for pattern, flag in _PYTHON_TO_FLAGS:
        text = re.sub(pattern, flag, text)
    return text


def _say(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text)


def _check_output_dir(path: str | None, what: str, inputs: Any = (), *, flag: str | None = None) -> None:
    """Check an output before any work starts (:func:`xpnet.files.check_destination`): minutes of training must
    not end in "no such directory", and no output may replace a special file or one of the command's
    ``inputs``. ``-`` is refused: it means standard output elsewhere (``xpnet predict --out -``), and a binary
    file written to stdout, or a file literally named ``-``, is never what was meant (``flag`` names the
    option in the message)."""
    if path is None:
        return
    if path == "-":
        given = f"{flag} -" if flag else "'-'"
        raise CommandError(f"cannot write {what} to standard output ({given}): only 'xpnet predict --out -' writes "
                           f"to stdout; give a file name (./- for a file named '-')")
    from ..files import check_destination

    check_destination(path, inputs=inputs, what=what, error=_write_failed(what))


def _check_distinct(**outputs: str | None) -> None:
    """Two outputs of one command at the same path would overwrite each other: refused."""
    given = [(flag, path) for flag, path in outputs.items() if path]
    for i, (flag, path) in enumerate(given):
        for other, other_path in given[i + 1:]:
            if os.path.realpath(os.path.expanduser(path)) == os.path.realpath(os.path.expanduser(other_path)):
                raise CommandError(f"--{flag} and --{other} name the same file {path!r}: give each output its own path")


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


def _load_dataset(source: str, label_column: str | None, seed: int, args: Any = None) -> Any:
    from .. import datasets

    kwargs: dict[str, Any] = {"seed": seed}
    if label_column is not None:
        kwargs["label_column"] = int(label_column) if label_column.lstrip("-").isdigit() else label_column
    # The CSV options only when given: a built-in name or another file type refuses them.
    if getattr(args, "delimiter", None) is not None:
        kwargs["delimiter"] = args.delimiter
    if getattr(args, "header", None) is not None:
        kwargs["header"] = args.header
    return datasets.load(source, **kwargs)


def _add_csv_options(parser: argparse.ArgumentParser) -> None:
    """``--delimiter`` and ``--header``/``--no-header`` of the commands that read a data file."""
    parser.add_argument("--delimiter", type=_delimiter, default=None, metavar="CHAR",
                        help="field separator of a CSV file, e.g. ';' or '\\t' (default: detected from the first "
                             "rows among , ; tab |)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--header", dest="header", action="store_const", const=True, default=None,
                       help="the CSV's first row is column names (default: detected)")
    group.add_argument("--no-header", dest="header", action="store_const", const=False,
                       help="the CSV's first row is a sample, even if it looks like names")


def _delimiter(text: str) -> str:
    value = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(text, text)
    if len(value) != 1 or value in "\"\r\n":
        raise argparse.ArgumentTypeError(f"{text!r} is not one character other than a quote or a newline (write a "
                                         "tab as '\\t' or tab)")
    return value


def _describe_data(ds: Any) -> str:
    if ds.task == "classification":
        import numpy as np

        return f"{ds.n_samples} samples, {ds.n_features} features, {len(np.unique(ds.y))} classes"
    return f"{ds.n_samples} samples, {ds.n_features} features, regression"


#: Threads for BLAS and OpenMP when --threads is not given (see the README's "Threads" for the measurement).
DEFAULT_THREADS = 1


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    from .args import _number

    parser.add_argument("--threads", type=_number(1, kind=int), default=None, metavar="N",
                        help=f"BLAS/OpenMP threads (threadpoolctl; default {DEFAULT_THREADS}, the fastest measured for "
                             "the networks 'xpnet train' fits; give the number of idle cores for large layers)")


@contextlib.contextmanager
def _thread_limit(args: argparse.Namespace) -> Iterator[str]:
    """Limit every BLAS and OpenMP pool (threadpoolctl) to ``--threads`` (default :data:`DEFAULT_THREADS`) for
    the block; yields what was used, e.g. ``"1 BLAS thread (openblas)"``, for the command to print."""
    import numpy  # noqa: F401  (its BLAS must be loaded to be limited)
    from threadpoolctl import threadpool_info, threadpool_limits

    threads = args.threads if getattr(args, "threads", None) is not None else DEFAULT_THREADS
    with threadpool_limits(limits=int(threads)):
        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if blas:
            n = max(int(p.get("num_threads") or 1) for p in blas)
            libs = ", ".join(sorted({str(p.get("internal_api")) for p in blas}))
            text = f"{n} BLAS thread{'s' if n != 1 else ''} ({libs})"
        else:  # pragma: no cover - NumPy always loads a BLAS
            text = f"{threads} threads (no BLAS library found)"
        yield text

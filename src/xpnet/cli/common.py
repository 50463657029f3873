"""What the ``xpnet`` commands share: :class:`CommandError`, progress messages, checks of output paths before
work starts, and loading a dataset given on the command line."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import XpnetError


class CommandError(XpnetError, RuntimeError):
    """A command cannot go on (missing optional package, an output path that cannot be written, a model file
    that holds no estimator). Data that does not fit the model raises the library's own types (ShapeError,
    LabelError, DatasetError, ...)."""


def _say(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text)


def _check_output_dir(path: str | None, what: str, inputs: Any = ()) -> None:
    """Check an output before any work starts (:func:`xpnet.files.check_destination`): minutes of training must
    not end in "no such directory", and no output may replace a special file or one of the command's
    ``inputs``."""
    if path is None:
        return
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


def _load_dataset(source: str, label_column: str | None, seed: int) -> Any:
    from .. import datasets

    kwargs: dict[str, Any] = {"seed": seed}
    if label_column is not None:
        kwargs["label_column"] = int(label_column) if label_column.lstrip("-").isdigit() else label_column
    return datasets.load(source, **kwargs)


def _describe_data(ds: Any) -> str:
    if ds.task == "classification":
        import numpy as np

        return f"{ds.n_samples} samples, {ds.n_features} features, {len(np.unique(ds.y))} classes"
    return f"{ds.n_samples} samples, {ds.n_features} features, regression"

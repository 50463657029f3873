"""The paths model files are read from and written to, and the :class:`~xpnet.errors.ModelFileError` messages
that name them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ModelFileError


def _read_error(path: Any, reason: str) -> ModelFileError:
    return ModelFileError(f"cannot read model file '{os.fspath(path) if _is_pathlike(path) else path}': {reason}")


def _model_write_error(path: Any, reason: str) -> ModelFileError:
    return ModelFileError(f"cannot save model to '{os.fspath(path) if _is_pathlike(path) else path}': {reason}")


_write_error = _model_write_error


def _is_pathlike(path: Any) -> bool:
    return isinstance(path, (str, os.PathLike))


def _as_path(path: Any, error: Any) -> Path:
    if not _is_pathlike(path):
        raise error(path, f"a path must be a str or os.PathLike, got {type(path).__name__}")
    try:
        fs = os.fspath(path)
    except TypeError as exc:
        raise error(repr(path), f"not a usable path ({exc})") from exc
    if isinstance(fs, bytes):
        fs = os.fsdecode(fs)
    if not fs:
        raise error(fs, "the path is empty")
    if "\0" in fs:
        raise error(repr(fs), "the path contains a NUL character")
    return Path(fs)

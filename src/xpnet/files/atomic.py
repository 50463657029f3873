"""Atomic file writes: a temporary file in the target's directory, fsync, rename, then fsync of the directory.

Model files are written this way, so an interrupted save leaves the old file; :func:`write_file_atomically` does
the same for anything else that must never be left half-written (plots, predictions, benchmark results).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .paths import _model_write_error


def write_file_atomically(path: str | os.PathLike[str], data: bytes,
                          error: Callable[[Any, str], Exception] | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename), as model files are written: an
    interrupted write leaves the old file. A symbolic link is written through. An ``OSError`` becomes
    ``error(path, reason)`` (default :class:`ModelFileError`)."""
    target = Path(path).expanduser()
    _atomic_write(Path(os.path.realpath(target)), data, target, error)
    return target


def _atomic_write(real: Path, data: bytes, shown: Path, error: Callable[[Any, str], Exception] | None = None) -> None:
    """Write ``data`` to ``real`` through a temporary file in its directory, fsync, rename, fsync the directory.

    An ``OSError`` becomes ``error(shown, reason)`` (default: a :class:`ModelFileError` about saving a model);
    the target is then untouched and no temporary file is left.
    """
    fail = error or _model_write_error
    try:
        old_mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        old_mode = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    except OSError as exc:
        raise fail(shown, f"cannot create a temporary file in '{real.parent}' ({exc.strerror or exc})") \
            from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            # mkstemp makes the file 0600; a model file is not a secret, so use what a plain open() would give
            # a new file under the usual umask, or keep the permissions of the file being replaced.
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), old_mode if old_mode is not None else 0o644)
        os.replace(tmp_name, real)
    except BaseException as exc:
        # Also on KeyboardInterrupt: never leave a half-written temporary file behind.
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise fail(shown, f"writing failed ({exc.strerror or exc})") from exc
        raise
    _fsync_dir(real.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable where the OS allows fsync on a directory (POSIX); elsewhere skip quietly."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

"""The one safe writer: every file xpnet writes (models, checkpoints, predictions, plots, benchmark results)
goes through :func:`_atomic_write`.

A write goes to a temporary file in the target's directory (``.NAME.<random>.tmp``), is fsynced, renamed over
the target and the directory fsynced: an interrupted write leaves the old file. The writer also:

* refuses a destination that exists and is not a regular file (a directory, a FIFO, a device such as
  ``/dev/null``): the rename would replace it with a regular file;
* holds an advisory lock on its temporary file until the rename, and removes the temporaries of earlier
  writes of the same target whose writer is gone (killed between writing and renaming), never a live one's;
* with :func:`check_destination`, lets a command check a destination before any work starts: not a special
  file, not one of the command's own inputs (the same file, also through links or another name), and a file
  can be created in its directory (proved by creating and removing one).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .paths import _model_write_error

try:  # POSIX: advisory locks tell a live writer's temporary file from a dead one's
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale temporaries are left alone there
    fcntl = None  # type: ignore[assignment]

__all__ = ["check_destination", "remove_stale_temporaries", "write_file_atomically"]

# Temporary files are named ``.NAME.xpnet-XXXXXXXX.tmp``: the marker keeps the cleaner away from a user's files.
_MARK = "xpnet-"

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def _not_regular(real: Path) -> str | None:
    """What ``real`` is when it exists and is not a regular file (``"a FIFO (named pipe)"``), else None."""
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        # A link that points at itself (or round a cycle) is not a file to replace: writing would destroy the link.
        return "a symbolic link loop" if exc.errno == errno.ELOOP else None
    if stat.S_ISREG(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_destination(path: str | os.PathLike[str], *, inputs: Any = (), what: str = "output",
                      error: Callable[[Any, str], Exception] | None = None) -> Path:
    """Check, before any work starts, that ``path`` can be written by :func:`write_file_atomically` without
    destroying anything; returns the path.

    Refused (``error(path, reason)``, default :class:`~xpnet.errors.ModelFileError`): a destination that exists
    and is not a regular file; one that is the same file as one of ``inputs`` (paths the command reads: the
    dataset, the model), also through symbolic or hard links; a directory that does not exist or where no file
    can be created (a file is created there and removed). Stale temporaries of earlier writes of ``path`` are
    removed.
    """
    fail = error or _model_write_error
    text = os.fspath(path)
    target = Path(text).expanduser()
    if text.endswith(("/", os.sep)):
        raise fail(target, "the path ends with a separator, so it names a directory; name a file")
    real = Path(os.path.realpath(target))
    for where in (target.absolute(), real):
        if str(where).startswith(("/dev/", "/proc/")):
            raise fail(target, f"it is a device or a process's file ({where}); write {what} to a regular file (a "
                               "command's default output is standard output)")
    try:
        os.stat(target)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise fail(target, "it is a loop of symbolic links") from None
    kind = _not_regular(real)
    if kind is not None:
        hint = "; name a file inside it" if kind == "a directory" else ""
        raise fail(target, f"it is {kind}, which writing {what} would replace with a regular file{hint}")
    for source in inputs:
        if source is not None and os.path.exists(os.fspath(source)) and _same_file(real, Path(os.fspath(source))):
            raise fail(target, f"it is the same file as the input '{os.fspath(source)}', which writing {what} there "
                               "would destroy; choose another path")
    if not real.parent.is_dir():
        raise fail(target, f"directory '{real.parent}' does not exist; create it first")
    _check_replaceable(real, target, fail)
    _probe(real, target, fail)
    remove_stale_temporaries(real)
    return target


def _check_replaceable(real: Path, target: Path, fail: Callable[[Any, str], Exception]) -> None:
    """In a sticky directory (``/tmp``-like), only the owner of a file (or of the directory) may replace it."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None or geteuid() == 0:
        return
    try:
        directory, existing = os.stat(real.parent), os.stat(real)
    except OSError:
        return
    if directory.st_mode & stat.S_ISVTX and geteuid() not in (directory.st_uid, existing.st_uid):
        raise fail(target, f"it belongs to another user in the sticky directory '{real.parent}', where only its "
                           "owner may replace it; choose another path")


def _probe(real: Path, target: Path, fail: Callable[[Any, str], Exception]) -> None:
    """Prove a file can be created, renamed and removed in ``real``'s directory, as a write will do."""
    try:
        fd, probe = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.{_MARK}", suffix=".probe")
    except OSError as exc:
        raise fail(target, f"cannot create a file in '{real.parent}' ({exc.strerror or exc})") from exc
    os.close(fd)
    moved = probe[: -len(".probe")] + "x.probe"
    try:
        os.replace(probe, moved)
        probe = moved
    except OSError as exc:
        raise fail(target, f"cannot rename a file in '{real.parent}' ({exc.strerror or exc})") from exc
    finally:
        try:
            os.unlink(probe)
        except OSError as exc:
            raise fail(target, f"cannot remove a file in '{real.parent}' ({exc.strerror or exc})") from exc


def remove_stale_temporaries(real: Path) -> int:
    """Remove the temporary files that earlier writes of ``real`` left when their process was killed between
    writing and renaming (``.NAME.xpnet-XXXXXXXX.tmp``, and the ``.probe`` files of an interrupted
    :func:`check_destination`); returns how many. A temporary whose writer is alive is locked by it and left
    alone (POSIX advisory locks; without them, nothing is removed). A writer whose file was removed between its
    creation and its lock sees that (no links left) and starts again with a new one."""
    if fcntl is None:
        return 0
    pattern = re.compile(re.escape(f".{real.name}.{_MARK}") + r"[a-z0-9_]{8,9}\.(tmp|probe)")
    try:
        names = os.listdir(real.parent)
    except OSError:
        return 0
    removed = 0
    for name in names:
        if not pattern.fullmatch(name):
            continue
        try:
            if not stat.S_ISREG(os.lstat(real.parent / name).st_mode):  # never a FIFO to block on, nor a link
                continue
            fd = os.open(real.parent / name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken only when no live writer holds it
            os.unlink(real.parent / name)
            removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


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
    kind = _not_regular(real)
    if kind is not None:
        raise fail(shown, f"it is {kind}, which an atomic write would replace with a regular file")
    remove_stale_temporaries(real)
    try:
        old_mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        old_mode = None
    fd, tmp_name = _locked_temporary(real, shown, fail)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            # mkstemp makes the file 0600; a model file is not a secret, so use what a plain open() would give
            # a new file under the usual umask, or keep the permissions of the file being replaced.
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), old_mode if old_mode is not None else 0o666 & ~_umask())
            if fcntl is not None:
                os.replace(tmp_name, real)  # while the lock is held (renaming an open file is fine on POSIX)
        if fcntl is None:
            os.replace(tmp_name, real)  # Windows renames closed files only
    except BaseException as exc:
        # Also on KeyboardInterrupt: never leave a half-written temporary file behind.
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise fail(shown, f"writing failed ({exc.strerror or exc})") from exc
        raise
    _fsync_dir(real.parent)


def _locked_temporary(real: Path, shown: Path, fail: Callable[[Any, str], Exception]) -> tuple[int, str]:
    """A new temporary file beside ``real``, locked (where the filesystem has locks): ``(fd, name)``.

    A cleaner may remove a file between its creation and its lock (it is not locked yet): after locking, the
    file must still have a link, else another one is made."""
    for _ in range(5):
        try:
            fd, tmp_name = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.{_MARK}", suffix=".tmp")
        except OSError as exc:
            raise fail(shown, f"cannot create a temporary file in '{real.parent}' ({exc.strerror or exc})") \
                from exc
        if fcntl is None:
            return fd, tmp_name
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a filesystem without locks (some NFS, Lustre): write unlocked, as without fcntl
            return fd, tmp_name
        if os.fstat(fd).st_nlink > 0:
            return fd, tmp_name
        os.close(fd)  # removed before it was locked: take another
    raise fail(shown, f"cannot keep a temporary file in '{real.parent}': another process keeps removing it")


def _umask() -> int:
    """The process's umask: from ``/proc/self/status`` where Linux shows it (reading it so changes nothing),
    else by setting it and setting it back (the only portable way; another thread creating a file in that
    instant would see 022)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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

"""Safe model files: save and load xpnet models in the safetensors format.

A model file is a plain `safetensors <https://github.com/huggingface/safetensors>`_ file: an 8-byte
little-endian header length, a JSON header, then the raw tensor bytes. Loading one never runs code: there
is no pickle anywhere, so a model file from an untrusted source can at worst be refused, never executed.

The header's string-to-string ``__metadata__`` holds

- ``"format"``: always ``"xpnet"`` (how a foreign safetensors file is told apart);
- ``"format_version"``: :data:`FORMAT_VERSION` as a decimal string;
- ``"xpnet_version"``: the xpnet version that wrote the file (for error messages and ``read_metadata``);
- ``"xpnet"``: the JSON of the model's own metadata dict, which names its ``"kind"`` (``"DNN"``,
  ``"DNNClassifier"``, ...);
- ``"sha256"``: a SHA-256 of the tensors (names, dtypes, shapes, bytes) and ``"meta_sha256"`` one of the
  ``"xpnet"`` text, so a damaged file is refused rather than loaded as a different model.

Models take part through two methods:

- ``model._xpnet_export() -> (tensors, meta)``: host NumPy arrays by name, and a JSON-serializable dict
  with a string ``"kind"``;
- ``cls._xpnet_import(tensors, meta, backend) -> model`` (a classmethod), which may raise
  :class:`~xpnet.errors.ModelFileError` when the tensors do not fit the architecture ``meta`` declares.

``kind`` is looked up in a registry of ``"module:qualname"`` strings, imported only when a file of that
kind is loaded, so importing this module imports neither NumPy nor safetensors.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import (
    BackendSpecError,
    BackendUnavailableError,
    ConfigError,
    DeviceMismatchError,
    ModelFileError,
)

__all__ = [
    "FORMAT_VERSION",
    "load",
    "read_metadata",
    "read_model_file",
    "register_kind",
    "save",
    "write_model_file",
]

#: The model-file layout this xpnet writes, and the newest it reads. Bump it only for a change an older
#: xpnet would misread; adding an optional metadata key is not one.
FORMAT_VERSION = 1

# Model kind -> "module:qualname" (resolved with importlib when a file of that kind is loaded) or a class
# (put there by register_kind). Strings keep `import xpnet.io` from importing the estimators.
_KINDS: dict[str, str | type] = {
    "DNN": "xpnet.network:DNN",
    "DNNClassifier": "xpnet.estimators:DNNClassifier",
    "DNNRegressor": "xpnet.estimators:DNNRegressor",
}

# safetensors dtype tag -> (NumPy dtype name, item size). Only what the models hold: float parameters,
# integer counters/labels, boolean masks. Anything else in a file is refused before it is allocated.
_DTYPES: dict[str, tuple[str, int]] = {
    "F32": ("float32", 4),
    "F64": ("float64", 8),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "BOOL": ("bool", 1),
}

# Limits that keep a hostile or damaged file from asking for absurd amounts of memory.
_PREFIX_BYTES = 8
_MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
_MAX_FILE_BYTES = 16 * 1024**3  # a dense network this size is implausible; refuse rather than read it
_MAX_ELEMENTS = 2**31  # per tensor, exclusive
_MAX_NDIM = 32

_METADATA_KEY = "__metadata__"
_FORMAT_NAME = "xpnet"
_RESERVED_META_KEYS = ("format_version", "xpnet_version")  # read_metadata adds these; a model may not use them


# --------------------------------------------------------------------------------------------------------
# Registry


def register_kind(kind: str, cls: type | str, *, replace: bool = False) -> type | str:
    """Make files whose metadata says ``"kind": kind`` load as ``cls``.

    Parameters
    ----------
    kind : str
        The name a model's ``_xpnet_export`` metadata uses, usually its class name.
    cls : type or str
        A class with a ``_xpnet_import`` classmethod, or ``"module:qualname"`` to import it lazily.
    replace : bool
        Allow re-pointing a kind that is already registered to something else. Registering the same
        target again is always allowed.

    Returns
    -------
    type or str
        ``cls``, unchanged.

    Raises
    ------
    ConfigError
        ``kind`` is not a non-empty string, ``cls`` is neither a suitable class nor a ``"module:qualname"``
        string, or ``kind`` is taken and ``replace`` is false.
    """
    if not isinstance(kind, str) or not kind.strip():
        raise ConfigError(f"a model kind must be a non-empty string, got {kind!r}")
    if isinstance(cls, str):
        module, sep, qualname = cls.partition(":")
        if not sep or not module or not qualname:
            raise ConfigError(f"register_kind({kind!r}, {cls!r}): a string target must be 'module:qualname'")
    elif not isinstance(cls, type) or not callable(getattr(cls, "_xpnet_import", None)):
        raise ConfigError(
            f"register_kind({kind!r}, {cls!r}): expected a class with an _xpnet_import classmethod "
            "or a 'module:qualname' string"
        )
    current = _KINDS.get(kind)
    if current is not None and current != cls and not replace:
        raise ConfigError(f"model kind {kind!r} is already registered as {current!r}; pass replace=True to re-point it")
    _KINDS[kind] = cls
    return cls


def _resolve_kind(kind: str, path: Any) -> type:
    """The class registered for ``kind``, importing it if registered by name."""
    target = _KINDS.get(kind)
    if target is None:
        raise _read_error(path, f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(_KINDS))}")
    if isinstance(target, type):
        return target
    import importlib

    module_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        # The file is fine; this xpnet cannot build the class. Still a ModelFileError so that `load` has one
        # failure type, but the message says it is the installation, not the file.
        raise _read_error(
            path, f"model kind {kind!r} is registered as {target!r}, which cannot be imported "
            f"({type(exc).__name__}: {exc}); is this xpnet installation complete?"
        ) from exc
    if not callable(getattr(obj, "_xpnet_import", None)):
        raise _read_error(path, f"model kind {kind!r} resolves to {obj!r}, which has no _xpnet_import")
    return obj


# --------------------------------------------------------------------------------------------------------
# Errors


def _read_error(path: Any, reason: str) -> ModelFileError:
    return ModelFileError(f"cannot read model file '{os.fspath(path) if _is_pathlike(path) else path}': {reason}")


def _model_write_error(path: Any, reason: str) -> ModelFileError:
    return ModelFileError(f"cannot save model to '{os.fspath(path) if _is_pathlike(path) else path}': {reason}")


_write_error = _model_write_error


def write_file_atomically(path: str | os.PathLike[str], data: bytes,
                          error: Callable[[Any, str], Exception] | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename), as model files are written: an
    interrupted write leaves the old file. A symbolic link is written through. An ``OSError`` becomes
    ``error(path, reason)`` (default :class:`ModelFileError`)."""
    target = Path(path).expanduser()
    _atomic_write(Path(os.path.realpath(target)), data, target, error)
    return target


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


# --------------------------------------------------------------------------------------------------------
# Writing


def _check_meta_for_writing(meta: Any, path: Path) -> str:
    """The JSON text of ``meta``, after checking it can be loaded back."""
    if not isinstance(meta, dict):
        raise _write_error(path, f"the model's metadata must be a dict, got {type(meta).__name__}")
    kind = meta.get("kind")
    if not isinstance(kind, str) or not kind:
        raise _write_error(path, f"the model's metadata must name its kind as a non-empty string, got {kind!r}")
    if kind not in _KINDS:
        # Refuse now rather than write a file that load() would refuse later.
        raise _write_error(
            path, f"unknown model kind {kind!r}; register it first with xpnet.io.register_kind "
            f"(known kinds: {', '.join(sorted(_KINDS))})"
        )
    clash = [k for k in _RESERVED_META_KEYS if k in meta]
    if clash:
        raise _write_error(path, f"the model's metadata uses reserved key(s) {clash}")
    try:
        # NaN/Infinity stay allowed (Python's json reads them back): a diverged model can still be saved.
        return json.dumps(meta, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise _write_error(path, f"the model's metadata is not JSON-serializable ({exc})") from exc


def _check_tensors_for_writing(tensors: Any, path: Path) -> dict[str, Any]:
    """Contiguous, native-byte-order arrays of an allowed dtype, by name."""
    import numpy as np

    if not isinstance(tensors, dict):
        raise _write_error(path, f"the model's tensors must be a dict, got {type(tensors).__name__}")
    allowed = {np.dtype(name) for name, _ in _DTYPES.values()}
    out: dict[str, Any] = {}
    for name, arr in tensors.items():
        if not isinstance(name, str) or not name or name == _METADATA_KEY:
            raise _write_error(path, f"tensor name {name!r} is not allowed (a non-empty string other than "
                                     f"{_METADATA_KEY!r})")
        if not isinstance(arr, np.ndarray):
            raise _write_error(path, f"tensor {name!r} is a {type(arr).__name__}, not a NumPy array; "
                                     "move it to the host first (xpnet.to_numpy)")
        # A big-endian float32 is still float32: normalise the byte order rather than refuse it.
        native = arr.dtype.newbyteorder("=") if arr.dtype.byteorder not in ("=", "|") else arr.dtype
        if native not in allowed:
            raise _write_error(path, f"tensor {name!r} has dtype {arr.dtype}; model files hold only "
                                     "float32, float64, int64, int32 and bool")
        if arr.size >= _MAX_ELEMENTS:
            raise _write_error(path, f"tensor {name!r} has {arr.size} elements; model files hold at most "
                                     f"{_MAX_ELEMENTS - 1} per tensor")
        # A NaN weight predicts class 0 (argmax of NaN) without a word: refuse it here rather than at load.
        if native.kind == "f" and not bool(np.isfinite(arr).all()):
            raise _write_error(path, f"tensor {name!r} holds NaN/inf ({_first_non_finite(arr)}); a model with "
                                     "non-finite numbers would predict nonsense. Train it with a lower learning "
                                     "rate, or keep the last finite parameters")
        # safetensors copies from the data pointer as if the array were C-contiguous, so a strided view
        # would be written as garbage without this. (Not ascontiguousarray: it turns a 0-d array into 1-d.)
        out[name] = np.asarray(arr, dtype=native, order="C")
    return out


def _first_non_finite(arr: Any) -> str:
    """Where a float array's first NaN or inf is, and what it is: ``'nan at index (0, 2)'``."""
    import numpy as np

    flat = int(np.flatnonzero(~np.isfinite(arr.reshape(-1)))[0])
    index = tuple(int(i) for i in np.unravel_index(flat, arr.shape))
    return f"{arr.reshape(-1)[flat]} at index {index}"


def write_model_file(path: str | os.PathLike[str], tensors: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``meta`` to ``path`` atomically: the file is either the old one or the new one.

    Parameters
    ----------
    path : str or os.PathLike
        The target file; its directory must exist. An existing file is replaced (keeping its permission
        bits); a symbolic link is written through, not replaced.
    tensors : dict of str -> numpy.ndarray
        float32, float64, int64, int32 or bool arrays, each with fewer than ``2**31`` elements; float ones
        must be finite (a NaN or inf is refused).
    meta : dict
        JSON-serializable; ``meta["kind"]`` must be registered (see :func:`register_kind`).

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    ModelFileError
        On any failure (bad tensors or metadata, missing directory, I/O error); the target is then left as
        it was and no temporary file is left behind.
    """
    target = _as_path(path, _write_error)
    meta_json = _check_meta_for_writing(meta, target)
    arrays = _check_tensors_for_writing(tensors, target)

    from . import __version__

    header_meta = {
        "format": _FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "xpnet_version": str(__version__),
        "xpnet": meta_json,
        # safetensors has no checksum: without one a flipped bit in a weight would load as a silently wrong model.
        "sha256": _digest(arrays),
        # ... and one in the metadata could turn classes [0, 1, 2] into [1, 1, 2]: it gets its own checksum.
        "meta_sha256": _text_digest(meta_json),
    }
    try:
        import safetensors.numpy

        data = safetensors.numpy.save(arrays, metadata=header_meta)
    except Exception as exc:
        raise _write_error(target, f"safetensors could not serialize the tensors ({type(exc).__name__}: {exc})") \
            from exc
    if len(data) > _MAX_FILE_BYTES:
        raise _write_error(target, f"the file would be {len(data)} bytes; model files are limited to "
                                   f"{_MAX_FILE_BYTES} bytes")

    # Write through a symlink to its file, so the temporary file is on the same filesystem as what it replaces.
    real = Path(os.path.realpath(target))
    parent = real.parent
    if not parent.exists():
        raise _write_error(target, f"directory '{parent}' does not exist; create it first")
    if not parent.is_dir():
        raise _write_error(target, f"'{parent}' is not a directory")
    if real.is_dir():
        raise _write_error(target, "it is a directory; give a file name such as 'model.safetensors'")
    _atomic_write(real, data, target)
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


def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``model`` to ``path`` as a safetensors model file, atomically.

    Parameters
    ----------
    model : object with ``_xpnet_export()``
        A :class:`~xpnet.network.DNN`, ``DNNClassifier`` or ``DNNRegressor`` (or a registered kind).
    path : str or os.PathLike
        The file to write; its directory must exist. The conventional suffix is ``.safetensors``; none is
        added.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ModelFileError
        On any failure; an existing file at ``path`` is then left untouched.
    """
    target = _as_path(path, _write_error)
    export = getattr(model, "_xpnet_export", None)
    if not callable(export):
        raise _write_error(target, f"{type(model).__name__} is not an xpnet model (it has no _xpnet_export)")
    result = export()
    if not isinstance(result, tuple) or len(result) != 2:
        raise _write_error(target, f"{type(model).__name__}._xpnet_export() must return (tensors, meta)")
    tensors, meta = result
    return write_model_file(target, tensors, meta)


# --------------------------------------------------------------------------------------------------------
# Reading


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON allows repeated keys and the last one wins; two readers could then disagree about a tensor.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_entries(header: dict[str, Any], data_len: int, path: Any) -> None:
    """Check every tensor entry against the allowed dtypes and the file's size, before anything is allocated."""
    spans = []
    for name, entry in header.items():
        if name == _METADATA_KEY:
            continue
        if not isinstance(entry, dict):
            raise _read_error(path, f"corrupt header: tensor {name!r} is described by a "
                                    f"{type(entry).__name__}, not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise _read_error(path, f"tensor {name!r} has dtype {dtype!r}; xpnet model files hold only "
                                    f"{', '.join(_DTYPES)}")
        if not isinstance(shape, list) or len(shape) > _MAX_NDIM or not all(_is_int(d) and d >= 0 for d in shape):
            raise _read_error(path, f"corrupt header: tensor {name!r} has shape {shape!r}; expected a list of at "
                                    f"most {_MAX_NDIM} non-negative integers")
        # Each dimension too, since a zero elsewhere would let a single absurd one through.
        count = 1
        for d in shape:
            count *= min(d, _MAX_ELEMENTS)
        if count >= _MAX_ELEMENTS or any(d >= _MAX_ELEMENTS for d in shape):
            raise _read_error(path, f"tensor {name!r} claims shape {shape}, too large (model files hold fewer "
                                    f"than {_MAX_ELEMENTS} elements per tensor); the file is corrupt")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_len):
            raise _read_error(path, f"corrupt or truncated: tensor {name!r} has data_offsets {offsets!r}, "
                                    f"outside the {data_len} data bytes in the file")
        nbytes = count * _DTYPES[dtype][1]
        if offsets[1] - offsets[0] != nbytes:
            raise _read_error(path, f"corrupt header: tensor {name!r} of shape {shape} and dtype {dtype} needs "
                                    f"{nbytes} bytes but data_offsets {offsets} span {offsets[1] - offsets[0]}")
        spans.append((offsets[0], offsets[1], name))
    # safetensors wants the tensors to tile the data exactly; say so in our words rather than its.
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise _read_error(path, f"corrupt header: tensor {name!r} starts at byte {begin} of the data, "
                                    f"expected {position} (tensor data overlaps or leaves a gap)")
        position = end
    if position != data_len:
        raise _read_error(path, f"corrupt or truncated: the tensors cover {position} data bytes but the file "
                                f"holds {data_len}")


def _parse_header(raw: bytes, data_len: int, path: Any) -> tuple[dict[str, Any], dict[str, Any], int, str]:
    """Validate a header; return ``(header, model_meta, format_version, xpnet_version)``."""
    try:
        text = raw.decode("utf-8")
        header = json.loads(text, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _read_error(path, f"corrupt header: not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _read_error(path, f"corrupt header: expected a JSON object, got {type(header).__name__}")

    file_meta = header.get(_METADATA_KEY)
    if file_meta is None or not isinstance(file_meta, dict) or file_meta.get("format") != _FORMAT_NAME:
        raise _read_error(path, "not an xpnet model file (its safetensors metadata has no format='xpnet'; "
                                "was it written by another tool?); save models with xpnet.io.save")
    if not all(isinstance(v, str) for v in file_meta.values()):
        raise _read_error(path, "corrupt header: safetensors metadata values must all be strings")

    written_by = file_meta.get("xpnet_version", "unknown")
    version_text = file_meta.get("format_version")
    if not isinstance(version_text, str) or not re.fullmatch(r"[0-9]{1,9}", version_text) \
            or int(version_text) < 1:
        raise _read_error(path, f"corrupt header: format_version {version_text!r} is not a positive integer")
    format_version = int(version_text)
    if format_version > FORMAT_VERSION:
        from . import __version__

        # Checked before the tensor entries: a newer format may describe them differently, and "upgrade"
        # is the useful message.
        raise _read_error(path, f"written by xpnet {written_by} (format {format_version}); this xpnet "
                                f"{__version__} reads format <= {FORMAT_VERSION}: upgrade xpnet "
                                "(pip install -U xpnet)")

    _check_entries(header, data_len, path)

    model_text = file_meta.get("xpnet")
    if model_text is None:
        raise _read_error(path, "corrupt header: the 'xpnet' model metadata is missing")
    # Files from before the metadata checksum have none and are read as before; a single damaged bit either
    # hits the key's name (and leaves the metadata intact) or the metadata (and is caught here).
    meta_digest = file_meta.get("meta_sha256")
    if meta_digest is not None and _text_digest(model_text) != meta_digest:
        raise _read_error(path, "corrupt file: the model metadata does not match the checksum in its header (the "
                                "file was damaged after it was written)")
    try:
        meta = json.loads(model_text, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError) as exc:
        raise _read_error(path, f"corrupt header: the 'xpnet' model metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise _read_error(path, f"corrupt header: the 'xpnet' model metadata is a {type(meta).__name__}, "
                                "not a JSON object")
    kind = meta.get("kind")
    if not isinstance(kind, str):
        raise _read_error(path, f"corrupt header: the model metadata's 'kind' is {kind!r}, not a string")
    if kind not in _KINDS:
        raise _read_error(path, f"unknown model kind {kind!r} (known kinds: {', '.join(sorted(_KINDS))}); "
                                "was it written by a newer xpnet or a plugin that is not imported?")
    return header, meta, format_version, written_by


def _open_checked(path: Any) -> tuple[Path, int]:
    """The path and its size, after the checks that need no reading."""
    p = _as_path(path, _read_error)
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise _read_error(p, "no such model file (check the path)") from exc
    except OSError as exc:
        raise _read_error(p, f"cannot stat it ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise _read_error(p, "it is a directory, not a model file")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or device could block forever or never end.
        raise _read_error(p, "not a regular file")
    size = st.st_size
    if size == 0:
        raise _read_error(p, "the file is empty (was saving interrupted?)")
    if size < _PREFIX_BYTES:
        raise _read_error(p, f"corrupt or truncated: only {size} bytes, too short for a safetensors file")
    if size > _MAX_FILE_BYTES:
        raise _read_error(p, f"the file is {size} bytes, larger than any plausible model file "
                             f"({_MAX_FILE_BYTES} bytes); refusing to read it")
    return p, size


def _read_header(fh: Any, size: int, path: Any) -> tuple[bytes, int]:
    """The raw header bytes and the length of the data that follows them."""
    prefix = fh.read(_PREFIX_BYTES)
    if len(prefix) != _PREFIX_BYTES:
        raise _read_error(path, "corrupt or truncated: the file shrank while it was read")
    n = int.from_bytes(prefix, "little")
    if n > size - _PREFIX_BYTES or n > _MAX_HEADER_BYTES:
        raise _read_error(path, f"corrupt or truncated: the header claims {n} bytes but the file holds "
                                f"{size - _PREFIX_BYTES} after the length prefix (limit {_MAX_HEADER_BYTES})")
    if n < 2:
        raise _read_error(path, f"corrupt or truncated: a header of {n} bytes cannot be a JSON object")
    raw = fh.read(n)
    if len(raw) != n:
        raise _read_error(path, "corrupt or truncated: the file shrank while it was read")
    return raw, size - _PREFIX_BYTES - n


def _guarded(path: Any, action: Any) -> Any:
    """Run ``action``; turn anything but ModelFileError, MemoryError and BaseExceptions into ModelFileError."""
    try:
        return action()
    except (ModelFileError, MemoryError):
        raise
    except OSError as exc:
        raise _read_error(path, f"reading failed ({exc.strerror or exc})") from exc
    except Exception as exc:  # a bad file must not surface as some other exception type
        raise _read_error(path, f"corrupt file ({type(exc).__name__}: {exc})") from exc


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe a model file without loading its tensors.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        The model's metadata (``kind`` and whatever the model stored), plus ``"format_version"`` (int) and
        ``"xpnet_version"`` (str, the version that wrote the file).

    Raises
    ------
    ModelFileError
        The file is missing, corrupt, not an xpnet model file, of a newer format or of an unknown kind.
    """
    p, size = _open_checked(path)

    def action() -> dict[str, Any]:
        with open(p, "rb") as fh:
            raw, data_len = _read_header(fh, size, p)
        _, meta, format_version, written_by = _parse_header(raw, data_len, p)
        return {**meta, "format_version": format_version, "xpnet_version": written_by}

    return _guarded(p, action)


def _text_digest(text: str) -> str:
    """SHA-256 of the model metadata's JSON text (UTF-8; a lone surrogate a crafted header may hold is passed)."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _digest(arrays: dict[str, Any]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = arrays[name]
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes(order="C"))
    return h.hexdigest()


def read_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read and validate a model file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    tensors : dict of str -> numpy.ndarray
        Writeable host arrays, owning their memory.
    meta : dict
        The model's metadata exactly as ``_xpnet_export`` gave it (after a JSON round trip).

    Raises
    ------
    ModelFileError
        For every kind of bad file (missing, a directory, empty, truncated, corrupt, foreign, newer format,
        disallowed dtype, absurd shapes, NaN/inf in a float tensor, unknown kind); the message names the path
        and the reason. The header is checked before any tensor memory is allocated.
    """
    p, size = _open_checked(path)

    def action() -> tuple[dict[str, Any], dict[str, Any]]:
        with open(p, "rb") as fh:
            raw, data_len = _read_header(fh, size, p)
            header, meta, _, _ = _parse_header(raw, data_len, p)
            fh.seek(0)
            data = fh.read(size + 1)  # one more: to notice a file that grew since it was checked
        if len(data) != size:
            raise _read_error(p, "corrupt or truncated: the file changed while it was read")

        import numpy as np
        import safetensors.numpy

        loaded = safetensors.numpy.load(data)
        del data
        tensors: dict[str, Any] = {}
        for name, entry in header.items():
            if name == _METADATA_KEY:
                continue
            arr = loaded.get(name)
            want_dtype = np.dtype(_DTYPES[entry["dtype"]][0])
            if arr is None or arr.dtype != want_dtype or list(arr.shape) != entry["shape"]:
                raise _read_error(p, f"corrupt file: tensor {name!r} did not load as declared")
            # safetensors hands back read-only views of its buffer; models train in place, so own a copy.
            tensors[name] = np.array(arr, copy=True)
        if len(loaded) != len(tensors):
            raise _read_error(p, "corrupt file: it holds tensors its header does not declare")
        expected = header.get(_METADATA_KEY, {}).get("sha256")
        if expected is None:
            raise _read_error(p, "corrupt file: its header has no checksum (sha256) of the tensors")
        if _digest(tensors) != expected:
            raise _read_error(p, "corrupt file: the tensors do not match the checksum in its header (the file "
                                 "was damaged after it was written)")
        for name, arr in tensors.items():
            # Not written by xpnet (it refuses to save them): a NaN weight would predict class 0 silently.
            if arr.dtype.kind == "f" and not bool(np.isfinite(arr).all()):
                raise _read_error(p, f"tensor {name!r} holds NaN/inf ({_first_non_finite(arr)}); a model with "
                                     "non-finite numbers would predict nonsense")
        return tensors, meta

    return _guarded(p, action)


def _check_declared_size(tensors: dict[str, Any], meta: dict[str, Any], path: Any) -> None:
    """Refuse metadata that declares more parameters than the file's tensors hold, before anything is built.

    The built-in kinds declare their architecture as ``meta["network"]["layer_dims"]`` and construct (and
    randomly initialize) that network before they compare it with the tensors, so a forged ``[10**9, 10**9]``
    in a file of a few kilobytes would otherwise ask for exabytes, or hours of random numbers.
    """
    arch = meta.get("network")
    dims = arch.get("layer_dims") if isinstance(arch, dict) else None
    if not isinstance(dims, list) or len(dims) < 2 or not all(_is_int(d) and d >= 1 for d in dims):
        return  # not sizes this check can count; the model class says what is wrong with them
    declared = sum(n * (m + 1) for m, n in itertools.pairwise(dims))  # W is (n, m) and b is (n, 1)
    held = sum(int(t.size) for t in tensors.values())
    if declared > held:
        text = repr(dims)
        if len(text) > 80:
            text = f"{text[:60]}... ({len(dims)} sizes)"
        raise _read_error(path, f"its metadata declares layer_dims {text}, a network of {declared} parameters, "
                                f"but the file holds {held} numbers; the metadata is corrupt")


def load(path: str | os.PathLike[str], backend: Any = None) -> Any:
    """Load a model saved with :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike
    backend : spec string, Backend or None
        Where the model's parameters go (passed to the model class's ``_xpnet_import``); ``None`` for the
        current default backend.

    Returns
    -------
    object
        An instance of the class registered for the file's ``kind``.

    Raises
    ------
    ModelFileError
        The file is bad (see :func:`read_model_file`), its metadata declares a network with more parameters
        than the file holds (checked before the model is built), or its tensors or metadata do not fit the
        model it declares (any other exception from rebuilding the model, except ``MemoryError``, is reported
        as one, chained). The message always names the file.
    BackendSpecError, BackendUnavailableError, DeviceMismatchError
        From ``backend``: these are about the caller's choice of backend, not the file, so they pass through.
    """
    tensors, meta = read_model_file(path)
    shown = _as_path(path, _read_error)
    _check_declared_size(tensors, meta, shown)
    cls = _resolve_kind(meta["kind"], shown)
    try:
        return cls._xpnet_import(tensors, meta, backend)
    except (BackendSpecError, BackendUnavailableError, DeviceMismatchError, MemoryError):
        raise
    except ModelFileError as exc:
        # The model class says what is wrong with "the file"; make sure the message also says which file.
        if os.fspath(shown) in str(exc):
            raise
        raise _read_error(shown, str(exc)) from exc
    except Exception as exc:
        # Not only KeyError/TypeError/ValueError: int() of a metadata number that JSON read as 1e400 raises
        # OverflowError, and a bad file must not surface as some other exception type.
        raise _read_error(shown, f"its contents do not describe a valid {meta['kind']} "
                                 f"({type(exc).__name__}: {exc})") from exc

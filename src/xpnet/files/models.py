"""Model files: :func:`save` and :func:`load` a model; :func:`write_model_file`, :func:`read_model_file` and
:func:`read_metadata` for the tensors and metadata of one."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

from ..errors import (
    BackendSpecError,
    BackendUnavailableError,
    DeviceMismatchError,
    ModelFileError,
)
from .atomic import _atomic_write
from .format import (
    _DTYPES,
    _MAX_FILE_BYTES,
    _METADATA_KEY,
    _check_tensors_for_writing,
    _digest,
    _first_non_finite,
    _guarded,
    _is_int,
    _open_checked,
    _read_header,
    _text_digest,
)
from .metadata import _FORMAT_NAME, FORMAT_VERSION, _check_meta_for_writing, _parse_header, _resolve_kind
from .paths import _as_path, _read_error, _write_error
from .schema import validate_metadata

# --------------------------------------------------------------------------------------------------------
# Writing


def write_model_file(path: str | os.PathLike[str], tensors: dict[str, Any], meta: dict[str, Any], *,
                     check_schema: bool = False) -> Path:
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
        JSON-serializable (NumPy scalars are written as Python numbers); ``meta["kind"]`` must be registered (see
        :func:`register_kind`).
    check_schema : bool
        Also check ``meta`` against its kind's schema, as :func:`load` will (:mod:`xpnet.files.schema`), so that
        no file is written that load would refuse (:func:`save` does; off, this writes what a forger would).

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
    if check_schema:  # as JSON gives it back (tuples as lists): never a file that load() would refuse
        validate_metadata(json.loads(meta_json), target, writing=True)
    arrays = _check_tensors_for_writing(tensors, target)

    from .._version import __version__

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
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # also pyo3's PanicException (a BaseException) from the library's Rust code
        raise _write_error(target, f"safetensors could not serialize the tensors ({type(exc).__name__}: {exc})") \
            from exc
    if len(data) > _MAX_FILE_BYTES:
        raise _write_error(target, f"the file would be {len(data)} bytes; model files are limited to "
                                   f"{_MAX_FILE_BYTES} bytes")

    # Write through a symlink to its file, so the temporary file is on the same filesystem as what it replaces.
    try:
        real = Path(os.path.realpath(target))
        parent = real.parent
        if not parent.exists():
            raise _write_error(target, f"directory '{parent}' does not exist; create it first")
        if not parent.is_dir():
            raise _write_error(target, f"'{parent}' is not a directory")
        if real.is_dir():
            raise _write_error(target, "it is a directory; give a file name such as 'model.safetensors'")
    except OSError as exc:  # a name too long for the filesystem, a symbolic link loop, no permission
        raise _write_error(target, f"cannot use this path ({exc.strerror or exc})") from exc
    _atomic_write(real, data, target)
    return target


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
    return write_model_file(target, tensors, meta, check_schema=True)


# --------------------------------------------------------------------------------------------------------
# Reading


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
        validate_metadata(meta, p)
        return {**meta, "format_version": format_version, "xpnet_version": written_by}

    return _guarded(p, action)


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
        validate_metadata(meta, p)
        tensors = _read_tensors(p, header)
        expected = header.get(_METADATA_KEY, {}).get("sha256")
        if expected is None:
            raise _read_error(p, "corrupt file: its header has no checksum (sha256) of the tensors")
        # The checksum also catches a file replaced or changed between the header check and the tensor reads.
        if _digest(tensors) != expected:
            raise _read_error(p, "corrupt file: the tensors do not match the checksum in its header (the file "
                                 "was damaged after it was written)")
        import numpy as np

        for name, arr in tensors.items():
            # Not written by xpnet (it refuses to save them): a NaN weight would predict class 0 silently.
            if arr.dtype.kind == "f" and not bool(np.isfinite(arr).all()):
                raise _read_error(p, f"tensor {name!r} holds NaN/inf ({_first_non_finite(arr)}); a model with "
                                     "non-finite numbers would predict nonsense")
        return tensors, meta

    return _guarded(p, action)


def _read_tensors(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    """The tensors a checked header declares, read one at a time into arrays of their own.

    safetensors' ``safe_open`` reads each tensor's bytes from the file (``pread``, or a memory map on versions
    without that backend) instead of the whole file into one buffer first: loading peaks at about the tensors'
    own size plus at most one file's worth, not three (bytes, safetensors' view, the copies).
    """
    import numpy as np
    from safetensors import safe_open

    try:
        handle = safe_open(path, framework="numpy", backend="pread")
    except TypeError:  # safetensors before the backend option: memory-mapped
        handle = safe_open(path, framework="numpy")
    tensors: dict[str, Any] = {}
    with handle as f:
        declared = {name for name in header if name != _METADATA_KEY}
        if set(f.keys()) != declared:
            raise _read_error(path, "corrupt or changed file: its tensors are not the ones its header declares")
        if (f.metadata() or {}) != header.get(_METADATA_KEY, {}):
            raise _read_error(path, "the file changed while it was read (its metadata differs between two reads)")
        for name in sorted(declared):
            entry = header[name]
            arr = f.get_tensor(name)
            want_dtype = np.dtype(_DTYPES[entry["dtype"]][0])
            if arr.dtype != want_dtype or list(arr.shape) != entry["shape"]:
                raise _read_error(path, f"corrupt file: tensor {name!r} did not load as declared")
            # Models train in place: an array of their own, writeable (a copy only when safetensors lent a view).
            if not (arr.flags.writeable and arr.flags.c_contiguous) or _borrows_file(arr):
                arr = np.array(arr, copy=True)
            tensors[name] = arr
    return tensors


def _borrows_file(arr: Any) -> bool:
    """Whether ``arr``'s memory is lent by something other than an array or buffer of its own (a memory map)."""
    import numpy as np

    base = arr
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    if isinstance(base, memoryview):
        # safetensors reads each tensor into a bytearray of its own (pread and mmap backends alike).
        return base.readonly or not isinstance(base.obj, bytearray)
    return not isinstance(base, np.ndarray)


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

"""``.npz`` dataset files: :func:`load_npz` reads arrays ``X`` and ``y``, checking every member's header against
the bytes the archive holds before NumPy allocates anything, and refusing pickled (object) arrays."""

from __future__ import annotations

import math
import os
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from .checks import _check_arrays, _existing_file

# What zipfile, zlib and numpy raise for a damaged archive. zipfile raises NotImplementedError for zip features it
# lacks (a flipped flag bit says "strong encryption") and RuntimeError for an encrypted member.
_ZIP_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)

# deflate expands at most 1032-fold: a member that claims more than this per compressed byte lies about its size.
_MAX_DEFLATE_RATIO = 1100


def _check_npz_member(archive: zipfile.ZipFile, key: str, p: Path, corrupt: str) -> None:
    """Check the ``.npy`` header of member ``key`` against the bytes the archive holds for it, before numpy
    allocates the array it declares: a forged header in a file of a few kilobytes could otherwise ask for
    terabytes (or overflow numpy's size computation)."""
    import numpy as np

    name = key if key in archive.namelist() else f"{key}.npy"  # numpy.load's own lookup order
    info = archive.getinfo(name)
    if info.flag_bits & 0x1:
        raise DatasetError(f"cannot load '{p}': array {key!r} is encrypted. Expected an archive written by "
                           f"numpy.savez; write the file again")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise DatasetError(f"cannot load '{p}': array {key!r} is compressed with zip method {info.compress_type}; "
                           f"numpy.savez and numpy.savez_compressed write stored or deflated members. Write the "
                           f"file again with one of those")
    ratio = 1 if info.compress_type == zipfile.ZIP_STORED else _MAX_DEFLATE_RATIO
    if info.file_size > ratio * info.compress_size + 64 or info.compress_size > p.stat().st_size:
        raise DatasetError(corrupt)
    try:
        with archive.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):  # 3.0 only re-encodes the header text (utf8 field names)
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unknown .npy format version {version}")
            header_bytes = fh.tell()
    except _ZIP_ERRORS as exc:
        raise DatasetError(corrupt) from exc
    # numpy needs every size to fit a C long, also for an empty array (a zero elsewhere in the shape).
    if any(d < 0 for d in shape) or math.prod(d or 1 for d in shape) * max(dtype.itemsize, 1) > sys.maxsize:
        raise DatasetError(f"cannot load '{p}': array {key!r} claims shape {shape} of {dtype}, larger than any array "
                           f"can be; the file is corrupt. Write it again with numpy.savez(path, X=X, y=y)")
    if dtype.hasobject:
        return  # numpy refuses it (allow_pickle=False) and load_npz says why
    declared = math.prod(shape) * dtype.itemsize
    if header_bytes + declared != info.file_size:
        raise DatasetError(f"cannot load '{p}': array {key!r} claims shape {shape} of {dtype} ({declared} bytes) "
                           f"but the archive holds {info.file_size - header_bytes} bytes for it; the file is "
                           f"corrupt or truncated. Write it again with numpy.savez(path, X=X, y=y)")


def _read_npz_arrays(fh: Any, p: Path, corrupt: str) -> dict[str, Any]:
    """``X`` and ``y`` from the open archive ``fh``, every failure a DatasetError."""
    import numpy as np

    errors = _ZIP_ERRORS
    try:
        data = np.load(fh, allow_pickle=False)
    except errors as exc:
        raise DatasetError(corrupt) from exc
    if not hasattr(data, "files"):  # a .npy header in front of a zip: numpy read a single array
        raise DatasetError(corrupt)
    arrays = {}
    with data:
        found = list(data.files)
        missing = [k for k in ("X", "y") if k not in found]
        if missing:
            raise DatasetError(f"cannot load '{p}': no array named {' or '.join(map(repr, missing))}. Expected "
                               f"arrays 'X' and 'y', found {', '.join(map(repr, found)) or 'no arrays'}; save them "
                               f"under those names: numpy.savez(path, X=X, y=y)")
        for key in ("X", "y"):
            _check_npz_member(data.zip, key, p, corrupt)
            try:
                arrays[key] = data[key]
            except ValueError as exc:
                # numpy's own words for an object array read with allow_pickle=False.
                if "allow_pickle" in str(exc) or "bject" in str(exc):
                    raise DatasetError(f"cannot load '{p}': array {key!r} holds Python objects (dtype=object), "
                                       f"which xpnet refuses to unpickle because that can run arbitrary code. "
                                       f"Expected numbers or str; save e.g. numpy.asarray({key}, dtype=numpy."
                                       f"{'float64' if key == 'X' else 'int64'}) or .astype(str)") from exc
                raise DatasetError(corrupt) from exc
            except errors as exc:
                raise DatasetError(corrupt) from exc
    return arrays


def load_npz(path: str | os.PathLike[str]) -> tuple[Any, Any]:
    """Read ``X`` and ``y`` from an ``.npz`` archive, as written by ``numpy.savez(path, X=X, y=y)``.

    The archive must hold arrays named ``X`` (2-D, bool/int/float, returned as float64) and ``y`` (1-D or
    ``(n, 1)``, numbers or str, one label per row of ``X``; bool becomes int64). Other arrays are ignored.
    Pickled (object) arrays are refused, because unpickling can run arbitrary code.

    Returns ``X`` (n_samples, n_features) float64 and ``y`` (n_samples,).

    Raises
    ------
    DatasetError
        Missing file, not an npz archive, corrupt data, a missing ``X`` or ``y``, an object array, arrays
        of the wrong shape or dtype, or NaN/inf in either.
    """
    import numpy as np

    p = _existing_file(path, ".npz")
    corrupt = (f"cannot load '{p}': it is not a readable npz archive (corrupt, truncated or another format). "
               f"Expected a zip of .npy arrays as written by numpy.savez(path, X=X, y=y); write the file again")
    # numpy.load reads a non-zip file as .npy or as a pickle; checking for a zip first gives every such file the
    # same clear error and never lets numpy near the pickle path.
    if not zipfile.is_zipfile(p):
        raise DatasetError(corrupt)
    # Our own handle, closed here: numpy.load leaves the one it opens unclosed when the zip directory is corrupt.
    try:
        with open(p, "rb") as fh:
            arrays = _read_npz_arrays(fh, p, corrupt)
    except OSError as exc:  # opening it: reading errors are DatasetErrors already
        raise DatasetError(f"cannot load '{p}': {exc.strerror or exc}. Expected a readable .npz file; check its "
                           f"permissions") from exc
    return _check_arrays(np.asarray(arrays["X"]), np.asarray(arrays["y"]), f"'{p}'")

"""The safetensors container of a model file, whatever model it holds.

The dtypes and size limits; the checks of the tensors before they are written; the checks of a file's size, its
length prefix and its header's tensor entries before anything is allocated; the SHA-256 digests of the tensors and
of the metadata text. NumPy is imported inside the functions that use it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ..errors import ModelFileError
from .paths import _as_path, _read_error, _write_error

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


# --------------------------------------------------------------------------------------------------------
# Writing


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
                                f"{size - _PREFIX_BYTES} after the length prefix (limit {_MAX_HEADER_BYTES})"
                                f"{_foreign_hint(prefix, n)}")
    if n < 2:
        raise _read_error(path, f"corrupt or truncated: a header of {n} bytes cannot be a JSON object")
    raw = fh.read(n)
    if len(raw) != n:
        raise _read_error(path, "corrupt or truncated: the file shrank while it was read")
    return raw, size - _PREFIX_BYTES - n


# The first bytes of files people mistake for a model file (an exported graph, another library's weights).
_FOREIGN_MAGIC = ((b"PK\x03\x04", "a zip archive (an .npz, or a PyTorch .pt/.pth file)"),
                  (b"\x89HDF", "an HDF5 file (e.g. Keras .h5)"), (b"\x80", "a Python pickle"),
                  (b"\x93NUMPY", "a NumPy .npy array"), (b"\x08", "an ONNX model or another protobuf"),
                  (b"PAR1", "a Parquet file"))


def _foreign_hint(prefix: bytes, claimed: int) -> str:
    """A clause naming what the file seems to be when its first 8 bytes cannot be a safetensors header length.

    A truncated or bit-flipped xpnet file keeps a plausible length (at most ``_MAX_HEADER_BYTES``); a length
    beyond that means the file never was safetensors, so say so, with the format its magic bytes suggest."""
    if claimed <= _MAX_HEADER_BYTES:
        return ""
    kind = next((name for magic, name in _FOREIGN_MAGIC if prefix.startswith(magic)), None)
    if kind is None and prefix and all(32 <= b < 127 or b in b"\t\r\n" for b in prefix.removeprefix(b"\xef\xbb\xbf")):
        kind = "text (a CSV or other data file)"  # a safetensors length prefix always holds a zero high byte
    seems = f"; it looks like {kind}" if kind else ""
    return (f". It is probably not a model file written by xpnet{seems}: give the file that xpnet.save or "
            "'xpnet train --out' wrote")


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
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        # The format library's Rust code reports a failed allocation or a broken invariant as
        # pyo3_runtime.PanicException, a BaseException that neither ``except Exception`` nor the command catch.
        raise _read_error(path, f"the safetensors library failed on it ({type(exc).__name__}: {exc}); the file "
                                "may be damaged, or the machine short of memory") from exc


# --------------------------------------------------------------------------------------------------------
# Digests


def _text_digest(text: str) -> str:
    """SHA-256 of the model metadata's JSON text (UTF-8; a lone surrogate a crafted header may hold is passed)."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _digest(arrays: dict[str, Any]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = arrays[name]
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        # The bytes in C order without a copy of a (possibly large) contiguous tensor.
        contiguous = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
        h.update(memoryview(contiguous.reshape(-1)).cast("B"))
    return h.hexdigest()

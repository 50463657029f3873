"""Datasets for examples, tests and the command line: generated, bundled with scikit-learn, or read from files.

Everything uses scikit-learn's layout: ``X`` is ``(n_samples, n_features)`` float64 and ``y`` is
``(n_samples,)``. For the lecture's layout take ``X.T`` and ``y.reshape(1, -1)``.

* Generated (offline, seeded, NumPy on the host): :func:`make_flower`, :func:`make_moons`, :func:`make_circles`.
* Bundled with scikit-learn (offline): :func:`load_digits`, :func:`load_breast_cancer`.
* Files: :func:`load_npz` (arrays ``X`` and ``y``; pickled objects are refused) and :func:`load_csv` (numeric
  features and one label column).
* :func:`load` opens any of them by built-in name (:data:`DATASETS`) or path and returns a :class:`Dataset`.
* :func:`train_test_split` splits ``X, y``, stratified when ``y`` holds class labels.

Every problem with the data raises :class:`~xpnet.errors.DatasetError`; a bad parameter value raises
:class:`~xpnet.errors.ConfigError`. NumPy and scikit-learn are imported inside the functions, so
``import xpnet`` stays light.
"""

from __future__ import annotations

import csv
import math
import numbers
import os
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, DatasetError
from .random import check_seed, host_generator

__all__ = [
    "DATASETS",
    "Dataset",
    "load",
    "load_breast_cancer",
    "load_csv",
    "load_digits",
    "load_npz",
    "make_circles",
    "make_flower",
    "make_moons",
    "train_test_split",
]

#: The built-in names :func:`load` accepts (case-insensitive); the first one is :func:`load`'s default.
DATASETS: tuple[str, ...] = ("digits", "breast_cancer", "moons", "circles", "flower")

# The generated built-ins: only these take n_samples and noise.
_GENERATED = ("moons", "circles", "flower")
_TASKS = ("classification", "regression")
_SUFFIXES = (".npz", ".csv")


def _check_n(n_samples: Any) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 2:
        raise ConfigError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    return int(n_samples)


def _shuffled(X: Any, y: Any, shuffle: bool, seed: Any, name: str) -> tuple[Any, Any]:
    """The rows in a seeded random order when ``shuffle`` (own stream: the points themselves do not change)."""
    if not shuffle:
        return X, y
    order = host_generator(seed, f"dataset:{name}:shuffle").permutation(len(y))
    return X[order], y[order]


def make_flower(n_samples: int = 400, *, petals: float = 4.0, noise: float = 0.2, seed: int = 0,
                shuffle: bool = False) -> tuple[Any, Any]:
    """The lecture's planar "flower": two interleaved classes on the petals of ``r = petals * sin(4 t)``.

    Class ``j`` (half of the samples each) has angle ``t`` evenly spaced over ``[3.12 j, 3.12 (j + 1)]``
    plus ``N(0, noise)``, radius ``r = petals * sin(4 t) + N(0, noise)``, and features
    ``(r sin t, r cos t)``.

    Returns ``X`` (n_samples, 2) float64 and ``y`` (n_samples,) int64 of 0/1, class 0 first as in the
    lecture; ``shuffle=True`` mixes the rows (seeded).
    """
    import numpy as np

    n = _check_n(n_samples)
    noise = _check_noise(noise)
    rng = host_generator(seed, "dataset:flower")
    counts = (n // 2, n - n // 2)
    X_parts, y_parts = [], []
    for j, count in enumerate(counts):
        t = np.linspace(j * 3.12, (j + 1) * 3.12, count) + rng.standard_normal(count) * noise
        r = petals * np.sin(4.0 * t) + rng.standard_normal(count) * noise
        X_parts.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        y_parts.append(np.full(count, j, dtype=np.int64))
    return _shuffled(np.concatenate(X_parts), np.concatenate(y_parts), shuffle, seed, "flower")


def make_moons(n_samples: int = 400, *, noise: float = 0.1, seed: int = 0, shuffle: bool = False
               ) -> tuple[Any, Any]:
    """Two interleaving half circles: class 0 on ``(cos a, sin a)``, class 1 on ``(1 - cos a, 0.5 - sin a)``,
    ``a`` evenly spaced over ``[0, pi]``, plus ``N(0, noise)`` on both features.

    Returns ``X`` (n_samples, 2) float64 and ``y`` (n_samples,) int64 of 0/1, class 0 first;
    ``shuffle=True`` mixes the rows (seeded; scikit-learn's ``make_moons`` shuffles by default).
    """
    import numpy as np

    n = _check_n(n_samples)
    noise = _check_noise(noise)
    rng = host_generator(seed, "dataset:moons")
    n0 = n // 2
    a0 = np.linspace(0.0, math.pi, n0)
    a1 = np.linspace(0.0, math.pi, n - n0)
    X = np.concatenate([np.stack([np.cos(a0), np.sin(a0)], axis=1),
                        np.stack([1.0 - np.cos(a1), 0.5 - np.sin(a1)], axis=1)])
    X = X + rng.standard_normal(X.shape) * noise
    y = np.concatenate([np.zeros(n0, dtype=np.int64), np.ones(n - n0, dtype=np.int64)])
    return _shuffled(X, y, shuffle, seed, "moons")


def _check_noise(noise: Any) -> float:
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not (math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"noise must be a finite number >= 0 (the standard deviation of the Gaussian noise added to "
                          f"each feature), got {noise!r}; pass e.g. noise=0.1, or noise=0 for none")
    return float(noise)


def make_circles(n_samples: int = 400, *, noise: float = 0.1, factor: float = 0.5, seed: int = 0,
                 shuffle: bool = False) -> tuple[Any, Any]:
    """Two concentric circles: class 0 on the unit circle, class 1 on the circle of radius ``factor``.

    Class 0 gets ``n_samples // 2`` points and class 1 the rest; within a class the angles are evenly
    spaced over ``[0, 2 pi)``, and ``N(0, noise)`` is added to both features.

    Returns ``X`` (n_samples, 2) float64 and ``y`` (n_samples,) int64 of 0/1, class 0 first;
    ``shuffle=True`` mixes the rows (seeded).
    """
    import numpy as np

    n = _check_n(n_samples)
    noise = _check_noise(noise)
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not 0.0 < factor < 1.0:
        raise ConfigError(f"factor must be a number in (0, 1), the inner circle's radius relative to the outer "
                          f"one, got {factor!r}; pass e.g. factor=0.5")
    rng = host_generator(seed, "dataset:circles")
    n0 = n // 2
    # endpoint=False: the angle 2 pi is the angle 0, and including both would put two points on one spot.
    a0 = np.linspace(0.0, 2.0 * math.pi, n0, endpoint=False)
    a1 = np.linspace(0.0, 2.0 * math.pi, n - n0, endpoint=False)
    X = np.concatenate([np.stack([np.cos(a0), np.sin(a0)], axis=1),
                        float(factor) * np.stack([np.cos(a1), np.sin(a1)], axis=1)])
    X = X + rng.standard_normal(X.shape) * noise
    y = np.concatenate([np.zeros(n0, dtype=np.int64), np.ones(n - n0, dtype=np.int64)])
    return _shuffled(X, y, shuffle, seed, "circles")


# --------------------------------------------------------------------------------------------------------------
# Bundled with scikit-learn
# --------------------------------------------------------------------------------------------------------------


def _sklearn_bunch(name: str) -> tuple[Any, Any, tuple[str, ...] | None, tuple[str, ...] | None]:
    """``X`` float64, ``y`` int64, feature names and target names of ``sklearn.datasets.load_<name>()``."""
    import numpy as np
    from sklearn import datasets as sk_datasets

    bunch = getattr(sk_datasets, f"load_{name}")()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    feature_names = getattr(bunch, "feature_names", None)
    target_names = getattr(bunch, "target_names", None)
    return (X, y,
            None if feature_names is None else tuple(str(s) for s in feature_names),
            None if target_names is None else tuple(str(s) for s in target_names))


def load_digits() -> tuple[Any, Any]:
    """scikit-learn's 8x8 images of handwritten digits (shipped with scikit-learn, so offline).

    Returns ``X`` (1797, 64) float64 of unscaled pixel intensities 0..16 (divide by 16 for [0, 1]) and
    ``y`` (1797,) int64 of the digits 0..9.
    """
    X, y, _, _ = _sklearn_bunch("digits")
    return X, y


def load_breast_cancer() -> tuple[Any, Any]:
    """scikit-learn's Wisconsin breast-cancer data (shipped with scikit-learn, so offline).

    Returns ``X`` (569, 30) float64 of unscaled measurements (standardize them before training) and
    ``y`` (569,) int64: 0 malignant, 1 benign.
    """
    X, y, _, _ = _sklearn_bunch("breast_cancer")
    return X, y


# --------------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------------


def _existing_file(path: Any, kind: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"path must be a str or os.PathLike naming a {kind} file, got {type(path).__name__} "
                          f"{path!r}")
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"cannot load '{p}': no such file. Expected an existing {kind} file; check the path "
                           f"(a relative path is taken from the working directory {os.getcwd()!r})")
    if not p.is_file():
        raise DatasetError(f"cannot load '{p}': it is a directory, not a file. Expected a {kind} file; "
                           f"pass the path of the file inside it")
    return p


def _check_arrays(X: Any, y: Any, where: str) -> tuple[Any, Any]:
    """Validate and normalize ``X`` (2-D numeric -> float64) and ``y`` (1-D, one label per row of ``X``)."""
    import numpy as np

    if X.ndim != 2:
        raise DatasetError(f"{where}: X must be 2-D (n_samples, n_features), got shape {X.shape}; for a single "
                           f"feature save X.reshape(-1, 1)")
    if X.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: X must hold bool, integer or floating-point numbers, got dtype {X.dtype}; "
                           f"convert it first, e.g. X.astype(numpy.float64)")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DatasetError(f"{where}: X has shape {X.shape}, expected at least one sample and one feature")
    X = X.astype(np.float64, copy=False)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise DatasetError(f"{where}: X[{i}, {j}] is {X[i, j]}, expected finite numbers everywhere; fill in or "
                           f"drop the missing values first")
    # A column vector of labels is a common way to store them; it means the same as the flat one.
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise DatasetError(f"{where}: y must be 1-D (n_samples,) or (n_samples, 1), got shape {y.shape}; for "
                           f"one-hot labels save y.argmax(axis=1)")
    if y.dtype.kind not in "biufU":
        raise DatasetError(f"{where}: y must hold numbers or str class names, got dtype {y.dtype}; convert it "
                           f"first, e.g. y.astype(numpy.int64) or y.astype(str)")
    if len(y) != len(X):
        raise DatasetError(f"{where}: X has {len(X)} rows but y has {len(y)} labels, expected one label per "
                           f"row; save matching arrays")
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        i = int(np.argwhere(~np.isfinite(y))[0, 0])
        raise DatasetError(f"{where}: the labels y hold {y[i]} at row {i} (y[{i}]), expected finite labels; drop "
                           f"the unlabelled samples")
    return X, y


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


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _is_text(s: str) -> bool:
    # An empty field is a missing value, not a column name: it must not make a data row look like a header.
    return bool(s.strip()) and not _is_number(s)


def _looks_like_header(rows: list[tuple[int, list[str]]], label_index: int) -> bool:
    first = rows[0][1]
    if any(_is_text(s) for j, s in enumerate(first) if j != label_index):
        return True
    if not _is_text(first[label_index]):
        return False
    # Only the label field is text: a header when the labels below it are numbers, and the first row's class
    # name when they are text too (a file of numeric features and class names, without a header).
    return len(rows) > 1 and all(_is_number(fields[label_index]) for _, fields in rows[1:])


def _parse_labels(labels: list[str]) -> Any:
    """int64 when every label is an integral number, float64 when all are numbers, else str class names."""
    import numpy as np

    try:
        return np.array([int(s) for s in labels], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:
        values = [float(s) for s in labels]
    except ValueError:
        return np.array(labels, dtype=str)
    y = np.array(values, dtype=np.float64)
    # Beyond 2**53 float64 no longer holds every integer, so such labels stay float64.
    if np.isfinite(y).all() and np.array_equal(y, np.round(y)) and np.abs(y).max() <= 2.0**53:
        return y.astype(np.int64)
    return y


def _read_csv(path: Any, label_column: Any, header: Any, delimiter: Any) -> tuple[Any, Any, tuple[str, ...] | None]:
    """``X``, ``y`` and the feature names (``None`` without a header) of a CSV file; see :func:`load_csv`."""
    import numpy as np

    if isinstance(label_column, bool) or not isinstance(label_column, (numbers.Integral, str)):
        raise ConfigError(f"label_column must be a column index (int, negative counts from the end) or a column "
                          f"name (str), got {type(label_column).__name__} {label_column!r}; pass e.g. "
                          f"label_column=-1 for the last column")
    if not (header == "auto" or header is True or header is False):
        raise ConfigError(f"header must be 'auto', True or False, got {header!r}; 'auto' takes the first row for "
                          f"a header when it holds text")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
        raise ConfigError(f"delimiter must be one character other than a quote or a newline, got {delimiter!r}; "
                          f"pass e.g. delimiter=',', ';' or '\\t'")
    if isinstance(label_column, str):
        if header is False:
            raise ConfigError(f"label_column={label_column!r} names a column, which needs a header row, but "
                              f"header=False; pass header=True (or 'auto'), or give label_column as an index")
        header = True
    p = _existing_file(path, ".csv")

    rows: list[tuple[int, list[str]]] = []  # (line number, fields)
    line = 0
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:  # -sig: drop the byte-order mark Excel writes
            reader = csv.reader(f, delimiter=delimiter)
            for fields in reader:
                line = reader.line_num
                # Blank lines (often one at the end) hold no sample.
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                rows.append((line, fields))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"cannot load '{p}': it is not UTF-8 text ({exc.reason} at byte {exc.start}). "
                           f"Expected a UTF-8 CSV file; save it as UTF-8") from exc
    except csv.Error as exc:
        raise DatasetError(f"cannot load '{p}': malformed CSV after line {line} ({exc}). Expected "
                           f"{delimiter!r}-separated fields with balanced quotes; fix that line") from exc
    except OSError as exc:
        raise DatasetError(f"cannot load '{p}': {exc.strerror or exc}. Expected a readable CSV file; check "
                           f"its permissions") from exc
    if not rows:
        raise DatasetError(f"cannot load '{p}': the file is empty. Expected rows of {delimiter!r}-separated "
                           f"numeric features and a label; write some data to it")

    first_line, first = rows[0]
    width = len(first)
    for line, fields in rows:
        if len(fields) != width:
            raise DatasetError(f"cannot load '{p}': line {line} has {len(fields)} fields but line {first_line} "
                               f"has {width}. Expected the same number of {delimiter!r}-separated fields on every "
                               f"line; fix line {line} (quote a field that holds the delimiter)")
    if width < 2:
        raise DatasetError(f"cannot load '{p}': it has {width} column, expected at least 2 (>= 1 feature and the "
                           f"label). If its fields are separated by something other than {delimiter!r}, pass "
                           f"delimiter=..., e.g. ';' or '\\t'")

    names = [s.strip() for s in first]
    if isinstance(label_column, str):
        if names.count(label_column) != 1:
            problem = "no column" if label_column not in names else f"{names.count(label_column)} columns"
            raise DatasetError(f"cannot load '{p}': {problem} named {label_column!r} in the header (line "
                               f"{first_line}). Expected exactly one; the columns are "
                               f"{', '.join(map(repr, names))}; pass one of them or an index")
        label_index = names.index(label_column)
    else:
        label_index = int(label_column) + width if label_column < 0 else int(label_column)
        if not 0 <= label_index < width:
            raise DatasetError(f"cannot load '{p}': label_column={label_column} is out of range for its {width} "
                               f"columns. Expected an index in {-width}..{width - 1}; pass e.g. label_column=-1 "
                               f"for the last column")
    has_header = _looks_like_header(rows, label_index) if header == "auto" else bool(header)
    feature_names = tuple(s for j, s in enumerate(names) if j != label_index) if has_header else None
    data_rows = rows[1:] if has_header else rows
    if not data_rows:
        raise DatasetError(f"cannot load '{p}': it has a header (line {first_line}) but no data rows. Expected "
                           f"at least one sample; add data, or pass header=False if line {first_line} is data")

    def column(j: int) -> str:
        return f"column {j + 1} ({names[j]!r})" if has_header else f"column {j + 1}"

    X = np.empty((len(data_rows), width - 1), dtype=np.float64)
    labels = []
    for i, (line, fields) in enumerate(data_rows):
        for j, s in enumerate(fields):
            if j == label_index:
                label = s.strip()
                if not label:
                    raise DatasetError(f"cannot load '{p}': line {line}, {column(j)} has no label. Expected a "
                                       f"label on every data row; fill it in or drop line {line}")
                labels.append(label)
                continue
            try:
                value = float(s)
            except ValueError:
                raise DatasetError(f"cannot load '{p}': line {line}, {column(j)} holds {s!r}, not a number. "
                                   f"Expected numeric features in every column but the label (column "
                                   f"{label_index + 1}); fix the value, or pick the right label_column or "
                                   f"header") from None
            if not math.isfinite(value):
                raise DatasetError(f"cannot load '{p}': line {line}, {column(j)} holds {s!r}. Expected finite "
                                   f"numbers; fill in or drop the missing values first")
            X[i, j if j < label_index else j - 1] = value
    y = _parse_labels(labels)
    # Numeric labels with a 'nan' or 'inf' among them: such a sample has no usable label (a column of class
    # names keeps 'nan' as a name, a str).
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        i = int(np.flatnonzero(~np.isfinite(y))[0])
        line = data_rows[i][0]
        raise DatasetError(f"cannot load '{p}': line {line}, {column(label_index)} (the label column) holds "
                           f"{labels[i]!r}. Expected finite numeric labels; drop the unlabelled samples (line "
                           f"{line} is the first)")
    return X, y, feature_names


def load_csv(path: str | os.PathLike[str], *, label_column: int | str = -1, header: bool | str = "auto",
             delimiter: str = ",") -> tuple[Any, Any]:
    """Read a CSV file of numeric features and one label column (UTF-8, read with the stdlib ``csv`` module).

    Parameters
    ----------
    path : str or os.PathLike
        The file. Blank lines are skipped; fields may be quoted.
    label_column : int or str, default -1
        The label column: an index (negative counts from the end) or a column name (needs a header).
    header : {"auto", True, False}, default "auto"
        Whether the first row holds column names. ``"auto"`` says yes when any feature field of the first row
        is text (not a number), or when only its label field is text but the labels below are numbers.
        A name given as ``label_column`` implies a header.
    delimiter : str, default ","
        The field separator, one character (``";"``, ``"\\t"``, ...).

    Returns
    -------
    X : (n_samples, n_features) float64
        Every column but the label.
    y : (n_samples,)
        int64 when every label is an integral number (``"1"`` or ``"1.0"``), float64 when all are numbers,
        else str (class names).

    Raises
    ------
    DatasetError
        Missing or empty file, ragged rows, a non-numeric or non-finite feature, a missing or non-finite
        (``nan``, ``inf``) numeric label, a label column that does not exist, or fewer than 2 columns.
    ConfigError
        A bad ``label_column``, ``header`` or ``delimiter`` value.
    """
    X, y, _ = _read_csv(path, label_column, header, delimiter)
    return X, y


# --------------------------------------------------------------------------------------------------------------
# One entry point
# --------------------------------------------------------------------------------------------------------------


def _infer_task(y: Any) -> str:
    """"classification" for str, bool or integer labels (integral floats included), else "regression"."""
    import numpy as np

    y = np.asarray(y)
    if y.dtype.kind in "biuUSO":
        return "classification"
    if y.dtype.kind == "f" and np.isfinite(y).all() and np.array_equal(y, np.round(y)):
        return "classification"
    return "regression"


def _class_names(y: Any) -> tuple[str, ...] | None:
    import numpy as np

    # Only str labels name their classes; numeric labels are their own names.
    return tuple(str(s) for s in np.unique(y)) if y.dtype.kind == "U" else None


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A loaded dataset, as returned by :func:`load`.

    Attributes
    ----------
    X : (n_samples, n_features) float64
        The features.
    y : (n_samples,)
        The targets: int64 or str class labels, or float64 regression targets.
    name : str
        The built-in name (``"digits"``) or the file's name (``"iris.csv"``).
    task : {"classification", "regression"}
        ``"classification"`` when ``y`` holds str or integer values (integral floats included), else
        ``"regression"``.
    feature_names : tuple of str or None
        One name per column of ``X``, when known (a CSV header, scikit-learn's names).
    target_names : tuple of str or None
        The class names, when known: scikit-learn's (index ``k`` names class ``k``) or a CSV's str labels
        (sorted).

    Equality is identity (``eq=False``): comparing arrays element-wise has no single truth value.
    """

    X: Any
    y: Any
    name: str
    task: str
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.task not in _TASKS:
            raise ConfigError(f"task must be one of {', '.join(map(repr, _TASKS))}, got {self.task!r}; pass "
                              f"'classification' for class labels, 'regression' for real-valued targets")

    @property
    def n_samples(self) -> int:
        """The number of rows of ``X``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """The number of columns of ``X``."""
        return int(self.X.shape[1])

    def __repr__(self) -> str:
        # The arrays' shapes and dtypes, not their values: a repr of 1797 x 64 numbers helps nobody.
        return (f"Dataset(name={self.name!r}, task={self.task!r}, X={tuple(self.X.shape)} {self.X.dtype}, "
                f"y={tuple(self.y.shape)} {self.y.dtype})")


def _unknown(source: Any) -> DatasetError:
    return DatasetError(f"unknown dataset {str(source)!r}: expected one of {', '.join(DATASETS)}, or a path to a "
                        f".npz or .csv file; check the spelling (or the file's suffix)")


def load(source: str | os.PathLike[str] = "digits", *, label_column: int | str = -1, n_samples: int | None = None,
         noise: float | None = None, seed: int | None = 0) -> Dataset:
    """Load a built-in dataset by name or a ``.npz`` / ``.csv`` file by path.

    Parameters
    ----------
    source : str or os.PathLike, default "digits"
        One of :data:`DATASETS` (case-insensitive), or a path whose suffix is ``.npz`` (see :func:`load_npz`)
        or ``.csv`` (see :func:`load_csv`, which reads the header automatically).
    label_column : int or str, default -1
        The label column of a CSV file; only for ``.csv`` sources.
    n_samples : int or None
        The number of samples of a generated dataset (``moons``, ``circles``, ``flower``); ``None`` for the
        generator's default (400). Only for the generated ones.
    noise : float or None
        The noise of a generated dataset; ``None`` for the generator's default. Only for the generated ones.
    seed : int or None, default 0
        The seed of a generated dataset (ignored otherwise); ``None`` for fresh OS entropy.

    Returns
    -------
    Dataset
        ``X`` (n_samples, n_features) float64, ``y`` (n_samples,), names and the task.

    Raises
    ------
    DatasetError
        An unknown name or suffix (the valid names are listed), a missing file, or a file that cannot be read.
    ConfigError
        A bad parameter value, or ``n_samples`` / ``noise`` / ``label_column`` given to a source they do not
        apply to.
    """
    seed = check_seed(seed)
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"source must be a dataset name (one of {', '.join(DATASETS)}) or a path, got "
                          f"{type(source).__name__} {source!r}")
    name = source.strip().lower() if isinstance(source, str) else None
    if name in DATASETS:
        if name in _GENERATED:
            _only_for(name, label_column=label_column)
            kwargs: dict[str, Any] = {"seed": seed}
            if n_samples is not None:
                kwargs["n_samples"] = n_samples
            if noise is not None:
                kwargs["noise"] = _check_noise(noise)
            make = {"moons": make_moons, "circles": make_circles, "flower": make_flower}[name]
            X, y = make(**kwargs)
            return Dataset(X, y, name, "classification")
        _only_for(name, n_samples=n_samples, noise=noise, label_column=label_column)
        X, y, feature_names, target_names = _sklearn_bunch(name)
        return Dataset(X, y, name, "classification", feature_names, target_names)

    p = Path(source)
    suffix = p.suffix.lower()
    if suffix not in _SUFFIXES:
        raise _unknown(source)
    if not p.exists():
        raise DatasetError(f"cannot load dataset '{p}': no such file. Expected an existing {suffix} file or one of "
                           f"{', '.join(DATASETS)}; check the path (a relative path is taken from the working "
                           f"directory {os.getcwd()!r})")
    _only_for(p.name, n_samples=n_samples, noise=noise)
    if suffix == ".npz":
        _only_for(p.name, label_column=label_column)
        X, y = load_npz(p)
        feature_names = None
    else:
        X, y, feature_names = _read_csv(p, label_column, "auto", ",")
    return Dataset(X, y, p.name, _infer_task(y), feature_names, _class_names(y))


def _only_for(source: str, **given: Any) -> None:
    """Refuse options that do not apply to ``source`` rather than silently ignore them."""
    defaults = {"n_samples": None, "noise": None, "label_column": -1}
    for key, value in given.items():
        if isinstance(value, bool) or value != defaults[key]:
            where = {"n_samples": "the generated datasets (moons, circles, flower)",
                     "noise": "the generated datasets (moons, circles, flower)",
                     "label_column": ".csv files"}[key]
            raise ConfigError(f"{key}={value!r} does not apply to {source!r}: it applies only to {where}; "
                              f"leave it out")


# --------------------------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------------------------


def _stratifiable(y: Any, test_size: float) -> bool:
    """Whether class-stratified splitting is meaningful and possible for ``y``."""
    import numpy as np

    if y.ndim != 1 or len(y) < 2 or _infer_task(y) != "classification":
        return False
    _, counts = np.unique(y, return_counts=True)
    n_test = math.ceil(test_size * len(y))
    # scikit-learn needs >= 2 members per class and room for every class on both sides of the split.
    return bool(counts.min() >= 2 and n_test >= len(counts) and len(y) - n_test >= len(counts))


def train_test_split(X: Any, y: Any, *, test_size: float = 0.2, seed: int | None = 0,
                     stratify: bool | Any | None = None) -> tuple[Any, Any, Any, Any]:
    """Split ``X`` (n_samples, n_features) and ``y`` (n_samples,) at random into train and test parts.

    A wrapper over ``sklearn.model_selection.train_test_split`` with ``random_state=seed``; the test part
    has ``ceil(test_size * n_samples)`` samples.

    Parameters
    ----------
    test_size : float, default 0.2
        The fraction of the samples in the test part, in (0, 1).
    seed : int or None, default 0
        The shuffle's seed; ``None`` for fresh OS entropy.
    stratify : None, bool or array-like (n_samples,), default None
        ``None``: stratify on ``y`` (keep its class proportions in both parts) when ``y`` holds class labels
        (str or integral values), every class has at least 2 members, and both parts have room for every
        class; else split without stratifying. ``True``: stratify on ``y``. ``False``: do not stratify.
        An array: stratify on its values.

    Returns
    -------
    X_train, X_test, y_train, y_test
        Of the same types as ``X`` and ``y``.

    Raises
    ------
    ConfigError
        ``test_size`` outside (0, 1), or a bad seed.
    DatasetError
        ``X`` and ``y`` of different lengths, or a split scikit-learn cannot make (e.g. ``stratify=True`` with
        a class of one member).
    """
    import numpy as np
    from sklearn.model_selection import train_test_split as sk_train_test_split

    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) or not 0.0 < test_size < 1.0:
        raise ConfigError(f"test_size must be a fraction in (0, 1), the share of the samples held out for "
                          f"testing, got {test_size!r}; pass e.g. test_size=0.2")
    seed = check_seed(seed)
    y_arr = np.asarray(y)
    if len(X) != len(y_arr):
        raise DatasetError(f"cannot split: X has {len(X)} samples but y has {len(y_arr)}, expected one label per "
                           f"sample; pass matching X and y")
    if stratify is None:
        labels = y_arr if _stratifiable(y_arr, float(test_size)) else None
    elif stratify is True:
        labels = y_arr
    elif stratify is False:
        labels = None
    else:
        labels = stratify
    try:
        parts = sk_train_test_split(X, y, test_size=float(test_size), random_state=seed, stratify=labels)
    except ValueError as exc:
        how = "stratified " if labels is not None else ""
        raise DatasetError(f"cannot make a {how}split of {len(y_arr)} samples with test_size={test_size}: {exc}. "
                           f"Expected enough samples (and members of each class) for both parts; change "
                           f"test_size{' or pass stratify=False' if labels is not None else ''}") from exc
    X_train, X_test, y_train, y_test = parts
    return X_train, X_test, y_train, y_test

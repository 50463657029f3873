"""Binary dataset files: Parquet (:func:`load_parquet`, read with pyarrow in row batches into one float64 array)
and ``.npy`` (:func:`load_npy`, memory-mapped: the features stay a view of the file when they are float).

Both hold the features and one label column side by side, like a CSV file: ``label_column`` picks it (an index,
negative from the end, or a Parquet column name), and ``label_column=None`` reads features only (prediction).
Missing values (Parquet nulls, NaN) and infinities are refused, naming the row and the column.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

from ..errors import ConfigError, DatasetError
from .checks import _existing_file

_BATCH_ROWS = 65_536


def _label_index(label_column: Any, names: list[str], p: Any) -> int | None:
    width = len(names)
    if label_column is None:
        return None
    if isinstance(label_column, bool) or not isinstance(label_column, (numbers.Integral, str)):
        raise ConfigError(f"label_column must be a column index (int, negative counts from the end) or a column "
                          f"name (str), got {type(label_column).__name__} {label_column!r}; pass e.g. "
                          f"label_column=-1 for the last column")
    if isinstance(label_column, str):
        if names.count(label_column) != 1:
            raise DatasetError(f"cannot load '{p}': no column named {label_column!r} (or more than one). Expected "
                               f"exactly one; the columns are {', '.join(map(repr, names))}")
        return names.index(label_column)
    index = int(label_column) + width if label_column < 0 else int(label_column)
    if not 0 <= index < width:
        raise DatasetError(f"cannot load '{p}': label_column={label_column} is out of range for its {width} "
                           f"columns. Expected an index in {-width}..{width - 1}; pass e.g. label_column=-1")
    return index


def _labels_from_numbers(y: Any) -> Any:
    """Integral float labels become int64 (as in a CSV file); bool becomes int64."""
    import numpy as np

    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind == "f" and np.isfinite(y).all() and np.array_equal(y, np.round(y)) \
            and (y.size == 0 or np.abs(y).max() <= 2.0**53):
        return y.astype(np.int64)
    return y


def _first_non_finite(X: Any, p: Any, names: list[str] | None) -> None:
    """Refuse NaN or infinity in ``X``, checked a block of rows at a time (no full-size temporary)."""
    import numpy as np

    for start in range(0, X.shape[0], _BATCH_ROWS):
        block = X[start:start + _BATCH_ROWS]
        bad = ~np.isfinite(block)
        if bad.any():
            i, j = (int(k) for k in np.argwhere(bad)[0])
            col = f"column {j + 1}" + (f" ({names[j]!r})" if names else "")
            what = "a missing value (NaN)" if np.isnan(block[i, j]) else str(block[i, j])
            raise DatasetError(f"cannot load '{p}': row {start + i} (from 0), {col} holds {what}. Expected finite "
                               f"numbers; fill in or drop the missing values first")


def read_parquet(path: Any, label_column: Any = -1) -> tuple[Any, Any, tuple[str, ...], str | None]:
    """``X`` (float64), ``y`` (None without a label column), the feature names and the label name of a Parquet
    file; see :func:`load_parquet`."""
    import numpy as np

    p = _existing_file(path, ".parquet")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise DatasetError(f"cannot load '{p}': reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        f = pq.ParquetFile(p)
        schema = f.schema_arrow
        m = f.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"cannot load '{p}': it is not a readable Parquet file ({exc}). Expected a file written "
                           f"by pandas.DataFrame.to_parquet or pyarrow.parquet.write_table") from exc
    names = list(schema.names)
    label = _label_index(label_column, names, p)
    features = [j for j in range(len(names)) if j != label]
    if not features:
        raise DatasetError(f"cannot load '{p}': it has {len(names)} column, expected at least one feature besides "
                           f"the label")
    for j in features:
        t = schema.field(j).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise DatasetError(f"cannot load '{p}': column {j + 1} ({names[j]!r}) holds {t}, not numbers. Expected "
                               f"numeric features in every column but the label; convert or drop it, or pick the "
                               f"right label_column")
    if m == 0:
        raise DatasetError(f"cannot load '{p}': it has no rows. Expected at least one sample")
    X = np.empty((m, len(features)), dtype=np.float64)
    label_chunks = []
    row = 0
    try:
        for batch in f.iter_batches(batch_size=_BATCH_ROWS):
            k = batch.num_rows
            for out, j in enumerate(features):
                col = batch.column(j)
                if col.null_count:
                    i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                    raise DatasetError(f"cannot load '{p}': row {row + i} (from 0), column {j + 1} ({names[j]!r}) "
                                       f"is missing (null). Expected a number in every feature; fill in or drop "
                                       f"the missing values first")
                X[row:row + k, out] = col.to_numpy(zero_copy_only=False)
            if label is not None:
                label_chunks.append(batch.column(label))
            row += k
    except pa.ArrowException as exc:
        raise DatasetError(f"cannot load '{p}': reading it failed after row {row} ({exc}); the file is corrupt or "
                           f"truncated. Write it again") from exc
    _first_non_finite(X, p, [names[j] for j in features])
    y = None
    if label is not None:
        column = pa.chunked_array(label_chunks, type=schema.field(label).type)
        if column.null_count:
            i = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise DatasetError(f"cannot load '{p}': row {i} (from 0) has no label (column {label + 1}, "
                               f"{names[label]!r}, is null). Expected a label on every row; drop the unlabelled "
                               f"samples")
        t = column.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            y = _labels_from_numbers(column.to_numpy())
            if y.dtype.kind == "f" and not np.isfinite(y).all():
                i = int(np.flatnonzero(~np.isfinite(y))[0])
                raise DatasetError(f"cannot load '{p}': row {i} (from 0), the label column {names[label]!r} holds "
                                   f"{y[i]}. Expected finite numeric labels; drop the unlabelled samples")
        else:
            y = np.asarray(column.cast(pa.string()).to_numpy(zero_copy_only=False)).astype(str)
    return X, y, tuple(names[j] for j in features), (names[label] if label is not None else None)


def read_npy(path: Any, label_column: Any = -1) -> tuple[Any, Any]:
    """``X`` and ``y`` (None without a label column) of a 2-D ``.npy`` file; see :func:`load_npy`."""
    import numpy as np

    p = _existing_file(path, ".npy")
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "bject" in str(exc):
            raise DatasetError(f"cannot load '{p}': it holds Python objects (dtype=object), which xpnet refuses to "
                               f"unpickle because that can run arbitrary code; save numbers: numpy.save(path, "
                               f"data.astype(numpy.float64))") from exc
        raise DatasetError(f"cannot load '{p}': it is not a readable .npy file ({exc}); the file is corrupt or "
                           f"truncated. Write it again with numpy.save") from exc
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot load '{p}': it is not a readable .npy file ({exc}). Expected an array written "
                           f"by numpy.save") from exc
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype.kind not in "biuf":
        raise DatasetError(f"cannot load '{p}': it holds {getattr(arr, 'dtype', '?')} of shape "
                           f"{getattr(arr, 'shape', '?')}, expected a 2-D array of numbers (samples in rows, the "
                           f"label in one column); save numpy.column_stack([X, y])")
    label = _label_index(label_column, [str(j) for j in range(arr.shape[1])], p)
    if arr.shape[0] == 0 or arr.shape[1] - (label is not None) < 1:
        raise DatasetError(f"cannot load '{p}': it has shape {arr.shape}, expected at least one sample and one "
                           f"feature{' besides the label' if label is not None else ''}")
    # A contiguous run of columns stays a view of the mapped file (no copy: the OS pages it in as it is read);
    # the label column in the middle needs a copy.
    if label is None:
        X = arr
    elif label == arr.shape[1] - 1:
        X = arr[:, :-1]
    elif label == 0:
        X = arr[:, 1:]
    else:
        X = np.delete(arr, label, axis=1)
    if X.dtype.kind not in "f":
        X = X.astype(np.float64)
    _first_non_finite(X, p, None)
    y = None
    if label is not None:
        y = _labels_from_numbers(np.array(arr[:, label]))
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            i = int(np.flatnonzero(~np.isfinite(y))[0])
            raise DatasetError(f"cannot load '{p}': row {i} (from 0), the label column {label + 1} holds {y[i]}. "
                               f"Expected finite numeric labels; drop the unlabelled samples")
    return X, y


def load_parquet(path: str | os.PathLike[str], *, label_column: int | str = -1) -> tuple[Any, Any]:
    """Read a Parquet file of numeric feature columns and one label column (pyarrow, in batches of rows).

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``DataFrame.to_parquet`` or ``pyarrow.parquet.write_table``.
    label_column : int or str, default -1
        The label column: an index (negative counts from the end) or a column name.

    Returns
    -------
    X : (n_samples, n_features) float64
        Every column but the label (integer, float or bool columns).
    y : (n_samples,)
        int64 for integer, bool or integral float labels, float64 for other numbers, str for text.

    Raises
    ------
    DatasetError
        Not a Parquet file, a non-numeric feature column, a null or non-finite value (the row and the column
        named), a label column that does not exist.
    """
    X, y, _, _ = read_parquet(path, label_column)
    return X, y


def load_npy(path: str | os.PathLike[str], *, label_column: int | None = -1) -> tuple[Any, Any]:
    """Read a 2-D ``.npy`` array of samples in rows with the label in one column, memory-mapped.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``numpy.save(path, numpy.column_stack([X, y]))``; pickled (object) arrays are refused.
    label_column : int or None, default -1
        The label's column index (negative counts from the end); None: every column is a feature (``y`` is None).

    Returns
    -------
    X : (n_samples, n_features)
        float32 or float64 as stored, a read-only view of the memory-mapped file when the label is the first or
        last column (other dtypes are converted to float64 in memory).
    y : (n_samples,)
        int64 for integral labels, else float64.

    Raises
    ------
    DatasetError
        Not a 2-D numeric ``.npy`` array, an object array, NaN or infinity (the row and the column named).
    """
    return read_npy(path, label_column)

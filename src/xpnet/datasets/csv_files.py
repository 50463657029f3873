"""CSV dataset files: :func:`load_csv` reads numeric features and one label column (UTF-8, with the stdlib
``csv`` module), finding a header row by itself."""

from __future__ import annotations

import csv
import math
import numbers
import os
from typing import Any

from ..errors import ConfigError, DatasetError
from .checks import _existing_file


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

"""CSV dataset files: :func:`load_csv` reads numeric features and one label column (UTF-8).

How: the first rows decide the layout (:mod:`~xpnet.datasets.csv_layout`: delimiter, header, label column, a
pandas index); then pyarrow's streaming CSV reader (:mod:`~xpnet.datasets.csv_arrow`, a C++ parser) fills a
preallocated float64 array block by block, so the peak memory is that array plus one block. Any problem it
meets (a missing value, text in a feature column, a ragged row) is then located by the stdlib ``csv`` module
(:func:`scan_rows`), which names the line and the column; a file pyarrow refuses but that has no such problem
(say, a quoted newline in a class name, or underscores in numbers) is read by :func:`scan_rows` instead.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from typing import Any, NamedTuple

from ..errors import DatasetError
from .checks import _existing_file
from .csv_layout import CsvLayout, decide_layout


class CsvData(NamedTuple):
    """What :func:`_read_csv` returns: the arrays and the names the file's header gave (None without one)."""

    X: Any
    y: Any  # None for a features-only file
    feature_names: tuple[str, ...] | None
    label_name: str | None
    delimiter: str


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


def scan_rows(layout: CsvLayout, *, collect: bool, start_row: int = 0, stop_row: int | None = None) -> Any:
    """Stream the file with the stdlib ``csv`` module, checking every data row from ``start_row`` on.

    Raises the first problem as a :class:`DatasetError` naming its line and column. With ``stop_row`` it returns
    the line number of that data row (0-based) instead; with ``collect`` it returns ``(X, labels, index)``: the
    ``(n_samples, n_features)`` float64 features, the label fields (stripped) and the first column's values
    (float64; None unless it is a pandas index).
    Otherwise it returns None (no problem found).
    """
    import numpy as np

    p, d, label = layout.path, layout.delimiter, layout.label_index
    features = layout.feature_columns
    values: list[list[float]] = []
    labels: list[str] = []
    index: list[float] = []
    i, line, skip_header = 0, 0, layout.has_header
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=d)
            for fields in reader:
                line = reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):  # blank lines hold no sample
                    continue
                if skip_header:
                    skip_header = False
                    continue
                if stop_row is not None and i == stop_row:
                    return line
                if i >= start_row:
                    row = _check_row(layout, line, fields)
                    if collect:
                        values.append([row[j] for j in features])
                        labels.append(fields[label].strip() if label is not None else "")
                        if layout.index_column:
                            index.append(row[0])
                i += 1
    except UnicodeDecodeError as exc:
        raise DatasetError(f"cannot load '{p}': it is not UTF-8 text ({exc.reason} after line {line}). "
                           f"Expected a UTF-8 CSV file; save it as UTF-8") from exc
    except csv.Error as exc:
        raise DatasetError(f"cannot load '{p}': malformed CSV after line {line} ({exc}). Expected "
                           f"{d!r}-separated fields with balanced quotes; fix that line") from exc
    except OSError as exc:
        raise DatasetError(f"cannot load '{p}': {exc.strerror or exc}. Expected a readable CSV file; check "
                           f"its permissions") from exc
    if not collect:
        return None
    if not values:
        raise DatasetError(f"cannot load '{p}': it has a header (line {layout.header_line}) but no data rows. "
                           f"Expected at least one sample; add data, or pass header=False if line "
                           f"{layout.header_line} is data")
    X = np.array(values, dtype=np.float64).reshape(len(values), len(features))
    return X, labels, np.array(index, dtype=np.float64) if layout.index_column else None


def _check_row(layout: CsvLayout, line: int, fields: list[str]) -> dict[int, float]:
    """The numeric fields of one data row, each checked (one DatasetError naming the line and column)."""
    p, width, label = layout.path, layout.width, layout.label_index
    if len(fields) != width:
        raise DatasetError(f"cannot load '{p}': line {line} has {len(fields)} fields but line {layout.header_line} "
                           f"has {width}. Expected the same number of {layout.delimiter!r}-separated fields on every "
                           f"line; fix line {line} (quote a field that holds the delimiter)")
    row = {}
    for j, s in enumerate(fields):
        if j == label:
            if not s.strip():
                raise DatasetError(f"cannot load '{p}': line {line}, {layout.column(j)} has no label. Expected a "
                                   f"label on every data row; fill it in or drop line {line}")
            continue
        try:
            value = float(s)
        except ValueError:
            missing = " (a missing value)" if not s.strip() else ""
            where = f"every column but the label (column {label + 1})" if label is not None else "every column"
            raise DatasetError(f"cannot load '{p}': line {line}, {layout.column(j)} holds {s!r}, not a "
                               f"number{missing}. Expected numeric features in {where}; fix the value, or pick "
                               f"the right label_column or header") from None
        if not math.isfinite(value):
            raise DatasetError(f"cannot load '{p}': line {line}, {layout.column(j)} holds {s!r}. Expected finite "
                               f"numbers; fill in or drop the missing values first")
        row[j] = value
    return row


def _bad_label(layout: CsvLayout, row: int, text: str) -> DatasetError:
    line = scan_rows(layout, collect=False, stop_row=row)
    return DatasetError(f"cannot load '{layout.path}': line {line}, {layout.column(layout.label_index)} (the label "
                        f"column) holds {text!r}. Expected finite numeric labels; drop the unlabelled samples (line "
                        f"{line} is the first)")


def _check_index(layout: CsvLayout, index: Any) -> None:
    """The first column was taken for a pandas index from the head; the whole file must agree, and a note says
    that it is dropped."""
    import numpy as np

    whole = bool(np.all(np.isfinite(index)) and np.array_equal(index, np.round(index)))
    if not whole or len(np.unique(index)) != len(index):
        raise DatasetError(f"cannot load '{layout.path}': column 1 has no name in the header (line "
                           f"{layout.header_line}) and begins like a pandas index (row numbers), but its values "
                           f"are not distinct whole numbers further down. Name the column in the header if it is "
                           f"a feature, or drop it (pandas: DataFrame.to_csv(..., index=False))")
    span = f"{int(index.min())}..{int(index.max())}"
    warnings.warn(f"{layout.path.name}: dropped column 1, an unnamed index of row numbers ({span}) that pandas "
                  f"writes without index=False; it would leak the rows' order as a feature", UserWarning,
                  stacklevel=4)


def _read_csv(path: Any, label_column: Any, header: Any, delimiter: Any, known_names: Any = None) -> CsvData:
    """``X``, ``y`` and the header's names of a CSV file; see :func:`load_csv`. ``label_column=None`` reads a
    features-only file (``y`` is None); ``known_names`` are a model's feature names, which a numeric first row
    may equal (then it is a header)."""
    import numpy as np

    from .csv_layout import check_options

    check_options(label_column, header, delimiter)
    p = _existing_file(path, ".tsv" if str(path).lower().endswith(".tsv") else ".csv")
    layout = decide_layout(p, label_column, header, delimiter, known_names)
    fast = None
    if layout.header_line == 1:  # pyarrow skips rows by count: blank lines before a header would shift them
        from .csv_arrow import Locate, read_arrow

        try:
            fast = read_arrow(layout)
        except Locate as problem:
            if problem.label_row is not None:
                raise _bad_label(layout, problem.label_row, str(problem.label_text)) from None
            scan_rows(layout, collect=False, start_row=problem.start_row)  # raises, naming line and column
            if not problem.readable:  # pragma: no cover - the scan finds what pyarrow found
                raise DatasetError(f"cannot load '{p}': {problem}") from None
    if fast is None:
        X, label_fields, index = scan_rows(layout, collect=True)
        y = _parse_labels(label_fields) if layout.label_index is not None else None
        if y is not None and y.dtype.kind == "f" and not np.isfinite(y).all():
            i = int(np.flatnonzero(~np.isfinite(y))[0])
            raise _bad_label(layout, i, label_fields[i])
    else:
        X, y, index = fast
    if layout.index_column:
        _check_index(layout, index)
    return CsvData(X, y, layout.feature_names, layout.label_name, layout.delimiter)


def load_csv(path: str | os.PathLike[str], *, label_column: int | str = -1, header: bool | str = "auto",
             delimiter: str | None = None) -> tuple[Any, Any]:
    """Read a CSV file of numeric features and one label column (UTF-8; pyarrow's C++ parser, checked rows).

    Parameters
    ----------
    path : str or os.PathLike
        The file. Blank lines are skipped; fields may be quoted.
    label_column : int or str, default -1
        The label column: an index (negative counts from the end) or a column name (needs a header).
    header : {"auto", True, False}, default "auto"
        Whether the first row holds column names. ``"auto"`` says yes when any feature field of the first row
        is text (not a number), when only its label field is text but the labels below are numbers, or when it
        holds distinct whole numbers in increasing order (``400,410,420``) above rows with fractions (with a
        one-line note). A name given as ``label_column`` implies a header. An unnamed first column of distinct
        whole numbers under a header (a pandas index) is dropped, with a note.
    delimiter : str or None, default None
        The field separator, one character (``","``, ``";"``, ``"\\t"``, ...); None detects it from the first
        rows (the one of ``, ; \\t |`` that splits every row alike into the most numbers).

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
        Missing or empty file, ragged rows, a missing (empty, ``NA``), non-numeric or non-finite feature, a
        missing or non-finite (``nan``, ``inf``) numeric label, a label column that does not exist, or fewer
        than 2 columns; the message names the line and the column.
    ConfigError
        A bad ``label_column``, ``header`` or ``delimiter`` value.
    """
    data = _read_csv(path, label_column, header, delimiter)
    return data.X, data.y

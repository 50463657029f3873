"""What a CSV file looks like, decided from its first rows: the delimiter (when not given), whether the first row
is a header, the label column, and whether the first column is a pandas index.

The rules (documented in the README's Datasets section):

* **Delimiter** (``delimiter=None``): of ``,`` ``;`` tab ``|``, the one that splits every sampled line into the
  same number (at least 2) of fields, the most of them numbers; ties go to that order.
* **Header** (``header="auto"``): the first row is a header when any of its feature fields is text; when only its
  label field is text and the labels below are numbers; when it equals the names a model recorded
  (``known_names``); or when the whole row holds at least 3 distinct whole numbers in increasing order
  (wavelengths ``400,410,420``, years, column numbers) while the sampled rows below hold a fraction in a feature
  column. The last two are told
  in a one-line note (a :class:`UserWarning`), since the row could have been a sample; ``header=False`` reads it
  as one.
* **Index column**: a header whose first name is empty (or pandas' ``Unnamed: 0``) over distinct whole numbers
  is the index ``DataFrame.to_csv`` writes without ``index=False``: the column is dropped with a note (it would
  be a feature that numbers the rows, and leaks their order).
"""

from __future__ import annotations

import csv
import io
import itertools
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DatasetError

#: Bytes read to decide the layout (whole lines of it).
HEAD_BYTES = 1 << 20
#: Rows of the head looked at for the delimiter and the header rule.
SAMPLE_ROWS = 200
DELIMITERS = (",", ";", "\t", "|")
_INDEX_NAMES = ("", "Unnamed: 0")


def is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def is_text(s: str) -> bool:
    # An empty field is a missing value, not a column name: it must not make a data row look like a header.
    return bool(s.strip()) and not is_number(s)


def _is_whole(s: str) -> bool:
    try:
        v = float(s)
    except ValueError:
        return False
    return v == v and abs(v) != float("inf") and v == int(v)


@dataclass
class CsvLayout:
    """The decisions about one CSV file: what the readers need to read it the same way."""

    path: Path
    delimiter: str
    width: int
    names: list[str]              # the header's names (stripped) or the first row's fields when there is none
    has_header: bool
    header_line: int              # the first row's line number (1 unless blank lines come first)
    label_index: int | None       # None: a features-only file
    index_column: bool            # the first column is a pandas index, dropped
    head_rows: list[tuple[int, list[str]]]   # (line, fields) of the sampled rows, header included
    whole_file: bool              # the head is the whole file

    @property
    def feature_columns(self) -> list[int]:
        return [j for j in range(self.width) if j != self.label_index and not (self.index_column and j == 0)]

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        return tuple(self.names[j] for j in self.feature_columns) if self.has_header else None

    @property
    def label_name(self) -> str | None:
        return self.names[self.label_index] if self.has_header and self.label_index is not None else None

    def column(self, j: int) -> str:
        """How a message names column ``j`` (0-based): ``column 2 ('x2')`` with a header, ``column 2`` without."""
        return f"column {j + 1} ({self.names[j]!r})" if self.has_header else f"column {j + 1}"


def read_head(p: Path) -> tuple[str, bool]:
    """The first whole lines of the file (about :data:`HEAD_BYTES`), decoded, and whether that is all of it."""
    try:
        with open(p, "rb") as f:
            raw = f.read(HEAD_BYTES + 1)
    except OSError as exc:
        raise DatasetError(f"cannot load '{p}': {exc.strerror or exc}. Expected a readable CSV file; check "
                           f"its permissions") from exc
    whole = len(raw) <= HEAD_BYTES
    if not whole:
        raw = raw[: raw.rfind(b"\n") + 1] or raw[:HEAD_BYTES]
    try:
        return raw.decode("utf-8-sig"), whole  # -sig: drop the byte-order mark Excel writes
    except UnicodeDecodeError as exc:
        if not whole and exc.start >= len(raw) - 4:  # a character cut at the end of the head: not the file's fault
            return raw[: exc.start].decode("utf-8-sig", errors="replace"), whole
        raise DatasetError(f"cannot load '{p}': it is not UTF-8 text ({exc.reason} at byte {exc.start}). "
                           f"Expected a UTF-8 CSV file; save it as UTF-8") from exc


def split_rows(text: str, delimiter: str, p: Path, limit: int | None = None) -> list[tuple[int, list[str]]]:
    """``(line, fields)`` of the non-blank rows of ``text`` (at most ``limit``)."""
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 0
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):  # blank lines hold no sample
                continue
            rows.append((line, fields))
            if limit is not None and len(rows) >= limit:
                break
    except csv.Error as exc:
        raise DatasetError(f"cannot load '{p}': malformed CSV after line {line} ({exc}). Expected "
                           f"{delimiter!r}-separated fields with balanced quotes; fix that line") from exc
    return rows


def detect_delimiter(text: str, p: Path) -> str:
    """The delimiter of the sampled text (see the module's rule); ``","`` when none splits it consistently."""
    best: tuple[int, int, int] | None = None
    choice = ","
    for rank, d in enumerate(DELIMITERS):
        try:
            rows = split_rows(text, d, p, SAMPLE_ROWS)
        except DatasetError:
            continue
        widths = {len(f) for _, f in rows}
        if len(widths) != 1 or widths.pop() < 2:
            continue
        numbers_ = sum(is_number(s) for _, f in rows[1:] for s in f)
        score = (numbers_, len(rows[0][1]), -rank)
        if best is None or score > best:
            best, choice = score, d
    return choice


def check_options(label_column: Any, header: Any, delimiter: Any) -> Any:
    """Validate the reader's options; returns ``header`` (``True`` when a label name implies one)."""
    if label_column is not None and (isinstance(label_column, bool)
                                     or not isinstance(label_column, (numbers.Integral, str))):
        raise ConfigError(f"label_column must be a column index (int, negative counts from the end) or a column "
                          f"name (str), got {type(label_column).__name__} {label_column!r}; pass e.g. "
                          f"label_column=-1 for the last column")
    if not (header == "auto" or header is True or header is False):
        raise ConfigError(f"header must be 'auto', True or False, got {header!r}; 'auto' takes the first row for "
                          f"a header when it holds text")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1
                                  or delimiter in "\"\r\n"):
        raise ConfigError(f"delimiter must be one character other than a quote or a newline, got {delimiter!r}; "
                          f"pass e.g. delimiter=',', ';' or '\\t', or None to detect it")
    if isinstance(label_column, str):
        if header is False:
            raise ConfigError(f"label_column={label_column!r} names a column, which needs a header row, but "
                              f"header=False; pass header=True (or 'auto'), or give label_column as an index")
        header = True
    return header


def _numeric_header(rows: list[tuple[int, list[str]]], columns: list[int]) -> bool:
    """At least 3 distinct whole numbers in increasing order, the whole first row (label field included), above
    rows that hold a fraction in the feature ``columns``."""
    first = rows[0][1]
    if len(rows) < 2 or len(first) < 3 or not all(_is_whole(s) for s in first):
        return False
    values = [float(s) for s in first]
    if any(b <= a for a, b in itertools.pairwise(values)):
        return False
    return any(is_number(f[j]) and not _is_whole(f[j]) for _, f in rows[1:] for j in columns if j < len(f))


def decide_layout(p: Path, label_column: Any, header: Any, delimiter: str | None,
                  known_names: Any = None) -> CsvLayout:
    """Read the head of ``p`` and decide its :class:`CsvLayout` (see the module's rules)."""
    import warnings

    header = check_options(label_column, header, delimiter)
    text, whole = read_head(p)
    if delimiter is None:
        delimiter = detect_delimiter(text, p)
    rows = split_rows(text, delimiter, p, None if whole else SAMPLE_ROWS)
    if not rows:
        raise DatasetError(f"cannot load '{p}': the file is empty. Expected rows of {delimiter!r}-separated "
                           f"numeric features{'' if label_column is None else ' and a label'}; write some data "
                           f"to it")
    first_line, first = rows[0]
    width = len(first)
    need = 1 if label_column is None else 2
    if width < need:
        raise DatasetError(f"cannot load '{p}': it has {width} column, expected at least 2 (>= 1 feature and the "
                           f"label). If its fields are separated by something other than {delimiter!r}, pass "
                           f"delimiter=..., e.g. ';' or '\\t'")
    names = [s.strip() for s in first]
    label_index: int | None = None
    if isinstance(label_column, str):
        if names.count(label_column) != 1:
            problem = "no column" if label_column not in names else f"{names.count(label_column)} columns"
            raise DatasetError(f"cannot load '{p}': {problem} named {label_column!r} in the header (line "
                               f"{first_line}). Expected exactly one; the columns are "
                               f"{', '.join(map(repr, names))}; pass one of them or an index")
        label_index = names.index(label_column)
    elif label_column is not None:
        label_index = int(label_column) + width if label_column < 0 else int(label_column)
        if not 0 <= label_index < width:
            raise DatasetError(f"cannot load '{p}': label_column={label_column} is out of range for its {width} "
                               f"columns. Expected an index in {-width}..{width - 1}; pass e.g. label_column=-1 "
                               f"for the last column")
    features = [j for j in range(width) if j != label_index]
    note = None
    if header != "auto":
        has_header = bool(header)
    elif any(is_text(first[j]) for j in features):
        has_header = True
    elif label_index is not None and is_text(first[label_index]):
        # Only the label field is text: a header when the labels below it are numbers, and the first row's class
        # name when they are text too (a file of numeric features and class names, without a header).
        has_header = len(rows) > 1 and all(is_number(f[label_index]) for _, f in rows[1:] if len(f) == width)
    elif known_names is not None and [names[j] for j in features] == [str(n).strip() for n in known_names]:
        has_header = True
        note = "the model's feature names"
    elif _numeric_header(rows, features):
        has_header = True
        note = "distinct whole numbers in increasing order above fractional data"
    else:
        has_header = False
    if note is not None:
        shown = ", ".join(names[:4]) + (", ..." if width > 4 else "")
        warnings.warn(f"{p.name}: line {first_line} ({shown}) is read as a header of numeric column names ({note});"
                      f" pass header=False (xpnet: --no-header) if it is a sample", UserWarning, stacklevel=4)
    index_column = False
    if has_header and names[0] in _INDEX_NAMES and label_index != 0 and len(features) > 1:
        below = [f[0] for _, f in rows[1:] if f]
        index_column = bool(below) and all(_is_whole(s) for s in below) and len(set(below)) == len(below)
    return CsvLayout(p, delimiter, width, names, has_header, first_line, label_index, index_column, rows, whole)

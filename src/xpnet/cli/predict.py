"""``xpnet evaluate`` and ``xpnet predict``: score a saved model on a dataset, or write its predictions."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

from ..errors import DatasetError, LabelError, ShapeError
from .common import CommandError, _check_output_dir, _load_dataset, _write_failed


def _load_model(path: str, backend: str | None) -> Any:
    from ..files import load

    model = load(path, backend=backend)
    if not hasattr(model, "n_features_in_"):
        raise CommandError(f"{path!r} holds a bare network ({type(model).__name__}), not an estimator saved by "
                           "'xpnet train' or xpnet.save(DNNClassifier/DNNRegressor); load it in Python with "
                           "xpnet.load")
    return model


def _check_features(model: Any, X: Any, source: str) -> None:
    if X.shape[1] != model.n_features_in_:
        raise ShapeError(f"{source} has {X.shape[1]} features but the model takes {model.n_features_in_}: "
                           "use the data the model was trained on (or the same columns)")


def _trained_columns(model: Any) -> tuple[list[str] | None, str | None]:
    """The feature names the model was trained on (``xpnet train``'s CSV header, or the DataFrame's columns a
    ``fit`` saw) and the label column ``xpnet train`` was given, as recorded in the model file."""
    stored = getattr(model, "xpnet_data_", None) or {}
    names = stored.get("feature_names")
    if names is None and getattr(model, "feature_names_in_", None) is not None:
        names = [str(n) for n in model.feature_names_in_]
    label = stored.get("label_column")
    return names, label if isinstance(label, str) else None


def _check_columns(model: Any, names: Any, source: str, label: str | None = None) -> None:
    """Refuse a file whose header names other features, or the same ones in another order, than the model's.

    A label column read as a feature (and a real feature dropped) predicts without a word otherwise: the
    count of columns is the same.
    """
    trained, _ = _trained_columns(model)
    if trained is None or names is None:
        return  # a file or model without a header: only the count of columns can be checked
    names = [str(n) for n in names]
    if names == trained:
        return
    missing = [n for n in trained if n not in names]
    extra = [n for n in names if n not in trained]
    if missing or extra:
        diff = (f"missing {missing[:6]}" if missing else "") + ("; " if missing and extra else "") + \
               (f"not in the model {extra[:6]}" if extra else "")
    else:
        moved = [f"column {i + 1} is {n!r} here, {t!r} in training" for i, (n, t) in
                 enumerate(zip(names, trained, strict=True)) if n != t]
        diff = "the same names in another order: " + "; ".join(moved[:4])
    if label is not None:
        diff += f"; the column {label!r} was read as the label"
    raise ShapeError(f"{source} has the feature columns {names[:8]}{'...' if len(names) > 8 else ''}, but the "
                     f"model was trained on {trained[:8]}{'...' if len(trained) > 8 else ''} ({diff}); give the "
                     "file the model's columns (and --label-column if the label is not the one it was trained "
                     "with), or drop its header line to take the columns by position")


def _csv_first_row(source: str, args: Any) -> list[str] | None:
    """The fields of a ``.csv`` file's first row, or None for other sources and unreadable files (their loader
    says what is wrong)."""
    path = Path(source)
    if path.suffix.lower() not in (".csv", ".tsv") or not path.is_file():
        return None
    from ..datasets.csv_layout import detect_delimiter, read_head, split_rows

    try:
        text, _ = read_head(path)
        given = getattr(args, "delimiter", None) or ("\t" if path.suffix.lower() == ".tsv" else None)
        rows = split_rows(text, given or detect_delimiter(text, path), path, 1)
    except (DatasetError, OSError):
        return None
    return [f.strip() for f in rows[0][1]] if rows else []


def _csv_header_has(source: str, name: str, args: Any) -> bool:
    """Whether a ``.csv`` file's first row holds the column ``name`` (True for other sources: their loader says
    what is wrong with a name)."""
    first = _csv_first_row(source, args)
    return first is None or name in first


def _other_column(first_row: Any, feature_names: Any) -> str | None:
    """The one column of a header that is not among the model's ``feature_names`` when the header holds all of
    them plus that one: the label (or an id column), wherever it stands; None otherwise."""
    if not first_row or not feature_names:
        return None
    others = [c for c in first_row if c not in set(feature_names)]
    if len(others) == 1 and len(first_row) == len(feature_names) + 1 and set(feature_names) <= set(first_row):
        return others[0]
    return None


def _check_labels(model: Any, y: Any, source: str) -> None:
    import numpy as np


    if not hasattr(model, "classes_"):
        if y.dtype.kind not in "biuf":
            raise LabelError(f"{source} has non-numeric labels (dtype {y.dtype}) but the model is a regressor")
        return
    classes = model.classes_
    if classes.dtype.kind in "biuf" and y.dtype.kind in "biuf":
        # Compared as numbers without truncation: a label 0.5 must not pass for class 0.
        labels, known = y.astype(np.float64), classes.astype(np.float64)
    else:
        labels, known = y.astype(str), classes.astype(str)
    unseen = np.unique(y[~np.isin(labels, known)])
    if unseen.size:
        raise LabelError(f"{source} has labels the model was not trained on: {unseen[:5].tolist()} "
                           f"(model classes: {classes.tolist()})")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .. import datasets

    model = _load_model(args.model, args.backend)
    # `xpnet train` stores its seed (which also generates moons/circles/flower) and test fraction in the file.
    stored = getattr(model, "xpnet_data_", None) or {}
    seed = args.seed if args.seed is not None else stored.get("seed", 0)
    # The label column training was given, unless this command names one: a label read as a feature scores
    # nonsense without a word.
    label_column = args.label_column
    trained_label = _trained_columns(model)[1]
    if label_column is None and trained_label is not None and (
            trained_label.lstrip("-").isdigit() or _csv_header_has(args.data, trained_label, args)):
        label_column = trained_label  # (a file without that column in its header: the last column, as always)
    if label_column is None:  # the header's one column that is not a feature of the model, wherever it stands
        label_column = _other_column(_csv_first_row(args.data, args), _trained_columns(model)[0])
    ds = _load_dataset(args.data, label_column, seed, args)
    _check_columns(model, ds.feature_names, ds.name, getattr(ds, "label_name", None))
    X, y, where = ds.X, ds.y, f"all {ds.n_samples} samples"
    if args.split == "test":
        fraction = args.test_fraction if args.test_fraction is not None else stored.get("test_fraction", 0.2)
        _, X, _, y = datasets.train_test_split(ds.X, ds.y, test_size=fraction, seed=seed)
        where = f"the test split ({len(y)} samples, test fraction {fraction:g}, seed {seed})"
    _check_features(model, X, ds.name)
    _check_labels(model, y, ds.name)
    if hasattr(model, "classes_"):
        y = y.astype(model.classes_.dtype) if model.classes_.dtype.kind in "biuf" else y.astype(str)
        print(f"accuracy: {model.score(X, y):.4f} on {where} of {ds.name}")
    else:
        import numpy as np

        pred = model.predict(X)
        mse = float(np.mean((np.asarray(pred).reshape(len(y), -1) - y.reshape(len(y), -1)) ** 2))
        print(f"R^2: {model.score(X, y):.4f}, mse: {mse:.6g} on {where} of {ds.name}")
    if getattr(args, "threads_used", None):  # a diagnostic: stdout keeps the one result line
        print(f"threads: {args.threads_used}", file=sys.stderr)
    return 0


def _read_features(source: str, n_features: int, label_column: str | None = None,
                   trained_label: str | None = None, args: Any = None,
                   known_names: Any = None) -> tuple[Any, Any, str | None]:
    """Features of a file for prediction, their names when the file has a header (else None) and the header name
    of the column read as the label (else None): an ``.npz``
    with ``X`` (``y`` optional), or a ``.csv``, ``.parquet`` or ``.npy`` holding either exactly the model's
    features or the features plus a label column: ``label_column`` when given, else the one training was given
    (``trained_label``, when the file's header has it or it is an index), else the header's one column that is
    not among ``known_names``, else the last one. ``known_names``
    (the model's feature names) let a CSV's numeric first row count as its header; ``args`` carries
    ``--delimiter`` and ``--header``."""
    import numpy as np

    from .. import datasets

    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv", ".tsv", ".npy", ".parquet"):
        ds = datasets.load(source)
        return ds.X, ds.feature_names, None
    from ..datasets.checks import _existing_file

    _existing_file(path, suffix)  # no such file, a directory, a FIFO or a device: each said as it is
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "X" not in archive.files:
                    raise DatasetError(f"{source!r} has no array named 'X' (found: {', '.join(archive.files)})")
                X = archive["X"]
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(f"cannot read {source!r} as an npz archive ({type(exc).__name__}: {exc})") from None
        if X.ndim != 2 or X.dtype.kind not in "biuf":
            raise DatasetError(f"X in {source!r} must be a 2-D numeric array, got {X.dtype} of shape {X.shape}")
        X = X.astype(np.float64)
        if not np.all(np.isfinite(X)):
            row, col = (int(i) for i in np.argwhere(~np.isfinite(X))[0])
            raise DatasetError(f"X in {source!r} must hold finite numbers, but X[{row}, {col}] is {X[row, col]}; "
                               "fill in or drop the missing values first")
        return X, None, None
    delimiter = getattr(args, "delimiter", None)
    if delimiter is None and suffix == ".tsv":
        delimiter = "\t"
    header = getattr(args, "header", None)
    first_row: list[str] = []
    if suffix in (".csv", ".tsv"):
        from ..datasets.csv_layout import detect_delimiter, read_head, split_rows

        text, _ = read_head(path)
        rows = split_rows(text, delimiter or detect_delimiter(text, path), path, 1)
        if not rows:
            raise DatasetError(f"{source!r} is empty")
        first_row = [f.strip() for f in rows[0][1]]
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            first_row = list(pq.read_schema(path).names)
        except Exception as exc:
            raise DatasetError(f"cannot read {source!r} as a Parquet file ({exc})") from None
    else:
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except Exception as exc:
            raise DatasetError(f"cannot read {source!r} as a .npy file ({type(exc).__name__}: {exc})") from None
        first_row = [str(j) for j in range(shape[-1] if shape else 0)]
    width = len(first_row)
    if width == n_features + 1:
        column: int | str = -1
        if label_column is None and trained_label is not None and (
                trained_label.lstrip("-").isdigit() or trained_label in first_row):
            label_column = trained_label
        if label_column is None:  # the header's one column that is not a feature (an id column, a moved label)
            label_column = _other_column(first_row, known_names)
        if label_column is not None:
            column = int(label_column) if label_column.lstrip("-").isdigit() else label_column
        text_file = suffix in (".csv", ".tsv")
        options = {"delimiter": delimiter, "header": "auto" if header is None else header} if text_file else {}
        ds = datasets.load(path, label_column=column, **options)
        return ds.X, ds.feature_names, ds.label_name
    if label_column is not None:
        raise DatasetError(f"--label-column given but {source!r} has {width} columns, the model's {n_features} "
                           "features and no label column")
    if width != n_features:
        raise DatasetError(f"{source!r} has {width} columns but the model takes {n_features} features (or "
                           f"{n_features} plus a label column)")
    if suffix in (".csv", ".tsv"):
        from ..datasets.csv_files import _read_csv

        data = _read_csv(path, None, "auto" if header is None else header, delimiter, known_names)
        return data.X, data.feature_names, None
    if suffix == ".parquet":
        X, _, names, _ = datasets.read_parquet(path, None)
        return X, list(names), None
    return datasets.read_npy(path, None)[0], None, None


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    if args.out == "-":  # the usual spelling of standard output, which is the default
        args.out = None
    _check_output_dir(args.out, "predictions", (args.model, args.data))  # never written over an input
    model = _load_model(args.model, args.backend)
    trained_names, trained_label = _trained_columns(model)
    X, names, read_label = _read_features(args.data, model.n_features_in_, args.label_column, trained_label, args,
                                          trained_names)
    _check_features(model, X, args.data)
    _check_columns(model, names, args.data, read_label)
    pred = np.asarray(model.predict(X))
    header = ["prediction"]
    columns = [pred.reshape(len(X), -1)]
    if hasattr(model, "classes_"):
        proba = np.asarray(model.predict_proba(X))
        header += [f"p_{c}" for c in model.classes_]
        columns.append(proba)
    elif columns[0].shape[1] > 1:
        header = [f"prediction_{i}" for i in range(columns[0].shape[1])]
    table = np.concatenate([c.astype(str) if c.dtype.kind not in "f" else np.char.mod("%.8g", c) for c in columns],
                           axis=1)
    # The csv module quotes what needs it (a class name holding a comma or a quote), so every row keeps its fields.
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(table.tolist())
    text = buffer.getvalue()
    if args.out:
        from ..files import write_file_atomically

        write_file_atomically(args.out, text.encode("utf-8"), error=_write_failed("predictions"))
        print(f"wrote {len(X)} predictions to {args.out}")
    elif sys.stdout is None:  # started with stdout closed (`>&-`): nowhere to write
        raise CommandError("standard output is closed, so the predictions have nowhere to go: pass --out FILE")
    else:
        sys.stdout.write(text)
    if getattr(args, "threads_used", None):  # stdout holds the predictions
        print(f"threads: {args.threads_used}", file=sys.stderr)
    return 0

"""The checks the dataset file readers share: the path names an existing file; ``X`` and ``y`` have the shapes,
dtypes and finite values a dataset needs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DatasetError
from ..files.atomic import _not_regular


def _existing_file(path: Any, kind: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"path must be a str or os.PathLike naming a {kind} file, got {type(path).__name__} "
                          f"{path!r}")
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"cannot load '{p}': no such file. Expected an existing {kind} file; check the path "
                           f"(a relative path is taken from the working directory {os.getcwd()!r})")
    if p.is_dir():
        raise DatasetError(f"cannot load '{p}': it is a directory, not a file. Expected a {kind} file; "
                           f"pass the path of the file inside it")
    if not p.is_file():
        what = _not_regular(Path(os.path.realpath(p))) or "not a regular file"
        raise DatasetError(f"cannot load '{p}': it is {what}, not a regular file; xpnet reads data from regular "
                           f"files only: save the data to a {kind} file first")
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

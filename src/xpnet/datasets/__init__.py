"""Datasets for examples, tests and the command line: generated, bundled with scikit-learn, or read from files.

Everything uses scikit-learn's layout: ``X`` is ``(n_samples, n_features)`` float64 and ``y`` is
``(n_samples,)``. For the lecture's layout take ``X.T`` and ``y.reshape(1, -1)``.

* Generated (offline, seeded, NumPy on the host): :func:`make_flower`, :func:`make_moons`, :func:`make_circles`.
* Bundled with scikit-learn (offline): :func:`load_digits`, :func:`load_breast_cancer`.
* Files: :func:`load_npz` (arrays ``X`` and ``y``; pickled objects are refused), :func:`load_csv` (numeric
  features and one label column, pyarrow's C++ parser), :func:`load_parquet` and :func:`load_npy` (a 2-D array,
  memory-mapped), the last three with the label in one column.
* :func:`load` opens any of them by built-in name (:data:`DATASETS`) or path and returns a :class:`Dataset`.
* :func:`train_test_split` splits ``X, y``, stratified when ``y`` holds class labels.

Every problem with the data raises :class:`~xpnet.errors.DatasetError`; a bad parameter value raises
:class:`~xpnet.errors.ConfigError`. NumPy and scikit-learn are imported inside the functions, so
``import xpnet`` stays light.

The package's modules: :mod:`~xpnet.datasets.generated`, :mod:`~xpnet.datasets.bundled`,
:mod:`~xpnet.datasets.npz`, :mod:`~xpnet.datasets.csv_files` (with :mod:`~xpnet.datasets.csv_layout` and
:mod:`~xpnet.datasets.csv_arrow`), :mod:`~xpnet.datasets.columnar` (Parquet, ``.npy``) and
:mod:`~xpnet.datasets.checks` (what the file readers share); :class:`Dataset`, :func:`load` and
:func:`train_test_split` are here.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..device.random import check_seed
from ..errors import ConfigError, DatasetError
from .bundled import _sklearn_bunch, load_breast_cancer, load_digits
from .columnar import load_npy, load_parquet, read_npy, read_parquet
from .csv_files import _read_csv, load_csv
from .generated import _check_noise, make_circles, make_flower, make_moons
from .npz import load_npz

__all__ = [
    "DATASETS",
    "Dataset",
    "load",
    "load_breast_cancer",
    "load_csv",
    "load_digits",
    "load_npy",
    "load_npz",
    "load_parquet",
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
_SUFFIXES = (".npz", ".csv", ".tsv", ".parquet", ".npy")


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
    label_name : str or None
        The label column's name in the file's header (CSV, Parquet), when it has one.

    Equality is identity (``eq=False``): comparing arrays element-wise has no single truth value.
    """

    X: Any
    y: Any
    name: str
    task: str
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    label_name: str | None = None

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
                        f".npz, .csv, .tsv, .parquet or .npy file; check the spelling (or the file's suffix)")


def load(source: str | os.PathLike[str] = "digits", *, label_column: int | str = -1, n_samples: int | None = None,
         noise: float | None = None, seed: int | None = 0, delimiter: str | None = None,
         header: bool | str = "auto") -> Dataset:
    """Load a built-in dataset by name or a ``.npz`` / ``.csv`` / ``.parquet`` / ``.npy`` file by path.

    Parameters
    ----------
    source : str or os.PathLike, default "digits"
        One of :data:`DATASETS` (case-insensitive), or a path whose suffix is ``.npz`` (see :func:`load_npz`),
        ``.csv`` (see :func:`load_csv`, which reads the header automatically), ``.parquet`` (see
        :func:`load_parquet`) or ``.npy`` (see :func:`load_npy`).
    label_column : int or str, default -1
        The label column of a CSV, Parquet or ``.npy`` file (a name for CSV with a header and Parquet).
    delimiter : str or None, default None
        The field separator of a CSV file; None detects it. Only for ``.csv`` sources.
    header : {"auto", True, False}, default "auto"
        Whether a CSV file's first row holds column names (see :func:`load_csv`). Only for ``.csv`` sources.
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
        ``X`` (n_samples, n_features) float64 (a float32 ``.npy`` stays float32, memory-mapped), ``y``
        (n_samples,), names and the task.

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
            _only_for(name, label_column=label_column, delimiter=delimiter, header=header)
            kwargs: dict[str, Any] = {"seed": seed}
            if n_samples is not None:
                kwargs["n_samples"] = n_samples
            if noise is not None:
                kwargs["noise"] = _check_noise(noise)
            make = {"moons": make_moons, "circles": make_circles, "flower": make_flower}[name]
            X, y = make(**kwargs)
            return Dataset(X, y, name, "classification")
        _only_for(name, n_samples=n_samples, noise=noise, label_column=label_column, delimiter=delimiter,
                  header=header)
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
    if suffix not in (".csv", ".tsv"):
        _only_for(p.name, delimiter=delimiter, header=header)
    if suffix == ".tsv" and delimiter is None:
        delimiter = "\t"  # a .tsv is a CSV file separated by tabs
    feature_names = label_name = None
    if suffix == ".npz":
        _only_for(p.name, label_column=label_column)
        X, y = load_npz(p)
    elif suffix == ".parquet":
        X, y, feature_names, label_name = read_parquet(p, label_column)
    elif suffix == ".npy":
        X, y = read_npy(p, label_column)
    else:
        X, y, feature_names, label_name, _ = _read_csv(p, label_column, header, delimiter)
    return Dataset(X, y, p.name, _infer_task(y), feature_names, _class_names(y), label_name)


def _only_for(source: str, **given: Any) -> None:
    """Refuse options that do not apply to ``source`` rather than silently ignore them."""
    defaults = {"n_samples": None, "noise": None, "label_column": -1, "delimiter": None, "header": "auto"}
    for key, value in given.items():
        if isinstance(value, bool) or value != defaults[key]:
            where = {"n_samples": "the generated datasets (moons, circles, flower)",
                     "noise": "the generated datasets (moons, circles, flower)",
                     "label_column": ".csv, .tsv, .parquet and .npy files",
                     "delimiter": ".csv and .tsv files", "header": ".csv and .tsv files"}[key]
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
        reason = str(exc).rstrip(".")  # scikit-learn's message ends with its own full stop
        raise DatasetError(f"cannot make a {how}split of {len(y_arr)} samples with test_size={test_size}: {reason}. "
                           f"Expected enough samples (and members of each class) for both parts; change "
                           f"test_size{' or pass stratify=False' if labels is not None else ''}") from exc
    X_train, X_test, y_train, y_test = parts
    return X_train, X_test, y_train, y_test

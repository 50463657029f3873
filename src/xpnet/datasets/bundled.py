"""Datasets bundled with scikit-learn (offline): :func:`load_digits`, :func:`load_breast_cancer`."""

from __future__ import annotations

from typing import Any


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

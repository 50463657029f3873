"""The validation split: which examples train and which validate (stratified for classifiers)."""

from __future__ import annotations

import numbers
from typing import Any

from ..device.random import host_generator
from ..errors import ConfigError, ShapeError

__all__ = ["split_indices"]


def split_indices(m: int, fraction: float, seed: int | None, labels: Any = None) -> tuple[Any, Any]:
    """Split ``range(m)`` into training and validation indices (host NumPy int64 arrays, each sorted).

    ``fraction`` of the examples (at least one) go to validation. With ``labels`` (a host 1-D array of class
    labels) the split is stratified when every class has at least two members, so both parts keep the class
    proportions; otherwise it is a plain seeded shuffle.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not (0 < fraction < 1):
        raise ConfigError(f"validation_fraction must be in (0, 1), got {fraction!r}")
    n_val = max(1, round(fraction * m))
    if m - n_val < 1:
        raise ShapeError(f"validation_fraction={fraction} of {m} examples leaves none to train on: "
                         "give more examples or a smaller fraction")
    stratify = None
    if labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2 and n_val >= len(counts) and m - n_val >= len(counts):
            stratify = labels
    rng_seed = int(host_generator(seed, "validation-split").integers(2**31 - 1))
    train, val = train_test_split(np.arange(m), test_size=n_val, random_state=rng_seed, stratify=stratify)
    return np.sort(train), np.sort(val)


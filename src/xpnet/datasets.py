"""Small generated datasets for examples and tests (offline, seeded, NumPy on the host).

They use scikit-learn's layout: ``X`` is ``(n_samples, n_features)`` and ``y`` is ``(n_samples,)`` of
integer labels. For the lecture's layout take ``X.T`` and ``y.reshape(1, -1)``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .errors import ConfigError
from .random import host_generator

__all__ = ["make_flower", "make_moons"]


def _check_n(n_samples: Any) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 2:
        raise ConfigError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    return int(n_samples)


def make_flower(n_samples: int = 400, *, petals: float = 4.0, noise: float = 0.2, seed: int = 0) -> tuple[Any, Any]:
    """The lecture's planar "flower": two interleaved classes on the petals of ``r = petals * sin(4 t)``.

    Class ``j`` (half of the samples each) has angle ``t`` evenly spaced over ``[3.12 j, 3.12 (j + 1)]``
    plus ``N(0, noise)``, radius ``r = petals * sin(4 t) + N(0, noise)``, and features
    ``(r sin t, r cos t)``.

    Returns ``X`` (n_samples, 2) float64 and ``y`` (n_samples,) int64 of 0/1.
    """
    import numpy as np

    n = _check_n(n_samples)
    rng = host_generator(seed, "dataset:flower")
    counts = (n // 2, n - n // 2)
    X_parts, y_parts = [], []
    for j, count in enumerate(counts):
        t = np.linspace(j * 3.12, (j + 1) * 3.12, count) + rng.standard_normal(count) * noise
        r = petals * np.sin(4.0 * t) + rng.standard_normal(count) * noise
        X_parts.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        y_parts.append(np.full(count, j, dtype=np.int64))
    return np.concatenate(X_parts), np.concatenate(y_parts)


def make_moons(n_samples: int = 400, *, noise: float = 0.1, seed: int = 0) -> tuple[Any, Any]:
    """Two interleaving half circles: class 0 on ``(cos a, sin a)``, class 1 on ``(1 - cos a, 0.5 - sin a)``,
    ``a`` evenly spaced over ``[0, pi]``, plus ``N(0, noise)`` on both features.

    Returns ``X`` (n_samples, 2) float64 and ``y`` (n_samples,) int64 of 0/1.
    """
    import numpy as np

    n = _check_n(n_samples)
    rng = host_generator(seed, "dataset:moons")
    n0 = n // 2
    a0 = np.linspace(0.0, math.pi, n0)
    a1 = np.linspace(0.0, math.pi, n - n0)
    X = np.concatenate([np.stack([np.cos(a0), np.sin(a0)], axis=1),
                        np.stack([1.0 - np.cos(a1), 0.5 - np.sin(a1)], axis=1)])
    X = X + rng.standard_normal(X.shape) * noise
    y = np.concatenate([np.zeros(n0, dtype=np.int64), np.ones(n - n0, dtype=np.int64)])
    return X, y

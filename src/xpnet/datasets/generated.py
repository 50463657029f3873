"""Generated datasets (offline, seeded, NumPy on the host): :func:`make_flower`, :func:`make_moons`,
:func:`make_circles`."""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..device.random import host_generator
from ..errors import ConfigError


def _check_n(n_samples: Any) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 2:
        raise ConfigError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    return int(n_samples)


def _shuffled(X: Any, y: Any, shuffle: bool, seed: Any, name: str) -> tuple[Any, Any]:
    """The rows in a seeded random order when ``shuffle`` (own stream: the points themselves do not change)."""
    if not shuffle:
        return X, y
    order = host_generator(seed, f"dataset:{name}:shuffle").permutation(len(y))
    return X[order], y[order]


def make_flower(n_samples: int = 400, *, petals: float = 4.0, noise: float = 0.2, seed: int = 0,
                shuffle: bool = False) -> tuple[Any, Any]:
    """The lecture's planar "flower": two interleaved classes on the petals of ``r = petals * sin(4 t)``.

    Class ``j`` (half of the samples each) has angle ``t`` evenly spaced over ``[3.12 j, 3.12 (j + 1)]``
    plus ``N(0, noise)``, radius ``r = petals * sin(4 t) + N(0, noise)``, and features
    ``(r sin t, r cos t)``.

    Returns ``X`` (n_samples, 2) float64 and ``y`` (n_samples,) int64 of 0/1, class 0 first as in the
    lecture; ``shuffle=True`` mixes the rows (seeded).
    """
    import numpy as np

    n = _check_n(n_samples)
    noise = _check_noise(noise)
    rng = host_generator(seed, "dataset:flower")
    counts = (n // 2, n - n // 2)
    X_parts, y_parts = [], []
    for j, count in enumerate(counts):
        t = np.linspace(j * 3.12, (j + 1) * 3.12, count) + rng.standard_normal(count) * noise
        r = petals * np.sin(4.0 * t) + rng.standard_normal(count) * noise
        X_parts.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        y_parts.append(np.full(count, j, dtype=np.int64))
    return _shuffled(np.concatenate(X_parts), np.concatenate(y_parts), shuffle, seed, "flower")


def make_moons(n_samples: int = 400, *, noise: float = 0.1, seed: int = 0, shuffle: bool = False
               ) -> tuple[Any, Any]:
    """Two interleaving half circles: class 0 on ``(cos a, sin a)``, class 1 on ``(1 - cos a, 0.5 - sin a)``,
    ``a`` evenly spaced over ``[0, pi]``, plus ``N(0, noise)`` on both features.

    Returns ``X`` (n_samples, 2) float64 and ``y`` (n_samples,) int64 of 0/1, class 0 first;
    ``shuffle=True`` mixes the rows (seeded; scikit-learn's ``make_moons`` shuffles by default).
    """
    import numpy as np

    n = _check_n(n_samples)
    noise = _check_noise(noise)
    rng = host_generator(seed, "dataset:moons")
    n0 = n // 2
    a0 = np.linspace(0.0, math.pi, n0)
    a1 = np.linspace(0.0, math.pi, n - n0)
    X = np.concatenate([np.stack([np.cos(a0), np.sin(a0)], axis=1),
                        np.stack([1.0 - np.cos(a1), 0.5 - np.sin(a1)], axis=1)])
    X = X + rng.standard_normal(X.shape) * noise
    y = np.concatenate([np.zeros(n0, dtype=np.int64), np.ones(n - n0, dtype=np.int64)])
    return _shuffled(X, y, shuffle, seed, "moons")


def _check_noise(noise: Any) -> float:
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not (math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"noise must be a finite number >= 0 (the standard deviation of the Gaussian noise added to "
                          f"each feature), got {noise!r}; pass e.g. noise=0.1, or noise=0 for none")
    return float(noise)


def make_circles(n_samples: int = 400, *, noise: float = 0.1, factor: float = 0.5, seed: int = 0,
                 shuffle: bool = False) -> tuple[Any, Any]:
    """Two concentric circles: class 0 on the unit circle, class 1 on the circle of radius ``factor``.

    Class 0 gets ``n_samples // 2`` points and class 1 the rest; within a class the angles are evenly
    spaced over ``[0, 2 pi)``, and ``N(0, noise)`` is added to both features.

    Returns ``X`` (n_samples, 2) float64 and ``y`` (n_samples,) int64 of 0/1, class 0 first;
    ``shuffle=True`` mixes the rows (seeded).
    """
    import numpy as np

    n = _check_n(n_samples)
    noise = _check_noise(noise)
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not 0.0 < factor < 1.0:
        raise ConfigError(f"factor must be a number in (0, 1), the inner circle's radius relative to the outer "
                          f"one, got {factor!r}; pass e.g. factor=0.5")
    rng = host_generator(seed, "dataset:circles")
    n0 = n // 2
    # endpoint=False: the angle 2 pi is the angle 0, and including both would put two points on one spot.
    a0 = np.linspace(0.0, 2.0 * math.pi, n0, endpoint=False)
    a1 = np.linspace(0.0, 2.0 * math.pi, n - n0, endpoint=False)
    X = np.concatenate([np.stack([np.cos(a0), np.sin(a0)], axis=1),
                        float(factor) * np.stack([np.cos(a1), np.sin(a1)], axis=1)])
    X = X + rng.standard_normal(X.shape) * noise
    y = np.concatenate([np.zeros(n0, dtype=np.int64), np.ones(n - n0, dtype=np.int64)])
    return _shuffled(X, y, shuffle, seed, "circles")

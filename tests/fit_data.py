"""The small training problem the step tests share: ``X`` (n_x, m) standard normal and targets ``Y`` (n_out, m)
for an output (one-hot classes for softmax, 0/1 labels for sigmoid, normal targets for linear), from one seed."""

from __future__ import annotations

import numpy as np


def xy(n_x: int, n_out: int, output: str, m: int = 45, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` on the host: ``X`` (n_x, m), ``Y`` (n_out, m) as the ``output`` activation expects them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_x, m))
    if output == "softmax":
        Y = np.eye(n_out)[:, rng.integers(0, n_out, m)]
    elif output == "sigmoid":
        Y = (rng.random((n_out, m)) > 0.5).astype(float)
    else:
        Y = rng.normal(size=(n_out, m))
    return X, Y

"""Weight initializers: ``W[l] = scale(n_{l-1}, n_l) * N(0, 1)`` of shape ``(n_l, n_{l-1})``; biases are zeros.

| name          | scale                          | note                                              |
| ------------- | ------------------------------ | ------------------------------------------------- |
| he            | sqrt(2 / n_{l-1})              | for ReLU-family hidden layers (the default)       |
| xavier        | sqrt(1 / n_{l-1})              | the course's "Xavier" (for tanh); LeCun's scale   |
| glorot        | sqrt(2 / (n_{l-1} + n_l))      | Glorot and Bengio's normal variant                |
| scaled_normal | 0.01                           | the lecture's first ``np.random.randn(...) * 0.01`` |

``xavier`` is the name the course gives ``randn / sqrt(n_{l-1})``; elsewhere that scale is LeCun's normal
initialization, and "Xavier" (PyTorch's ``xavier_normal_``, Keras's ``GlorotNormal``) means Glorot and Bengio's
``sqrt(2 / (n_{l-1} + n_l))``, which is ``glorot`` here. The two are different scales, not aliases.

The normal draws come from :mod:`xpnet.random` on the host, so a seed gives the same bits on every backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .registry import lookup

__all__ = ["INITIALIZERS", "get_initializer"]

INITIALIZERS: dict[str, Callable[[int, int], float]] = {
    "he": lambda n_prev, n: math.sqrt(2.0 / n_prev),
    "xavier": lambda n_prev, n: math.sqrt(1.0 / n_prev),
    "glorot": lambda n_prev, n: math.sqrt(2.0 / (n_prev + n)),
    "scaled_normal": lambda n_prev, n: 0.01,
}


def get_initializer(init: str) -> Callable[[int, int], float]:
    """The scale function ``(n_{l-1}, n_l) -> std`` of an initializer; unknown names list the valid ones."""
    return lookup(init, INITIALIZERS, kind="init", plural="initializers")

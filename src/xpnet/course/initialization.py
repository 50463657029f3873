"""Course 2, week 1, "Initialization", under the course's names.

The network is the course's ``LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID`` with
``layers_dims = [n_x, 10, 5, 1]``; the three initializers differ only in ``W[l]``:

| function                        | ``W[l]`` of shape ``(n_l, n_{l-1})``    |
| ------------------------------- | ---------------------------------------- |
| ``initialize_parameters_zeros`` | ``0`` (every unit learns the same thing) |
| ``initialize_parameters_random``| ``10 * randn`` (too large: saturates)    |
| ``initialize_parameters_he``    | ``randn * sqrt(2 / n_{l-1})``            |

and ``b[l] = zeros(n_l, 1)``. Where the course calls ``np.random.seed(3)``, xpnet draws from its own seeded
generator (``seed``): the same values on every backend and device, not the course's printed ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from ..lecture import functional as F
from . import _common as C
from .deep_network import predict_dec  # the course's plotting helper of these assignments

__all__ = [
    "initialize_parameters_he", "initialize_parameters_random", "initialize_parameters_zeros", "model", "predict_dec",
]


def initialize_parameters_zeros(layers_dims: Sequence[int], *, dtype: Any = None, backend: Any = None) -> dict:
    """``W[l] = zeros(n_l, n_{l-1})``, ``b[l] = zeros(n_l, 1)``. ``backend``: the session's (``use_backend``,
    ``XPNET_BACKEND``) unless given, else NumPy."""
    return C.draw_parameters(layers_dims, lambda n_prev: 0.0, 0, dtype, backend)


def initialize_parameters_random(layers_dims: Sequence[int], *, seed: int = 3, dtype: Any = None,
                                 backend: Any = None) -> dict:
    """``W[l] = 10 * randn(n_l, n_{l-1})``, ``b[l] = zeros(n_l, 1)``. Where the course calls
    ``np.random.seed(3)``, xpnet draws from its own seeded generator (``seed``; same values on every device)."""
    return C.draw_parameters(layers_dims, lambda n_prev: 10.0, seed, dtype, backend)


def initialize_parameters_he(layers_dims: Sequence[int], *, seed: int = 3, dtype: Any = None,
                             backend: Any = None) -> dict:
    """He et al.: ``W[l] = randn(n_l, n_{l-1}) * sqrt(2 / n_{l-1})``, ``b[l] = zeros(n_l, 1)``. Where the
    course calls ``np.random.seed(3)``, xpnet draws from its own seeded generator (``seed``; same values on
    every device)."""
    return C.draw_parameters(layers_dims, lambda n_prev: math.sqrt(2.0 / n_prev), seed, dtype, backend)


_INITIALIZERS = {"zeros": initialize_parameters_zeros, "random": initialize_parameters_random,
                 "he": initialize_parameters_he}


@C.on_training_backend
def model(X: Any, Y: Any, learning_rate: float = 0.01, num_iterations: int = 15000, print_cost: bool = True,
          initialization: str = "he", *, seed: int = 3, backend: Any = None) -> dict:
    """The course's 3-layer model ``[n_x, 10, 5, 1]`` trained by batch gradient descent from the chosen
    ``initialization`` (``"zeros"``, ``"random"`` or ``"he"``)::

        A3, cache = forward_propagation(X, parameters)   # relu, relu, sigmoid
        cost = -(1/m) sum(Y log A3 + (1-Y) log(1-A3))
        grads = backward_propagation(X, Y, cache)         # dZ3 = A3 - Y, dW = (1/m) dZ A_prev^T, ...
        parameters = W - learning_rate * dW, b - learning_rate * db

    Returns the trained parameters. ``print_cost`` prints the cost every 1000 iterations (``inf`` when the
    large random initialization saturates the sigmoid, as in the course). ``backend``: where training runs
    (default: ``X``'s backend when not NumPy, else the session's, else NumPy); ``X``, ``Y`` are moved there.
    Where the course seeds NumPy's generator, xpnet uses its own (``seed``).
    """
    if initialization not in _INITIALIZERS:
        raise ConfigError(f"initialization must be one of {', '.join(map(repr, _INITIALIZERS))}, got "
                          f"{initialization!r}")
    num_iterations = C.check_iterations(num_iterations)
    bk = C.course_backend(backend, like=X)
    X, Y = C.to_backend(bk, X, Y)
    dims = [int(X.shape[0]), 10, 5, 1]
    init = _INITIALIZERS[initialization]
    dtype = C.data_dtype(bk, X)
    parameters = init(dims, dtype=dtype, backend=bk) if initialization == "zeros" else \
        init(dims, seed=seed, dtype=dtype, backend=bk)
    xp = bk.xp
    X = F._as_input(xp, X, parameters["W1"].dtype)
    Yt = C.targets_like(Y, (1, int(X.shape[1])), parameters["W1"])
    for i in range(num_iterations):
        A3, cache = C.flat_forward(X, parameters, check=False)
        if print_cost and i % 1000 == 0:
            C.print_line(f"Cost after iteration {i}: {float(C.mean_cost(xp, A3, Yt))}")
        grads = C.flat_backward(X, Yt, cache)
        parameters = F.update_parameters(parameters, grads, learning_rate)
    return parameters

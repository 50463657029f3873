"""Course 2, week 1, "Regularization", under the course's names: L2 regularization and inverted dropout on
the course's 3-layer network (any number of layers works).

L2::

    J = -(1/m) sum(Y log A3 + (1-Y) log(1-A3)) + (1/m) (lambd/2) sum_l ||W[l]||_F^2
    dW[l] = (1/m) dZ[l] A[l-1]^T + (lambd/m) W[l]

Inverted dropout (hidden layers)::

    D[l] = (rand(n_l, m) < keep_prob);  A[l] = A[l] * D[l] / keep_prob
    dA[l] = dA[l] * D[l] / keep_prob

Caches are the course's flat tuples ``(Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)`` and, with dropout,
``(Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)``; gradients use the keys ``dZ{l}``, ``dW{l}``,
``db{l}``, ``dA{l}``. Where the course calls ``np.random.seed``, xpnet draws the masks and weights from its own
seeded generator (the same values on every backend and device, not the course's printed ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..device import xp as _xp
from ..device.backend import backend_of
from ..device.random import host_generator
from ..errors import ConfigError
from ..lecture import functional as F
from . import _common as C
from .deep_network import predict_dec  # the course's plotting helper of these assignments

__all__ = [
    "backward_propagation_with_dropout",
    "backward_propagation_with_regularization",
    "compute_cost_with_regularization",
    "forward_propagation_with_dropout",
    "model",
    "predict_dec",
]


@_xp.on_device_of_arrays
def compute_cost_with_regularization(A3: Any, Y: Any, parameters: Mapping[str, Any], lambd: float) -> Any:
    """``J = -(1/m) sum(Y log A3 + (1-Y) log(1-A3)) + (1/m) (lambd/2) sum_l ||W[l]||_F^2`` over every ``W[l]``
    of ``parameters``; a 0-d array in ``A3``'s namespace."""
    lambd = C.check_lambd(lambd)
    xp = _xp.namespace_of_named(A3=A3, W1=parameters["W1"])
    m = A3.shape[1]
    return C.zero_d(xp, C.cross_entropy(A3, Y) + (1.0 / m) * (lambd / 2.0) * C.l2_sum(parameters))


@_xp.on_device_of_arrays
def backward_propagation_with_regularization(X: Any, Y: Any, cache: tuple, lambd: float) -> dict[str, Any]:
    """The backward pass of the flat ``cache`` with L2: ``dZ3 = A3 - Y``,
    ``dW[l] = (1/m) dZ[l] A[l-1]^T + (lambd/m) W[l]``, ``db[l] = (1/m) sum_columns(dZ[l])``,
    ``dA[l-1] = W[l]^T dZ[l]``, ``dZ[l-1] = dA[l-1] * (A[l-1] > 0)``. Returns ``dZ3, dW3, db3, dA2, dZ2, ...``."""
    return C.flat_backward(X, Y, cache, lambd=C.check_lambd(lambd))


def _masks(rng: Any, bk: Any, keep_prob: float) -> Any:
    # The keep masks D = (rand < keep_prob), drawn on the host from xpnet's generator and moved once.
    return lambda shape: bk.asarray(rng.random(shape) < keep_prob)


@_xp.on_device_of_arrays
def forward_propagation_with_dropout(X: Any, parameters: Mapping[str, Any], keep_prob: float = 0.5, *,
                                     seed: int = 1) -> tuple[Any, tuple]:
    """``LINEAR -> RELU -> DROPOUT -> LINEAR -> RELU -> DROPOUT -> LINEAR -> SIGMOID`` with
    ``D[l] = (rand(n_l, m) < keep_prob)`` (boolean), ``A[l] = A[l] * D[l] / keep_prob``.

    Returns ``(A3, cache)`` with the flat dropout cache. Where the course calls ``np.random.seed(1)``, xpnet
    draws the masks from its own seeded generator (``seed``): the same masks on every backend and device, not
    the course's printed ones."""
    keep_prob = C.check_keep_prob(keep_prob)
    bk = backend_of(parameters["W1"])  # the masks go where the parameters are
    return C.flat_forward(X, parameters, keep_prob, _masks(host_generator(seed, "dropout"), bk, keep_prob))


@_xp.on_device_of_arrays
def backward_propagation_with_dropout(X: Any, Y: Any, cache: tuple, keep_prob: float) -> dict[str, Any]:
    """The backward pass of the flat dropout ``cache``: as without dropout, with each hidden layer's
    ``dA[l] = dA[l] * D[l] / keep_prob`` (the units dropped forward get no gradient)."""
    return C.flat_backward(X, Y, cache, keep_prob=C.check_keep_prob(keep_prob))


@C.on_training_backend
def model(X: Any, Y: Any, learning_rate: float = 0.3, num_iterations: int = 30000, print_cost: bool = True,
          lambd: float = 0, keep_prob: float = 1, *, seed: int = 3, backend: Any = None) -> dict:
    """The course's 3-layer model ``[n_x, 20, 3, 1]`` by batch gradient descent, with L2 (``lambd > 0``) or
    dropout (``keep_prob < 1``), one at a time as in the course.

    Initialization: ``W[l] = randn(n_l, n_{l-1}) / sqrt(n_{l-1})`` (xpnet's ``"xavier"``). Where the course
    seeds NumPy's generator, xpnet uses its own (``seed``; the dropout masks are fresh every iteration, from
    one seeded stream). ``print_cost`` prints the cost every 10000 iterations. ``backend``: where training runs
    (default: ``X``'s backend when not NumPy, else the session's, else NumPy). Returns the parameters.
    """
    lambd, keep_prob = C.check_lambd(lambd), C.check_keep_prob(keep_prob)
    if lambd and keep_prob < 1:
        raise ConfigError("use L2 regularization (lambd) or dropout (keep_prob < 1), not both: the course's model "
                          "applies one at a time")
    num_iterations = C.check_iterations(num_iterations)
    bk = C.course_backend(backend, like=X)
    X, Y = C.to_backend(bk, X, Y)
    parameters = F.initialize_parameters([int(X.shape[0]), 20, 3, 1], init="xavier", seed=seed,
                                         dtype=C.data_dtype(bk, X), backend=bk)
    xp = bk.xp
    X = F._as_input(xp, X, parameters["W1"].dtype)
    Yt = C.targets_like(Y, (1, int(X.shape[1])), parameters["W1"])
    masks = _masks(host_generator(seed, "dropout"), bk, keep_prob)
    for i in range(num_iterations):
        dropout = keep_prob < 1
        A3, cache = C.flat_forward(X, parameters, keep_prob if dropout else None, masks, check=False)
        if print_cost and i % 10000 == 0:
            cost = C.mean_cost(xp, A3, Yt)
            if lambd:
                cost = cost + (1.0 / A3.shape[1]) * (lambd / 2.0) * C.l2_sum(parameters)
            C.print_line(f"Cost after iteration {i}: {float(cost)}")
        grads = C.flat_backward(X, Yt, cache, lambd=lambd, keep_prob=keep_prob if dropout else None)
        parameters = F.update_parameters(parameters, grads, learning_rate)
    return parameters

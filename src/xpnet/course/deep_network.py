"""Course 1, week 4, under the course's names: "Building your Deep Neural Network: Step by Step" and
"Deep Neural Network - Application".

Each function has the course's name, positional signature and return values (caches are the course's plain
tuples, gradients its ``dA{l-1}``/``dW{l}``/``db{l}`` keys, costs 0-d arrays), and is written on xpnet's
building blocks (:mod:`xpnet.lecture.functional`, the activations table). Arrays stay in the namespace, on the
device and in the dtype of the inputs. Where the course seeds NumPy's global generator (``np.random.seed``),
xpnet draws from its own seeded generator instead (:mod:`xpnet.device.random`: the same bits on every
backend and device, NumPy's global state untouched), so initial weights differ from the course's printed ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..device import xp as _xp
from ..errors import ConfigError
from ..lecture import functional as F
from . import _common as C

__all__ = [
    "L_layer_model",
    "L_model_backward",
    "L_model_forward",
    "compute_cost",
    "initialize_parameters",
    "initialize_parameters_deep",
    "linear_activation_backward",
    "linear_activation_forward",
    "linear_backward",
    "linear_forward",
    "predict",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "two_layer_model",
    "update_parameters",
]

# ----------------------------------------------------------------------------------------- activations
@_xp.on_device_of_arrays
def sigmoid(Z: Any) -> tuple[Any, Any]:
    """``A = 1 / (1 + e^-Z)``; returns ``(A, cache)`` with ``cache = Z`` (the course's ``dnn_utils``)."""
    xp = _xp.namespace_of_named(Z=Z)
    return C.SIGMOID.forward(xp, Z), Z


@_xp.on_device_of_arrays
def relu(Z: Any) -> tuple[Any, Any]:
    """``A = max(0, Z)``; returns ``(A, cache)`` with ``cache = Z``."""
    xp = _xp.namespace_of_named(Z=Z)
    return C.RELU.forward(xp, Z), Z


@_xp.on_device_of_arrays
def sigmoid_backward(dA: Any, cache: Any) -> Any:
    """``dZ = dA * s (1 - s)`` with ``s = sigmoid(Z)``, ``Z = cache``."""
    xp = _xp.namespace_of_named(dA=dA, Z=cache)
    return C.SIGMOID.backward(xp, dA, cache)


@_xp.on_device_of_arrays
def relu_backward(dA: Any, cache: Any) -> Any:
    """``dZ = dA`` where ``Z > 0``, else 0 (``Z = cache``)."""
    xp = _xp.namespace_of_named(dA=dA, Z=cache)
    return C.RELU.backward(xp, dA, cache)


# ------------------------------------------------------------------------------------- initialization
def initialize_parameters(n_x: int, n_h: int, n_y: int, *, seed: int = 1, dtype: Any = None,
                          backend: Any = None) -> dict[str, Any]:
    """The 2-layer network's parameters: ``W1 = 0.01 * randn(n_h, n_x)``, ``b1 = zeros(n_h, 1)``,
    ``W2 = 0.01 * randn(n_y, n_h)``, ``b2 = zeros(n_y, 1)``.

    Where the course calls ``np.random.seed(1)``, xpnet draws from its own seeded generator (``seed``: the same
    values on every backend and device, not the course's printed ones). ``backend``: where the arrays go (default:
    the session's backend,
    :func:`xpnet.use_backend` or ``XPNET_BACKEND``, else NumPy); ``dtype``: float64 unless the device lacks it.
    """
    return initialize_parameters_deep([n_x, n_h, n_y], seed=seed, dtype=dtype, backend=backend)


def initialize_parameters_deep(layer_dims: Sequence[int], *, seed: int = 3, init: str = "scaled_normal",
                               dtype: Any = None, backend: Any = None) -> dict[str, Any]:
    """An L-layer network's parameters: ``W[l] = 0.01 * randn(n_l, n_{l-1})``, ``b[l] = zeros(n_l, 1)`` for
    ``l = 1 .. L = len(layer_dims) - 1``.

    ``init="xavier"`` gives the application notebook's ``randn / sqrt(n_{l-1})`` (what :func:`L_layer_model`
    uses); see :mod:`xpnet.lecture.initializers`. Where the course calls ``np.random.seed(3)``, xpnet draws from its
    own seeded generator (``seed``: the same values on every backend and device, not the course's printed ones).
    ``backend``, ``dtype``: as
    :func:`initialize_parameters`.
    """
    bk = C.course_backend(backend)
    return F.initialize_parameters(layer_dims, init=init, seed=seed, dtype=dtype, backend=bk)


# --------------------------------------------------------------------------------------------- forward
@_xp.on_device_of_arrays
def linear_forward(A: Any, W: Any, b: Any) -> tuple[Any, tuple]:
    """``Z = W A + b``; returns ``(Z, cache)`` with ``cache = (A, W, b)``. Shapes: ``A (n_{l-1}, m)``,
    ``W (n_l, n_{l-1})``, ``b (n_l, 1)``, ``Z (n_l, m)``."""
    Z, (A_, W_, b_) = F.linear_forward(A, W, b)
    return Z, (A_, W_, b_)


@_xp.on_device_of_arrays
def linear_activation_forward(A_prev: Any, W: Any, b: Any, activation: str) -> tuple[Any, tuple]:
    """``Z = W A_prev + b``, ``A = g(Z)`` with ``g`` = ``"sigmoid"`` or ``"relu"``; returns ``(A, cache)`` with
    the course's ``cache = ((A_prev, W, b), Z)``."""
    A, ((A_, W_, b_), Z) = F.linear_activation_forward(A_prev, W, b, activation)
    return A, ((A_, W_, b_), Z)


@_xp.on_device_of_arrays
def L_model_forward(X: Any, parameters: Mapping[str, Any]) -> tuple[Any, list]:
    """``[LINEAR -> RELU] x (L-1) -> LINEAR -> SIGMOID``: ``A[0] = X``, ``Z[l] = W[l] A[l-1] + b[l]``,
    ``A[l] = relu(Z[l])`` for ``l < L``, ``AL = sigmoid(Z[L])``.

    Returns ``(AL, caches)``: ``AL (1, m)`` and the list of the L caches ``((A[l-1], W[l], b[l]), Z[l])``.
    ``X`` of another dtype than the parameters is cast once to theirs."""
    AL, caches = F.model_forward(X, parameters, hidden="relu", output="sigmoid")
    return AL, [((A, W, b), Z) for (A, W, b), Z in caches]


# ------------------------------------------------------------------------------------------------ cost
@_xp.on_device_of_arrays
def compute_cost(AL: Any, Y: Any) -> Any:
    """``J = -(1/m) sum(Y log AL + (1-Y) log(1-AL))`` as the course returns it: a 0-d array (``np.squeeze``
    of the formula) in ``AL``'s namespace. ``Y`` may hold any finite real numbers (integers are cast)."""
    return C.cross_entropy(AL, Y)


# -------------------------------------------------------------------------------------------- backward
@_xp.on_device_of_arrays
def linear_backward(dZ: Any, cache: tuple) -> tuple[Any, Any, Any]:
    """``dW = (1/m) dZ A_prev^T``, ``db = (1/m) sum_columns(dZ)``, ``dA_prev = W^T dZ`` from
    ``cache = (A_prev, W, b)``; returns ``(dA_prev, dW, db)``."""
    return F.linear_backward(dZ, cache)


@_xp.on_device_of_arrays
def linear_activation_backward(dA: Any, cache: tuple, activation: str) -> tuple[Any, Any, Any]:
    """``dZ = dA * g'(Z)`` then :func:`linear_backward`, from ``cache = ((A_prev, W, b), Z)``; returns
    ``(dA_prev, dW, db)``."""
    return F.linear_activation_backward(dA, cache, activation)


@_xp.on_device_of_arrays
def L_model_backward(AL: Any, Y: Any, caches: Sequence[tuple]) -> dict[str, Any]:
    """``dAL = -(Y/AL - (1-Y)/(1-AL))``, then :func:`linear_activation_backward` with ``"sigmoid"`` for layer
    ``L`` and ``"relu"`` for ``l = L-1 .. 1``.

    Returns the course's dict: ``dA{l-1}`` (n_{l-1}, m), ``dW{l}`` (n_l, n_{l-1}), ``db{l}`` (n_l, 1) for
    ``l = L .. 1`` (``dA0`` included, as the course does). ``Y`` may hold any finite real numbers."""
    _xp.namespace_of_named(AL=AL, Y=Y)
    if isinstance(caches, (str, bytes)) or not isinstance(caches, Sequence) or not caches:
        raise ConfigError("caches must be the (non-empty) list of caches L_model_forward returns")
    return _backward(AL, C.targets(AL, Y), caches)


def _backward(AL: Any, Yt: Any, caches: Sequence[tuple]) -> dict[str, Any]:
    # The course's chain, from labels already checked and cast (the training loop checks them once).
    xp = _xp.namespace_of(AL)
    dA = C.BCE.gradient(xp, AL, Yt)
    grads: dict[str, Any] = {}
    L = len(caches)
    for l in range(L, 0, -1):
        dA, grads[f"dW{l}"], grads[f"db{l}"] = F.linear_activation_backward(
            dA, caches[l - 1], "sigmoid" if l == L else "relu", layer=l)
        grads[f"dA{l - 1}"] = dA
    return grads


# -------------------------------------------------------------------------------------------- updating
@_xp.on_device_of_arrays
def update_parameters(params: Mapping[str, Any], grads: Mapping[str, Any], learning_rate: float) -> dict:
    """``W[l] = W[l] - learning_rate * dW[l]``, ``b[l] = b[l] - learning_rate * db[l]``; returns a new dict
    (the course deep-copies ``params`` first: the caller's arrays are never changed)."""
    return F.update_parameters(params, grads, learning_rate)


# ------------------------------------------------------------------------------------------ prediction
@_xp.on_device_of_arrays
def predict(X: Any, y: Any, parameters: Mapping[str, Any], *, print_accuracy: bool = True) -> Any:
    """``p = 1 where AL > 0.5 else 0`` with ``AL`` from :func:`L_model_forward`, and the accuracy
    ``(1/m) sum(p == y)`` printed (``Accuracy: ...``) as the course does.

    Returns ``p`` (1, m) in the parameters' float dtype (the course's ``np.zeros((1, m))`` then 0/1), on the
    parameters' backend: ``X`` and ``y`` on another backend (a learner's NumPy test set) are moved there.
    ``y=None`` (new data without labels) or ``print_accuracy=False`` prints nothing.
    """
    bk = C.parameters_backend(parameters)
    (X,) = C.to_backend(bk, X)
    AL, _ = L_model_forward(X, parameters)
    xp = bk.xp
    p = xp.astype(AL > 0.5, AL.dtype)
    if print_accuracy and y is not None:  # no labels (new data): predictions only
        (y,) = C.to_backend(bk, y)
        m = AL.shape[1]
        yt = C.as_float(xp, C.labels_2d(xp, y, m), AL)
        correct = int(xp.sum(xp.astype(p == yt, _xp.index_dtype(xp, _xp.device_of(p)))))
        C.print_line(f"Accuracy: {correct / m}")
    return p


@_xp.on_device_of_arrays
def predict_dec(parameters: Mapping[str, Any], X: Any) -> Any:
    """The course's helper for decision-boundary plots: ``AL > 0.5`` with ``AL`` from :func:`L_model_forward`
    (relu hidden layers, a sigmoid output), as in
    ``plot_decision_boundary(lambda x: predict_dec(parameters, x.T), X, Y)``.

    ``X`` ``(n_x, m)``; returns ``(1, m)`` booleans on the parameters' backend. ``X`` on another backend (the
    NumPy grid a plot hands in while the parameters live on a GPU) is moved there, as :func:`predict` does."""
    bk = C.parameters_backend(parameters)
    (X,) = C.to_backend(bk, X)
    AL, _ = L_model_forward(X, parameters)
    return AL > 0.5


# ---------------------------------------------------------------------------------------------- models
def _training_data(X: Any, Y: Any, backend: Any) -> tuple[Any, Any, Any]:
    bk = C.course_backend(backend, like=X)
    X, Y = C.to_backend(bk, X, Y)
    return bk, X, Y


def _record(i: int, num_iterations: int, AL: Any, Y: Any, costs: list, print_cost: bool, every: int = 100) -> None:
    # The cost is a read-back: computed only where the course records or prints it (every 100 iterations and
    # the last one), not every iteration, so a GPU run is not synchronized once per step.
    last = i == num_iterations - 1
    if i % every == 0 or last:
        cost = compute_cost(AL, Y)
        if i % every == 0:
            costs.append(cost)
        if print_cost:
            C.print_line(f"Cost after iteration {i}: {float(cost)}")


@C.on_training_backend
def two_layer_model(X: Any, Y: Any, layers_dims: Sequence[int], learning_rate: float = 0.0075,
                    num_iterations: int = 3000, print_cost: bool = False, *, seed: int = 1,
                    backend: Any = None) -> tuple[dict, list]:
    """``LINEAR -> RELU -> LINEAR -> SIGMOID`` trained by batch gradient descent, the course's loop::

        A1, cache1 = linear_activation_forward(X, W1, b1, "relu")
        A2, cache2 = linear_activation_forward(A1, W2, b2, "sigmoid")
        dA2 = -(Y/A2 - (1-Y)/(1-A2))
        dA1, dW2, db2 = linear_activation_backward(dA2, cache2, "sigmoid")
        dA0, dW1, db1 = linear_activation_backward(dA1, cache1, "relu")
        parameters = update_parameters(parameters, grads, learning_rate)

    ``layers_dims = (n_x, n_h, n_y)``. Returns ``(parameters, costs)``: ``costs`` holds the cost (a 0-d array)
    of every 100th iteration; ``print_cost`` prints those and the last one. Initialization:
    :func:`initialize_parameters` (where the course calls ``np.random.seed(1)``, xpnet draws from its own seeded
    generator (``seed``: the same values on every backend and device, not the course's printed ones)). ``backend``:
    where training runs (default:
    ``X``'s backend when it is not NumPy, else the session's backend, else NumPy); ``X`` and ``Y`` are moved
    there once. ``Y`` may hold any finite real numbers (the course's own test uses ``randn``).
    """
    if isinstance(layers_dims, (str, bytes)) or not isinstance(layers_dims, Sequence) or len(layers_dims) != 3:
        raise ConfigError(f"layers_dims must be (n_x, n_h, n_y), the two-layer network's sizes, got {layers_dims!r}: "
                          "use L_layer_model for other depths")
    n_x, n_h, n_y = layers_dims
    num_iterations = C.check_iterations(num_iterations)
    bk, X, Y = _training_data(X, Y, backend)
    parameters = initialize_parameters(n_x, n_h, n_y, seed=seed, dtype=C.data_dtype(bk, X), backend=bk)
    X = F._as_input(bk.xp, X, parameters["W1"].dtype)  # cast once, NaN/inf checked once
    Yt = C.targets_like(Y, (n_y, X.shape[1]), parameters["W1"])
    costs: list = []
    for i in range(num_iterations):
        A1, cache1 = linear_activation_forward(X, parameters["W1"], parameters["b1"], "relu")
        A2, cache2 = linear_activation_forward(A1, parameters["W2"], parameters["b2"], "sigmoid")
        _record(i, num_iterations, A2, Yt, costs, print_cost)
        dA2 = C.BCE.gradient(bk.xp, A2, Yt)
        dA1, dW2, db2 = linear_activation_backward(dA2, cache2, "sigmoid")
        _dA0, dW1, db1 = linear_activation_backward(dA1, cache1, "relu")
        parameters = update_parameters(parameters, {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2},
                                       learning_rate)
    return parameters, costs


@C.on_training_backend
def L_layer_model(X: Any, Y: Any, layers_dims: Sequence[int], learning_rate: float = 0.0075,
                  num_iterations: int = 3000, print_cost: bool = False, *, seed: int = 1,
                  backend: Any = None) -> tuple[dict, list]:
    """``[LINEAR -> RELU] x (L-1) -> LINEAR -> SIGMOID`` trained by batch gradient descent, the course's
    loop: :func:`L_model_forward`, :func:`compute_cost`, :func:`L_model_backward`, :func:`update_parameters`.

    Returns ``(parameters, costs)`` with ``costs`` the cost (a 0-d array) of every 100th iteration;
    ``print_cost`` prints those and the last one. Initialization: the application notebook's
    ``randn(n_l, n_{l-1}) / sqrt(n_{l-1})`` (:func:`initialize_parameters_deep` with ``init="xavier"``;
    Where the course calls ``np.random.seed(1)``, xpnet draws from its own seeded generator (``seed``: the same
    values on every backend and device, not the course's printed ones)). ``backend``: as :func:`two_layer_model`.
    """
    num_iterations = C.check_iterations(num_iterations)
    bk, X, Y = _training_data(X, Y, backend)
    parameters = initialize_parameters_deep(layers_dims, seed=seed, init="xavier", dtype=C.data_dtype(bk, X),
                                            backend=bk)
    X = F._as_input(bk.xp, X, parameters["W1"].dtype)  # cast once, NaN/inf checked once
    Yt = C.targets_like(Y, (layers_dims[-1], X.shape[1]), parameters["W1"])
    costs: list = []
    for i in range(num_iterations):
        # L_model_forward and L_model_backward without their per-call checks of X and Y (done once above):
        # each would read a flag back from the device every iteration.
        AL, caches = F._model_forward(X, parameters, "relu", "sigmoid", check_values=False)
        _record(i, num_iterations, AL, Yt, costs, print_cost)
        grads = _backward(AL, Yt, caches)
        parameters = update_parameters(parameters, grads, learning_rate)
    return parameters, costs

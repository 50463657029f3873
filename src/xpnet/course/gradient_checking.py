"""Course 2, week 1, "Gradient Checking", under the course's names.

Two-sided differences, the lecture's way::

    gradapprox[i] = (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)
    difference    = ||grad - gradapprox||_2 / (||grad||_2 + ||gradapprox||_2)

with ``theta`` every parameter flattened into one ``(n, 1)`` column (``W1, b1, W2, b2, ...`` in that order,
each in C order). The network is the course's ``LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID`` and
its backward pass is the correct one (the course plants two mistakes for the learner to find):
``gradient_check_n`` checks whatever ``gradients`` it is given, so a learner's own backward pass is checked.
The check is only meaningful in float64 (``eps = 1e-7`` is below float32's resolution).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..device import xp as _xp
from ..errors import ConfigError, ShapeError
from . import _common as C

__all__ = [
    "backward_propagation",
    "backward_propagation_n",
    "dictionary_to_vector",
    "forward_propagation",
    "forward_propagation_n",
    "gradient_check",
    "gradient_check_n",
    "gradients_to_vector",
    "vector_to_dictionary",
]

# The course's network: X (4, m) -> 5 -> 3 -> 1; vector_to_dictionary's shapes when no layer_dims are given.
COURSE_LAYER_DIMS = (4, 5, 3, 1)


# --------------------------------------------------------------------------------------- one dimension
@_xp.on_device_of_arrays
def forward_propagation(x: Any, theta: Any) -> Any:
    """``J(theta) = theta * x``."""
    return theta * x


@_xp.on_device_of_arrays
def backward_propagation(x: Any, theta: Any) -> Any:
    """``dJ/dtheta = x``."""
    return x


def _norm(v: Any) -> Any:
    if isinstance(v, (int, float)):
        return abs(v)
    xp = _xp.namespace_of(v)
    return xp.sqrt(xp.sum(v * v))


@_xp.on_device_of_arrays
def gradient_check(x: Any, theta: Any, epsilon: float = 1e-7, print_msg: bool = False) -> Any:
    """``gradapprox = (J(theta + eps) - J(theta - eps)) / (2 eps)``, ``grad = backward_propagation(x, theta)``,
    ``difference = |grad - gradapprox| / (|grad| + |gradapprox|)``; ``print_msg`` says whether it is below
    ``2e-7``. Numbers or 0-d arrays."""
    J_plus = forward_propagation(x, theta + epsilon)
    J_minus = forward_propagation(x, theta - epsilon)
    gradapprox = (J_plus - J_minus) / (2 * epsilon)
    grad = backward_propagation(x, theta)
    difference = _norm(grad - gradapprox) / (_norm(grad) + _norm(gradapprox))
    if print_msg:
        _verdict(difference)
    return difference


def _verdict(difference: Any) -> None:
    d = float(difference)
    if d > 2e-7:
        C.print_line(f"There is a mistake in the backward propagation! difference = {d}")
    else:
        C.print_line(f"Your backward propagation works perfectly fine! difference = {d}")


# ------------------------------------------------------------------------------------ vectors and dicts
@_xp.on_device_of_arrays
def dictionary_to_vector(parameters: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """``W1, b1, ..., WL, bL`` flattened (C order) and stacked into ``theta`` of shape ``(n, 1)``; returns
    ``(theta, keys)`` with ``keys[i]`` the name of the array ``theta[i]`` came from."""
    L = C.weights(parameters)
    xp = _xp.namespace_of(parameters["W1"])
    pieces, keys = [], []
    for l in range(1, L + 1):
        for name in (f"W{l}", f"b{l}"):
            column = xp.reshape(parameters[name], (-1, 1))
            pieces.append(column)
            keys += [name] * int(column.shape[0])
    return xp.concat(pieces, axis=0), keys


@_xp.on_device_of_arrays
def vector_to_dictionary(theta: Any, layer_dims: Sequence[int] | None = None) -> dict[str, Any]:
    """The inverse of :func:`dictionary_to_vector`: ``theta (n, 1)`` back into ``W1 (n_1, n_0)``,
    ``b1 (n_1, 1)``, ... for ``layer_dims`` (default: the course's ``[4, 5, 3, 1]``)."""
    dims = list(COURSE_LAYER_DIMS if layer_dims is None else layer_dims)
    xp = _xp.namespace_of(theta)
    n = sum(dims[l] * dims[l - 1] + dims[l] for l in range(1, len(dims)))
    if tuple(theta.shape) not in ((n, 1), (n,)):
        raise ConfigError(f"theta has shape {tuple(theta.shape)} but layer_dims {dims} need ({n}, 1): pass the "
                          "network's layer_dims")
    flat = xp.reshape(theta, (-1,))
    parameters, start = {}, 0
    for l in range(1, len(dims)):
        for name, shape in ((f"W{l}", (dims[l], dims[l - 1])), (f"b{l}", (dims[l], 1))):
            size = shape[0] * shape[1]
            parameters[name] = xp.reshape(flat[start:start + size], shape)
            start += size
    return parameters


@_xp.on_device_of_arrays
def gradients_to_vector(gradients: Mapping[str, Any]) -> Any:
    """``dW1, db1, ..., dWL, dbL`` flattened and stacked into one ``(n, 1)`` column, the order of
    :func:`dictionary_to_vector` (other keys, ``dZ``/``dA``, are left out)."""
    L = sum(1 for k in gradients if k[:2] == "dW" and k[2:].isdigit())
    if L == 0:
        raise ConfigError("gradients holds no dW1: pass the dict backward_propagation_n returns")
    xp = _xp.namespace_of(gradients["dW1"])
    pieces = []
    for l in range(1, L + 1):
        for name in (f"dW{l}", f"db{l}"):
            if name not in gradients:
                raise ConfigError(f"gradients is missing {name!r} (it needs dW1, db1, ..., dW{L}, db{L})")
            pieces.append(xp.reshape(gradients[name], (-1, 1)))
    return xp.concat(pieces, axis=0)


# --------------------------------------------------------------------------------------- the network
@_xp.on_device_of_arrays
def forward_propagation_n(X: Any, Y: Any, parameters: Mapping[str, Any]) -> tuple[Any, tuple]:
    """``LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID`` and its cost
    ``J = (1/m) sum(-Y log A3 - (1-Y) log(1-A3))`` (a 0-d array). Returns ``(cost, cache)`` with the flat
    cache ``(Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)``. ``Y`` may be ``(m,)`` or ``(1, m)``."""
    A3, cache = C.flat_forward(X, parameters)
    return C.cross_entropy(A3, Y), cache


@_xp.on_device_of_arrays
def backward_propagation_n(X: Any, Y: Any, cache: tuple) -> dict[str, Any]:
    """The backward pass of :func:`forward_propagation_n`: ``dZ3 = A3 - Y``, ``dW[l] = (1/m) dZ[l] A[l-1]^T``,
    ``db[l] = (1/m) sum_columns(dZ[l])``, ``dA[l-1] = W[l]^T dZ[l]``, ``dZ[l-1] = dA[l-1] * (A[l-1] > 0)``.
    Returns ``dZ3, dW3, db3, dA2, dZ2, dW2, db2, dA1, dZ1, dW1, db1``."""
    return C.flat_backward(X, Y, cache)


@_xp.on_device_of_arrays
def gradient_check_n(parameters: Mapping[str, Any], gradients: Mapping[str, Any], X: Any, Y: Any,
                     epsilon: float = 1e-7, print_msg: bool = False) -> Any:
    """The relative difference between ``gradients`` (a learner's backward pass) and the two-sided
    differences of :func:`forward_propagation_n`'s cost over every parameter::

        gradapprox[i] = (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)
        difference    = ||grad - gradapprox|| / (||grad|| + ||gradapprox||)

    Returns ``difference`` (a 0-d array); ``print_msg`` says whether it is below ``2e-7``. ``2n`` forward
    passes for ``n`` parameters: for small networks, in float64."""
    theta, _ = dictionary_to_vector(parameters)
    grad = gradients_to_vector(gradients)
    if tuple(grad.shape) != tuple(theta.shape):
        raise ShapeError(f"gradients hold {int(grad.shape[0])} values but parameters {int(theta.shape[0])}: pass "
                         "the gradients of these parameters (dW1, db1, ... for every layer, each shaped like its "
                         "W1, b1, ...)")
    xp = _xp.namespace_of(theta)
    L = C.weights(parameters)
    dims = [int(parameters["W1"].shape[1])] + [int(parameters[f"W{l}"].shape[0]) for l in range(1, L + 1)]
    n = int(theta.shape[0])
    index = xp.reshape(xp.arange(n, device=_xp.device_of(theta)), (n, 1))
    J_plus, J_minus = [], []
    for i in range(n):
        # theta with only entry i moved: (theta + eps) where index == i, theta itself elsewhere (exactly).
        at_i = index == i
        J_plus.append(forward_propagation_n(X, Y, vector_to_dictionary(xp.where(at_i, theta + epsilon, theta),
                                                                       dims))[0])
        J_minus.append(forward_propagation_n(X, Y, vector_to_dictionary(xp.where(at_i, theta - epsilon, theta),
                                                                        dims))[0])
    gradapprox = xp.reshape((xp.stack(J_plus) - xp.stack(J_minus)) / (2 * epsilon), (n, 1))
    difference = C.zero_d(xp, _norm(grad - gradapprox) / (_norm(grad) + _norm(gradapprox)))
    if print_msg:
        _verdict(difference)
    return difference

"""Course 2, week 2, "Optimization Methods", under the course's names.

Updates of each ``W[l]`` (and ``b[l]`` alike), ``t`` counting Adam's steps from 1::

    gd:       W = W - lr dW
    momentum: v = beta v + (1 - beta) dW;   W = W - lr v
    adam:     v = beta1 v + (1 - beta1) dW;  s = beta2 s + (1 - beta2) dW^2
              v_c = v / (1 - beta1^t);      s_c = s / (1 - beta2^t)
              W = W - lr v_c / (sqrt(s_c) + epsilon)

Learning-rate decay: ``update_lr``: ``lr = lr0 / (1 + decay_rate * epoch)``; ``schedule_lr_decay``:
``lr = lr0 / (1 + decay_rate * floor(epoch / time_interval))``. State dicts use the gradients' keys
(``dW1``, ``db1``, ...). Where the course calls ``np.random.seed``, xpnet shuffles and initializes from its own
seeded generator (the same values on every backend and device, not the course's printed ones).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from ..device import xp as _xp
from ..device.backend import backend_of
from ..device.random import host_generator
from ..errors import ConfigError, ShapeError
from ..lecture import functional as F
from . import _common as C

__all__ = [
    "initialize_adam",
    "initialize_velocity",
    "model",
    "random_mini_batches",
    "schedule_lr_decay",
    "update_lr",
    "update_parameters_with_adam",
    "update_parameters_with_gd",
    "update_parameters_with_momentum",
]


@_xp.on_device_of_arrays
def update_parameters_with_gd(parameters: Mapping[str, Any], grads: Mapping[str, Any], learning_rate: float) -> dict:
    """One step of gradient descent: ``W[l] = W[l] - learning_rate * dW[l]``, ``b[l] = b[l] -
    learning_rate * db[l]``; returns a new dict."""
    return F.update_parameters(parameters, grads, learning_rate)


@_xp.on_device_of_arrays
def random_mini_batches(X: Any, Y: Any, mini_batch_size: int = 64, seed: int = 0) -> list[tuple[Any, Any]]:
    """Shuffle the columns of ``X (n_x, m)`` and ``Y (1, m)`` with one permutation, then cut them into
    mini-batches of ``mini_batch_size`` columns (the last one holds the ``m mod mini_batch_size`` left over).

    Returns the course's list of ``(mini_batch_X, mini_batch_Y)``, in the inputs' namespace, device and dtypes
    (boolean labels stay boolean). Where the course calls ``np.random.seed(seed)``, xpnet draws the
    permutation from its own seeded generator (seeded with ``seed``: the same batches on every backend and
    device, not the course's printed ones)."""
    if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, numbers.Integral) or mini_batch_size < 1:
        raise ConfigError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}")
    xp = _xp.namespace_of_named(X=X, Y=Y)
    _xp.check_same_device({"X": X, "Y": Y})
    if X.ndim != 2:
        raise ShapeError(f"X has shape {tuple(X.shape)}; the course's X is (n_x, m), one column per example")
    m = int(X.shape[1])
    if Y.ndim != 2 or int(Y.shape[1]) != m:
        raise ShapeError(f"Y has shape {tuple(Y.shape)} but X has {m} columns: Y must be (1, {m})")
    order = host_generator(seed, "shuffle").permutation(m)
    permutation = backend_of(X).asarray(order, dtype=_xp.index_dtype(xp, _xp.device_of(X)))
    shuffled_X = xp.take(X, permutation, axis=1)
    shuffled_Y = xp.reshape(xp.take(Y, permutation, axis=1), (int(Y.shape[0]), m))
    size = int(mini_batch_size)
    # min(..., m): the Array API leaves slices past the end unspecified (array_api_strict refuses them).
    return [(shuffled_X[:, k:min(k + size, m)], shuffled_Y[:, k:min(k + size, m)]) for k in range(0, m, size)]


def _zeros_like_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    L = C.weights(parameters)
    xp = _xp.namespace_of(parameters["W1"])
    return {f"d{p}{l}": xp.zeros_like(parameters[f"{p}{l}"]) for l in range(1, L + 1) for p in ("W", "b")}


@_xp.on_device_of_arrays
def initialize_velocity(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Momentum's ``v``: ``v["dW{l}"] = zeros_like(W[l])``, ``v["db{l}"] = zeros_like(b[l])``."""
    return _zeros_like_parameters(parameters)


def _check_state(name: str, state: Mapping[str, Any], parameters: Mapping[str, Any],
                 fix: str = "create it with initialize_velocity/initialize_adam") -> None:
    """Every ``W{l}``, ``b{l}`` of ``parameters`` has a ``dW{l}``, ``db{l}`` of its shape in ``state`` (a moving
    average or the gradients), else a :class:`~xpnet.errors.ConfigError` / :class:`~xpnet.errors.ShapeError`
    naming the key (not a bare ``KeyError`` from the update's loop)."""
    for key, value in parameters.items():
        if key[:1] in "Wb" and key[1:].isdigit() and f"d{key}" not in state:
            raise ConfigError(f"{name} is missing 'd{key}': {fix}")
        if key[:1] in "Wb" and key[1:].isdigit() and tuple(state[f"d{key}"].shape) != tuple(value.shape):
            raise ShapeError(f"{name}['d{key}'] has shape {tuple(state[f'd{key}'].shape)} but {key} has "
                             f"{tuple(value.shape)}")


@_xp.on_device_of_arrays
def update_parameters_with_momentum(parameters: Mapping[str, Any], grads: Mapping[str, Any], v: Mapping[str, Any],
                                    beta: float, learning_rate: float) -> tuple[dict, dict]:
    """``v = beta v + (1 - beta) dW``, ``W = W - learning_rate v`` for every ``W[l]``, ``b[l]``; returns
    ``(parameters, v)`` as new dicts."""
    _check_state("v", v, parameters)
    _check_state("grads", grads, parameters, "pass the dict of the backward pass (dW1, db1, ..., dWL, dbL)")
    L = C.weights(parameters)
    new_v = dict(v)
    for l in range(1, L + 1):
        for p in ("W", "b"):
            g = f"d{p}{l}"
            new_v[g] = beta * v[g] + (1 - beta) * grads[g]
    return F.update_parameters(parameters, new_v, learning_rate), new_v


@_xp.on_device_of_arrays
def initialize_adam(parameters: Mapping[str, Any]) -> tuple[dict, dict]:
    """Adam's moments ``(v, s)``, both zeros shaped like the parameters (keys ``dW{l}``, ``db{l}``)."""
    return _zeros_like_parameters(parameters), _zeros_like_parameters(parameters)


@_xp.on_device_of_arrays
def update_parameters_with_adam(parameters: Mapping[str, Any], grads: Mapping[str, Any], v: Mapping[str, Any],
                                s: Mapping[str, Any], t: int, learning_rate: float = 0.01, beta1: float = 0.9,
                                beta2: float = 0.999, epsilon: float = 1e-8) -> tuple[dict, dict, dict, dict, dict]:
    """One Adam step (``t`` counts the steps from 1)::

        v = beta1 v + (1 - beta1) dW                 v_corrected = v / (1 - beta1^t)
        s = beta2 s + (1 - beta2) dW^2               s_corrected = s / (1 - beta2^t)
        W = W - learning_rate v_corrected / (sqrt(s_corrected) + epsilon)

    Returns ``(parameters, v, s, v_corrected, s_corrected)``, as the course's version does."""
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 1:
        raise ConfigError(f"t must be the number of Adam steps taken, counting from 1, got {t!r}")
    _check_state("v", v, parameters)
    _check_state("s", s, parameters)
    _check_state("grads", grads, parameters, "pass the dict of the backward pass (dW1, db1, ..., dWL, dbL)")
    L = C.weights(parameters)
    xp = _xp.namespace_of(parameters["W1"])
    new_v, new_s, v_corrected, s_corrected, steps = dict(v), dict(s), {}, {}, {}
    for l in range(1, L + 1):
        for p in ("W", "b"):
            g = f"d{p}{l}"
            new_v[g] = beta1 * v[g] + (1 - beta1) * grads[g]
            v_corrected[g] = new_v[g] / (1 - beta1 ** t)
            new_s[g] = beta2 * s[g] + (1 - beta2) * (grads[g] * grads[g])
            s_corrected[g] = new_s[g] / (1 - beta2 ** t)
            steps[g] = v_corrected[g] / (xp.sqrt(s_corrected[g]) + epsilon)
    return F.update_parameters(parameters, steps, learning_rate), new_v, new_s, v_corrected, s_corrected


def update_lr(learning_rate0: float, epoch_num: int, decay_rate: float) -> float:
    """``learning_rate = learning_rate0 / (1 + decay_rate * epoch_num)``."""
    return learning_rate0 / (1 + decay_rate * epoch_num)


def schedule_lr_decay(learning_rate0: float, epoch_num: int, decay_rate: float, time_interval: int = 1000) -> float:
    """``learning_rate = learning_rate0 / (1 + decay_rate * floor(epoch_num / time_interval))``: the rate
    drops every ``time_interval`` epochs instead of every epoch."""
    return learning_rate0 / (1 + decay_rate * math.floor(epoch_num / time_interval))


@C.on_training_backend
def model(X: Any, Y: Any, layers_dims: list[int], optimizer: str, learning_rate: float = 0.0007,
          mini_batch_size: int = 64, beta: float = 0.9, beta1: float = 0.9, beta2: float = 0.999,
          epsilon: float = 1e-8, num_epochs: int = 5000, print_cost: bool = True,
          decay: Callable[[float, int, float], float] | None = None, decay_rate: float = 1, *, seed: int = 3,
          backend: Any = None) -> dict:
    """``[LINEAR -> RELU] x (L-1) -> LINEAR -> SIGMOID`` trained on mini-batches with ``optimizer`` =
    ``"gd"``, ``"momentum"`` or ``"adam"``, the course's loop: every epoch reshuffles
    (:func:`random_mini_batches` with seed ``10 + epoch + 1``), each batch takes one step; the epoch's cost is
    ``(1/m) sum over batches of -sum(Y log A + (1-Y) log(1-A))``. ``decay`` (:func:`update_lr` or
    :func:`schedule_lr_decay`) sets ``learning_rate = decay(learning_rate0, epoch, decay_rate)`` after
    each epoch.

    Initialization: He, ``W[l] = randn(n_l, n_{l-1}) sqrt(2 / n_{l-1})``; where the course seeds NumPy's
    generator, xpnet uses its own (``seed``; shuffles from ``seed`` 10 + epoch as the course's). ``print_cost``
    prints the cost every 1000 epochs. ``backend``: where training runs (default: ``X``'s backend when not
    NumPy, else the session's, else NumPy). Returns the parameters.
    """
    if optimizer not in ("gd", "momentum", "adam"):
        raise ConfigError(f"optimizer must be 'gd', 'momentum' or 'adam', got {optimizer!r}")
    num_epochs = C.check_iterations(num_epochs, "num_epochs")
    bk = C.course_backend(backend, like=X)
    X, Y = C.to_backend(bk, X, Y)
    xp = bk.xp
    parameters = F.initialize_parameters(layers_dims, init="he", seed=seed, dtype=C.data_dtype(bk, X), backend=bk)
    X = F._as_input(xp, X, parameters["W1"].dtype)
    Y = C.targets_like(Y, (1, int(X.shape[1])), parameters["W1"])
    m = int(X.shape[1])
    if optimizer == "momentum":
        v = initialize_velocity(parameters)
    elif optimizer == "adam":
        v, s = initialize_adam(parameters)
    t, shuffle_seed, learning_rate0 = 0, 10, learning_rate
    for i in range(num_epochs):
        shuffle_seed += 1
        cost_total = None
        for mini_batch_X, mini_batch_Y in random_mini_batches(X, Y, mini_batch_size, shuffle_seed):
            A, cache = C.flat_forward(mini_batch_X, parameters, check=False)
            batch_cost = C.sum_cost(xp, A, mini_batch_Y)  # stays on the device: read only when printed
            cost_total = batch_cost if cost_total is None else cost_total + batch_cost
            grads = C.flat_backward(mini_batch_X, mini_batch_Y, cache)
            if optimizer == "gd":
                parameters = update_parameters_with_gd(parameters, grads, learning_rate)
            elif optimizer == "momentum":
                parameters, v = update_parameters_with_momentum(parameters, grads, v, beta, learning_rate)
            else:
                t += 1
                parameters, v, s, _, _ = update_parameters_with_adam(parameters, grads, v, s, t, learning_rate,
                                                                     beta1, beta2, epsilon)
        if decay is not None:
            learning_rate = decay(learning_rate0, i, decay_rate)
        if print_cost and i % 1000 == 0:
            C.print_line(f"Cost after epoch {i}: {float(cost_total) / m:f}")
            if decay is not None:
                C.print_line(f"learning rate after epoch {i}: {learning_rate:f}")
    return parameters

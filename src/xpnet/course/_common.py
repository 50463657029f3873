"""What the course's modules share: where arrays go, the course's 0-d costs, its flat caches.

The Course 2 assignments run a fixed network ``LINEAR -> RELU -> ... -> LINEAR -> SIGMOID`` (three layers in
the course) whose caches are flat tuples ``(Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)`` (with dropout,
``(Z1, D1, A1, W1, b1, ...)``); :func:`flat_forward` and :func:`flat_backward` are that network for any
number of layers, written on the lecture's building blocks (:mod:`xpnet.lecture.functional` and the
activations table). No array library is imported here: the namespace comes from the arrays.
"""

from __future__ import annotations

import functools
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..device import backend as _backend
from ..device import xp as _xp
from ..errors import ConfigError, InputTypeError, ShapeError
from ..lecture import functional as F
from ..lecture.activations import get_activation
from ..lecture.losses import as_targets, get_loss

RELU = get_activation("relu")
SIGMOID = get_activation("sigmoid")
BCE = get_loss("binary_cross_entropy")


# ------------------------------------------------------------------------------------------ where arrays go
def course_backend(backend: Any = None, like: Any = None) -> _backend.Backend:
    """The backend a course function creates or trains on.

    ``backend`` given: that one. Otherwise an array ``like`` of another library than NumPy (torch, CuPy, JAX,
    array_api_strict) keeps its own backend; otherwise the backend the learner chose for the session
    (:func:`xpnet.use_backend` or ``XPNET_BACKEND``), and NumPy when none was chosen: the course is written
    for NumPy, so a notebook run as is stays on NumPy even where a GPU would be picked by ``"auto"``.
    """
    if backend is not None:
        return _backend.get_backend(backend)
    if like is not None and _xp.is_array(like) and not _xp.is_numpy_array(like):
        return _backend.backend_of(like)
    if _backend._CURRENT.get() is not None or os.environ.get(_backend.ENV_VAR, "").strip():
        return _backend.get_backend(None)
    return _backend.get_backend("numpy")


def on_training_backend(func: Any) -> Any:
    """A course model ``func(X, Y, ..., backend=None)`` run with the device of the backend it trains on current
    (:func:`course_backend` of ``backend`` and ``X``): CuPy allocates and launches on the current device, so a
    model trained on ``cupy:1`` from a learner's NumPy data must make device 1 current for its whole loop."""

    @functools.wraps(func)
    def wrapper(X: Any, *args: Any, **kwargs: Any) -> Any:
        with course_backend(kwargs.get("backend"), like=X).activate():
            return func(X, *args, **kwargs)

    return wrapper


def parameters_backend(parameters: Mapping[str, Any]) -> _backend.Backend:
    """The backend of ``parameters["W1"]`` (NumPy parameters stay on NumPy whatever the session's backend), or
    :func:`course_backend` where ``W1`` is not an array: where predictions from trained parameters run."""
    W1 = parameters.get("W1") if isinstance(parameters, Mapping) else None
    return _backend.backend_of(W1) if _xp.is_array(W1) else course_backend()


def to_backend(bk: _backend.Backend, *arrays: Any) -> tuple[Any, ...]:
    """``arrays`` moved onto ``bk`` (a no-op for arrays already there): the explicit boundary where a
    learner's NumPy data meets parameters on another device."""
    return tuple(a if _xp.is_array(a) and bk.owns(a) else bk.asarray(a) for a in arrays)


def data_dtype(bk: _backend.Backend, X: Any) -> Any:
    """The dtype a model trains in: ``X``'s when it is float (float32 data trains in float32), else the
    backend's default float (float64 where the device has it)."""
    return X.dtype if _xp.is_floating(bk.xp, X) else None


def as_float(xp: Any, Y: Any, like: Any) -> Any:
    """Labels ``Y`` (integer, boolean or float) in the float dtype of ``like``: the Array API does not mix
    integer and float arrays in arithmetic, NumPy does; the course's labels are integers."""
    if Y.dtype != like.dtype:
        return xp.astype(Y, like.dtype)
    return Y


def labels_2d(xp: Any, Y: Any, m: int) -> Any:
    """``Y`` as the course's ``(1, m)`` row (the gradient-checking assignment passes a ``(m,)`` vector and
    lets NumPy broadcast it)."""
    if tuple(Y.shape) == (m,):
        return xp.reshape(Y, (1, m))
    if tuple(Y.shape) != (1, m):
        raise ShapeError(f"Y has shape {tuple(Y.shape)}; the course's labels are a (1, {m}) row, one per example")
    return Y


def zero_d(xp: Any, value: Any) -> Any:
    """A cost as the course returns it: ``np.squeeze`` of the formula, a 0-d array (not a Python float)."""
    # xp.asarray: NumPy turns arithmetic on 0-d arrays into NumPy scalars (np.float64), which are not arrays.
    return xp.reshape(xp.asarray(value), ())


def check_keep_prob(keep_prob: Any) -> float:
    """``keep_prob`` as a float in ``(0, 1]`` (dropout's probability of keeping a unit), else a ConfigError."""
    if isinstance(keep_prob, bool) or not isinstance(keep_prob, numbers.Real) or not 0 < keep_prob <= 1:
        raise ConfigError(f"keep_prob must be a number in (0, 1] (the probability of keeping a unit), got "
                          f"{keep_prob!r}")
    return float(keep_prob)


def check_lambd(lambd: Any) -> float:
    """``lambd`` as a float ``>= 0`` (the L2 strength), else a ConfigError."""
    if isinstance(lambd, bool) or not isinstance(lambd, numbers.Real) or not lambd >= 0:
        raise ConfigError(f"lambd must be a non-negative number (the L2 strength), got {lambd!r}")
    return float(lambd)


def check_iterations(num_iterations: Any, name: str = "num_iterations") -> int:
    """``num_iterations`` as an int ``>= 0`` (bools refused), else a ConfigError naming ``name``."""
    if isinstance(num_iterations, bool) or not isinstance(num_iterations, numbers.Integral) or num_iterations < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {num_iterations!r}")
    return int(num_iterations)


# --------------------------------------------------------------------------------------------- the costs
def cross_entropy(AL: Any, Y: Any) -> Any:
    """``-(1/m) sum(Y log AL + (1-Y) log(1-AL))`` as a 0-d array, through the lecture's
    :func:`~xpnet.lecture.functional.compute_cost` (its checks, any finite real ``Y``)."""
    xp = _xp.namespace_of_named(AL=AL, Y=Y)
    Y = labels_2d(xp, Y, AL.shape[1]) if AL.ndim == 2 else Y
    value = F.compute_cost(AL, Y)
    return zero_d(xp, xp.asarray(value, dtype=AL.dtype, device=_xp.device_of(AL)))


def targets(AL: Any, Y: Any) -> Any:
    """``Y`` as the float ``(n_L, m)`` array the backward formulas use: finite, any real values, cast once."""
    xp = _xp.namespace_of_named(AL=AL, Y=Y)
    _xp.check_same_device({"AL": AL, "Y": Y})
    _xp.check_finite(xp, Y, "Y")
    return as_targets(xp, Y, AL.shape[0], AL.shape[1], AL.dtype, BCE, check_range=False)


def targets_like(Y: Any, shape: tuple[int, int], like: Any) -> Any:
    """:func:`targets` for labels checked before a training loop: ``Y`` of ``shape`` in ``like``'s dtype."""
    xp = _xp.namespace_of_named(Y=Y, W1=like)
    AL = xp.zeros(shape, dtype=like.dtype, device=_xp.device_of(like))
    return targets(AL, Y)


# --------------------------------------------------------------------------------- the Course 2 network
def weights(parameters: Mapping[str, Any]) -> int:
    """``L`` of a parameter dict, with the lecture's checks (every ``W{l}``, ``b{l}`` present)."""
    return F.num_layers(parameters)


def flat_forward(X: Any, parameters: Mapping[str, Any], keep_prob: float | None = None,
                 masks: Any = None, *, check: bool = True) -> tuple[Any, tuple]:
    """The Course 2 network forward: ``Z[l] = W[l] A[l-1] + b[l]``, ``A[l] = relu(Z[l])`` for hidden layers
    (with inverted dropout when ``keep_prob`` is given: ``A[l] = A[l] * D[l] / keep_prob``, ``D[l]`` the keep
    masks drawn by ``masks(shape)``), ``A[L] = sigmoid(Z[L])``.

    Returns ``A[L]`` and the course's flat cache ``(Z1, A1, W1, b1, ..., ZL, AL, WL, bL)``; with dropout the
    hidden layers hold ``(Z[l], D[l], A[l], W[l], b[l])``. ``X`` of another dtype is cast to the parameters'."""
    L = weights(parameters)
    xp = _xp.namespace_of_named(X=X, W1=parameters["W1"])
    _xp.check_same_device({"X": X, "W1": parameters["W1"]})
    # Cast once; NaN/inf checked once per call (check=False: a training loop that checked X before it).
    A = F._as_input(xp, X, parameters["W1"].dtype, check_values=check)
    cache: list[Any] = []
    for l in range(1, L + 1):
        W, b = parameters[f"W{l}"], parameters[f"b{l}"]
        Z, _ = F._linear_forward(A, W, b, l, check_values=False)
        if l < L:
            A = RELU.forward(xp, Z)
            if keep_prob is not None:
                D = masks(tuple(int(d) for d in A.shape))
                A = A * xp.astype(D, A.dtype)
                A = A / keep_prob
                cache += [Z, D, A, W, b]
            else:
                cache += [Z, A, W, b]
        else:
            A = SIGMOID.forward(xp, Z)
            cache += [Z, A, W, b]
    return A, tuple(cache)


def unpack_flat(cache: Any, dropout: bool) -> list[dict[str, Any]]:
    """The flat cache as one dict per layer (``Z, A, W, b`` and ``D`` for dropout's hidden layers)."""
    if not isinstance(cache, Sequence) or isinstance(cache, (str, bytes)):
        raise InputTypeError(f"cache must be the tuple forward_propagation returns, got {type(cache).__name__}")
    items, layers, i = list(cache), [], 0
    hidden = 5 if dropout else 4
    while i < len(items):
        left = len(items) - i
        if left == 4:
            layers.append(dict(zip("ZAWb", items[i:i + 4], strict=True)))
            i += 4
        elif left > 4 and left - hidden >= 4:
            keys = ("Z", "D", "A", "W", "b") if dropout else ("Z", "A", "W", "b")
            layers.append(dict(zip(keys, items[i:i + hidden], strict=True)))
            i += hidden
        else:
            break
    if i != len(items) or not layers:
        what = "(Z1, D1, A1, W1, b1, ..., ZL, AL, WL, bL)" if dropout else "(Z1, A1, W1, b1, ..., ZL, AL, WL, bL)"
        raise InputTypeError(f"cache must be the course's flat tuple {what}, got {len(items)} items")
    return layers


def flat_backward(X: Any, Y: Any, cache: Any, lambd: float = 0.0, keep_prob: float | None = None) -> dict[str, Any]:
    """The Course 2 network backward from its flat cache::

        dZ[L]   = A[L] - Y                          (sigmoid with cross-entropy)
        dW[l]   = (1/m) dZ[l] A[l-1]^T + (lambd/m) W[l]
        db[l]   = (1/m) sum over columns of dZ[l]
        dA[l-1] = W[l]^T dZ[l]     (dropout: dA[l-1] = dA[l-1] * D[l-1] / keep_prob)
        dZ[l-1] = dA[l-1] * relu'(Z[l-1])

    Returns the course's dict ``dZ{l}, dW{l}, db{l}`` for every layer and ``dA{l}`` for the hidden ones."""
    layers = unpack_flat(cache, keep_prob is not None)
    L = len(layers)
    AL = layers[-1]["A"]
    xp = _xp.namespace_of_named(X=X, AL=AL)
    Yt = targets(AL, labels_2d(xp, Y, AL.shape[1]))
    m = AL.shape[1]
    grads: dict[str, Any] = {}
    dZ = AL - Yt
    for l in range(L, 0, -1):
        layer = layers[l - 1]
        A_prev = X if l == 1 else layers[l - 2]["A"]
        if l == 1:
            A_prev = as_float(xp, A_prev, layer["W"])
        dA_prev, dW, db = F.linear_backward(dZ, (A_prev, layer["W"], layer["b"]), layer=l)
        if lambd:
            dW = dW + (lambd / m) * layer["W"]
        grads[f"dZ{l}"], grads[f"dW{l}"], grads[f"db{l}"] = dZ, dW, db
        if l > 1:
            below = layers[l - 2]
            if keep_prob is not None:
                dA_prev = dA_prev * xp.astype(below["D"], dA_prev.dtype)
                dA_prev = dA_prev / keep_prob
            grads[f"dA{l - 1}"] = dA_prev
            dZ = RELU.backward(xp, dA_prev, below["Z"])
    return grads


def l2_sum(parameters: Mapping[str, Any]) -> Any:
    """``sum over l of ||W[l]||_F^2`` as a 0-d array."""
    L = weights(parameters)
    xp = _xp.namespace_of(parameters["W1"])
    total = xp.sum(parameters["W1"] * parameters["W1"])
    for l in range(2, L + 1):
        total = total + xp.sum(parameters[f"W{l}"] * parameters[f"W{l}"])
    return total


def print_line(text: str) -> None:
    """The course's progress lines (``Cost after iteration 0: 0.693...``), printed as the course does."""
    print(text, flush=True)


def draw_parameters(layers_dims: Sequence[int], scale: Any, seed: int, dtype: Any, backend: Any) -> dict[str, Any]:
    """``W[l] = scale(n_{l-1}) * N(0, 1)`` of shape ``(n_l, n_{l-1})`` and ``b[l] = 0``, drawn from xpnet's
    seeded generator (the stream :func:`xpnet.initialize_parameters` uses) on the host, then moved."""
    from ..device.random import host_generator, normal

    dims = F._check_layer_dims(layers_dims)
    bk = course_backend(backend)
    dt = bk.float_dtype(dtype)
    name = _xp.dtype_name(bk.xp, dt)
    rng = host_generator(seed, "init")
    parameters: dict[str, Any] = {}
    with bk.activate():  # CuPy's zeros ignore device= and allocate on the current device: make it bk's
        for l in range(1, len(dims)):
            W = normal(rng, (dims[l], dims[l - 1]), scale(dims[l - 1]), name)
            parameters[f"W{l}"] = bk.asarray(W, dtype=dt)
            parameters[f"b{l}"] = bk.xp.zeros((dims[l], 1), dtype=dt, device=bk.device)
    return parameters


def sum_cost(xp: Any, AL: Any, Y: Any) -> Any:
    """``-sum(Y log AL + (1-Y) log(1-AL))`` (no 1/m) as a 0-d array, ``inf`` where an output saturated on the
    wrong side (the course prints ``inf`` there rather than stopping: its initialization notebook shows it)."""
    return BCE.cost(xp, AL, Y, check=False) * AL.shape[1]


def mean_cost(xp: Any, AL: Any, Y: Any) -> Any:
    """``-(1/m) sum(Y log AL + (1-Y) log(1-AL))`` as a 0-d array, ``inf`` (not an error) when saturated."""
    return zero_d(xp, BCE.cost(xp, AL, Y, check=False))

"""The lecture's building blocks, written once against the Array API.

Layout (the lecture's): columns are examples. ``X`` is ``(n_x, m)``, ``W{l}`` is ``(n_l, n_{l-1})``,
``b{l}`` is ``(n_l, 1)``, ``A{l}`` and ``Z{l}`` are ``(n_l, m)``, binary ``Y`` is ``(1, m)``, one-hot ``Y``
is ``(C, m)``. Parameter dicts use the keys ``"W1", "b1", ..., "WL", "bL"``.

Forward, layer ``l``::

    Z[l] = W[l] A[l-1] + b[l]            (cache (A[l-1], W[l], b[l]) and Z[l])
    A[l] = g[l](Z[l])

Backward, layer ``l``::

    dZ[l]   = dA[l] * g[l]'(Z[l])
    dW[l]   = (1/m) dZ[l] A[l-1]^T
    db[l]   = (1/m) sum over columns of dZ[l]   (keepdims)
    dA[l-1] = W[l]^T dZ[l]

These functions follow the lecture literally (``model_backward`` starts from
``dAL = -(Y/AL - (1-Y)/(1-AL))``) so a learner's numbers match the lecture's. Training
(:class:`xpnet.network.DNN`) uses the fused, stable path instead.

Every function returns arrays in the namespace, on the device and in the dtype of its inputs; mixing
namespaces, devices or float dtypes is an error, never a silent copy or promotion.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from ..device import xp as _xp
from ..device.backend import Backend, get_backend
from ..device.random import host_generator, normal
from ..errors import ConfigError, DTypeError, InputTypeError, InvalidValueError, ShapeError
from . import caches as _caches
from .activations import Activation, get_activation
from .caches import ForwardPass, LayerCache, LinearCache
from .initializers import get_initializer
from .losses import Loss, as_targets, default_loss_for, get_loss

__all__ = ["compute_cost", "initialize_parameters", "labels_from_output", "linear_activation_backward",
           "linear_activation_forward", "linear_backward", "linear_forward", "model_backward", "model_forward",
           "num_layers", "predict", "update_parameters"]


# ----------------------------------------------------------------------------------------------- checks
def _shape(a: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in a.shape)


def _name(base: str, layer: int | None) -> str:
    return f"{base}{layer}" if layer is not None else base


def _where(layer: int | None) -> str:
    return f"layer {layer}: " if layer is not None else ""


def _check_2d(layer: int | None, **arrays: Any) -> None:
    for name, a in arrays.items():
        if a.ndim != 2:
            raise ShapeError(f"{_where(layer)}{name} must be 2-D (rows x examples), got shape {_shape(a)}")


def _check_float_dtypes(xp: Any, layer: int | None, **arrays: Any) -> None:
    items = list(arrays.items())
    for name, a in items:
        if not _xp.is_floating(xp, a):
            raise DTypeError(f"{_where(layer)}{name} has dtype {a.dtype}; xpnet computes in float32 or float64: "
                             "cast it first")
    first_name, first = items[0]
    for name, a in items[1:]:
        if a.dtype != first.dtype:
            raise DTypeError(
                f"{_where(layer)}{first_name} is {_xp.dtype_name(xp, first.dtype)} but {name} is "
                f"{_xp.dtype_name(xp, a.dtype)}; xpnet never promotes silently: cast one of them"
            )


def _check_linear(xp: Any, A_prev: Any, W: Any, b: Any, layer: int | None) -> None:
    Wn, bn = _name("W", layer), _name("b", layer)
    _check_2d(layer, A_prev=A_prev, **{Wn: W, bn: b})
    if W.shape[1] != A_prev.shape[0]:
        raise ShapeError(
            f"{_where(layer)}{Wn} has shape {_shape(W)} and A_prev has shape {_shape(A_prev)}: "
            f"{Wn}'s columns ({W.shape[1]}) must equal A_prev's rows ({A_prev.shape[0]})"
            + (" (layer 1's A_prev is X: one row per feature)" if layer == 1 else "")
        )
    if _shape(b) != (W.shape[0], 1):
        raise ShapeError(f"{_where(layer)}{bn} has shape {_shape(b)} but {Wn} has shape {_shape(W)}: "
                         f"{bn} must be ({W.shape[0]}, 1)")
    _check_float_dtypes(xp, layer, **{Wn: W, "A_prev": A_prev, bn: b})
    _xp.check_same_device({Wn: W, "A_prev": A_prev, bn: b})


def _check_layer_dims(layer_dims: Any) -> list[int]:
    if hasattr(layer_dims, "tolist") and getattr(layer_dims, "ndim", None) == 1:  # a 1-D NumPy array
        layer_dims = layer_dims.tolist()
    if isinstance(layer_dims, (str, bytes)) or not isinstance(layer_dims, Sequence):
        raise ConfigError(f"layer_dims must be a sequence of layer sizes like [12288, 20, 7, 1], got {layer_dims!r}")
    dims = list(layer_dims)
    if len(dims) < 2:
        raise ConfigError(f"layer_dims needs at least an input and an output size, got {dims!r}")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1:
            raise ConfigError(f"layer_dims must hold positive integers (units per layer), got {d!r} in {dims!r}")
    return [int(d) for d in dims]


def _check_learning_rate(learning_rate: Any) -> float:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise ConfigError(f"learning_rate must be a positive number, got {learning_rate!r}")
    lr = float(learning_rate)
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"learning_rate must be a positive finite number, got {learning_rate!r}")
    return lr


def num_layers(parameters: Mapping[str, Any], *, exact: bool = True) -> int:
    """The number of layers ``L`` of a parameter dict holding ``W1, b1, ..., WL, bL``.

    ``L`` is the highest layer number a ``W`` or ``b`` key names. Raises :class:`~xpnet.errors.ConfigError`
    naming the keys when one of ``W1 .. bL`` is missing, or (``exact``) the dict holds other keys too; the
    training path passes ``exact=False`` and ignores keys that name no layer.
    """
    if not isinstance(parameters, Mapping):
        raise InputTypeError(f"parameters must be a dict with keys W1, b1, ..., got {type(parameters).__name__}")
    # L from the highest layer any W or b names: counting the W keys would let a dict missing only W{L} run as
    # a shorter network without a word.
    layers = [int(k[1:]) for k in parameters if isinstance(k, str) and k[:1] in "Wb" and k[1:].isdigit()]
    L = max(layers, default=0)
    if L == 0:
        raise ConfigError("parameters holds no weights: expected keys W1, b1, ..., WL, bL")
    expected = {f"{p}{l}" for l in range(1, L + 1) for p in "Wb"}
    missing = sorted(expected - set(parameters), key=lambda k: (int(k[1:]), k))
    extra = sorted(repr(k) for k in parameters if k not in expected) if exact else []
    if missing or extra:
        keys = "W1, b1" if L == 1 else f"W1, b1, ..., W{L}, b{L}"
        problem = (f"is missing {', '.join(map(repr, missing))}" if missing
                   else f"has unexpected keys {', '.join(extra)}")
        raise ConfigError(f"parameters {problem}: expected exactly the keys {keys}")
    return L


def _as_input(xp: Any, X: Any, dtype: Any, *, check_values: bool = True) -> Any:
    """``X`` in the parameters' dtype: integer, boolean and other float ``X`` are cast to it once (documented:
    the parameters set the compute dtype, so float32 ``DNN`` parameters and NumPy's float64 data work
    together); NaN or infinity in ``X`` (also one made by casting a value beyond float32's range) is an
    :class:`~xpnet.errors.InvalidValueError` (one boolean read back per call)."""
    if _xp.is_floating(xp, X):
        if X.dtype != dtype:
            cast = _xp.cast_quietly(xp, X, dtype)
            if check_values and not _xp.all_finite(xp, cast):
                _xp.check_finite(xp, X, "X")  # NaN or infinity already in X: said as such
                raise InvalidValueError(
                    f"X holds values beyond the range of {_xp.dtype_name(xp, dtype)}, the parameters' dtype, which "
                    f"would become infinite when X ({_xp.dtype_name(xp, X.dtype)}) is cast to it: scale X, or use "
                    f"{_xp.dtype_name(xp, X.dtype)} parameters")
            return cast
        if check_values:
            _xp.check_finite(xp, X, "X")
        return X
    if xp.isdtype(X.dtype, ("integral", "bool")):
        return xp.astype(X, dtype)
    raise DTypeError(f"X has dtype {X.dtype}; xpnet needs real numbers (bool or integer, cast to the parameters' "
                     f"dtype, or {_xp.dtype_name(xp, dtype)}): convert it first")


# -------------------------------------------------------------------------------------- initialization
def initialize_parameters(
    layer_dims: Sequence[int],
    *,
    init: str = "he",
    seed: int | None = 0,
    dtype: Any = None,
    backend: str | Backend | None = None,
) -> dict[str, Any]:
    """Initialize an L-layer network: ``W{l} = scale * N(0, 1)`` of shape ``(n_l, n_{l-1})``, ``b{l} = 0``
    of shape ``(n_l, 1)``.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_x, n_1, ..., n_L]``; ``L = len(layer_dims) - 1``.
    init : {"he", "xavier", "glorot", "scaled_normal"}
        The scale, see :mod:`xpnet.initializers`: ``"xavier"`` is the course's ``sqrt(1/n_{l-1})`` (LeCun's
        scale; PyTorch's and Keras's "Xavier" is ``"glorot"``), ``"scaled_normal"`` the lecture's ``randn * 0.01``.
    seed : int or None
        The same seed gives bit-identical values on every backend and device.
    dtype : "float32", "float64", a dtype object or None
        ``None``: float64 where the device has it, else float32.
    backend : spec string, Backend or None
        Where the arrays live (``None``: the current default, see :func:`xpnet.get_backend`).

    Returns
    -------
    dict
        ``{"W1": (n_1, n_0), "b1": (n_1, 1), ..., "WL": (n_L, n_{L-1}), "bL": (n_L, 1)}``.
    """
    dims = _check_layer_dims(layer_dims)
    scale = get_initializer(init)
    bk = get_backend(backend)
    dt = bk.float_dtype(dtype)
    dt_name = _xp.dtype_name(bk.xp, dt)
    _check_parameters_fit(bk, dims, dt_name)
    rng = host_generator(seed, "init")
    parameters: dict[str, Any] = {}
    try:
        # CuPy's zeros (array-api-compat's too) ignore device= and allocate on the current device: make it bk's.
        with bk.activate():
            for l in range(1, len(dims)):
                W = normal(rng, (dims[l], dims[l - 1]), scale(dims[l - 1], dims[l]), dt_name)
                parameters[f"W{l}"] = bk.asarray(W, dtype=dt)
                parameters[f"b{l}"] = bk.xp.zeros((dims[l], 1), dtype=dt, device=bk.device)
    except Exception as err:  # the estimate passed, the allocation did not (other processes, fragmentation)
        if not _xp.is_out_of_memory(err):
            raise
        from ..errors import DeviceMemoryError

        raise DeviceMemoryError(f"out of memory while initializing the parameters of layer_dims {dims} on "
                                f"{bk.spec} ({type(err).__name__}: {err}): use fewer or smaller layers") from None
    return parameters


def _check_parameters_fit(bk: Backend, dims: list[int], dt_name: str) -> None:
    """Estimate, before allocating anything, the memory the parameters need and refuse a network that cannot
    fit (a ``DeviceMemoryError`` naming the size) rather than fail deep in an allocation, or be killed.

    The estimate: every ``W[l]`` and ``b[l]`` in the dtype, plus the largest layer drawn in float64 on the host
    and scaled (two float64 copies of it) while it is made; on a CPU backend both count against the host."""
    from ..errors import DeviceMemoryError

    itemsize = 8 if dt_name == "float64" else 4
    values = sum(dims[l] * dims[l - 1] + dims[l] for l in range(1, len(dims)))
    draw = 2 * 8 * max(dims[l] * dims[l - 1] for l in range(1, len(dims)))
    free = _xp.free_memory(bk.xp, bk.device)
    if free is None:
        return
    on_host = _xp.is_numpy_namespace(bk.xp) or _xp.is_array_api_strict_namespace(bk.xp) or \
        _xp.is_jax_namespace(bk.xp) or getattr(bk.device, "type", None) == "cpu"
    need = values * itemsize + (draw if on_host else 0)
    if need > free:
        raise DeviceMemoryError(
            f"a network of layer_dims {dims} needs {_xp.format_bytes(need)} for its parameters ({values:,} values "
            f"in {dt_name}{', plus the float64 draw of its largest layer' if on_host else ''}), more than the "
            f"{_xp.format_bytes(free)} free on {bk.spec}: use fewer or smaller layers")


# --------------------------------------------------------------------------------------------- forward
def linear_forward(A_prev: Any, W: Any, b: Any, *, layer: int | None = None) -> tuple[Any, tuple]:
    """The linear part of a layer: ``Z = W A_prev + b``.

    Parameters
    ----------
    A_prev : (n_{l-1}, m) array
    W : (n_l, n_{l-1}) array
    b : (n_l, 1) array, broadcast over the m columns
    layer : int, optional
        Only used to name the layer in error messages.

    Returns
    -------
    Z : (n_l, m) array
    cache : tuple ``(A_prev, W, b)``

    Raises :class:`~xpnet.errors.InvalidValueError` when ``A_prev`` holds NaN or infinity.
    """
    return _linear_forward(A_prev, W, b, layer, check_values=True)


def _linear_forward(A_prev: Any, W: Any, b: Any, layer: int | None, *, check_values: bool) -> tuple[Any, tuple]:
    # check_values: A_prev is the caller's data (NaN/inf checked, one read back); model_forward checks X once
    # and passes False for every layer, so a forward pass never syncs once per layer.
    xp = _xp.namespace_of_named(A_prev=A_prev, **{_name("W", layer): W, _name("b", layer): b})
    _check_linear(xp, A_prev, W, b, layer)
    if check_values:
        _xp.check_finite(xp, A_prev, "A_prev")
    Z = W @ A_prev + b
    return Z, LinearCache((A_prev, W, b), layer=layer)


def linear_activation_forward(
    A_prev: Any, W: Any, b: Any, activation: str | Activation, *, layer: int | None = None
) -> tuple[Any, tuple]:
    """One layer forward: ``Z = W A_prev + b``, ``A = g(Z)``.

    Parameters
    ----------
    A_prev : (n_{l-1}, m) array
    W : (n_l, n_{l-1}) array
    b : (n_l, 1) array
    activation : {"relu", "leaky_relu", "sigmoid", "tanh", "softmax", "linear"} or Activation

    Returns
    -------
    A : (n_l, m) array
    cache : ``(linear_cache, Z)`` with ``linear_cache == (A_prev, W, b)``
    """
    return _linear_activation_forward(A_prev, W, b, get_activation(activation), layer, check_values=True)


def _linear_activation_forward(A_prev: Any, W: Any, b: Any, act: Activation, layer: int | None, *,
                               check_values: bool, forward: ForwardPass | None = None) -> tuple[Any, tuple]:
    if act.name == "softmax" and len(_shape(W)) == 2 and _shape(W)[0] == 1:
        # softmax over one unit is 1 for every example, whatever Z: a network that can learn nothing.
        raise ConfigError(f"{_where(layer)}softmax on a layer of 1 unit outputs 1 for every example; use "
                          "output='sigmoid' for two classes (softmax needs one unit per class)")
    Z, linear_cache = _linear_forward(A_prev, W, b, layer, check_values=check_values)
    xp = _xp.namespace_of(Z)
    A = act.forward(xp, Z)
    # The tuple the lecture describes, remembering what made it (checked by model_backward).
    return A, LayerCache((linear_cache, Z), activation=act.name, layer=layer, forward=forward)


def model_forward(
    X: Any, parameters: Mapping[str, Any], *, hidden: str | Activation = "relu", output: str | Activation = "sigmoid"
) -> tuple[Any, list]:
    """Forward through all L layers: ``[LINEAR -> hidden] x (L-1) -> LINEAR -> output``.

    Parameters
    ----------
    X : (n_x, m) array
        Integer, boolean or another float dtype is cast once to the parameters' dtype (the parameters set the
        compute dtype); NaN or infinity is an :class:`~xpnet.errors.InvalidValueError` (checked once per
        call, not per layer).
    parameters : dict with ``W1, b1, ..., WL, bL``
    hidden, output : activation names

    Returns
    -------
    AL : (n_L, m) array
        The output activations (the predicted probabilities for sigmoid/softmax).
    caches : list of L caches, ``caches[l-1]`` for layer ``l``
    """
    return _model_forward(X, parameters, hidden, output, check_values=True)


def _model_forward(X: Any, parameters: Mapping[str, Any], hidden: str | Activation, output: str | Activation, *,
                   check_values: bool) -> tuple[Any, list]:
    # check_values=False skips the NaN/inf read-back, for callers that evaluate many forward passes of data
    # they already checked (a gradient check's perturbed costs).
    L = num_layers(parameters)
    hidden_act, output_act = get_activation(hidden), get_activation(output)
    xp = _xp.namespace_of_named(X=X, W1=parameters["W1"])
    _xp.check_same_device({"X": X, "W1": parameters["W1"]})
    A = _as_input(xp, X, parameters["W1"].dtype, check_values=check_values)
    caches = []
    forward = ForwardPass(L, hidden_act.name, output_act.name)
    for l in range(1, L + 1):
        act = output_act if l == L else hidden_act
        A, cache = _linear_activation_forward(A, parameters[f"W{l}"], parameters[f"b{l}"], act, l,
                                              check_values=False, forward=forward)
        caches.append(cache)
    forward.AL = A
    return A, caches


# ------------------------------------------------------------------------------------------------ cost
def _unpack_cache(cache: Any, size: int, what: str, layer: int | None) -> tuple:
    """``cache`` as the ``size``-tuple it must be, or an :class:`InputTypeError` saying what was expected."""
    if isinstance(cache, (tuple, list)) and len(cache) == size:
        return tuple(cache)
    got = f"{type(cache).__name__} of length {len(cache)}" if isinstance(cache, (tuple, list)) else \
        type(cache).__name__
    where = "cache" if layer is None else f"the cache of layer {layer}"
    raise InputTypeError(f"{where} must be the {what}, got {got}")


def _check_examples(m: int, what: str) -> None:
    if m == 0:
        raise ShapeError(f"{what} has no examples (0 columns): the cost and gradients average over m >= 1")


def _targets(AL: Any, Y: Any, loss: Loss) -> tuple[Any, Any]:
    xp = _xp.namespace_of_named(AL=AL, Y=Y)
    _check_2d(None, AL=AL)
    _check_float_dtypes(xp, None, AL=AL)
    _check_examples(AL.shape[1], "AL")
    _xp.check_same_device({"AL": AL, "Y": Y})
    _xp.check_finite(xp, Y, "Y")  # a NaN label would pass the label-range checks (comparisons with NaN are False)
    # check_range=False: the building blocks compute the lecture's formula for any finite real Y (the course's
    # own tests feed Y = randn); the training entry points keep refusing labels outside [0, 1].
    return xp, as_targets(xp, Y, AL.shape[0], AL.shape[1], AL.dtype, loss, check_range=False)


def compute_cost(AL: Any, Y: Any, *, loss: str | Loss = "binary_cross_entropy") -> float:
    """The lecture's cost of predictions ``AL`` against labels ``Y``, as a Python float.

    ``binary_cross_entropy``: ``-(1/m) sum(Y log AL + (1-Y) log(1-AL))``;
    ``categorical_cross_entropy``: ``-(1/m) sum(Y log AL)``; ``mse``: ``(1/(2m)) sum((AL - Y)^2)``.

    Parameters
    ----------
    AL : (n_L, m) array
    Y : (n_L, m) array of any numeric dtype (cast), a ``(m,)`` vector when ``n_L == 1``, or integer class
        labels ``(m,)``/``(1, m)`` for categorical cross-entropy (one-hot encoded). Any finite real ``Y`` is
        computed by the formula as written (the training entry points refuse labels outside ``[0, 1]``, the
        building blocks do not); NaN or infinity in ``Y`` is an :class:`~xpnet.errors.InvalidValueError`.
        ``AL`` keeps the lecture's formula with ``0 log 0 = 0``: an
        output saturated to exactly its label costs 0, one saturated to exactly the wrong end (where the formula
        is infinite) or, for the cross-entropies, NaN or values outside ``[0, 1]`` in ``AL`` raise
        :class:`~xpnet.errors.InvalidValueError`, which points at the fused cost of the logits
        (``xpnet.get_loss(loss).fused_cost(xp, ZL, Y)``).
    loss : loss name or Loss
    """
    loss_ = get_loss(loss)
    _caches.check_loss_fits(loss_, AL)
    xp, Yt = _targets(AL, Y, loss_)
    return float(loss_.cost(xp, AL, Yt))


# -------------------------------------------------------------------------------------------- backward
def linear_backward(dZ: Any, cache: tuple, *, layer: int | None = None) -> tuple[Any, Any, Any]:
    """The linear part of a layer backward.

    ``dW = (1/m) dZ A_prev^T``, ``db = (1/m) sum_columns(dZ)`` (keepdims), ``dA_prev = W^T dZ``.

    Parameters
    ----------
    dZ : (n_l, m) array
    cache : ``(A_prev, W, b)`` from :func:`linear_forward`

    Returns
    -------
    dA_prev : (n_{l-1}, m), dW : (n_l, n_{l-1}), db : (n_l, 1)
    """
    A_prev, W, _b = _unpack_cache(cache, 3, "(A_prev, W, b) triple that linear_forward returns", layer)
    xp = _xp.namespace_of(dZ, A_prev, W)
    _check_2d(layer, dZ=dZ)
    expected = (W.shape[0], A_prev.shape[1])
    if _shape(dZ) != expected:
        raise ShapeError(f"{_where(layer)}dZ has shape {_shape(dZ)} but {_name('W', layer)} is {_shape(W)} and "
                         f"A_prev is {_shape(A_prev)}: dZ must be {expected}")
    _check_float_dtypes(xp, layer, dZ=dZ, **{_name("W", layer): W})
    _xp.check_same_device({"dZ": dZ, _name("W", layer): W})
    m = A_prev.shape[1]
    _check_examples(m, "dZ")
    dW = (1.0 / m) * (dZ @ A_prev.T)
    db = (1.0 / m) * xp.sum(dZ, axis=1, keepdims=True)
    dA_prev = W.T @ dZ
    return dA_prev, dW, db


def linear_activation_backward(
    dA: Any, cache: tuple, activation: str | Activation, *, layer: int | None = None
) -> tuple[Any, Any, Any]:
    """One layer backward: ``dZ = dA * g'(Z)`` (softmax: its Jacobian-vector product), then
    :func:`linear_backward`.

    Parameters
    ----------
    dA : (n_l, m) array
    cache : ``(linear_cache, Z)`` from :func:`linear_activation_forward`
    activation : the activation used forward

    Returns
    -------
    dA_prev : (n_{l-1}, m), dW : (n_l, n_{l-1}), db : (n_l, 1)
    """
    act = get_activation(activation)
    _caches.check_cache_activation(cache, act.name, layer)
    linear_cache, Z = _unpack_cache(cache, 2, "(linear_cache, Z) pair that linear_activation_forward returns", layer)
    xp = _xp.namespace_of(dA, Z)
    if _shape(dA) != _shape(Z):
        raise ShapeError(f"{_where(layer)}dA has shape {_shape(dA)} but Z has shape {_shape(Z)}: they must match")
    _check_float_dtypes(xp, layer, dA=dA, Z=Z)
    _xp.check_same_device({"dA": dA, "Z": Z})
    dZ = act.backward(xp, dA, Z)
    return linear_backward(dZ, linear_cache, layer=layer)


def model_backward(
    AL: Any,
    Y: Any,
    caches: Sequence[tuple],
    *,
    hidden: str | Activation = "relu",
    output: str | Activation = "sigmoid",
    loss: str | Loss | None = None,
) -> dict[str, Any]:
    """Backward through all L layers, the lecture's chain literally.

    Starts from the loss's ``dAL`` (binary cross-entropy: ``dAL = -(Y/AL - (1-Y)/(1-AL))``), then for
    ``l = L, ..., 1`` applies :func:`linear_activation_backward`.

    Parameters
    ----------
    AL : (n_L, m) array, from :func:`model_forward`
    Y : labels, as for :func:`compute_cost`
    caches : the list from :func:`model_forward`
    hidden, output : the activations used forward
    loss : loss name; ``None`` picks the one that pairs with ``output`` (sigmoid -> binary cross-entropy,
        softmax -> categorical cross-entropy, linear -> mse)

    Returns
    -------
    dict with ``dA{l-1}`` (n_{l-1}, m), ``dW{l}`` (n_l, n_{l-1}) and ``db{l}`` (n_l, 1) for l = 1..L.
    """
    loss_ = default_loss_for(output) if loss is None else get_loss(loss)
    hidden_act, output_act = get_activation(hidden), get_activation(output)
    xp, Yt = _targets(AL, Y, loss_)
    if isinstance(caches, (str, bytes)) or not isinstance(caches, Sequence):
        raise InputTypeError(f"caches must be the list of caches model_forward returns, got {type(caches).__name__}")
    L = len(caches)
    if L == 0:
        raise ConfigError("caches is empty: pass the caches returned by model_forward")
    _caches.check_loss_fits(loss_, AL)
    _caches.check_backward_pieces(AL, caches, hidden_act.name, output_act.name)
    grads: dict[str, Any] = {}
    dA = loss_.gradient(xp, AL, Yt)
    for l in range(L, 0, -1):
        act = output_act if l == L else hidden_act
        dA, grads[f"dW{l}"], grads[f"db{l}"] = linear_activation_backward(dA, caches[l - 1], act, layer=l)
        grads[f"dA{l - 1}"] = dA
    return grads


# -------------------------------------------------------------------------------------------- updating
def update_parameters(parameters: Mapping[str, Any], grads: Mapping[str, Any], learning_rate: float) -> dict:
    """One gradient-descent step: ``W{l} = W{l} - learning_rate * dW{l}``, ``b{l} = b{l} - learning_rate * db{l}``.

    ``W{l}`` and ``dW{l}`` are ``(n_l, n_{l-1})``, ``b{l}`` and ``db{l}`` are ``(n_l, 1)``; each gradient must
    match its parameter's shape, dtype, namespace and device.

    Returns a new dict of new arrays; ``parameters`` and its arrays are never modified (JAX arrays are
    immutable, and NumPy callers must not see their arrays change). Keys other than W/b are copied through.
    """
    lr = _check_learning_rate(learning_rate)
    L = num_layers(parameters)
    new = dict(parameters)
    for l in range(1, L + 1):
        for p in ("W", "b"):
            key, gkey = f"{p}{l}", f"d{p}{l}"
            if gkey not in grads:
                raise ConfigError(f"grads is missing {gkey!r} (it needs dW1, db1, ..., dW{L}, db{L})")
            value, grad = parameters[key], grads[gkey]
            xp = _xp.namespace_of_named(**{key: value, gkey: grad})
            if _shape(grad) != _shape(value):
                raise ShapeError(f"layer {l}: {gkey} has shape {_shape(grad)} but {key} has shape {_shape(value)}")
            _check_float_dtypes(xp, l, **{key: value, gkey: grad})
            _xp.check_same_device({key: value, gkey: grad})
            new[key] = value - lr * grad
    return new


# ------------------------------------------------------------------------------------------ prediction
def predict(
    X: Any,
    parameters: Mapping[str, Any],
    *,
    hidden: str | Activation = "relu",
    output: str | Activation = "sigmoid",
    threshold: float = 0.5,
) -> Any:
    """Predict from ``X`` (n_x, m).

    Returns
    -------
    sigmoid output: integer labels ``AL > threshold`` of shape (n_L, m) (the lecture's (1, m));
    softmax output: integer class indices ``argmax over rows`` of shape (1, m);
    any other output: ``AL`` itself (n_L, m) (regression).
    Labels use the namespace's default index dtype.
    """
    AL, _ = model_forward(X, parameters, hidden=hidden, output=output)
    return labels_from_output(AL, output, threshold)


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not math.isfinite(threshold):
        raise ConfigError(f"threshold must be a finite number (e.g. 0.5), got {threshold!r}")
    return float(threshold)


def labels_from_output(AL: Any, output: str | Activation, threshold: float = 0.5) -> Any:
    """Labels from output activations ``AL`` (n_L, m): sigmoid ``AL > threshold`` (n_L, m); softmax the
    argmax over rows (1, m); any other output ``AL`` itself. Labels use the namespace's index dtype."""
    name = get_activation(output).name
    xp = _xp.namespace_of(AL)
    if name == "sigmoid":
        return xp.astype(AL > _check_threshold(threshold), _xp.index_dtype(xp, _xp.device_of(AL)))
    if name == "softmax":
        return xp.astype(xp.argmax(AL, axis=0, keepdims=True), _xp.index_dtype(xp, _xp.device_of(AL)))
    return AL

# CuPy allocates and launches on the current device: each building block runs on its arrays' (cupy:1 too).
for _f in ("compute_cost", "labels_from_output", "linear_activation_backward", "linear_activation_forward",
           "linear_backward", "linear_forward", "model_backward", "model_forward", "predict", "update_parameters"):
    globals()[_f] = _xp.on_device_of_arrays(globals()[_f])

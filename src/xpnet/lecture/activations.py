"""Activation functions g and their derivatives g', side by side.

Every function takes the Array API namespace ``xp`` first and works on ``Z`` of shape ``(n_l, m)``
(columns are examples). ``backward(xp, dA, Z)`` returns ``dZ = dA * g'(Z)``, the lecture's
``dz[l] = da[l] * g[l]'(z[l])``; softmax is the one activation whose derivative is not elementwise, so its
backward is the Jacobian-vector product ``dZ = A * (dA - sum_rows(dA * A))``.

| name         | g(z)                              | g'(z)                    |
| ------------ | --------------------------------- | ------------------------ |
| relu         | max(z, 0)                         | 1 if z > 0 else 0        |
| leaky_relu   | z if z > 0 else 0.01 z            | 1 if z > 0 else 0.01     |
| sigmoid      | 1 / (1 + e^-z)                    | s(z) (1 - s(z))          |
| tanh         | tanh z                            | 1 - tanh^2 z             |
| linear       | z                                 | 1                        |
| softmax      | e^z_i / sum_j e^z_j (per column)  | (Jacobian, see above)    |

At ``z == 0`` the (leaky) ReLU derivative is taken as 0 (0.01), the usual convention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..device import xp as _xp
from .registry import lookup

__all__ = ["ACTIVATIONS", "Activation", "get_activation"]

LEAKY_SLOPE = 0.01


def _sigmoid(xp: Any, Z: Any) -> Any:
    # Written with e^-|z| so exp never overflows, whatever the sign of z: no inf, no warnings, no NaN.
    e = xp.exp(-xp.abs(Z))
    return xp.where(Z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_prime(xp: Any, Z: Any) -> Any:
    s = _sigmoid(xp, Z)
    return s * (1.0 - s)


def _relu(xp: Any, Z: Any) -> Any:
    return xp.maximum(Z, _xp.scalar_operand(xp, 0.0, Z))


def _relu_prime(xp: Any, Z: Any) -> Any:
    return xp.astype(Z > 0, Z.dtype)


def _leaky_relu(xp: Any, Z: Any) -> Any:
    return xp.where(Z > 0, Z, LEAKY_SLOPE * Z)


def _leaky_relu_prime(xp: Any, Z: Any) -> Any:
    return xp.astype(Z > 0, Z.dtype) * (1.0 - LEAKY_SLOPE) + LEAKY_SLOPE


def _tanh(xp: Any, Z: Any) -> Any:
    return xp.tanh(Z)


def _tanh_prime(xp: Any, Z: Any) -> Any:
    T = xp.tanh(Z)
    return 1.0 - T * T


def _linear(xp: Any, Z: Any) -> Any:
    return Z


def _linear_prime(xp: Any, Z: Any) -> Any:
    return xp.ones_like(Z)


def _softmax(xp: Any, Z: Any) -> Any:
    # Shifting each column by its max leaves softmax unchanged and keeps exp from overflowing.
    E = xp.exp(Z - xp.max(Z, axis=0, keepdims=True))
    return E / xp.sum(E, axis=0, keepdims=True)


def _softmax_backward(xp: Any, dA: Any, Z: Any) -> Any:
    A = _softmax(xp, Z)
    return A * (dA - xp.sum(dA * A, axis=0, keepdims=True))


@dataclass(frozen=True)
class Activation:
    """An activation: ``forward(xp, Z) -> A``, ``derivative(xp, Z) -> g'(Z)`` (``None`` when not
    elementwise) and ``backward(xp, dA, Z) -> dZ``."""

    name: str
    forward: Callable[[Any, Any], Any]
    derivative: Callable[[Any, Any], Any] | None
    backward: Callable[[Any, Any, Any], Any]

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickled by name (the functions include closures); a registered name resolves to the same object.
        return (get_activation, (self.name,))


def _elementwise(name: str, g: Callable, g_prime: Callable) -> Activation:
    return Activation(name, g, g_prime, lambda xp, dA, Z: dA * g_prime(xp, Z))


ACTIVATIONS: dict[str, Activation] = {
    "relu": _elementwise("relu", _relu, _relu_prime),
    "leaky_relu": _elementwise("leaky_relu", _leaky_relu, _leaky_relu_prime),
    "sigmoid": _elementwise("sigmoid", _sigmoid, _sigmoid_prime),
    "tanh": _elementwise("tanh", _tanh, _tanh_prime),
    # g' = 1, so dZ = dA: returned as is rather than multiplied by a fresh array of ones.
    "linear": Activation("linear", _linear, _linear_prime, lambda xp, dA, Z: dA),
    "softmax": Activation("softmax", _softmax, None, _softmax_backward),
}
# scikit-learn's names for the same functions.
_ALIASES = {"logistic": "sigmoid", "identity": "linear"}


def get_activation(activation: str | Activation) -> Activation:
    """Look up an activation by name (or pass an :class:`Activation` through).

    Raises :class:`~xpnet.errors.ConfigError` listing the valid names for an unknown one.
    """
    if isinstance(activation, Activation):
        return activation
    return lookup(activation, ACTIVATIONS, kind="activation", plural="activations", aliases=_ALIASES)

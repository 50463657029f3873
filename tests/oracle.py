"""A plain NumPy float64 reference of the lecture's formulas, written independently of xpnet.

Straight-line code, no tricks: this is what every backend's result is compared against.
"""

from __future__ import annotations

import numpy as np


def g(name: str, Z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(0.0, Z)
    if name == "leaky_relu":
        return np.where(Z > 0, Z, 0.01 * Z)
    if name == "sigmoid":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-Z))
    if name == "tanh":
        return np.tanh(Z)
    if name == "linear":
        return Z.copy()
    if name == "softmax":
        E = np.exp(Z - Z.max(axis=0, keepdims=True))
        return E / E.sum(axis=0, keepdims=True)
    raise KeyError(name)


def dZ_from_dA(name: str, dA: np.ndarray, Z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return dA * (Z > 0)
    if name == "leaky_relu":
        return dA * np.where(Z > 0, 1.0, 0.01)
    if name == "sigmoid":
        s = g("sigmoid", Z)
        return dA * s * (1 - s)
    if name == "tanh":
        return dA * (1 - np.tanh(Z) ** 2)
    if name == "linear":
        return dA.copy()
    if name == "softmax":  # full Jacobian per column: J = diag(a) - a a^T
        A = g("softmax", Z)
        out = np.empty_like(dA)
        for j in range(Z.shape[1]):
            a = A[:, j]
            out[:, j] = (np.diag(a) - np.outer(a, a)) @ dA[:, j]
        return out
    raise KeyError(name)


def cost(loss: str, AL: np.ndarray, Y: np.ndarray) -> float:
    m = AL.shape[1]
    if loss == "binary_cross_entropy":
        return float(-np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m)
    if loss == "categorical_cross_entropy":
        return float(-np.sum(Y * np.log(AL)) / m)
    if loss == "mse":
        return float(np.sum((AL - Y) ** 2) / (2 * m))
    raise KeyError(loss)


def dAL(loss: str, AL: np.ndarray, Y: np.ndarray) -> np.ndarray:
    if loss == "binary_cross_entropy":
        return -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    if loss == "categorical_cross_entropy":
        return -Y / AL
    if loss == "mse":
        return AL - Y
    raise KeyError(loss)


LOSS_FOR = {"sigmoid": "binary_cross_entropy", "softmax": "categorical_cross_entropy", "linear": "mse"}


def forward(X: np.ndarray, params: dict, hidden: str, output: str) -> tuple[np.ndarray, list]:
    L = len(params) // 2
    A = X
    caches = []
    for l in range(1, L + 1):
        W, b = params[f"W{l}"], params[f"b{l}"]
        Z = W.dot(A) + b
        caches.append((A, W, b, Z))
        A = g(output if l == L else hidden, Z)
    return A, caches


def backward(AL: np.ndarray, Y: np.ndarray, caches: list, hidden: str, output: str, loss: str) -> dict:
    L = len(caches)
    grads = {}
    dA = dAL(loss, AL, Y)
    for l in range(L, 0, -1):
        A_prev, W, _b, Z = caches[l - 1]
        m = A_prev.shape[1]
        dZ = dZ_from_dA(output if l == L else hidden, dA, Z)
        grads[f"dW{l}"] = 1.0 / m * np.dot(dZ, A_prev.T)
        grads[f"db{l}"] = 1.0 / m * np.sum(dZ, axis=1, keepdims=True)
        dA = np.dot(W.T, dZ)
        grads[f"dA{l - 1}"] = dA
    return grads


def random_params(rng: np.random.Generator, dims: list[int], scale: float = 0.5) -> dict:
    params = {}
    for l in range(1, len(dims)):
        params[f"W{l}"] = rng.standard_normal((dims[l], dims[l - 1])) * scale
        params[f"b{l}"] = rng.standard_normal((dims[l], 1)) * 0.1
    return params


def labels_for(output: str, rng: np.random.Generator, n_out: int, m: int) -> np.ndarray:
    """Float targets of shape (n_out, m) that suit ``output``."""
    if output == "sigmoid":
        return (rng.random((n_out, m)) > 0.5).astype(np.float64)
    if output == "softmax":
        return np.eye(n_out)[:, rng.integers(0, n_out, m)]
    return rng.standard_normal((n_out, m))

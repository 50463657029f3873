"""Gradient checks: every hidden activation x output/loss pair, on every float64 backend, for both the
training path (fused) and the lecture's literal chain; and proof that the check can fail."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import oracle
import xpnet
from xpnet import activations
from xpnet.lecture.gradcheck import gradient_check

HIDDEN = ["relu", "leaky_relu", "tanh", "sigmoid", "linear"]
OUTPUTS = ["sigmoid", "softmax", "linear"]


def _problem(case, rng, output, dims=(4, 5, 3)):
    n_out = 3 if output == "softmax" else 1
    dims = [*dims, n_out]
    ref = oracle.random_params(rng, dims, scale=0.8)
    params = {k: case.asarray(v) for k, v in ref.items()}
    X = case.asarray(rng.standard_normal((dims[0], 6)))
    Y = case.asarray(oracle.labels_for(output, rng, n_out, 6))
    return params, X, Y


@pytest.mark.parametrize("path", ["training", "lecture"])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_check_passes(xpb64, rng, hidden, output, path):
    params, X, Y = _problem(xpb64, rng, output)
    result = gradient_check(params, X, Y, hidden=hidden, output=output, path=path)
    assert result.passed, str(result)
    assert result.n_parameters == sum(int(np.prod(v.shape)) for v in params.values())
    assert set(result.per_parameter) == set(params)


@pytest.mark.parametrize(("output", "loss"), [("sigmoid", "mse"), ("softmax", "mse"), ("tanh", "mse")])
def test_gradient_check_passes_for_non_default_output_loss_pairs(xpb64, rng, output, loss):
    """The lecture's chain is not limited to the fused pairs: any differentiable output with any loss."""
    params, X, Y = _problem(xpb64, rng, output)
    assert gradient_check(params, X, Y, hidden="tanh", output=output, loss=loss, path="lecture").passed


def test_gradient_check_catches_a_wrong_derivative(rng, monkeypatch):
    """A derivative off by 10% must fail the check: the check is not a rubber stamp."""
    params, X, Y = _problem(_Np(), rng, "sigmoid")
    tanh = activations.ACTIVATIONS["tanh"]
    wrong = dataclasses.replace(tanh, backward=lambda xp, dA, Z: 1.1 * tanh.backward(xp, dA, Z))
    result = gradient_check(params, X, Y, hidden=wrong, output="sigmoid")
    assert not result.passed and result.difference > 1e-3
    assert result.per_parameter["W1"] > 1e-3 and result.per_parameter["W3"] < 2e-7  # the last layer is untouched
    with pytest.raises(xpnet.GradientCheckError, match="FAILED"):
        gradient_check(params, X, Y, hidden=wrong, output="sigmoid", raise_on_failure=True)


class _Np:
    """A minimal float64 NumPy case for tests outside the matrix."""

    def asarray(self, data):
        return np.asarray(data, dtype=np.float64)


def test_float32_parameters_are_checked_in_float64(rng):
    params, X, Y = _problem(_Np(), rng, "sigmoid")
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    assert gradient_check(params32, X.astype(np.float32), Y, hidden="tanh").passed


def test_gradient_check_needs_float64():
    pytest.importorskip("array_api_strict")
    b = xpnet.get_backend("array_api_strict:no_float64")
    params = xpnet.initialize_parameters([2, 1], backend=b)
    X = b.asarray(np.ones((2, 3)), dtype="float32")
    with pytest.raises(xpnet.DTypeError, match="needs float64"):
        gradient_check(params, X, b.asarray(np.ones((1, 3)), dtype="float32"))


def test_gradient_check_validates_its_inputs(rng):
    params, X, Y = _problem(_Np(), rng, "sigmoid")
    with pytest.raises(xpnet.ShapeError, match="must be 2-D"):
        gradient_check(params, X[0], Y)
    with pytest.raises(xpnet.ShapeError, match="layer 1: W1"):
        gradient_check(params, X[:2], Y)
    with pytest.raises(xpnet.ShapeError, match="no examples"):
        gradient_check(params, X[:, :0], Y[:, :0])
    for eps in (0, -1e-7, "a", float("inf")):
        with pytest.raises(xpnet.ConfigError, match="epsilon"):
            gradient_check(params, X, Y, epsilon=eps)
    torch = pytest.importorskip("torch")
    tparams = {k: torch.tensor(v) for k, v in params.items()}
    with pytest.raises(xpnet.NamespaceMismatchError):
        gradient_check(tparams, torch.tensor(X), Y)

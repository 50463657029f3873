"""Activations and losses: derivatives against finite differences, fused forms against the lecture's,
and saturation (|z| up to 1e4) never producing inf or NaN in what training uses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import oracle
import xpnet
from xpnet.lecture.activations import ACTIVATIONS, get_activation
from xpnet.lecture.losses import LOSSES, as_targets, get_loss

ELEMENTWISE = [name for name, act in ACTIVATIONS.items() if act.derivative is not None]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_central_differences(xpb64, rng, name):
    act = get_activation(name)
    Z = rng.standard_normal((4, 7))
    Z[np.abs(Z) < 1e-3] = 0.5  # keep away from the (leaky) ReLU kink
    h = 1e-6
    numeric = (oracle.g(name, Z + h) - oracle.g(name, Z - h)) / (2 * h)
    xpb64.assert_close(act.derivative(xpb64.xp, xpb64.asarray(Z)), numeric, rtol=1e-6, atol=1e-8)


def test_softmax_backward_is_the_jacobian_vector_product(xpb, rng):
    Z, dA = xpb.rounded(rng.standard_normal((5, 6))), xpb.rounded(rng.standard_normal((5, 6)))
    dZ = get_activation("softmax").backward(xpb.xp, xpb.asarray(dA), xpb.asarray(Z))
    xpb.assert_close(dZ, oracle.dZ_from_dA("softmax", dA, Z))


def test_sklearn_names_are_aliases():
    assert get_activation("logistic") is ACTIVATIONS["sigmoid"]
    assert get_activation("identity") is ACTIVATIONS["linear"]
    assert get_loss("bce") is LOSSES["binary_cross_entropy"]


@pytest.mark.parametrize("name", ["sigmoid", "softmax", "tanh", "relu", "leaky_relu"])
def test_activations_are_finite_when_saturated(xpb, name):
    Z = xpb.asarray(np.array([[-1e4, -50.0, 0.0, 50.0, 1e4], [1e4, 3.0, -1e4, 0.0, -2.0]]))
    act = get_activation(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings either
        A = xpb.np(act.forward(xpb.xp, Z))
    assert np.all(np.isfinite(A))
    if name == "sigmoid":
        np.testing.assert_array_equal(A[0, [0, 2, 4]], [0.0, 0.5, 1.0])


PAIRS = [("sigmoid", "binary_cross_entropy"), ("softmax", "categorical_cross_entropy"), ("linear", "mse")]


@pytest.mark.parametrize(("output", "loss"), PAIRS)
def test_fused_cost_equals_the_lecture_cost(xpb, rng, output, loss):
    n = 3 if output == "softmax" else 1
    ZL = xpb.rounded(rng.standard_normal((n, 12)) * 3)
    Y = oracle.labels_for(output, rng, n, 12)
    loss_ = get_loss(loss)
    fused = loss_.fused_cost(xpb.xp, xpb.asarray(ZL), xpb.asarray(Y))
    xpb.check(fused, shape=())
    expected = oracle.cost(loss, oracle.g(output, ZL), Y)
    assert float(fused) == pytest.approx(expected, rel=xpb.tol["rtol"] * 10, abs=xpb.tol["atol"])


@pytest.mark.parametrize(("output", "loss"), PAIRS[:2])
def test_fused_cost_is_finite_where_the_lecture_form_breaks(xpb, output, loss):
    """Logits of +-1e4 saturate the output to exactly 0/1: the lecture's log gives inf/NaN, the fused
    form the exact answer (|z| for a confidently wrong example, 0 for a right one)."""
    n = 2 if output == "softmax" else 1
    ZL = np.array([[1e4, -1e4, 1e4]]) if n == 1 else np.array([[1e4, -1e4, 1e4], [-1e4, 1e4, -1e4]])
    Y = np.array([[1.0, 1.0, 0.0]]) if n == 1 else np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # examples 2 and 3 are wrong by a margin of 1e4 (softmax: 2e4)
    expected = (1e4 + 1e4) / 3 if n == 1 else (2e4 + 2e4) / 3
    fused = float(get_loss(loss).fused_cost(xpb.xp, xpb.asarray(ZL), xpb.asarray(Y)))
    assert fused == pytest.approx(expected, rel=1e-6)
    with np.errstate(all="ignore"):
        assert not np.isfinite(oracle.cost(loss, oracle.g(output, ZL), Y))


def test_as_targets_forms(xpb):
    loss = get_loss("categorical_cross_entropy")
    labels = xpb.backend.asarray(np.array([2, 0, 1]), dtype="int32")
    Y = as_targets(xpb.xp, labels, 3, 3, xpb.dtype, loss)
    xpb.check(Y, shape=(3, 3))
    np.testing.assert_array_equal(xpb.np(Y), np.eye(3)[:, [2, 0, 1]])
    vec = as_targets(xpb.xp, xpb.asarray(np.array([1.0, 0.0])), 1, 2, xpb.dtype, get_loss("bce"))
    xpb.check(vec, shape=(1, 2))
    with pytest.raises(xpnet.ShapeError, match="integer class labels"):
        as_targets(xpb.xp, xpb.asarray(np.ones((1, 3))), 3, 3, xpb.dtype, loss)


def test_relu_derivative_at_the_kink_is_the_documented_convention(xpb):
    Z = xpb.asarray(np.array([[-1.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(xpb.np(get_activation("relu").derivative(xpb.xp, Z)), [[0.0, 0.0, 1.0]])
    np.testing.assert_allclose(xpb.np(get_activation("leaky_relu").derivative(xpb.xp, Z)), [[0.01, 0.01, 1.0]],
                               rtol=1e-6)

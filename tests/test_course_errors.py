"""xpnet.course: a learner's mistake in a call is an xpnet error that names it, never a bare KeyError,
IndexError or broadcasting ValueError from deep inside the formulas."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.course import gradient_checking as gc
from xpnet.course import initialize_parameters_deep, two_layer_model
from xpnet.course import optimization as opt


@pytest.fixture
def data():
    rs = np.random.RandomState(0)
    return rs.randn(3, 7), (rs.rand(1, 7) > 0.5).astype(np.float64), initialize_parameters_deep([3, 4, 1])


def test_momentum_and_adam_name_a_missing_gradient(data):
    _, _, p = data
    partial = {"dW1": np.zeros_like(p["W1"])}
    with pytest.raises(xpnet.ConfigError, match="grads is missing 'db1'"):
        opt.update_parameters_with_momentum(p, partial, opt.initialize_velocity(p), 0.9, 0.1)
    with pytest.raises(xpnet.ConfigError, match="grads is missing 'db1'"):
        opt.update_parameters_with_adam(p, partial, *opt.initialize_adam(p), 1)
    wrong = {f"d{k}": np.zeros((1, 1)) for k in p}
    with pytest.raises(xpnet.ShapeError, match=r"grads\['dW1'\] has shape \(1, 1\)"):
        opt.update_parameters_with_adam(p, wrong, *opt.initialize_adam(p), 1)


def test_random_mini_batches_refuses_a_vector_x(data):
    X, Y, _ = data
    with pytest.raises(xpnet.ShapeError, match=r"X has shape \(7,\)"):
        opt.random_mini_batches(X[0], Y, 2)


def test_gradient_check_n_refuses_gradients_of_another_network(data):
    X, Y, p = data
    grads = {"dW1": p["W1"], "db1": p["b1"]}  # one layer's gradients for a two-layer network
    with pytest.raises(xpnet.ShapeError, match="gradients hold 16 values but parameters 21"):
        gc.gradient_check_n(p, grads, X, Y)


@pytest.mark.parametrize("dims", [(3, 4), (3, 4, 2, 1), "341"])
def test_two_layer_model_needs_three_sizes(data, dims):
    X, Y, _ = data
    with pytest.raises(xpnet.ConfigError, match=r"layers_dims must be \(n_x, n_h, n_y\)"):
        two_layer_model(X, Y, dims, num_iterations=1)


def test_predict_runs_where_the_parameters_are_whatever_the_session_backend(data, monkeypatch, capsys):
    """NumPy parameters under XPNET_BACKEND=torch (or use_backend): predictions on NumPy, not a library mix-up."""
    pytest.importorskip("torch")
    from xpnet.course import predict, predict_dec

    X, Y, p = data
    monkeypatch.setenv("XPNET_BACKEND", "torch")
    with xpnet.use_backend("torch"):
        assert isinstance(predict(X, Y, p), np.ndarray)
        assert isinstance(predict_dec(p, X), np.ndarray)
    assert capsys.readouterr().out.startswith("Accuracy: ")

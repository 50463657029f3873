"""The network: it learns on every backend, agrees across backends, and its training path (fused output
gradient, no dA0, cost read back only when recorded) matches the lecture's chain."""

from __future__ import annotations

import numpy as np
import pytest

import oracle
import xpnet
from xpnet import functional as F
from xpnet.lecture.activations import get_activation
from xpnet.lecture.losses import get_loss
from xpnet.lecture.network import fused_gradients

# Published in the README: max deviation from the NumPy float64 run after 50 full-batch steps.
AGREEMENT = {"float64": dict(cost_rtol=1e-12, param_atol=1e-12), "float32": dict(cost_rtol=1e-5, param_atol=1e-5)}


@pytest.fixture(scope="module")
def flower():
    X, y = xpnet.datasets.make_flower(400, seed=1)
    return X.T, y[None, :]


def test_learns_the_flower_on_every_backend(xpb, flower):
    X, Y = flower
    net = xpnet.DNN([2, 4, 1], hidden="tanh", seed=0, dtype=xpb.dtype_name, backend=xpb.backend)
    net.fit(X, Y, learning_rate=1.2, num_iterations=1000)
    assert net.score(X, Y) >= 0.90
    assert net.costs[-1] < 0.5 * net.costs[0]
    xpb.check(net.parameters["W1"])


def test_softmax_with_integer_labels_learns_moons(xpb):
    X, y = xpnet.datasets.make_moons(300, noise=0.15, seed=0)
    net = xpnet.DNN([2, 16, 2], hidden="tanh", output="softmax", dtype=xpb.dtype_name, backend=xpb.backend)
    net.fit(X.T, y, learning_rate=0.5, num_iterations=600)
    assert net.score(X.T, y) >= 0.95
    np.testing.assert_array_equal(net.predict(X.T)[0], net.predict_proba(X.T).argmax(axis=0))


def test_linear_output_regresses(xpb, rng):
    x = rng.uniform(-2, 2, (1, 200))
    net = xpnet.DNN([1, 16, 1], hidden="tanh", output="linear", dtype=xpb.dtype_name, backend=xpb.backend)
    net.fit(x, np.sin(x), learning_rate=0.1, num_iterations=1500)
    assert net.score(x, np.sin(x)) > 0.9


def test_same_seed_same_curve_on_every_backend(xpb, flower):
    """Cross-backend agreement: 50 steps from the same seed and data match the NumPy float64 run within the
    tolerance the README publishes for the entry's dtype."""
    X, Y = flower

    def run(backend, dtype):
        net = xpnet.DNN([2, 8, 4, 1], hidden="relu", seed=5, dtype=dtype, backend=backend)
        net.fit(X, Y, learning_rate=0.3, num_iterations=50, record_every=1)
        return np.array(net.costs), net.get_parameters()

    ref_costs, ref_params = run("numpy", "float64")
    costs, params = run(xpb.backend, xpb.dtype_name)
    tol = AGREEMENT[xpb.dtype_name]
    assert len(costs) == 50
    np.testing.assert_allclose(costs, ref_costs, rtol=tol["cost_rtol"], atol=0)
    for k in ref_params:
        assert params[k].dtype == np.dtype(xpb.dtype_name)
        np.testing.assert_allclose(params[k], ref_params[k], rtol=0, atol=tol["param_atol"], err_msg=k)


@pytest.mark.parametrize(("hidden", "output"), [("relu", "sigmoid"), ("tanh", "softmax"), ("leaky_relu", "linear")])
def test_fused_gradients_equal_the_lecture_chain(xpb64, rng, hidden, output):
    n_out = 3 if output == "softmax" else 1
    ref = oracle.random_params(rng, [3, 5, 4, n_out])
    params = {k: xpb64.asarray(v) for k, v in ref.items()}
    X = xpb64.asarray(rng.standard_normal((3, 7)))
    Y = xpb64.asarray(oracle.labels_for(output, rng, n_out, 7))
    loss = get_loss(oracle.LOSS_FOR[output])
    grads, cost, AL = fused_gradients(xpb64.xp, params, X, Y, get_activation(hidden), get_activation(output), loss)
    AL_l, caches = F.model_forward(X, params, hidden=hidden, output=output)
    lecture = F.model_backward(AL_l, Y, caches, hidden=hidden, output=output)
    assert set(grads) == {f"d{p}{l}" for l in (1, 2, 3) for p in ("W", "b")}  # dA0 is never computed
    for k, v in grads.items():
        xpb64.assert_close(v, xpb64.np(lecture[k]), rtol=1e-9, atol=1e-12)
    assert float(cost) == pytest.approx(F.compute_cost(AL_l, Y, loss=loss), rel=1e-10)
    xpb64.assert_close(AL, xpb64.np(AL_l), rtol=1e-12)


class _CountingArray(np.ndarray):
    """A NumPy array that counts matrix products, to prove the training step does 3L - 1 of them."""

    matmuls = 0

    def __matmul__(self, other):
        type(self).matmuls += 1
        return super().__matmul__(other)

    def __rmatmul__(self, other):  # Python tries this first when only the right operand is counting
        type(self).matmuls += 1
        return super().__rmatmul__(other)


def test_training_step_skips_dA0(rng):
    """Three layers: forward 3 GEMMs, backward dW x3 and dA x2 (dA0 skipped): 8 = 3L - 1."""
    params = {k: v.view(_CountingArray) for k, v in oracle.random_params(rng, [4, 5, 3, 1]).items()}
    X = rng.standard_normal((4, 6)).view(_CountingArray)
    Y = np.ones((1, 6))
    _CountingArray.matmuls = 0
    fused_gradients(xpnet.get_backend("numpy").xp, params, X, Y, get_activation("relu"), get_activation("sigmoid"),
                    get_loss("bce"), want_cost=False)
    assert _CountingArray.matmuls == 8


def test_cost_is_recorded_every_n_and_at_the_end(flower, capsys):
    X, Y = flower
    net = xpnet.DNN([2, 3, 1], hidden="tanh", backend="numpy")
    net.fit(X, Y, learning_rate=0.5, num_iterations=250, record_every=100, print_every=100)
    assert net.cost_iterations == [0, 100, 200, 249]
    assert net.n_iter_ == 250
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Cost after iteration 0: ") and out[-1].startswith("Cost after iteration 249: ")
    net.fit(X, Y, learning_rate=0.5, num_iterations=1)  # training continues, iterations keep counting
    assert net.cost_iterations[-1] == 250


def test_numpy_in_numpy_out_and_backend_in_backend_out(xpb, flower):
    X, Y = flower
    net = xpnet.DNN([2, 3, 1], dtype=xpb.dtype_name, backend=xpb.backend)
    net.fit(X, Y, num_iterations=2)
    assert isinstance(net.predict(X), np.ndarray) and isinstance(net.predict_proba(X), np.ndarray)
    proba = net.predict_proba(xpb.asarray(X))
    xpb.check(proba, shape=(1, 400))
    labels = net.predict(xpb.asarray(X))
    assert xpb.backend.owns(labels) and xpb.xp.isdtype(labels.dtype, "integral")


def test_network_input_errors(flower):
    X, Y = flower
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    with pytest.raises(xpnet.ShapeError, match=r"X has shape \(400, 2\) but this network takes \(2, m\)"):
        net.fit(X.T, Y)
    with pytest.raises(xpnet.ShapeError, match=r"Y has shape \(1, 399\)"):
        net.fit(X, Y[:, :-1])
    with pytest.raises(xpnet.ConfigError, match="num_iterations"):
        net.fit(X, Y, num_iterations=-1)
    with pytest.raises(xpnet.ConfigError, match="trains with 'binary_cross_entropy'"):
        xpnet.lecture.network.training_loss("sigmoid", "mse")
    torch = pytest.importorskip("torch")
    with pytest.raises(xpnet.NamespaceMismatchError, match="computes on numpy"):
        net.predict(torch.ones((2, 3)))


def test_network_refuses_bad_data_on_every_backend(xpb, flower):
    X, Y = flower
    net = xpnet.DNN([2, 3, 1], dtype=xpb.dtype_name, backend=xpb.backend)
    with pytest.raises(xpnet.InputTypeError, match="real numbers"):
        net.fit(X + 1j * X, Y)
    with pytest.raises(xpnet.InputTypeError, match="real numbers"):
        net.fit(X, np.array([list("ab" * 200)]))
    with pytest.raises(xpnet.LabelError, match=r"labels in \[0, 1\]"):
        net.fit(X, 2 * Y)
    with pytest.raises(xpnet.ConfigError, match="at least 2 units"):
        xpnet.DNN([2, 3, 1], output="softmax", backend=xpb.backend)
    net.fit(X[:, ::-1], Y[:, ::-1], num_iterations=1)  # views with negative strides are fine


def test_torch_tensors_that_record_gradients_are_detached(flower):
    torch = pytest.importorskip("torch")
    X, Y = flower
    net = xpnet.DNN([2, 3, 1], backend="torch:cpu")
    Xt = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    net.fit(Xt, Y, num_iterations=3)
    assert all(p.grad_fn is None and not p.requires_grad for p in net.parameters.values())


def test_fused_gradients_ignore_keys_other_than_weights_and_biases(rng):
    params = {k: v for k, v in oracle.random_params(rng, [3, 2, 1]).items()}
    grads, _, _ = fused_gradients(xpnet.get_backend("numpy").xp, {**params, "Wx": "note"}, rng.standard_normal((3, 4)),
                                  np.ones((1, 4)), get_activation("relu"), get_activation("sigmoid"), get_loss("bce"))
    assert set(grads) == {"dW1", "db1", "dW2", "db2"}


def test_training_cost_stays_exact_when_the_sigmoid_saturates(xpb):
    """Logits of +-1e4 saturate the sigmoid to exactly 0 or 1. The lecture's cost would be inf/NaN; the
    training path's cost (from the logits) is exact and its step finite (DESIGN principle 6)."""
    net = xpnet.DNN([2, 1], dtype=xpb.dtype_name, backend=xpb.backend)
    net.parameters = {"W1": xpb.asarray(np.array([[1e4, 0.0]])), "b1": xpb.asarray(np.zeros((1, 1)))}
    X = np.array([[1.0, -1.0, 1.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    Y = np.array([[1, 0, 0, 1]])  # the last two are wrong by a logit margin of 1e4
    AL = net.predict_proba(X)
    assert set(np.unique(AL)) == {0.0, 1.0}
    with np.errstate(all="ignore"):
        assert not np.isfinite(oracle.cost("binary_cross_entropy", AL.astype(float), Y.astype(float)))
    net.fit(X, Y, learning_rate=0.1, num_iterations=1)
    assert net.costs[0] == pytest.approx(2e4 / 4, rel=1e-6)
    assert all(np.all(np.isfinite(v)) for v in net.get_parameters().values())

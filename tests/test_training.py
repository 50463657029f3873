"""The training engine: L2, dropout and sample weights in the fused gradients (against a NumPy float64
forward/backward written here), their gradient checks, the seeded masks and batches, cross-backend agreement
of ``DNN.train``, the batch/dropout checks, early stopping, history, checkpoints and the progress bar."""

from __future__ import annotations

import io

import numpy as np
import pytest

import oracle
import xpnet
from xpnet import gradcheck
from xpnet.device.random import host_generator
from xpnet.engine import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    ProgressBar,
    Trainer,
    check_batch_size,
    check_dropout,
    dropout_masks,
    split_indices,
)
from xpnet.engine.optimizers import GradientDescent, get_schedule
from xpnet.lecture.activations import get_activation
from xpnet.lecture.gradcheck import gradient_check
from xpnet.lecture.losses import get_loss
from xpnet.lecture.network import fused_gradients

# Cross-backend agreement of a whole DNN.train run (adam, dropout, L2, shuffled mini-batches), float64.
TRAIN_AGREEMENT_RTOL = 1e-10


# ------------------------------------------------------------------------ NumPy float64 reference
def per_example_loss(loss: str, AL: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """(m,) loss of each example, from the output activations (the lecture's form)."""
    if loss == "binary_cross_entropy":
        return -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL), axis=0)
    if loss == "categorical_cross_entropy":
        return -np.sum(Y * np.log(AL), axis=0)
    if loss == "mse":
        return 0.5 * np.sum((AL - Y) ** 2, axis=0)
    raise KeyError(loss)


def reference_cost(params: dict, X: np.ndarray, Y: np.ndarray, hidden: str, output: str, *, lambd: float = 0.0,
                   masks: dict | None = None, w: np.ndarray | None = None) -> float:
    """(1/m) sum_j w_j loss_j + lambd/(2m) sum_l ||W[l]||_F^2, with inverted dropout on the hidden layers."""
    AL, _, _ = reference_forward(params, X, hidden, output, masks)
    m = X.shape[1]
    weights = np.ones(m) if w is None else w.reshape(-1)
    L = len(params) // 2
    penalty = sum(np.sum(params[f"W{l}"] ** 2) for l in range(1, L + 1))
    return float(np.sum(weights * per_example_loss(oracle.LOSS_FOR[output], AL, Y)) / m + lambd / (2 * m) * penalty)


def reference_forward(params: dict, X: np.ndarray, hidden: str, output: str, masks: dict | None = None):
    masks = masks or {}
    L = len(params) // 2
    A = X
    inputs, Zs = [X], []
    for l in range(1, L + 1):
        Z = params[f"W{l}"] @ A + params[f"b{l}"]
        Zs.append(Z)
        A = oracle.g(output if l == L else hidden, Z)
        if l < L:
            if l in masks:
                A = A * masks[l]  # M = D / keep_prob: the lecture's A = A * D / keep_prob
            inputs.append(A)
    return A, inputs, Zs


def reference_gradients(params: dict, X: np.ndarray, Y: np.ndarray, hidden: str, output: str, *,
                        lambd: float = 0.0, masks: dict | None = None, w: np.ndarray | None = None) -> dict:
    """Backward by the chain rule, the output layer through its own Jacobian (not the fused AL - Y)."""
    masks = masks or {}
    AL, inputs, Zs = reference_forward(params, X, hidden, output, masks)
    m = X.shape[1]
    L = len(params) // 2
    dA = oracle.dAL(oracle.LOSS_FOR[output], AL, Y)
    if w is not None:
        dA = dA * w  # d/dAL of sum_j w_j loss_j
    dZ = oracle.dZ_from_dA(output, dA, Zs[-1])
    grads = {}
    for l in range(L, 0, -1):
        W = params[f"W{l}"]
        grads[f"dW{l}"] = dZ @ inputs[l - 1].T / m + lambd / m * W
        grads[f"db{l}"] = np.sum(dZ, axis=1, keepdims=True) / m
        if l > 1:
            dA = W.T @ dZ
            if l - 1 in masks:
                dA = dA * masks[l - 1]
            dZ = oracle.dZ_from_dA(hidden, dA, Zs[l - 2])
    return grads


def numerical_gradient(cost, params: dict, eps: float = 1e-7) -> dict:
    """Two-sided finite differences of ``cost(params)`` for every scalar parameter (NumPy, float64)."""
    grads = {}
    for k, v in params.items():
        g = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            plus = {**params, k: v.copy()}
            minus = {**params, k: v.copy()}
            plus[k][idx] += eps
            minus[k][idx] -= eps
            g[idx] = (cost(plus) - cost(minus)) / (2 * eps)
        grads[f"d{k}"] = g
    return grads


def relative_difference(a: dict, b: dict) -> float:
    va = np.concatenate([a[k].ravel() for k in sorted(a)])
    vb = np.concatenate([b[k].ravel() for k in sorted(a)])
    return float(np.linalg.norm(va - vb) / (np.linalg.norm(va) + np.linalg.norm(vb)))


def random_masks(rng: np.random.Generator, dims: list[int], keep: dict[int, float], m: int) -> dict:
    return {l: (rng.random((dims[l], m)) < p) / p for l, p in keep.items()}


def _problem(rng, output, m=7, dims=(4, 5, 3)):
    n_out = 3 if output == "softmax" else 1
    dims = [*dims, n_out]
    params = oracle.random_params(rng, dims, scale=0.8)
    X = rng.standard_normal((dims[0], m))
    Y = oracle.labels_for(output, rng, n_out, m)
    return dims, params, X, Y


# --------------------------------------------------------------------------------- fused_gradients
@pytest.mark.parametrize("extra", ["l2", "dropout", "weights", "all"])
@pytest.mark.parametrize(("hidden", "output"), [("relu", "sigmoid"), ("tanh", "softmax"), ("leaky_relu", "linear")])
def test_fused_gradients_with_l2_dropout_and_weights(xpb64, rng, hidden, output, extra):
    dims, ref, X, Y = _problem(rng, output)
    m = X.shape[1]
    lambd = 0.7 if extra in ("l2", "all") else 0.0
    masks = random_masks(rng, dims, {1: 0.6, 2: 0.8}, m) if extra in ("dropout", "all") else None
    w = rng.uniform(0.2, 3.0, (1, m)) if extra in ("weights", "all") else None

    params = {k: xpb64.asarray(v) for k, v in ref.items()}
    grads, cost, AL = fused_gradients(
        xpb64.xp, params, xpb64.asarray(X), xpb64.asarray(Y), get_activation(hidden), get_activation(output),
        get_loss(oracle.LOSS_FOR[output]), lambd=lambd,
        keep_masks=None if masks is None else {l: xpb64.asarray(M) for l, M in masks.items()},
        sample_weight=None if w is None else xpb64.asarray(w))

    expected = reference_gradients(ref, X, Y, hidden, output, lambd=lambd, masks=masks, w=w)
    assert set(grads) == set(expected)
    for k, v in grads.items():
        xpb64.check(v, shape=expected[k].shape)
        xpb64.assert_close(v, expected[k], rtol=1e-9, atol=1e-12)
    xpb64.check(cost, shape=())
    assert float(cost) == pytest.approx(reference_cost(ref, X, Y, hidden, output, lambd=lambd, masks=masks, w=w),
                                        rel=1e-10)
    xpb64.assert_close(AL, reference_forward(ref, X, hidden, output, masks)[0], rtol=1e-12)


def test_l2_term_is_exactly_lambd_over_m_times_W(rng):
    """Switching L2 on changes dW by exactly (lambd/m) W and leaves db alone; the cost grows by
    lambd/(2m) sum ||W||^2."""
    _dims, params, X, Y = _problem(rng, "sigmoid", m=5)
    xp = xpnet.get_backend("numpy").xp
    args = (xp, params, X, Y, get_activation("tanh"), get_activation("sigmoid"), get_loss("bce"))
    g0, c0, _ = fused_gradients(*args)
    g1, c1, _ = fused_gradients(*args, lambd=2.5)
    for l in (1, 2, 3):
        np.testing.assert_allclose(g1[f"dW{l}"] - g0[f"dW{l}"], 2.5 / 5 * params[f"W{l}"], rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(g1[f"db{l}"], g0[f"db{l}"])
    penalty = sum(float(np.sum(params[f"W{l}"] ** 2)) for l in (1, 2, 3))
    assert float(c1) - float(c0) == pytest.approx(2.5 / (2 * 5) * penalty, rel=1e-12)


# ----------------------------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
@pytest.mark.parametrize("hidden", ["relu", "tanh"])
def test_gradient_check_passes_with_l2_and_fixed_dropout_masks(xpb64, rng, hidden, output):
    dims, ref, X, Y = _problem(rng, output, m=6)
    masks = random_masks(rng, dims, {1: 0.5, 2: 0.75}, 6)
    params = {k: xpb64.asarray(v) for k, v in ref.items()}
    Xb, Yb = xpb64.asarray(X), xpb64.asarray(Y)
    mask_b = {l: xpb64.asarray(M) for l, M in masks.items()}
    for kwargs in (dict(lambd=0.9), dict(keep_masks=mask_b), dict(lambd=0.9, keep_masks=mask_b)):
        result = gradient_check(params, Xb, Yb, hidden=hidden, output=output, **kwargs)
        assert result.passed, f"{kwargs.keys()}: {result}"
        assert result.difference < 2e-7


def test_gradient_check_fails_when_the_gradient_lacks_the_l2_term(rng, monkeypatch):
    """Gradients computed without the L2 term, checked against the L2 cost, must fail: the check can fail."""
    _dims, ref, X, Y = _problem(rng, "sigmoid", m=6)
    real = gradcheck.fused_gradients

    def without_l2_in_the_gradient(*args, want_cost=True, lambd=0.0, **kwargs):
        return real(*args, want_cost=want_cost, lambd=lambd if want_cost else 0.0, **kwargs)

    assert gradient_check(ref, X, Y, hidden="tanh", lambd=0.9).passed
    monkeypatch.setattr(gradcheck, "fused_gradients", without_l2_in_the_gradient)
    result = gradient_check(ref, X, Y, hidden="tanh", lambd=0.9)
    assert not result.passed and result.difference > 1e-3, str(result)
    assert gradient_check(ref, X, Y, hidden="tanh", lambd=0.0).passed  # no L2, nothing missing


def test_gradient_check_fails_when_the_gradient_ignores_the_dropout_masks(rng, monkeypatch):
    dims, ref, X, Y = _problem(rng, "softmax", m=6)
    masks = random_masks(rng, dims, {1: 0.5}, 6)
    real = gradcheck.fused_gradients

    def without_masks_in_the_gradient(*args, want_cost=True, keep_masks=None, **kwargs):
        return real(*args, want_cost=want_cost, keep_masks=keep_masks if want_cost else None, **kwargs)

    assert gradient_check(ref, X, Y, hidden="relu", output="softmax", keep_masks=masks).passed
    monkeypatch.setattr(gradcheck, "fused_gradients", without_masks_in_the_gradient)
    result = gradient_check(ref, X, Y, hidden="relu", output="softmax", keep_masks=masks)
    assert not result.passed and result.difference > 1e-3, str(result)


def test_own_numerical_gradient_tells_l2_gradients_apart(xpb64, rng):
    """Our own finite differences of the L2 cost (NumPy reference): fused_gradients(lambd) agrees with them,
    fused_gradients(lambd=0) is far off."""
    dims, ref, X, Y = _problem(rng, "sigmoid", m=6)
    masks = random_masks(rng, dims, {2: 0.5}, 6)
    lambd = 0.9
    numeric = numerical_gradient(
        lambda p: reference_cost(p, X, Y, "tanh", "sigmoid", lambd=lambd, masks=masks), ref)
    params = {k: xpb64.asarray(v) for k, v in ref.items()}
    args = (xpb64.xp, params, xpb64.asarray(X), xpb64.asarray(Y), get_activation("tanh"), get_activation("sigmoid"),
            get_loss("bce"))
    mask_b = {l: xpb64.asarray(M) for l, M in masks.items()}
    with_l2 = {k: xpb64.np(v) for k, v in fused_gradients(*args, lambd=lambd, keep_masks=mask_b)[0].items()}
    without = {k: xpb64.np(v) for k, v in fused_gradients(*args, lambd=0.0, keep_masks=mask_b)[0].items()}
    assert relative_difference(with_l2, numeric) < 2e-7
    assert relative_difference(without, numeric) > 1e-3


# -------------------------------------------------------------------------------------- dropout masks
def test_dropout_masks_are_seeded_and_scaled():
    dims = [3, 400, 300, 1]
    keep = {1: 0.8, 2: 0.5}
    a = dropout_masks(host_generator(7, "dropout"), dims, keep, 500, "float64")
    b = dropout_masks(host_generator(7, "dropout"), dims, keep, 500, "float64")
    c = dropout_masks(host_generator(8, "dropout"), dims, keep, 500, "float64")
    assert set(a) == {1, 2}
    for l, p in keep.items():
        assert a[l].shape == (dims[l], 500) and a[l].dtype == np.float64
        np.testing.assert_array_equal(a[l], b[l])
        assert not np.array_equal(a[l], c[l])
        values = np.unique(a[l])
        np.testing.assert_array_equal(values, [0.0, 1.0 / p])
        kept = np.mean(a[l] != 0)
        assert abs(kept - p) < 0.005, f"layer {l}: kept {kept}, keep_prob {p}"
        # inverted dropout keeps the expected activation: mean of M is about 1
        assert abs(a[l].mean() - 1.0) < 0.01


def test_dropout_masks_in_float32_hold_the_rounded_scale():
    masks = dropout_masks(host_generator(0, "dropout"), [2, 50, 1], {1: 0.7}, 40, "float32")
    assert masks[1].dtype == np.float32
    assert set(np.unique(masks[1]).tolist()) <= {0.0, float(np.float32(1 / 0.7))}


def test_dropout_masks_only_for_layers_that_drop():
    assert dropout_masks(host_generator(0, "dropout"), [2, 5, 5, 1], {}, 10, "float64") == {}
    masks = dropout_masks(host_generator(0, "dropout"), [2, 5, 6, 1], {2: 0.5}, 10, "float64")
    assert list(masks) == [2] and masks[2].shape == (6, 10)


# ---------------------------------------------------------------------------------- reproducibility
@pytest.fixture(scope="module")
def moons():
    X, y = xpnet.datasets.make_moons(64, noise=0.2, seed=0)
    return X.T.copy(), y


def _adam_dropout_run(backend, X, y, seed=3, **kw):
    net = xpnet.DNN([2, 6, 5, 1], hidden="tanh", seed=1, dtype="float64", backend=backend)
    hist = net.train(X, y, epochs=4, batch_size=16, optimizer="adam", learning_rate=0.02, l2=0.01, dropout=0.25,
                     seed=seed, **kw)
    return net, hist


def test_same_seed_same_run_bit_for_bit(moons):
    X, y = moons
    net1, h1 = _adam_dropout_run("numpy", X, y)
    net2, h2 = _adam_dropout_run("numpy", X, y)
    assert h1["loss"] == h2["loss"] and h1["metric"] == h2["metric"]
    for k, v in net1.get_parameters().items():
        np.testing.assert_array_equal(v, net2.get_parameters()[k])
    _, h3 = _adam_dropout_run("numpy", X, y, seed=4)  # the seed matters: other batches and masks
    assert h3["loss"] != h1["loss"]


def test_train_agrees_across_float64_backends(xpb64, moons):
    """Principle 5: the batches and masks come from the host, so every backend trains the same run."""
    X, y = moons
    ref_net, ref = _adam_dropout_run("numpy", X, y, validation_fraction=0.25)
    net, hist = _adam_dropout_run(xpb64.backend, X, y, validation_fraction=0.25)
    assert len(hist) == 4
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(hist[key], ref[key], rtol=TRAIN_AGREEMENT_RTOL, atol=0, err_msg=key)
    assert hist["metric"] == ref["metric"] and hist["val_metric"] == ref["val_metric"]
    for k, v in ref_net.get_parameters().items():
        xpb64.check(net.parameters[k])
        np.testing.assert_allclose(net.get_parameters()[k], v, rtol=TRAIN_AGREEMENT_RTOL, atol=1e-12, err_msg=k)
    assert hist.backend == xpb64.backend.spec and hist.dtype == "float64"


def test_two_fits_of_two_epochs_equal_one_fit_of_four(moons):
    X, y = moons
    Y = y[None, :].astype(np.float64)

    def trainer():
        net = xpnet.DNN([2, 4, 1], hidden="tanh", seed=2, dtype="float64", backend="numpy")
        return net, Trainer(net, optimizer="momentum", learning_rate=0.1, batch_size=10, dropout=0.2, seed=5)

    net_a, ta = trainer()
    ta.fit(X, Y, epochs=2)
    ta.fit(X, Y, epochs=2)
    net_b, tb = trainer()
    tb.fit(X, Y, epochs=4)
    assert ta.history["loss"] == tb.history["loss"] and ta.history["epoch"] == [0, 1, 2, 3]
    for k in net_a.parameters:
        np.testing.assert_array_equal(net_a.parameters[k], net_b.parameters[k])


# ----------------------------------------------------------------------------------------- checks
def test_check_batch_size():
    assert check_batch_size("full", 37) == 37
    assert check_batch_size(" Full ", 37) == 37
    assert check_batch_size("auto", 37) == 37
    assert check_batch_size("auto", 1000) == 200
    assert check_batch_size(16, 37) == 16
    assert check_batch_size(500, 37) == 37
    assert check_batch_size(np.int64(8), 37) == 8
    assert check_batch_size(1, 37) == 1
    for bad in (0, -3, True, 2.5, "half", None, "", [4]):
        with pytest.raises(xpnet.ConfigError, match="batch_size"):
            check_batch_size(bad, 37)


def test_check_dropout():
    assert check_dropout(0.0, 2) == {}
    assert check_dropout(0.2, 2) == {1: 0.8, 2: 0.8}
    assert check_dropout([0.0, 0.5], 2) == {2: 0.5}
    assert check_dropout((0.25,), 1) == {1: 0.75}
    with pytest.raises(xpnet.ConfigError, match="dropout has 3 rates but the network has 2 hidden layers"):
        check_dropout([0.1, 0.2, 0.3], 2)
    with pytest.raises(xpnet.ConfigError, match="hidden layer 2 must be in"):
        check_dropout([0.1, 1.0], 2)
    for bad in (1.0, -0.1, 1.5, True):
        with pytest.raises(xpnet.ConfigError, match=r"\[0, 1\)"):
            check_dropout(bad, 2)
    for bad in ("0.5", None):
        with pytest.raises(xpnet.ConfigError, match="dropout"):
            check_dropout(bad, 2)
    net = xpnet.DNN([2, 3, 3, 1], backend="numpy")
    with pytest.raises(xpnet.ConfigError, match="dropout has 1 rates"):
        net.train(np.zeros((2, 4)), np.zeros(4), epochs=1, dropout=[0.5])
    with pytest.raises(xpnet.ConfigError, match=r"\[0, 1\)"):
        net.train(np.zeros((2, 4)), np.zeros(4), epochs=1, dropout=1.0)


# ------------------------------------------------------------------------------------------ batches
class CountingGD(GradientDescent):
    """Plain gradient descent that remembers how many examples each update's gradient was computed on."""

    def __init__(self) -> None:
        super().__init__()
        self.updates = 0

    def update(self, xp, params, grads, lr):
        self.updates += 1
        return super().update(xp, params, grads, lr)


@pytest.mark.parametrize(("batch_size", "per_epoch"), [(4, 3), (5, 2), (3, 4), (10, 1), (64, 1), ("full", 1),
                                                       (1, 10)])
def test_last_partial_batch_is_used(batch_size, per_epoch):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((3, 10)), (rng.random(10) > 0.5).astype(np.int64)
    net = xpnet.DNN([3, 4, 1], dtype="float64", backend="numpy")
    opt = CountingGD()
    net.train(X, y, epochs=2, batch_size=batch_size, optimizer=opt, learning_rate=0.1)
    assert opt.updates == 2 * per_epoch
    assert opt.t == 2 * per_epoch


def test_mini_batches_equal_sequential_steps_on_column_slices(rng):
    """m = 10, batch 4, no shuffling: the epoch is exactly three gradient steps on columns 0:4, 4:8, 8:10, and
    its loss the size-weighted mean of the three batch costs."""
    X = rng.standard_normal((3, 10))
    Y = (rng.random((1, 10)) > 0.5).astype(np.float64)
    net = xpnet.DNN([3, 4, 1], hidden="tanh", seed=4, dtype="float64", backend="numpy")
    params = net.get_parameters()
    trainer = Trainer(net, optimizer="gd", learning_rate=0.3, batch_size=4, shuffle=False)
    trainer.fit(X, Y, epochs=1)
    loss = 0.0
    for start, stop in ((0, 4), (4, 8), (8, 10)):
        Xb, Yb = X[:, start:stop], Y[:, start:stop]
        loss += reference_cost(params, Xb, Yb, "tanh", "sigmoid") * (stop - start)
        grads = reference_gradients(params, Xb, Yb, "tanh", "sigmoid")
        params = {k: v - 0.3 * grads[f"d{k}"] for k, v in params.items()}
    for k, v in params.items():
        np.testing.assert_allclose(net.parameters[k], v, rtol=1e-12, atol=1e-14, err_msg=k)
    assert trainer.history["loss"][0] == pytest.approx(loss / 10, rel=1e-12)
    assert trainer.optimizer.t == 3


def test_full_batch_gd_reproduces_fit(moons):
    X, y = moons
    fitted = xpnet.DNN([2, 5, 3, 1], hidden="tanh", seed=6, dtype="float64", backend="numpy")
    fitted.fit(X, y, learning_rate=0.5, num_iterations=25, record_every=1)
    trained = xpnet.DNN([2, 5, 3, 1], hidden="tanh", seed=6, dtype="float64", backend="numpy")
    hist = trained.train(X, y, epochs=25, batch_size="full", optimizer="gd", learning_rate=0.5)
    for k, v in fitted.get_parameters().items():
        np.testing.assert_allclose(trained.get_parameters()[k], v, rtol=1e-10, atol=1e-12, err_msg=k)
    # Full batch: each epoch's loss is the cost of the parameters before its single step.
    np.testing.assert_allclose(hist["loss"], fitted.costs, rtol=1e-10)


# ---------------------------------------------------------------------------------- early stopping
class _FakeNetwork:
    def __init__(self) -> None:
        self.parameters = {"W1": np.zeros(1)}


class _FakeTrainer:
    def __init__(self) -> None:
        self.network = _FakeNetwork()
        self.stop_training = False

    def snapshot_parameters(self) -> dict:
        return {k: v.copy() for k, v in self.network.parameters.items()}


def _drive(stopper: EarlyStopping, values: list[float], key: str = "loss") -> tuple[_FakeTrainer, int]:
    """Feed ``values`` epoch by epoch as a trainer would; returns the trainer and the number of epochs run."""
    trainer = _FakeTrainer()
    stopper.on_train_begin(trainer)
    epochs = 0
    for epoch, value in enumerate(values):
        trainer.network.parameters = {"W1": np.array([float(epoch)])}  # the parameters after this epoch
        stopper.on_epoch_end(trainer, epoch, {key: value})
        epochs += 1
        if trainer.stop_training:
            break
    stopper.on_train_end(trainer)
    return trainer, epochs


def test_early_stopping_counts_non_improving_epochs():
    stopper = EarlyStopping("loss", patience=3)
    trainer, epochs = _drive(stopper, [1.0, 0.9, 0.95, 0.91, 0.92, 0.5, 0.4])
    assert epochs == 5 and stopper.stopped_epoch == 4  # 0.95, 0.91, 0.92 do not beat 0.9
    assert stopper.best == 0.9 and stopper.best_epoch == 1
    np.testing.assert_array_equal(trainer.network.parameters["W1"], [1.0])  # best epoch's weights back


def test_early_stopping_patience_resets_on_improvement():
    stopper = EarlyStopping("loss", patience=2)
    _, epochs = _drive(stopper, [1.0, 1.1, 0.9, 1.0, 0.8, 0.85, 0.86, 0.1])
    assert epochs == 7 and stopper.stopped_epoch == 6 and stopper.best_epoch == 4


def test_early_stopping_min_delta_and_max_mode():
    stopper = EarlyStopping("loss", patience=2, min_delta=0.1)
    _, epochs = _drive(stopper, [1.0, 0.95, 0.92, 0.5])  # improvements of 0.05, 0.08: not more than 0.1
    # ... so the count runs out at epoch 2, while the best (tracked on any strict improvement) is epoch 2's.
    assert epochs == 3 and stopper.stopped_epoch == 2 and stopper.best_epoch == 2 and stopper.best == 0.92
    metric = EarlyStopping("val_metric", patience=2, restore_best_weights=False)
    trainer, epochs = _drive(metric, [0.5, 0.7, 0.6, 0.65, 0.9], key="val_metric")
    assert epochs == 4 and metric.best == 0.7 and metric.best_epoch == 1
    np.testing.assert_array_equal(trainer.network.parameters["W1"], [3.0])  # last weights kept


def test_early_stopping_never_fires_while_improving():
    stopper = EarlyStopping("loss", patience=1)
    _, epochs = _drive(stopper, [5.0, 4.0, 3.0, 2.0])
    assert epochs == 4 and stopper.stopped_epoch is None and stopper.best_epoch == 3


def test_early_stopping_validation():
    for kwargs, match in ((dict(monitor="accuracy"), "unknown monitor"), (dict(patience=0), "patience"),
                          (dict(patience=True), "patience"), (dict(min_delta=-1.0), "min_delta")):
        with pytest.raises(xpnet.ConfigError, match=match):
            EarlyStopping(**kwargs)
    with pytest.raises(xpnet.ConfigError, match="val_loss"):
        _drive(EarlyStopping("val_loss"), [1.0], key="loss")


class _Snapshots(Callback):
    """Copies of the parameters at the end of every epoch (what EarlyStopping should restore)."""

    def __init__(self) -> None:
        self.after: list[dict] = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.after.append({k: np.array(v, copy=True) for k, v in trainer.network.parameters.items()})


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_in_a_run_that_cannot_improve(moons, restore):
    X, y = moons
    net = xpnet.DNN([2, 4, 1], hidden="tanh", dtype="float64", backend="numpy")
    stopper = EarlyStopping("loss", patience=3, min_delta=1e-3, restore_best_weights=restore)
    snaps = _Snapshots()
    hist = net.train(X, y, epochs=50, batch_size=16, learning_rate=1e-9, early_stopping=stopper, callbacks=[snaps])
    # No gain above min_delta, so it stops after 3 epochs without one; the best is tracked on any strict gain.
    assert len(hist) == 4 and stopper.stopped_epoch == 3
    assert stopper.best_epoch == int(np.argmin(hist["loss"])) and stopper.best == min(hist["loss"])
    wanted = snaps.after[stopper.best_epoch] if restore else snaps.after[-1]
    for k, v in wanted.items():
        np.testing.assert_array_equal(net.parameters[k], v)
    assert not np.array_equal(snaps.after[0]["W1"], snaps.after[-1]["W1"])  # the weights did move a little


def test_early_stopping_true_monitors_val_loss_with_validation(moons):
    X, y = moons
    net = xpnet.DNN([2, 4, 1], hidden="tanh", dtype="float64", backend="numpy")
    # Validation labels flipped: the better the network learns, the worse val_loss gets, while loss improves.
    hist = net.train(X, y, epochs=30, batch_size=16, learning_rate=0.05, early_stopping=2,
                     validation_data=(X, 1 - y))
    assert len(hist) == 3
    assert hist["loss"][2] < hist["loss"][0] and hist["val_loss"][2] > hist["val_loss"][0]
    assert all(v is not None for v in hist["val_loss"])


def test_split_indices_is_stratified_disjoint_and_covering():
    labels = np.array([0] * 80 + [1] * 20)
    train, val = split_indices(100, 0.25, 0, labels)
    assert len(val) == 25 and len(train) == 75
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert np.issubdtype(train.dtype, np.integer)
    assert np.sum(labels[val] == 1) == 5 and np.sum(labels[train] == 1) == 15  # proportions kept
    again = split_indices(100, 0.25, 0, labels)
    np.testing.assert_array_equal(again[1], val)
    plain_train, plain_val = split_indices(10, 0.3, 1)
    assert len(plain_val) == 3 and sorted([*plain_train, *plain_val]) == list(range(10))
    assert len(split_indices(10, 0.01, 1)[1]) == 1  # at least one example validates


def test_split_indices_validation():
    for bad in (0, 1, 1.5, True, -0.1):
        with pytest.raises(xpnet.ConfigError, match="validation_fraction"):
            split_indices(10, bad, 0)
    with pytest.raises(xpnet.ShapeError, match="leaves none to train on"):
        split_indices(1, 0.5, 0)


# ----------------------------------------------------------------------------------------- history
class _Before(Callback):
    def __init__(self) -> None:
        self.before: list[dict] = []

    def on_epoch_begin(self, trainer, epoch):
        self.before.append({k: np.array(v, copy=True) for k, v in trainer.network.parameters.items()})


def test_history_columns_without_validation(moons):
    X, y = moons
    net = xpnet.DNN([2, 4, 1], dtype="float64", backend="numpy")
    hist = net.train(X, y, epochs=3, batch_size=16, learning_rate=0.01)
    assert hist is net.history and len(hist) == 3
    for key in hist.KEYS:
        assert len(hist[key]) == 3, key
    assert hist["epoch"] == [0, 1, 2]
    assert hist["val_loss"] == [None] * 3 and hist["val_metric"] == [None] * 3
    assert hist["lr"] == [0.01] * 3
    assert all(t >= 0 for t in hist["time"]) and hist["time"] == sorted(hist["time"])
    assert all(0 <= a <= 1 for a in hist["metric"]) and all(v > 0 for v in hist["loss"])
    assert hist.metric_name == "accuracy" and hist.backend == "numpy" and hist.dtype == "float64"
    assert "best_val_loss" not in hist.summary() and hist.summary()["epochs"] == 3


def test_history_values_equal_the_reference(moons):
    """Full batch, no dropout: loss/metric are the cost (with L2) and accuracy before each step, val_loss and
    val_metric those of the parameters after it, on the validation set."""
    X, y = moons
    Xt, yt, Xv, yv = X[:, :48], y[:48], X[:, 48:], y[48:]
    net = xpnet.DNN([2, 5, 1], hidden="tanh", seed=3, dtype="float64", backend="numpy")
    before, after = _Before(), _Snapshots()
    hist = net.train(Xt, yt, epochs=3, batch_size="full", optimizer="gd", learning_rate=0.5, l2=0.3,
                     validation_data=(Xv, yv), callbacks=[before, after])

    def accuracy(p, X_, y_):
        return float(np.mean((reference_forward(p, X_, "tanh", "sigmoid")[0][0] > 0.5) == y_))

    for e in range(3):
        assert hist["loss"][e] == pytest.approx(
            reference_cost(before.before[e], Xt, yt[None, :], "tanh", "sigmoid", lambd=0.3), rel=1e-10)
        assert hist["metric"][e] == pytest.approx(accuracy(before.before[e], Xt, yt), abs=1e-12)
        # The validation loss carries the L2 penalty at the training loss's scale (one batch of 48 here).
        penalty = 0.5 * 0.3 / 48 * sum(np.sum(after.after[e][f"W{l}"] ** 2) for l in (1, 2))
        assert hist["val_loss"][e] == pytest.approx(
            reference_cost(after.after[e], Xv, yv[None, :], "tanh", "sigmoid", lambd=0.0) + penalty, rel=1e-10)
        assert hist["val_metric"][e] == pytest.approx(accuracy(after.after[e], Xv, yv), abs=1e-12)
    assert hist.summary()["best_val_loss"] == min(hist["val_loss"])


def test_regression_history_metric_is_r2():
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (2, 30))
    Y = np.vstack([X[0] * 2 - X[1], np.sin(X[1])])
    net = xpnet.DNN([2, 6, 2], hidden="tanh", output="linear", dtype="float64", backend="numpy")
    before = _Before()
    hist = net.train(X, Y, epochs=2, batch_size="full", optimizer="gd", learning_rate=0.1, callbacks=[before])
    assert hist.metric_name == "r2"
    for e in range(2):
        AL = reference_forward(before.before[e], X, "tanh", "linear")[0]
        # R^2 per output, averaged uniformly (scikit-learn's r2_score default, what DNNRegressor.score reports).
        r2 = np.mean(1 - np.sum((AL - Y) ** 2, axis=1) / np.sum((Y - Y.mean(axis=1, keepdims=True)) ** 2, axis=1))
        assert hist["metric"][e] == pytest.approx(r2, rel=1e-10)


@pytest.mark.parametrize(("schedule", "options"), [
    ("step", dict(decay_rate=0.5, decay_steps=2)),
    ("inverse_time", dict(decay_rate=1.0)),
    ("cosine", dict(decay_steps=3, min_lr=0.05)),
    ("exponential", dict(decay_rate=0.8)),
])
def test_learning_rate_in_history_follows_the_schedule_and_is_applied(moons, schedule, options):
    X, y = moons
    a0 = 0.4
    net = xpnet.DNN([2, 3, 1], hidden="tanh", seed=9, dtype="float64", backend="numpy")
    params = net.get_parameters()
    hist = net.train(X, y, epochs=5, batch_size="full", optimizer="gd", learning_rate=a0, schedule=schedule,
                     shuffle=False, **options)
    rate = options.get("decay_rate", 0.0)
    k = options.get("decay_steps", 1)
    lo = options.get("min_lr", 0.0)
    expected = {
        "step": [a0 * rate ** (e // k) for e in range(5)],
        "inverse_time": [a0 / (1 + rate * (e // k)) for e in range(5)],
        "cosine": [lo + (a0 - lo) * (1 + np.cos(np.pi * min(e, k) / k)) / 2 for e in range(5)],
        "exponential": [a0 * rate**e for e in range(5)],
    }[schedule]
    assert hist["lr"] == pytest.approx(expected, rel=1e-12)
    assert hist["lr"] == [get_schedule(schedule, a0, **options)(e) for e in range(5)]
    for lr in expected:  # the rate of each epoch is the one its step used
        grads = reference_gradients(params, X, y[None, :].astype(np.float64), "tanh", "sigmoid")
        params = {key: v - lr * grads[f"d{key}"] for key, v in params.items()}
    for key, v in params.items():
        np.testing.assert_allclose(net.parameters[key], v, rtol=1e-10, atol=1e-13, err_msg=key)


# --------------------------------------------------------------------------------------- callbacks
def test_model_checkpoint_writes_a_loadable_file(tmp_path, moons):
    X, y = moons
    path = tmp_path / "net.safetensors"
    net = xpnet.DNN([2, 4, 1], hidden="tanh", dtype="float64", backend="numpy")
    checkpoint = ModelCheckpoint(path, every=2)
    net.train(X, y, epochs=3, batch_size=16, learning_rate=0.05, callbacks=[checkpoint])
    assert checkpoint.saved == 2  # after epoch 1 (every 2nd) and at the end
    loaded = xpnet.load(path, backend="numpy")
    assert isinstance(loaded, xpnet.DNN)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    for bad in (0, -1, True, 1.5):
        with pytest.raises(xpnet.ConfigError, match="every"):
            ModelCheckpoint(path, every=bad)


def test_checkpoint_at_the_end_holds_the_restored_best_weights(tmp_path, moons):
    X, y = moons
    path = tmp_path / "best.safetensors"
    net = xpnet.DNN([2, 4, 1], hidden="tanh", dtype="float64", backend="numpy")
    snaps = _Snapshots()
    stopper = EarlyStopping("loss", patience=2, min_delta=1.0)
    hist = net.train(X, y, epochs=20, batch_size=16, learning_rate=1e-9, callbacks=[snaps, ModelCheckpoint(path)],
                     early_stopping=stopper)
    assert len(snaps.after) == 3
    best = int(np.argmin(hist["loss"]))
    assert stopper.best_epoch == best
    loaded = xpnet.load(path, backend="numpy")
    for k, v in snaps.after[best].items():
        np.testing.assert_array_equal(loaded.get_parameters()[k], v)


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_silent_off_a_terminal(moons, capsys):
    X, y = moons
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    plain = io.StringIO()
    net.train(X, y, epochs=3, callbacks=[ProgressBar(1, stream=plain)])
    assert plain.getvalue() == ""
    assert not ProgressBar(1, stream=plain).enabled()
    tty = _FakeTTY()
    net.train(X, y, epochs=3, callbacks=[ProgressBar(0, stream=tty)])  # verbose=0: silent even on a terminal
    assert tty.getvalue() == ""
    net.train(X, y, epochs=2, verbose=1)  # pytest's captured stderr is no terminal
    assert capsys.readouterr().err == ""


def test_progress_bar_writes_to_a_terminal(moons):
    X, y = moons
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    tty = _FakeTTY()
    bar = ProgressBar(1, stream=tty)
    assert bar.enabled()
    net.train(X, y, epochs=3, callbacks=[bar], validation_data=(X, y))
    out = tty.getvalue()
    assert "3/3 |" in out
    assert "val_accuracy" in out and "val_loss" in out
    assert bar._bar is None  # closed at the end


def test_trainer_rejects_bad_callbacks_and_epochs(moons):
    X, y = moons
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    with pytest.raises(xpnet.ConfigError, match="Callback"):
        Trainer(net, callbacks=[lambda *a: None])
    trainer = Trainer(net)
    for bad in (-1, 1.5, True):
        with pytest.raises(xpnet.ConfigError, match="epochs"):
            trainer.fit(X, y[None, :].astype(np.float32), epochs=bad)
    with pytest.raises(xpnet.ConfigError, match="l2"):
        Trainer(net, l2=-1.0)


@pytest.mark.parametrize("chunk_bytes", [1, 200, 16 << 20])
def test_training_masks_equal_per_batch_host_masks_whatever_the_chunking(xpb, monkeypatch, chunk_bytes):
    """The trainer moves masks to the device in chunks; the bits must be those of drawing them batch by batch
    on the host (xpnet.engine.dropout.dropout_masks), whatever the chunk size, on every backend."""
    import xpnet.engine.dropout as dropout

    monkeypatch.setattr(dropout, "_MASK_CHUNK_BYTES", chunk_bytes)
    net = xpnet.DNN([3, 6, 5, 2], output="softmax", seed=1, dtype=xpb.dtype_name, backend=xpb.backend)
    trainer = Trainer(net, dropout=[0.3, 0.5], batch_size=4, seed=11)
    m, bs = 10, 4
    got = list(trainer._mask_chunks(m, bs))
    rng = host_generator(11, "dropout")
    expected = [dropout_masks(rng, net.layer_dims, {1: 0.7, 2: 0.5}, min(s + bs, m) - s, xpb.dtype_name)
                for s in range(0, m, bs)]
    assert len(got) == len(expected) == 3
    for g, e in zip(got, expected, strict=True):
        assert sorted(g) == sorted(e) == [1, 2]
        for l in e:
            xpb.check(g[l])
            np.testing.assert_array_equal(xpb.np(g[l]), e[l])


def test_default_decay_steps_follow_the_run_length(moons):
    from xpnet.engine.optimizers import default_decay_steps

    assert default_decay_steps("cosine", 40) == 40 and default_decay_steps("step", 40) == 10
    assert default_decay_steps("exponential", 40) == 1 and default_decay_steps(None, 40) == 1
    X, y = moons
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    hist = net.train(X, y, epochs=4, learning_rate=0.1, schedule="cosine")
    assert hist["lr"][0] == 0.1 and 0 < hist["lr"][-1] < hist["lr"][1] < 0.1  # annealed over the 4 epochs


def test_trainer_fit_refuses_other_layouts(moons):
    X, y = moons
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    with pytest.raises(xpnet.ShapeError, match="lecture's layout"):
        Trainer(net).fit(net.backend.asarray(X), net.backend.asarray(y), epochs=1)
    with pytest.raises(xpnet.ShapeError, match="same m"):
        Trainer(net).fit(net.backend.asarray(X), net.backend.asarray(y[None, :-1].astype(np.float32)), epochs=1)


def test_gradient_check_refuses_masks_that_are_not_a_dict(rng):
    params = xpnet.initialize_parameters([2, 3, 1], seed=0, dtype="float64", backend="numpy")
    X = rng.standard_normal((2, 4))
    with pytest.raises(xpnet.ConfigError, match="keep_masks must be a dict"):
        gradient_check(params, X, np.ones((1, 4)), keep_masks=[np.ones((3, 4))])


def test_model_checkpoint_checks_its_directory_before_training(tmp_path):
    net = xpnet.DNN([3, 4, 1], backend="numpy")
    X = np.random.default_rng(0).normal(size=(3, 20))
    Y = (X[:1] > 0).astype(float)
    checkpoint = ModelCheckpoint(tmp_path / "missing" / "m.safetensors", every=10)
    trainer = Trainer(net, batch_size=5, callbacks=[checkpoint])
    with pytest.raises(xpnet.ConfigError, match="does not exist"):
        trainer.fit(X, Y, epochs=3)
    assert trainer.epoch == 0


def test_progress_lines_count_the_run_total_after_a_resume(tmp_path, moons):
    """A run of 5 epochs stopped after 3 and resumed shows "epoch 4/5", not the epochs left ("4/2"); the bar
    starts at 3 of 5."""
    X, y = moons
    path = tmp_path / "run.ckpt"
    xpnet.DNN([2, 3, 1], backend="numpy").train(X, y, epochs=3, checkpoint=path)
    lines = io.StringIO()
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    net.train(X, y, epochs=5, checkpoint=path, resume=True, callbacks=[ProgressBar(2, line_stream=lines)])
    shown = [line.split(" - ")[0] for line in lines.getvalue().splitlines()]
    assert shown == ["epoch 4/5", "epoch 5/5"]
    tty = _FakeTTY()
    xpnet.DNN([2, 3, 1], backend="numpy").train(X, y, epochs=3, checkpoint=tmp_path / "b.ckpt")
    xpnet.DNN([2, 3, 1], backend="numpy").train(X, y, epochs=5, checkpoint=tmp_path / "b.ckpt", resume=True,
                                               callbacks=[ProgressBar(1, stream=tty)])
    assert "5/5 |" in tty.getvalue() and "2/2 |" not in tty.getvalue()

"""The in-place step (xpnet._fast) against the generic step: the same bits on NumPy, for every path it takes.

DESIGN principle 8: a fast path is optional and proven equal to the generic one. ``XPNET_FAST=0`` switches the
in-place step off, so each case trains twice from the same seed and compares everything training produced.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import fit_data
import xpnet
from xpnet.engine import EarlyStopping, Trainer
from xpnet.engine.optimizers import SklearnSGD
from xpnet.engine.steps import inplace as _fast
from xpnet.estimators.sklearn_rules import sklearn_loss

HIDDEN = ["relu", "leaky_relu", "sigmoid", "tanh", "linear"]
OUTPUTS = ["sigmoid", "softmax", "linear"]
OPTIMIZERS = ["gd", "momentum", "rmsprop", "adam"]
# scikit-learn's solvers (the estimators' default): by name, or as factories for settings a name does not carry
SKLEARN_OPTIMIZERS = {
    "sklearn_adam": "sklearn_adam",
    "sklearn_sgd_nesterov": "sklearn_sgd",
    "sklearn_sgd_classical": lambda: SklearnSGD(momentum=0.8, nesterov=False),
    "sklearn_sgd_no_momentum": lambda: SklearnSGD(momentum=0.0),
}


_data = fit_data.xy


def _host(a: object) -> object:
    """A torch tensor as a NumPy array (on the host); anything else as it is."""
    return a.detach().cpu().numpy() if hasattr(a, "detach") else a


def _train(monkeypatch: pytest.MonkeyPatch, fast: bool, *, hidden: str, output: str, optimizer: object,
           dtype: str = "float64", l2: float = 0.0, dropout: float = 0.0, weights: bool = False,
           epochs: int = 3, batch_size: int = 16, sklearn_cost: bool = False, backend: str = "numpy"
           ) -> tuple[xpnet.DNN, Trainer, list[float]]:
    monkeypatch.setenv("XPNET_FAST", "1" if fast else "0")
    n_out = 3 if output == "softmax" else 2
    net = xpnet.DNN([5, 7, 6, n_out], hidden=hidden, output=output, dtype=dtype, backend=backend, seed=1)
    if sklearn_cost:  # the estimators' loss: scikit-learn's reported cost, the same fused gradient
        net.loss = sklearn_loss(output)
    if callable(optimizer):  # a fresh optimizer object for each run
        optimizer = optimizer()
    X, Y = _data(5, n_out, output)
    bk = net.backend
    Xb, Yb = bk.asarray(X, dtype=net.dtype), bk.asarray(Y, dtype=net.dtype)
    w = bk.asarray(np.linspace(0.5, 2.0, X.shape[1])[None, :], dtype=net.dtype) if weights else None
    trainer = Trainer(net, optimizer=optimizer, learning_rate=0.05, batch_size=batch_size, l2=l2, dropout=dropout,
                      schedule="inverse_time", decay_rate=0.3)
    history = trainer.fit(Xb, Yb, epochs=epochs, sample_weight=w, validation_data=(Xb, Yb))
    assert bool(trainer._fast) is fast
    return net, trainer, history["loss"] + history["val_loss"] + history["metric"]


def _assert_same(monkeypatch: pytest.MonkeyPatch, rtol: float = 0.0, cost_rtol: float | None = None,
                 **kw: object) -> None:
    """Both paths train to the same bits (``rtol=0``), or to within ``rtol`` where the fast path adds in
    another order; ``cost_rtol`` (default ``rtol``) bounds the reported costs alone."""
    net_f, tr_f, curve_f = _train(monkeypatch, True, **kw)
    net_g, tr_g, curve_g = _train(monkeypatch, False, **kw)

    def same(a: object, b: object, rtol: float = rtol) -> bool:
        a, b = _host(a), _host(b)
        return np.array_equal(a, b) if rtol == 0 else np.allclose(a, b, rtol=rtol, atol=0)

    assert same(curve_f, curve_g, rtol if cost_rtol is None else cost_rtol), (curve_f, curve_g)
    assert net_f.parameters.keys() == net_g.parameters.keys()
    for k in net_g.parameters:
        assert same(net_f.parameters[k], net_g.parameters[k]), k
        assert net_f.parameters[k].dtype == net_g.parameters[k].dtype
    assert tr_f.optimizer.t == tr_g.optimizer.t
    assert tr_f.optimizer.state.keys() == tr_g.optimizer.state.keys()
    for k in tr_g.optimizer.state:
        assert same(tr_f.optimizer.state[k], tr_g.optimizer.state[k]), k


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output", OUTPUTS)
def test_every_activation_and_output_gives_the_generic_bits(monkeypatch, hidden, output):
    _assert_same(monkeypatch, hidden=hidden, output=output, optimizer="adam")


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_optimizer_gives_the_generic_bits(monkeypatch, optimizer, dtype):
    _assert_same(monkeypatch, hidden="relu", output="softmax", optimizer=optimizer, dtype=dtype)


@pytest.mark.parametrize("hidden", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("output", OUTPUTS)
def test_l2_dropout_and_sample_weights_give_the_generic_bits(monkeypatch, hidden, output):
    _assert_same(monkeypatch, hidden=hidden, output=output, optimizer="momentum", l2=0.3, dropout=0.25,
                 weights=True, dtype="float32")


@pytest.mark.parametrize("optimizer", list(SKLEARN_OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scikit_learns_solvers_give_the_generic_bits(monkeypatch, optimizer, dtype):
    # The rate changes every epoch (inverse_time), as invscaling and adaptive change it: lr is read per step.
    _assert_same(monkeypatch, hidden="relu", output="softmax", optimizer=SKLEARN_OPTIMIZERS[optimizer],
                 dtype=dtype, sklearn_cost=True)


@pytest.mark.parametrize("optimizer", ["sklearn_adam", "sklearn_sgd_nesterov", "sklearn_sgd_classical"])
@pytest.mark.parametrize("output", OUTPUTS)
def test_scikit_learns_solvers_with_l2_dropout_weights_and_partial_batches(monkeypatch, optimizer, output):
    for batch_size, dtype in ((16, "float32"), (44, "float64")):
        _assert_same(monkeypatch, hidden="tanh", output=output, optimizer=SKLEARN_OPTIMIZERS[optimizer], l2=0.3,
                     dropout=0.25, weights=True, dtype=dtype, batch_size=batch_size, sklearn_cost=True)


def test_a_loss_of_its_own_needs_the_output_it_fuses_with(monkeypatch):
    monkeypatch.setenv("XPNET_FAST", "1")
    net = xpnet.DNN([2, 3, 2], output="softmax", backend="numpy")
    net.loss = sklearn_loss("softmax")
    assert _fast.inplace_step(net, Trainer(net).optimizer, 0.0, {}) is not None
    net.loss = sklearn_loss("sigmoid")  # fused with another output: the generic step decides what that means
    assert _fast.inplace_step(net, Trainer(net).optimizer, 0.0, {}) is None


def _estimator_runs(monkeypatch: pytest.MonkeyPatch, make: object, X: np.ndarray, y: np.ndarray,
                    **fit: object) -> list[object]:
    """The same estimator fitted twice (warm_start: the optimizer state carried over) on each path."""
    runs = []
    for flag in ("1", "0"):
        monkeypatch.setenv("XPNET_FAST", flag)
        est = make()
        est.fit(X, y, **fit)
        assert bool(est.trainer_._fast) is (flag == "1")
        est.set_params(warm_start=True, max_iter=2)
        est.fit(X, y, **fit)
        runs.append(est)
    return runs


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_the_estimators_default_fit_runs_the_in_place_step_to_the_generic_bits(monkeypatch, solver):
    import warnings

    from xpnet.estimators import DNNClassifier, DNNRegressor

    rng = np.random.default_rng(5)
    X = rng.normal(size=(70, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    target = X @ rng.normal(size=(6, 2))
    monkeypatch.setenv("XPNET_FAST", "1")
    default = DNNClassifier(max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged after one epoch
        default.fit(X, y)
        assert isinstance(default.trainer_._fast, _fast.InplaceStep)  # the default: scikit-learn's Adam, in place
        assert default.trainer_.optimizer.name == "sklearn_adam"
        for make, target_y in (
            (lambda: DNNClassifier((8, 5), solver=solver, max_iter=3, batch_size=16, alpha=0.01,
                                   learning_rate="invscaling" if solver == "sgd" else "constant",
                                   learning_rate_init=0.05, random_state=0), y),
            (lambda: DNNRegressor((7,), solver=solver, max_iter=3, batch_size=20, learning_rate_init=0.01,
                                  random_state=1), target),
        ):
            fast, generic = _estimator_runs(monkeypatch, make, X, target_y, sample_weight=np.linspace(0.5, 2, 70))
            assert fast.loss_curve_ == generic.loss_curve_
            for a, b in zip(fast.coefs_ + fast.intercepts_, generic.coefs_ + generic.intercepts_, strict=True):
                assert np.array_equal(a, b)
            state_f, state_g = fast.trainer_.optimizer.state, generic.trainer_.optimizer.state
            assert state_f.keys() == state_g.keys() and fast.trainer_.optimizer.t == generic.trainer_.optimizer.t
            for k in state_g:
                assert np.array_equal(state_f[k], state_g[k]), k


def test_full_batch_and_a_last_partial_batch(monkeypatch):
    _assert_same(monkeypatch, hidden="relu", output="sigmoid", optimizer="gd", batch_size=45)
    _assert_same(monkeypatch, hidden="relu", output="sigmoid", optimizer="rmsprop", batch_size=44)


def test_the_fast_step_applies_only_where_it_is_proven(monkeypatch):
    monkeypatch.setenv("XPNET_FAST", "1")
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    assert _fast.inplace_step(net, Trainer(net).optimizer, 0.0, {}) is not None

    from xpnet.engine.optimizers import Adam

    class MyAdam(Adam):  # a user's subclass may change the update: the generic path runs it
        pass

    assert _fast.inplace_step(net, MyAdam(), 0.0, {}) is None
    strict = xpnet.DNN([2, 3, 1], backend="array_api_strict")
    assert _fast.inplace_step(strict, Trainer(strict).optimizer, 0.0, {}) is None
    monkeypatch.setenv("XPNET_FAST", "0")
    assert _fast.inplace_step(net, Trainer(net).optimizer, 0.0, {}) is None


def test_arrays_handed_in_are_never_written_into(monkeypatch):
    monkeypatch.setenv("XPNET_FAST", "1")
    net = xpnet.DNN([4, 5, 1], backend="numpy", dtype="float64")
    given = net.parameters
    before = {k: v.copy() for k, v in given.items()}
    X, Y = _data(4, 1, "sigmoid")
    trainer = Trainer(net, optimizer="adam", learning_rate=0.1, batch_size=8)
    trainer.fit(X, Y, epochs=2)
    assert trainer._fast
    for k in before:
        assert np.array_equal(given[k], before[k])
        assert not np.array_equal(net.parameters[k], before[k])
    # A dict put in by hand (a restore, a resume) is adopted by copy too.
    mine = {k: v.copy() for k, v in before.items()}
    net.parameters = mine
    trainer.fit(X, Y, epochs=1)
    for k in before:
        assert np.array_equal(mine[k], before[k])


def test_early_stopping_restores_a_true_snapshot(monkeypatch):
    # With in-place updates, holding the dict would track later epochs: the restored weights must be those
    # of the best epoch, as on the generic path.
    results = []
    for fast in (True, False):
        monkeypatch.setenv("XPNET_FAST", "1" if fast else "0")
        net = xpnet.DNN([5, 7, 3], output="softmax", backend="numpy", dtype="float64", seed=2)
        X, Y = _data(5, 3, "softmax", m=60)
        Xv, Yv = _data(5, 3, "softmax", m=30, seed=9)
        stopper = EarlyStopping("val_loss", patience=2)
        trainer = Trainer(net, optimizer="adam", learning_rate=0.3, batch_size=8, callbacks=[stopper])
        trainer.fit(X, Y, epochs=25, validation_data=(Xv, Yv))
        results.append((stopper.best_epoch, len(trainer.history), net.parameters))
    (best_f, n_f, p_f), (best_g, n_g, p_g) = results
    assert (best_f, n_f) == (best_g, n_g) and best_f < n_f - 1  # it stopped after a worse epoch
    for k in p_g:
        assert np.array_equal(p_f[k], p_g[k])


def test_trainer_step_is_one_update_of_fit(monkeypatch):
    # A loop of Trainer.step over an epoch's batches equals Trainer.fit (no shuffle), on both paths.
    for flag in ("1", "0"):
        monkeypatch.setenv("XPNET_FAST", flag)
        X, Y = _data(5, 1, "sigmoid", m=40)
        a = xpnet.DNN([5, 4, 1], backend="numpy", dtype="float64")
        b = xpnet.DNN([5, 4, 1], backend="numpy", dtype="float64")
        ta = Trainer(a, optimizer="adam", learning_rate=0.05, batch_size=10, shuffle=False, dropout=0.2)
        tb = Trainer(b, optimizer="adam", learning_rate=0.05, batch_size=10, shuffle=False, dropout=0.2)
        ta.fit(X, Y, epochs=1)
        costs = [float(tb.step(X[:, s:s + 10], Y[:, s:s + 10])) for s in range(0, 40, 10)]
        assert all(np.isfinite(costs))
        for k in a.parameters:
            assert np.array_equal(a.parameters[k], b.parameters[k])


def test_get_parameters_are_copies_that_training_leaves_alone(monkeypatch):
    monkeypatch.setenv("XPNET_FAST", "1")
    net = xpnet.DNN([4, 5, 1], backend="numpy", dtype="float64")
    X, Y = _data(4, 1, "sigmoid")
    trainer = Trainer(net, optimizer="gd", learning_rate=0.1, batch_size=8)
    trainer.fit(X, Y, epochs=1)
    got = net.get_parameters()
    kept = {k: v.copy() for k, v in got.items()}
    trainer.fit(X, Y, epochs=1)
    for k in kept:
        assert np.array_equal(got[k], kept[k])
        assert not np.array_equal(net.parameters[k], kept[k])


class _UfuncsWithoutReduce:
    """NumPy as CuPy looks to the step: a module that is not NumPy, whose ufuncs take ``out=``. Reductions
    into ``out=`` (``sum(..., out=)``, which CuPy runs through CUB with a temporary) are counted."""

    reductions_into_out = 0

    def __init__(self) -> None:
        self.__name__ = "cupy-like"

    def __getattr__(self, name: str) -> object:
        return getattr(np, name)

    @classmethod
    def sum(cls, *args: object, **kwargs: object) -> object:
        cls.reductions_into_out += kwargs.get("out") is not None
        return np.sum(*args, **kwargs)

    @staticmethod
    def add(*args: object, **kwargs: object) -> object:
        return np.add(*args, **kwargs)


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_cupy_flavour_of_the_step_gives_the_generic_values(monkeypatch, output):
    # No GPU here: run the branch CuPy takes (sums as products with a ones vector, written straight into the
    # gradient buffers) with NumPy underneath, so the code CuPy runs is exercised wherever the tests run. The
    # products add in another order than NumPy's pairwise sums: equal up to rounding, not to the bit.
    monkeypatch.setattr(_fast, "_ufunc_module", lambda xp: _UfuncsWithoutReduce())
    monkeypatch.setattr(_UfuncsWithoutReduce, "reductions_into_out", 0)
    _assert_same(monkeypatch, rtol=1e-10, hidden="tanh", output=output, optimizer="adam", l2=0.1, dropout=0.2,
                 weights=True)
    for optimizer in ("sklearn_adam", "sklearn_sgd"):
        _assert_same(monkeypatch, rtol=1e-10, hidden="relu", output=output, optimizer=optimizer, l2=0.1,
                     dropout=0.2, weights=True, sklearn_cost=True)
    # No reduction into an output buffer (CuPy's goes through CUB, which allocates a temporary every step).
    assert _UfuncsWithoutReduce.reductions_into_out == 0
    monkeypatch.setenv("XPNET_FAST", "1")
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    step = _fast.inplace_step(net, Trainer(net).optimizer, 0.0, {})
    assert step.mod.__name__ == "cupy-like" and not hasattr(step.mod.add, "reduce")


def test_arrays_read_between_fits_or_put_in_one_by_one_are_left_alone(monkeypatch):
    monkeypatch.setenv("XPNET_FAST", "1")
    net = xpnet.DNN([4, 5, 1], backend="numpy", dtype="float64")
    X, Y = _data(4, 1, "sigmoid")
    trainer = Trainer(net, optimizer="adam", learning_rate=0.1, batch_size=8)
    trainer.fit(X, Y, epochs=1)
    held = net.parameters["W1"]
    kept = held.copy()
    trainer.fit(X, Y, epochs=1)  # a new fit call: the array read after the last one stays as it was
    assert np.array_equal(held, kept) and not np.array_equal(net.parameters["W1"], kept)
    mine = np.ones_like(kept)
    net.parameters["W1"] = mine  # one entry replaced, the dict kept: adopted by copy all the same
    trainer.step(X[:, :8], Y[:, :8])
    assert np.array_equal(mine, np.ones_like(kept)) and not np.array_equal(net.parameters["W1"], mine)


@pytest.mark.parametrize("fast", [True, False])
def test_data_in_another_dtype_is_cast_not_promoted(monkeypatch, fast):
    monkeypatch.setenv("XPNET_FAST", "1" if fast else "0")
    net = xpnet.DNN([4, 5, 1], backend="numpy", dtype="float32")
    X, Y = _data(4, 1, "sigmoid")  # float64, NumPy's default
    trainer = Trainer(net, optimizer="momentum", learning_rate=0.1, batch_size=8)
    trainer.fit(X, Y, epochs=2, validation_data=(X, Y))
    trainer.step(X[:, :8], Y[:, :8])
    assert {v.dtype for v in net.parameters.values()} == {np.dtype("float32")}
    assert {v.dtype for v in trainer.optimizer.state.values()} == {np.dtype("float32")}


def test_settings_changed_after_the_first_step_are_taken(monkeypatch):
    curves = []
    for flag in ("1", "0"):
        monkeypatch.setenv("XPNET_FAST", flag)
        net = xpnet.DNN([5, 7, 6, 3], output="softmax", backend="numpy", dtype="float64", seed=4)
        X, Y = _data(5, 3, "softmax")
        trainer = Trainer(net, optimizer="adam", learning_rate=0.05, batch_size=16)
        trainer.fit(X, Y, epochs=1)
        trainer.l2, trainer.keep = 2.0, {1: 0.5, 2: 0.8}
        trainer.fit(X, Y, epochs=2)
        curves.append((trainer.history["loss"], net.parameters))
    assert curves[0][0] == curves[1][0]
    for k in curves[1][1]:
        assert np.array_equal(curves[0][1][k], curves[1][1][k])


def test_a_users_activation_under_a_built_in_name_runs_its_own_math(monkeypatch):
    from xpnet.lecture.activations import Activation

    monkeypatch.setenv("XPNET_FAST", "1")
    slope = 0.2

    def g(xp, Z):
        return xp.where(Z > 0, Z, slope * Z)

    def g_prime(xp, Z):
        return xp.where(Z > 0, xp.ones_like(Z), slope * xp.ones_like(Z))

    mine = Activation("leaky_relu", g, g_prime, lambda xp, dA, Z: dA * g_prime(xp, Z))
    net = xpnet.DNN([3, 4, 1], hidden=mine, backend="numpy")
    assert _fast.inplace_step(net, Trainer(net).optimizer, 0.0, {}) is None
    builtin = xpnet.DNN([3, 4, 1], hidden="leaky_relu", backend="numpy")
    assert _fast.inplace_step(builtin, Trainer(builtin).optimizer, 0.0, {}) is not None


def test_a_fitted_trainer_keeps_no_step_buffers(monkeypatch):
    monkeypatch.setenv("XPNET_FAST", "1")
    net = xpnet.DNN([4, 5, 1], backend="numpy")
    X, Y = _data(4, 1, "sigmoid")
    trainer = Trainer(net, optimizer="adam", learning_rate=0.1, batch_size=8)
    trainer.fit(X, Y, epochs=1)
    step = trainer._fast
    assert not step._buffers and not step._grads and step._scratch is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sums_as_products_write_into_the_buffer_and_equal_the_sums(monkeypatch, dtype):
    monkeypatch.setenv("XPNET_FAST", "1")
    monkeypatch.setattr(_fast, "_ufunc_module", lambda xp: _UfuncsWithoutReduce())
    net = xpnet.DNN([2, 3, 1], backend="numpy", dtype=dtype)
    step = _fast.inplace_step(net, Trainer(net).optimizer, 0.0, {})
    a = np.random.default_rng(0).normal(size=(7, 300)).astype(dtype)
    tol = {"float32": 1e-5, "float64": 1e-13}[dtype]
    for axis, shape in ((1, (7, 1)), (0, (1, 300))):
        out = np.full(shape, np.nan, dtype=dtype)
        assert step._sum_into(a, axis, out) is None  # written into out, nothing new returned
        np.testing.assert_allclose(out, a.astype(np.float64).sum(axis=axis, keepdims=True), rtol=tol, atol=tol)
    step._sum_into(a[:, :5], 1, out := np.empty((7, 1), dtype=dtype))  # a shorter sum reuses the ones vector
    np.testing.assert_allclose(out, a[:, :5].sum(axis=1, keepdims=True), rtol=tol)


class _StopAt(xpnet.Callback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        if epoch == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("optimizer", ["sklearn_adam", "sklearn_sgd"])
def test_a_checkpoint_of_scikit_learns_solvers_resumes_to_the_generic_bits(monkeypatch, tmp_path, optimizer):
    # The in-place step keeps the state under the generic names (v_W1, s_b2, ...): a checkpoint written on it
    # resumes to the run the generic step makes uninterrupted.
    X, Y = _data(4, 3, "softmax", m=60)
    train = dict(epochs=4, batch_size=16, optimizer=optimizer, learning_rate=0.02, schedule="inverse_time",
                 l2=0.01, dropout=0.2)

    def net() -> xpnet.DNN:
        return xpnet.DNN([4, 6, 3], output="softmax", backend="numpy", dtype="float64", seed=3)

    monkeypatch.setenv("XPNET_FAST", "0")
    reference = net()
    expected = reference.train(X, Y, **train)
    monkeypatch.setenv("XPNET_FAST", "1")
    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        net().train(X, Y, checkpoint=path, callbacks=[_StopAt(2)], **train)
    resumed = net()
    history = resumed.train(X, Y, checkpoint=path, resume=True, **train)
    assert history["loss"] == expected["loss"]
    for k, v in reference.get_parameters().items():
        assert np.array_equal(resumed.get_parameters()[k], v), k


# ------------------------------------------------------------------------------------- torch
# The same step on torch tensors, through torch's out= operations (xpnet.engine.steps.torch_ops): the
# parameters and the optimizer state are the generic step's bits. The reported cost may differ in its last
# bits: the generic softmax loss terms follow the layout of the batch's targets (a transposed view), and torch
# sums an array in its memory order, so the final sum adds in another order than over the step's buffer.
TORCH_DEVICES = [pytest.param("torch:cpu", id="cpu"), pytest.param("torch:cuda:0", id="cuda", marks=pytest.mark.gpu)]
COST_RTOL = {"float64": 1e-13, "float32": 1e-5}


def _torch_or_skip(spec: str) -> None:
    required = spec.startswith("torch:cuda") and os.environ.get("XPNET_REQUIRE_GPU") == "1"
    torch = __import__("torch") if required else pytest.importorskip("torch")
    if spec.startswith("torch:cuda") and not torch.cuda.is_available():
        # scripts/gpu_check.sh sets XPNET_REQUIRE_GPU=1: on its GPU machine a skip would hide a failure
        assert os.environ.get("XPNET_REQUIRE_GPU") != "1", "XPNET_REQUIRE_GPU=1 but torch sees no CUDA device"
        pytest.skip("no CUDA GPU for torch here")


@pytest.mark.parametrize("spec", TORCH_DEVICES)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output", OUTPUTS)
def test_the_torch_step_gives_the_generic_parameters_for_every_activation(monkeypatch, spec, hidden, output):
    _torch_or_skip(spec)
    for dtype in ("float64", "float32"):
        _assert_same(monkeypatch, cost_rtol=COST_RTOL[dtype], backend=spec, hidden=hidden, output=output,
                     optimizer="adam", dtype=dtype, l2=0.2, dropout=0.25, weights=True)


@pytest.mark.parametrize("spec", TORCH_DEVICES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS + list(SKLEARN_OPTIMIZERS))
def test_the_torch_step_gives_the_generic_parameters_for_every_optimizer(monkeypatch, spec, optimizer):
    _torch_or_skip(spec)
    for dtype, batch_size in (("float64", 16), ("float32", 44)):
        _assert_same(monkeypatch, cost_rtol=COST_RTOL[dtype], backend=spec, hidden="relu", output="softmax",
                     optimizer=SKLEARN_OPTIMIZERS.get(optimizer, optimizer), dtype=dtype, batch_size=batch_size,
                     sklearn_cost=optimizer.startswith("sklearn"))


@pytest.mark.parametrize("spec", TORCH_DEVICES)
def test_the_torch_step_writes_only_into_its_own_tensors(monkeypatch, spec):
    _torch_or_skip(spec)
    import torch

    from xpnet.engine.steps.torch_ops import TorchUfuncs

    monkeypatch.setenv("XPNET_FAST", "1")
    net = xpnet.DNN([4, 5, 1], backend=spec, dtype="float64")
    given = net.parameters
    before = {k: v.clone() for k, v in given.items()}
    X, Y = _data(4, 1, "sigmoid")
    trainer = Trainer(net, optimizer="adam", learning_rate=0.1, batch_size=8)
    trainer.fit(net.backend.asarray(X), net.backend.asarray(Y), epochs=2)
    assert isinstance(trainer._fast, _fast.InplaceStep) and isinstance(trainer._fast.mod, TorchUfuncs)
    for k in before:
        assert torch.equal(given[k], before[k])  # the caller's tensors are untouched
        assert not torch.equal(net.parameters[k], before[k])
        assert net.parameters[k].device == before[k].device
    snap = trainer.snapshot_parameters()  # a copy that later steps leave alone
    trainer.fit(net.backend.asarray(X), net.backend.asarray(Y), epochs=1)
    assert all(not torch.equal(snap[k], net.parameters[k]) for k in snap)


@pytest.mark.parametrize("spec", TORCH_DEVICES)
def test_an_estimator_on_torch_fits_in_place_to_the_generic_bits(monkeypatch, spec):
    _torch_or_skip(spec)
    from xpnet.estimators import DNNClassifier

    rng = np.random.default_rng(5)
    X = rng.normal(size=(70, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    runs = _estimator_runs(monkeypatch, lambda: DNNClassifier((8, 5), max_iter=3, batch_size=16, alpha=0.01,
                                                              backend=spec, random_state=0), X, y)
    fast, generic = runs
    assert np.allclose(fast.loss_curve_, generic.loss_curve_, rtol=1e-13, atol=0)
    for a, b in zip(fast.coefs_ + fast.intercepts_, generic.coefs_ + generic.intercepts_, strict=True):
        assert np.array_equal(_host(a), _host(b))


@pytest.mark.parametrize("spec", TORCH_DEVICES)
def test_the_torch_step_takes_tensors_that_require_gradients(monkeypatch, spec):
    # torch refuses out= writes autograd would have to record: the step runs without autograd, on copies of its
    # own outside the caller's graph, and trains as the generic step does.
    _torch_or_skip(spec)
    import torch

    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("XPNET_FAST", flag)
        net = xpnet.DNN([4, 5, 3], output="softmax", backend=spec, dtype="float64", seed=0)
        net.parameters = {k: v.clone().requires_grad_() for k, v in net.parameters.items()}
        X, Y = _data(4, 3, "softmax")
        Xt = net.backend.asarray(X).requires_grad_()
        trainer = Trainer(net, optimizer="adam", learning_rate=0.1, batch_size=8)
        trainer.step(Xt, net.backend.asarray(Y))
        trainer.fit(Xt, net.backend.asarray(Y), epochs=2)
        results.append({k: v.detach().clone() for k, v in net.parameters.items()})
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[1])


@pytest.mark.parametrize("spec", TORCH_DEVICES)
@pytest.mark.parametrize("output", OUTPUTS)
def test_torch_steps_make_no_tensors_from_python_numbers(monkeypatch, spec, output):
    # array-api-compat turns a Python number in maximum/minimum/logaddexp into a new tensor at each call: on CUDA
    # a host-to-device copy that waits for the device (and that a CUDA graph capture refuses). After the first
    # step, neither step (in-place, generic) nor the estimators' losses may make one.
    _torch_or_skip(spec)
    from torch.utils._python_dispatch import TorchDispatchMode

    made: list[str] = []

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.__name__.split(".")[0] in ("lift_fresh", "scalar_tensor", "_local_scalar_dense"):
                made.append(func.__name__)
            return func(*args, **(kwargs or {}))

    for flag in ("1", "0"):
        for sklearn_cost in (False, True):
            monkeypatch.setenv("XPNET_FAST", flag)
            n_out = 3 if output == "softmax" else 2
            net = xpnet.DNN([5, 7, n_out], hidden="relu", output=output, backend=spec, dtype="float32", seed=1)
            if sklearn_cost:
                net.loss = sklearn_loss(output)
            X, Y = (net.backend.asarray(a, dtype=net.dtype) for a in _data(5, n_out, output))
            trainer = Trainer(net, optimizer="adam", learning_rate=0.05)
            trainer.step(X, Y)
            with Watch():
                trainer.step(X, Y)
            assert made == [], (flag, sklearn_cost, made)


def test_torch_scalar_operands_are_plain_tensors_of_compats_dtype(monkeypatch):
    # A cached operand made under inference mode would poison autograd for the process; one made under a fake or
    # tracing mode would be a fake tensor; an integer array takes a float operand's promoted dtype, as
    # array-api-compat gives it; -0.0 and 0.0 stay apart.
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xpt

    from xpnet.device import xp as _xp
    from xpnet.lecture.activations import ACTIVATIONS

    relu = ACTIVATIONS["relu"]
    monkeypatch.setattr(_xp, "_TORCH_SCALARS", {})
    Z = torch.tensor([[-1.0, 2.0]])
    with torch.inference_mode():
        relu.forward(xpt, Z)
    Zg = Z.clone().requires_grad_()
    relu.forward(xpt, Zg).sum().backward()  # autograd through the cached operand
    assert Zg.grad.tolist() == [[0.0, 1.0]]
    ints = torch.tensor([[-1, 2]])
    assert xpt.maximum(ints, _xp.scalar_operand(xpt, 0.0, ints)).dtype == xpt.maximum(ints, 0.0).dtype
    assert math.copysign(1.0, float(_xp.scalar_operand(xpt, -0.0, Z))) < 0
    assert math.copysign(1.0, float(_xp.scalar_operand(xpt, 0.0, Z))) > 0
    from torch._subclasses.fake_tensor import FakeTensorMode

    before = dict(_xp._TORCH_SCALARS)
    with FakeTensorMode():
        assert _xp.scalar_operand(xpt, 0.5, torch.empty(2)) == 0.5  # the number, uncached
    assert _xp._TORCH_SCALARS == before


def test_the_generic_torch_step_keeps_no_autograd_history(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("XPNET_FAST", "0")
    net = xpnet.DNN([4, 5, 3], output="softmax", backend="torch:cpu", dtype="float64", seed=0)
    net.parameters = {k: v.clone().requires_grad_() for k, v in net.parameters.items()}
    X, Y = (net.backend.asarray(a) for a in _data(4, 3, "softmax"))
    trainer = Trainer(net, optimizer="adam", learning_rate=0.1)
    for _ in range(3):
        trainer.step(X, Y)
    assert all(v.grad_fn is None for v in net.parameters.values())
    assert isinstance(trainer._impl, xpnet.engine.steps.GenericStep)
    assert torch.is_grad_enabled()

"""Every allocation and kernel of a CuPy network runs on that network's device (issue 16, section 2).

CuPy allocates and launches on the *current* device, and array-api-compat's CuPy ``zeros``/``empty`` ignore
``device=``: code that does not make ``cupy:1`` current puts arrays on device 0, which only a machine with two
GPUs would show. These tests run on the CPU against :mod:`fake_cupy` (NumPy with two simulated devices that logs
the current device at every allocation and kernel) and fail on any event that was not on device 1.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import fake_cupy
import fit_data
import xpnet
from xpnet.device import xp as _xp
from xpnet.engine.steps.inplace import InplaceStep


def _assert_on_device_1(what: str) -> None:
    bad = fake_cupy.strays(fake_cupy.EVENTS, 1)
    shown = "\n  ".join(str(e) for e in bad[:8])
    assert not bad, f"{what}: {len(bad)} of {len(fake_cupy.EVENTS)} allocations/kernels not on device 1:\n  {shown}"
    assert fake_cupy.EVENTS, f"{what}: nothing was logged (the fake is not in use)"
    fake_cupy.EVENTS.clear()


def _data(m: int = 60, n: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).normal(size=(m, n))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)


def test_the_fake_is_cupy_to_xpnet_and_catches_work_outside_the_device(cupy1):
    # Realistic enough to take xpnet's CuPy paths: array-api-compat's CuPy wrapper over it, the in-place step.
    assert cupy1.name == "cupy" and cupy1.xp.__name__ == "array_api_compat.cupy"
    assert _xp.is_cupy_namespace(cupy1.xp) and _xp.ufunc_module(cupy1.xp) is fake_cupy.sys.modules["cupy"]
    x = cupy1.asarray(np.ones((2, 3)))
    assert x.device == cupy1.device and xpnet.device.backend_of(x) == cupy1
    fake_cupy.EVENTS.clear()
    zeros = cupy1.xp.zeros((2, 1), device=cupy1.device)  # array-api-compat ignores device=, as for real CuPy
    assert zeros.device.id == 0
    cupy1.xp.sum(x)  # a kernel on device-1 data with device 0 current
    assert [e.op for e in fake_cupy.strays(fake_cupy.EVENTS, 1)] == ["zeros", "sum"]
    fake_cupy.EVENTS.clear()
    with cupy1.activate():
        cupy1.xp.sum(cupy1.xp.zeros((2, 1)) + x[:, :1])
    _assert_on_device_1("inside activate()")


def test_a_network_is_built_trained_and_used_on_its_device(cupy1):
    X, y = _data()
    net = xpnet.DNN([3, 5, 1], hidden="tanh", backend="cupy:1")  # biases: xp.zeros ignored device=
    assert all(p.device.id == 1 for p in net.parameters.values())
    _assert_on_device_1("DNN.__init__")
    net.fit(X.T, y, learning_rate=0.1, num_iterations=3)
    net.train(X.T, y, epochs=2, batch_size=16)
    net.predict(X.T)
    net.score(X.T, y)
    _assert_on_device_1("DNN.fit/train/predict/score")


def test_trainer_step_and_evaluate_run_on_the_device(cupy1):
    X, y = _data()
    net = xpnet.DNN([3, 5, 1], hidden="relu", backend=cupy1)
    Xb, Yb = cupy1.asarray(X.T), cupy1.asarray(y[None, :].astype(np.float64))
    trainer = xpnet.Trainer(net, optimizer="adam", batch_size=20, l2=0.01)
    fake_cupy.EVENTS.clear()
    trainer.step(Xb, Yb)  # the in-place step allocates its buffers with the raw cupy.empty
    assert isinstance(trainer._impl, InplaceStep)
    trainer.evaluate(Xb, Yb)
    _assert_on_device_1("Trainer.step/evaluate")
    trainer.fit(Xb, Yb, epochs=2, validation_data=(Xb, Yb))
    _assert_on_device_1("Trainer.fit with validation data")


def test_a_classifier_fits_and_predicts_on_its_device(cupy1):
    X, y = _data(80)
    clf = xpnet.DNNClassifier(hidden_layer_sizes=(6,), max_iter=3, batch_size=16, early_stopping=True,
                              standardize=True, backend="cupy:1", random_state=0)
    fake_cupy.EVENTS.clear()
    with pytest.warns(Warning):
        clf.fit(cupy1.asarray(X), y)  # device data: the finite check runs on the device
    clf.predict_proba(X)  # two classes: the probabilities are concatenated on the device
    clf.predict(cupy1.asarray(X))
    clf.predict_log_proba(X)
    _assert_on_device_1("DNNClassifier")


def test_a_regressor_fits_and_rescales_on_its_device(cupy1):
    X, _ = _data(50)
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    reg = xpnet.DNNRegressor(hidden_layer_sizes=(6,), max_iter=2, batch_size=16, standardize=True,
                             early_stopping=True, backend="cupy:1", random_state=0)
    fake_cupy.EVENTS.clear()
    with pytest.warns(Warning):
        reg.fit(X, y)
    # partial_fit refuses early_stopping, as scikit-learn does: the incremental epoch runs without it.
    reg.set_params(early_stopping=False).partial_fit(X, y)
    reg.predict(cupy1.asarray(X))  # the targets' scale put back on the device
    _assert_on_device_1("DNNRegressor")


def test_the_fused_cupy_step_is_chosen_only_when_asked(cupy1, monkeypatch):
    # Selection only: the fused kernels are CUDA code, which the fake cannot run (tests/test_gpu.py runs them).
    from xpnet.engine.steps import choose_step, fused

    net = xpnet.DNN([3, 5, 2], output="softmax", backend=cupy1)
    opt = xpnet.optimizers.get_optimizer("adam")
    monkeypatch.delenv("XPNET_FUSED", raising=False)
    assert type(choose_step(net, opt, 0.0, {})) is InplaceStep  # off by default
    monkeypatch.setenv("XPNET_FUSED", "1")
    assert isinstance(choose_step(net, opt, 0.0, {}), fused.FusedStep)
    monkeypatch.setattr(xpnet.engine.steps.graph, "_SAID", set())
    with pytest.warns(RuntimeWarning, match=r"XPNET_FUSED=1 is set but does not apply to a network on numpy"):
        assert type(choose_step(xpnet.DNN([3, 5, 2], backend="numpy"), opt, 0.0, {})) is InplaceStep  # CuPy only
    monkeypatch.setenv("XPNET_FAST", "0")  # the generic path everywhere
    with pytest.warns(RuntimeWarning, match=r"XPNET_FAST=0 too"):
        assert choose_step(net, opt, 0.0, {}).writes_in_place is False


def _fused_vs_generic(monkeypatch, backend, fused: bool, *, hidden: str, output: str, optimizer: str,
                      weights: bool = False, dropout: float = 0.0, l2: float = 0.0, sklearn_cost: bool = False):
    monkeypatch.setenv("XPNET_FUSED", "1" if fused else "0")
    monkeypatch.setenv("XPNET_FAST", "1" if fused else "0")  # the reference is the generic step
    n_out = 3 if output == "softmax" else 2
    X, Y = fit_data.xy(5, n_out, output)
    net = xpnet.DNN([5, 7, 6, n_out], hidden=hidden, output=output, dtype="float64", backend=backend, seed=1)
    if sklearn_cost:  # the estimators' loss: its own fused_cost, the built-in gradient
        from xpnet.estimators.sklearn_rules import sklearn_loss

        net.loss = sklearn_loss(output)
    w = backend.asarray(np.linspace(0.5, 2.0, 45)[None, :]) if weights else None
    trainer = xpnet.Trainer(net, optimizer=optimizer, learning_rate=0.05, batch_size=16, l2=l2, dropout=dropout)
    history = trainer.fit(backend.asarray(X), backend.asarray(Y), epochs=3, sample_weight=w)
    from xpnet.engine.steps.fused import FusedStep

    assert isinstance(trainer._impl, FusedStep) is fused
    return history["loss"] + history["metric"], net.get_parameters()


@pytest.mark.parametrize(("hidden", "output", "optimizer", "extras"), [
    ("relu", "sigmoid", "adam", {}), ("leaky_relu", "softmax", "gd", {}), ("sigmoid", "linear", "adam", {}),
    ("tanh", "softmax", "adam", {"weights": True, "dropout": 0.2, "l2": 0.1}), ("linear", "sigmoid", "gd", {}),
    ("relu", "linear", "momentum", {"weights": True}), ("tanh", "sigmoid", "rmsprop", {"weights": True}),
    ("relu", "softmax", "sklearn_adam", {"weights": True, "dropout": 0.2, "l2": 0.1, "sklearn_cost": True}),
    ("tanh", "sigmoid", "sklearn_sgd", {"l2": 0.1, "sklearn_cost": True}),
])
def test_the_fused_kernels_compute_the_generic_step_on_the_cpu(cupy1, monkeypatch, hidden, output, optimizer,
                                                                extras):
    # The fused step's kernels, compiled by the host's C compiler (fake_cupy.ElementwiseKernel), against the
    # generic step: their arithmetic and the step's argument order, not CUDA's rounding (tests/test_gpu.py).
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) to build the kernels' C bodies")
    kw = {"hidden": hidden, "output": output, "optimizer": optimizer, **extras}
    curve_f, params_f = _fused_vs_generic(monkeypatch, cupy1, True, **kw)
    curve_g, params_g = _fused_vs_generic(monkeypatch, cupy1, False, **kw)
    np.testing.assert_allclose(curve_f, curve_g, rtol=1e-10)
    for k in params_g:
        np.testing.assert_allclose(params_f[k], params_g[k], rtol=1e-10, atol=1e-12, err_msg=k)
    _assert_on_device_1("fused step")

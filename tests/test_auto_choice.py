"""``auto`` by problem size (xpnet.device.auto) and JAX's memory when xpnet probes it (issue 16, section 2)."""

from __future__ import annotations

import logging
import sys
import types

import numpy as np
import pytest

import fake_cupy
import xpnet
from xpnet.device import auto, backend


@pytest.fixture
def gpu(monkeypatch):
    """A machine where CuPy works (the fake, two devices): ``auto``'s device default is cupy:0."""
    fake_cupy.install(monkeypatch)
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    try:
        yield
    finally:
        fake_cupy.clear_compat_caches()


def test_the_rule_keeps_launch_bound_steps_on_the_cpu():
    t_cpu, t_gpu = auto.estimate_step_seconds([2, 4, 1], 400)
    assert t_cpu < t_gpu  # tiny: 33 launches cost more than its arithmetic on one core
    t_cpu, t_gpu = auto.estimate_step_seconds([784, 256, 128, 10], 128)
    assert t_cpu > 10 * t_gpu  # mnist: arithmetic-bound
    assert auto.step_flops([784, 256, 128, 10], 128) == 6 * 128 * (784 * 256 + 256 * 128 + 128 * 10)


def test_auto_picks_by_size_and_says_why(gpu, caplog, monkeypatch):
    monkeypatch.setattr(auto, "_last_logged", None)  # a choice logged by an earlier test is logged again here
    assert xpnet.get_backend("auto").spec == "cupy:0"  # without a problem: the device default
    with caplog.at_level(logging.INFO, logger="xpnet"):
        tiny = xpnet.DNN([2, 4, 1], backend="auto")
        big = xpnet.DNN([784, 256, 128, 10], output="softmax")  # None: no context, no XPNET_BACKEND -> auto
    assert tiny.backend.spec == "numpy" and big.backend.spec == "cupy:0"
    assert tiny.backend_choice.startswith("auto chose numpy for 2-4-1 on batches of 200: ")
    assert "us on one CPU core" in tiny.backend_choice and "provisional" in tiny.backend_choice
    assert big.backend_choice.startswith("auto chose cupy:0 for 784-256-128-10")
    assert [r.getMessage() for r in caplog.records] == [tiny.backend_choice, big.backend_choice]


def test_a_named_backend_or_context_is_never_second_guessed(gpu, monkeypatch):
    assert xpnet.DNN([2, 4, 1], backend="cupy").backend.spec == "cupy:0"
    with xpnet.use_backend("cupy:1"):
        net = xpnet.DNN([2, 4, 1])
    assert net.backend.spec == "cupy:1" and net.backend_choice is None
    monkeypatch.setenv("XPNET_BACKEND", "cupy")
    assert xpnet.DNN([2, 4, 1]).backend.spec == "cupy:0"
    monkeypatch.setenv("XPNET_BACKEND", "auto")
    assert xpnet.DNN([2, 4, 1]).backend.spec == "numpy"


def test_estimators_choose_by_their_data(gpu):
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    clf = xpnet.DNNClassifier(hidden_layer_sizes=(4,), max_iter=1, backend="auto")
    with pytest.warns(Warning):
        clf.fit(X, y)
    # The output layer is not known before the targets are read: the reason says so instead of naming a network
    # the estimator does not build.
    assert clf._backend_.spec == "numpy" and "2-4-k on batches of 40 (k: the output units" in clf.backend_choice_


def test_without_a_gpu_auto_says_so(monkeypatch):
    monkeypatch.setattr(backend, "_CACHE", {"cupy": xpnet.BackendUnavailableError("no CUDA device found")})
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    net = xpnet.DNN([784, 256, 10], backend="auto")
    assert net.backend.spec == "numpy" and net.backend_choice.endswith("no usable CUDA device")


def _fake_jax(seen: list[str | None]) -> types.ModuleType:
    """A JAX whose device listing (where jaxlib creates its GPU client) records XLA_PYTHON_CLIENT_PREALLOCATE."""
    import os

    jax = types.ModuleType("jax")
    jax.__path__ = []
    numpy_ = types.ModuleType("jax.numpy")

    class Info:
        def dtypes(self, device=None, kind=None):
            return {"float32": np.float32}

    numpy_.__array_namespace_info__ = Info
    device = types.SimpleNamespace(platform="gpu", id=0)

    def devices(platform=None):
        seen.append(os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"))
        return [device]

    jax.devices, jax.numpy = devices, numpy_
    return jax


@pytest.mark.parametrize("user", [None, "true"])
def test_probing_jax_never_preallocates_the_gpu_unless_asked(monkeypatch, user):
    seen: list[str | None] = []
    fake = _fake_jax(seen)
    monkeypatch.setitem(sys.modules, "jax", fake)
    monkeypatch.setitem(sys.modules, "jax.numpy", fake.numpy)
    monkeypatch.setattr(backend, "_CACHE", {})
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", user or "")  # recorded: put back after the test
    if user is None:
        monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE")
    assert xpnet.get_backend("jax").spec == "jax:gpu:0"
    assert backend._devices_of("jax", backend._resolve("jax")) == ["jax:gpu:0"]
    assert seen == [user or "false"] * 2  # the user's own setting is kept

"""What only a CUDA machine can show (marked ``gpu``; skipped with the reason elsewhere). The whole matrix
also runs on the cupy and torch-cuda entries there: ``python -m pytest -m gpu``."""

from __future__ import annotations

import numpy as np
import pytest

import fit_data
import xpnet

pytestmark = pytest.mark.gpu


def _cupy_backend(spec: str = "cupy") -> xpnet.Backend:
    try:
        return xpnet.get_backend(spec)
    except xpnet.BackendUnavailableError as exc:
        pytest.skip(f"no usable CuPy device: {exc}")


def test_auto_picks_cupy_where_a_cuda_device_works(monkeypatch):
    _cupy_backend()
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    assert xpnet.get_backend("auto").name == "cupy"


def test_plain_torch_means_cuda_where_it_works():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no usable CUDA device")
    assert xpnet.get_backend("torch").spec == "torch:cuda:0"


def test_a_network_on_the_second_gpu_keeps_its_arrays_there():
    cupy = pytest.importorskip("cupy")
    if _cupy_backend() and cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two CUDA devices")
    b = _cupy_backend("cupy:1")
    X, y = xpnet.datasets.make_moons(200, seed=0)
    net = xpnet.DNN([2, 8, 1], hidden="tanh", backend=b)
    net.fit(X.T, y, learning_rate=0.5, num_iterations=300)
    assert all(v.device.id == 1 for v in net.parameters.values())
    assert isinstance(net.predict(X.T), np.ndarray) and net.score(X.T, y) > 0.85


# ------------------------------------------------------------------------------- the fused CuPy step
# xpnet.engine.steps.fused is off by default (XPNET_FUSED=1 turns it on) until these pass on a GPU. Its kernels
# compute the in-place step's arithmetic operation for operation, but nvcc may contract a * b + c into FMAs and
# in-kernel exp/log1p need not round as CuPy's ufuncs: equal within the README's cross-backend tolerances.
FUSED_RTOL = {"float64": 1e-9, "float32": 1e-4}


def _fused_run(monkeypatch, fused: bool, *, hidden: str, output: str, optimizer: str, dtype: str,
               weights: bool = False, dropout: float = 0.0, l2: float = 0.0):
    from xpnet.engine.steps.fused import FusedStep

    b = _cupy_backend()
    monkeypatch.setenv("XPNET_FUSED", "1" if fused else "0")
    monkeypatch.setenv("XPNET_FAST", "1" if fused else "0")  # the reference is the generic step
    n_out = 3 if output == "softmax" else 2
    X, Y = fit_data.xy(5, n_out, output)
    net = xpnet.DNN([5, 7, 6, n_out], hidden=hidden, output=output, dtype=dtype, backend=b, seed=1)
    w = b.asarray(np.linspace(0.5, 2.0, 45)[None, :], dtype=net.dtype) if weights else None
    trainer = xpnet.Trainer(net, optimizer=optimizer, learning_rate=0.05, batch_size=16, l2=l2, dropout=dropout)
    history = trainer.fit(b.asarray(X, dtype=net.dtype), b.asarray(Y, dtype=net.dtype), epochs=3, sample_weight=w)
    assert isinstance(trainer._impl, FusedStep) is fused
    return history["loss"] + history["metric"], net.get_parameters()


def _assert_fused_close(monkeypatch, dtype: str, **kw):
    curve_f, params_f = _fused_run(monkeypatch, True, dtype=dtype, **kw)
    curve_g, params_g = _fused_run(monkeypatch, False, dtype=dtype, **kw)
    rtol = FUSED_RTOL[dtype]
    np.testing.assert_allclose(curve_f, curve_g, rtol=rtol)
    for k in params_g:
        np.testing.assert_allclose(params_f[k], params_g[k], rtol=rtol, atol=rtol, err_msg=k)


@pytest.mark.parametrize("hidden", ["relu", "leaky_relu", "sigmoid", "tanh", "linear"])
@pytest.mark.parametrize("output", ["sigmoid", "softmax", "linear"])
def test_the_fused_step_equals_the_generic_one(monkeypatch, hidden, output):
    _assert_fused_close(monkeypatch, "float64", hidden=hidden, output=output, optimizer="adam")


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_fused_updates_equal_the_generic_ones(monkeypatch, optimizer, dtype):
    _assert_fused_close(monkeypatch, dtype, hidden="tanh", output="softmax", optimizer=optimizer)


@pytest.mark.parametrize("output", ["sigmoid", "softmax", "linear"])
def test_the_fused_step_with_weights_dropout_and_l2(monkeypatch, output):
    _assert_fused_close(monkeypatch, "float64", hidden="relu", output=output, optimizer="adam", weights=True,
                        dropout=0.2, l2=0.1)

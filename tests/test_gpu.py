"""What only a CUDA machine can show (marked ``gpu``; skipped with the reason elsewhere). The whole matrix
also runs on the cupy and torch-cuda entries there: ``python -m pytest -m gpu``."""

from __future__ import annotations

import numpy as np
import pytest

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

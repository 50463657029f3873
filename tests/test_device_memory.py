"""Device memory: chunked prediction (bounded memory, the same answer) and out-of-memory errors translated into
:class:`xpnet.DeviceMemoryError` with the batch size tried and a smaller one to try."""

from __future__ import annotations

import math
import subprocess
import sys
import tracemalloc
import types

import numpy as np
import pytest

import xpnet
import xpnet.dnn as network
from xpnet import _xp
from xpnet.errors import DeviceMemoryError


def _net(xpb, dims=(5, 16, 7, 3), hidden="tanh", output="softmax", seed=3) -> xpnet.DNN:
    return xpnet.DNN(list(dims), hidden=hidden, output=output, dtype=xpb.dtype_name, backend=xpb.backend, seed=seed)


# ------------------------------------------------------------------------------------ chunked prediction
@pytest.mark.parametrize("m", [1, 101])
@pytest.mark.parametrize("batch_size", [1, 2, 7, 50, 100, 101, 1000])
def test_chunked_predict_equals_one_pass(xpb, rng, m, batch_size):
    """Chunks that divide m and chunks that do not, a chunk of 1, a chunk larger than m, and m = 1. The numbers
    agree to the last few bits, not always bit for bit: a BLAS matmul's rounding depends on how many columns it
    is given (see the exact test below), so even one pass gives a column a different rounding at another m."""
    net = _net(xpb)
    X = xpb.asarray(rng.standard_normal((5, m)))
    whole = net.predict_proba(X, batch_size=m)
    chunked = net.predict_proba(X, batch_size=batch_size)
    xpb.check(chunked, shape=(3, m))
    np.testing.assert_allclose(xpb.np(chunked), xpb.np(whole), **xpb.tol)
    np.testing.assert_array_equal(xpb.np(net.predict(X, batch_size=batch_size)), xpb.np(net.predict(X, batch_size=m)))


@pytest.mark.parametrize("batch_size", [1, 3, 8, 64, 99])
def test_chunked_predict_is_bit_for_bit_when_the_arithmetic_is_exact(xpb, rng, batch_size):
    """Small integers in, small integer weights: every sum is exact whatever the order, so any difference at
    all would be a chunking bug (a column lost, repeated or moved)."""
    net = _net(xpb, dims=(4, 9, 2), hidden="relu", output="linear")
    net.parameters = {k: xpb.asarray(rng.integers(-3, 4, size=v.shape)) for k, v in net.parameters.items()}
    X = xpb.asarray(rng.integers(-5, 6, size=(4, 99)))
    whole = xpb.np(net.predict_proba(X, batch_size=99))
    np.testing.assert_array_equal(xpb.np(net.predict_proba(X, batch_size=batch_size)), whole)
    np.testing.assert_array_equal(xpb.np(net.predict(X, batch_size=batch_size)), whole)


def test_chunked_predict_keeps_numpy_in_numpy_out(rng):
    net = xpnet.DNN([3, 4, 1], backend="numpy")
    out = net.predict_proba(rng.standard_normal((3, 10)), batch_size=3)
    assert isinstance(out, np.ndarray) and out.shape == (1, 10)


def test_automatic_chunks_follow_the_byte_budget(xpb, rng, monkeypatch):
    net = _net(xpb, dims=(5, 40, 3))
    itemsize = 4 if xpb.dtype_name == "float32" else 8
    monkeypatch.setattr(network, "_PREDICT_CHUNK_BYTES", 6 * 40 * itemsize * 13)  # 13 columns per chunk
    assert network.predict_chunk_size(net.layer_dims, itemsize) == 13
    calls = []
    real = network.forward_output

    def counting(xp, parameters, X, hidden, output):
        calls.append(X.shape[1])
        return real(xp, parameters, X, hidden, output)

    monkeypatch.setattr(network, "forward_output", counting)
    X = xpb.asarray(rng.standard_normal((5, 100)))
    auto = net.predict_proba(X)
    assert calls == [13] * 7 + [9]
    np.testing.assert_allclose(xpb.np(auto), xpb.np(net.predict_proba(X, batch_size=100)), **xpb.tol)


def test_predict_chunk_size_is_the_budget_over_the_widest_layer(monkeypatch):
    monkeypatch.setattr(network, "_PREDICT_CHUNK_BYTES", 256 * 2**20)
    assert network.predict_chunk_size([8, 256, 32, 1], 4) == 256 * 2**20 // (network._LIVE_ARRAYS * 256 * 4)
    monkeypatch.setattr(network, "_PREDICT_CHUNK_BYTES", 10)
    assert network.predict_chunk_size([8, 256, 1], 8) == 1  # never 0 columns


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "10"])
def test_predict_batch_size_must_be_a_positive_int(bad):
    net = xpnet.DNN([2, 1], backend="numpy")
    with pytest.raises(xpnet.ConfigError, match="batch_size must be a positive integer"):
        net.predict(np.zeros((2, 3)), batch_size=bad)


@pytest.mark.parametrize("hidden", ["relu", "sigmoid"])
def test_predicting_a_large_X_stays_within_the_memory_bound(monkeypatch, hidden):
    """120k examples through a 32-wide net: one pass would hold (32, 120k) activations (31 MB each); in chunks
    the peak traced allocation stays under the budget plus the output (held twice while it is concatenated)."""
    budget = 4 * 2**20
    monkeypatch.setattr(network, "_PREDICT_CHUNK_BYTES", budget)
    net = xpnet.DNN([8, 32, 32, 1], hidden=hidden, dtype="float64", backend="numpy")
    X = np.random.default_rng(0).standard_normal((8, 120_000))

    def peak_of(batch_size):
        tracemalloc.start()
        try:
            out = net.predict_proba(X, batch_size=batch_size)
            return tracemalloc.get_traced_memory()[1], out
        finally:
            tracemalloc.stop()

    peak, out = peak_of(None)
    assert peak <= budget + 2 * out.nbytes, f"peak {peak / 2**20:.1f} MiB"
    one_pass_peak, whole = peak_of(X.shape[1])
    assert one_pass_peak > 10 * budget
    np.testing.assert_allclose(out, whole, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("standardize", [False, True])
def test_estimator_predictions_do_not_depend_on_the_chunk(xpb, rng, standardize):
    X = rng.standard_normal((61, 4)) * 3 + 1
    y = (X[:, 0] + X[:, 1] > 2).astype(int)
    Xb = xpb.asarray(X)
    clf = xpnet.DNNClassifier((6,), max_iter=3, random_state=0, backend=xpb.backend, dtype=xpb.dtype_name,
                              standardize=standardize)
    with pytest.warns(Warning):  # max_iter=3 does not converge
        clf.fit(Xb, y)
    whole = clf.predict_proba(Xb, batch_size=61)
    xpb.check(whole, shape=(61, 2))
    np.testing.assert_allclose(xpb.np(clf.predict_proba(Xb, batch_size=7)), xpb.np(whole), **xpb.tol)
    np.testing.assert_array_equal(xpb.np(clf.predict(Xb, batch_size=7)), xpb.np(clf.predict(Xb)))
    if standardize:  # each chunk is standardized: the same as the network on X standardized as a whole
        Xs = xpb.asarray(((X - clf.mean_) / clf.scale_).T)
        P1 = xpb.np(clf.network_.predict_proba(Xs))[0]
        np.testing.assert_allclose(xpb.np(whole), np.stack([1.0 - P1, P1], axis=1), rtol=xpb.tol["rtol"] * 10,
                                   atol=xpb.tol["atol"] * 10)


@pytest.mark.parametrize("standardize", [False, True])
def test_regressor_predictions_do_not_depend_on_the_chunk(rng, standardize):
    X = rng.standard_normal((50, 3)) * 4 - 2
    reg = xpnet.DNNRegressor((5,), max_iter=3, random_state=0, backend="numpy", standardize=standardize)
    with pytest.warns(Warning):
        reg.fit(X, X[:, 0] * 20.0 + 3.0)
    np.testing.assert_allclose(reg.predict(X, batch_size=4), reg.predict(X, batch_size=50), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------ out of memory
class _FakeCupyOutOfMemoryError(Exception):
    """Stands in for cupy.cuda.memory.OutOfMemoryError; deliberately no MemoryError subclass, so that only its
    registration in sys.modules can identify it."""


@pytest.fixture
def fake_cupy(monkeypatch):
    """A fake ``cupy.cuda.memory`` module in sys.modules, the way the helper finds CuPy's error type."""
    module = types.ModuleType("cupy.cuda.memory")
    module.OutOfMemoryError = _FakeCupyOutOfMemoryError
    monkeypatch.setitem(sys.modules, "cupy.cuda.memory", module)
    return module


def _failing_forward(error):
    def forward(*args, **kwargs):
        raise error

    return forward


def test_a_cupy_out_of_memory_error_in_predict_names_the_batch_and_a_smaller_one(monkeypatch, fake_cupy):
    net = xpnet.DNN([3, 4, 1], backend="numpy")
    original = fake_cupy.OutOfMemoryError("Out of memory allocating 4,000,000,000 bytes")
    monkeypatch.setattr(network, "forward_output", _failing_forward(original))
    with pytest.raises(DeviceMemoryError) as info:
        net.predict_proba(np.zeros((3, 101)), batch_size=101)
    message = str(info.value)
    assert "while predicting with a batch of 101 examples" in message
    assert "batch_size=50" in message and "predict(X, batch_size=50)" in message
    assert "Out of memory allocating 4,000,000,000 bytes" in message
    assert info.value.__cause__ is original
    assert isinstance(info.value, MemoryError) and isinstance(info.value, xpnet.XpnetError)


def test_the_cupy_type_is_only_known_while_cupy_is_loaded(monkeypatch):
    """Without cupy.cuda.memory in sys.modules the same error is not an out-of-memory error: passed on as is."""
    monkeypatch.delitem(sys.modules, "cupy.cuda.memory", raising=False)
    assert not _xp.is_out_of_memory(_FakeCupyOutOfMemoryError("x"))
    net = xpnet.DNN([3, 1], backend="numpy")
    monkeypatch.setattr(network, "forward_output", _failing_forward(_FakeCupyOutOfMemoryError("x")))
    with pytest.raises(_FakeCupyOutOfMemoryError):
        net.predict(np.zeros((3, 5)))


def test_a_torch_out_of_memory_error_is_translated(monkeypatch):
    torch = pytest.importorskip("torch")
    net = xpnet.DNN([3, 1], backend="numpy")
    original = torch.OutOfMemoryError("Tried to allocate 20.00 GiB")  # found by its type, not by its message
    monkeypatch.setattr(network, "forward_output", _failing_forward(original))
    with pytest.raises(DeviceMemoryError, match=r"batch of 64 examples.*batch_size=32") as info:
        net.predict(np.zeros((3, 64)), batch_size=64)
    assert info.value.__cause__ is original


def test_a_real_numpy_memory_error_is_translated(monkeypatch):
    net = xpnet.DNN([3, 1], backend="numpy")

    def allocate_a_pebibyte(*args, **kwargs):
        return np.ones(2**50, dtype=np.uint8)  # more than any machine has: numpy's _ArrayMemoryError

    monkeypatch.setattr(network, "forward_output", allocate_a_pebibyte)
    with pytest.raises(DeviceMemoryError, match=r"batch of 10 examples.*batch_size=5") as info:
        net.predict_proba(np.zeros((3, 10)))
    assert type(info.value.__cause__).__module__.startswith("numpy")


def test_the_automatic_chunk_is_the_batch_size_reported(monkeypatch):
    monkeypatch.setattr(network, "_PREDICT_CHUNK_BYTES", 6 * 4 * 8 * 40)  # 40 columns of the widest layer
    net = xpnet.DNN([3, 4, 1], dtype="float64", backend="numpy")
    monkeypatch.setattr(network, "forward_output", _failing_forward(MemoryError()))
    with pytest.raises(DeviceMemoryError, match=r"batch of 40 examples.*batch_size=20"):
        net.predict(np.zeros((3, 1000)))


def test_a_batch_of_one_that_does_not_fit_says_no_smaller_batch_exists(monkeypatch):
    net = xpnet.DNN([3, 1], backend="numpy")
    monkeypatch.setattr(network, "forward_output", _failing_forward(MemoryError()))
    with pytest.raises(DeviceMemoryError, match=r"batch of 1 example \(.*no smaller batch exists"):
        net.predict(np.zeros((3, 4)), batch_size=1)


def test_other_errors_pass_through_untouched(monkeypatch):
    net = xpnet.DNN([3, 1], backend="numpy")
    monkeypatch.setattr(network, "forward_output", _failing_forward(ValueError("not about memory")))
    with pytest.raises(ValueError, match="not about memory") as info:
        net.predict(np.zeros((3, 4)))
    assert not isinstance(info.value, xpnet.XpnetError)


def test_estimator_predict_translates_too(monkeypatch, rng):
    X = rng.standard_normal((20, 2))
    clf = xpnet.DNNClassifier((3,), max_iter=2, random_state=0, backend="numpy")
    with pytest.warns(Warning):
        clf.fit(X, (X[:, 0] > 0).astype(int))
    monkeypatch.setattr(network, "forward_output", _failing_forward(MemoryError()))
    with pytest.raises(DeviceMemoryError, match=r"batch of 20 examples.*batch_size=10"):
        clf.predict(X)


def test_fit_and_train_translate_with_the_training_batch(monkeypatch, fake_cupy):
    net = xpnet.DNN([2, 3, 1], backend="numpy")
    X, Y = np.zeros((2, 40)), np.zeros((1, 40))
    from xpnet.engine import Trainer

    # DNN.fit's full-batch descent runs through the engine's step.
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_step", _failing_forward(fake_cupy.OutOfMemoryError("fit")))
        with pytest.raises(DeviceMemoryError, match=r"full-batch gradient descent with a batch of 40 examples.*"
                                                    r"DNN\.train\(X, Y, batch_size=20\)"):
            net.fit(X, Y, num_iterations=2)

    # Trainer.fit translates, so DNN.train, the estimators and the command all get it.
    monkeypatch.setattr(Trainer, "_run_epoch", _failing_forward(fake_cupy.OutOfMemoryError("train")))
    with pytest.raises(DeviceMemoryError, match=r"while training with a batch of 32 examples.*batch_size=16"):
        net.train(X, Y, batch_size=32, epochs=1)
    with pytest.raises(DeviceMemoryError, match=r"batch of 40 examples"):  # "full" is all m
        net.train(X, Y, batch_size="full", epochs=1)
    clf = xpnet.DNNClassifier(hidden_layer_sizes=(3,), batch_size=8, max_iter=1)
    with pytest.raises(DeviceMemoryError, match=r"batch of 8 examples.*batch_size=4"):
        clf.fit(np.zeros((40, 2)), np.arange(40) % 2)
    assert not hasattr(clf, "network_")  # a fresh fit that failed leaves nothing that looks fitted


def test_jax_and_cuda_runtime_messages_count_as_out_of_memory():
    assert _xp.is_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8 GiB"))
    assert _xp.is_out_of_memory(RuntimeError("cudaErrorMemoryAllocation: out of memory"))
    assert not _xp.is_out_of_memory(RuntimeError("shape mismatch"))
    assert not _xp.is_out_of_memory(ValueError("RESOURCE_EXHAUSTED"))  # a RuntimeError's message only


def test_translating_oom_without_a_batch_size_asks_for_one():
    with pytest.raises(DeviceMemoryError, match=r"all examples in one batch.*batch_size=N"), \
            _xp.translating_oom("evaluating", None):
        raise MemoryError
    inner = DeviceMemoryError("already translated")
    with pytest.raises(DeviceMemoryError) as info, _xp.translating_oom("outer", 8):
        raise inner
    assert info.value is inner  # an inner translation is kept, not wrapped again


def test_looking_for_out_of_memory_types_imports_no_library():
    code = ("import sys, xpnet; from xpnet import _xp; _xp.out_of_memory_types(); _xp.is_out_of_memory(MemoryError()); "
            "print(sorted(m for m in ('cupy', 'torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


# ------------------------------------------------------------------------------------ a real GPU
def _gpu_backend(library: str) -> xpnet.Backend:
    if library == "cupy":
        cupy = pytest.importorskip("cupy", reason="no CUDA device")
        try:
            if cupy.cuda.runtime.getDeviceCount() < 1:
                pytest.skip("no CUDA device")
        except Exception:  # no driver, no device: CuPy raises its runtime error
            pytest.skip("no CUDA device")
        spec = "cupy:0"
    else:
        torch = pytest.importorskip("torch", reason="no CUDA device")
        if not torch.cuda.is_available():
            pytest.skip("no CUDA device")
        spec = "torch:cuda:0"
    try:
        return xpnet.get_backend(spec)
    except xpnet.BackendUnavailableError as exc:
        pytest.skip(f"no CUDA device ({exc})")


def _free_gpu_memory(library: str) -> None:
    if library == "cupy":
        import cupy

        cupy.get_default_memory_pool().free_all_blocks()
    else:
        import torch

        torch.cuda.empty_cache()


@pytest.mark.gpu
@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_a_batch_too_large_for_the_gpu_is_a_device_memory_error_and_chunks_fit(library):
    """A (width, m) float32 activation twice the size of the whole GPU: one pass runs out of memory and says so
    with the batch size and a suggestion; the automatic chunks predict the same X within bounded memory."""
    bk = _gpu_backend(library)
    if library == "cupy":
        import cupy

        total = cupy.cuda.Device(0).mem_info[1]
    else:
        import torch

        total = torch.cuda.get_device_properties(0).total_memory
    m = 2**20
    width = math.ceil(2 * total / (m * 4))
    net = xpnet.DNN([1, width, 1], hidden="relu", output="sigmoid", dtype="float32", backend=bk, seed=0)
    X = bk.asarray(np.linspace(-1.0, 1.0, m).reshape(1, m), dtype="float32")
    try:
        with pytest.raises(DeviceMemoryError, match=rf"(?s)batch of {m} examples.*batch_size={m // 2}") as info:
            net.predict_proba(X, batch_size=m)
        assert info.value.__cause__ is not None
        del info
        _free_gpu_memory(library)
        auto = net.predict_proba(X)  # chunks of about 256 MiB of activations
        assert tuple(auto.shape) == (1, m)
        step = network.predict_chunk_size(net.layer_dims, 4)
        assert step < m
        np.testing.assert_allclose(_xp.to_numpy(auto[:, :1000]),
                                   _xp.to_numpy(net.predict_proba(X[:, :1000], batch_size=1000)), rtol=1e-4, atol=1e-5)
    finally:
        _free_gpu_memory(library)


def test_a_translated_out_of_memory_error_does_not_keep_the_failed_attempts_buffers():
    import gc
    import weakref

    from xpnet.device.xp import translating_oom

    held = []

    def attempt():
        buffers = np.ones(1 << 20)  # what a failed step had allocated, a local of a frame below the with block
        held.append(weakref.ref(buffers))
        raise MemoryError("cannot allocate the next one")

    with pytest.raises(DeviceMemoryError) as info, translating_oom("training", 64):
        attempt()
    gc.collect()
    assert held[0]() is None  # freed while the error (as a notebook's last exception) is still held
    assert isinstance(info.value.__cause__, MemoryError) and "cannot allocate the next one" in str(info.value)


def test_an_out_of_memory_error_in_fit_does_not_keep_the_epoch_snapshot(monkeypatch):
    import gc
    import weakref

    from xpnet.engine import Trainer

    monkeypatch.setenv("XPNET_FAST", "1")  # the in-place step: the snapshot copies the parameters
    refs = []
    snapshot, run_epoch = Trainer._epoch_snapshot, Trainer._run_epoch

    def recording(self):
        taken = snapshot(self)
        refs.extend(weakref.ref(a) for a in taken[0].values())
        return taken

    def failing_second(self, *args):
        if self.epoch == 1:
            raise MemoryError("no more")
        return run_epoch(self, *args)

    monkeypatch.setattr(Trainer, "_epoch_snapshot", recording)
    monkeypatch.setattr(Trainer, "_run_epoch", failing_second)
    net = xpnet.DNN([3, 8, 1], backend="numpy", dtype="float64")
    X, Y = np.random.default_rng(0).normal(size=(3, 40)), np.ones((1, 40))
    with pytest.raises(DeviceMemoryError) as info:
        net.train(X, Y, epochs=3, batch_size=8)
    gc.collect()
    copies = [r for r in refs[len(net.parameters):] if r() is not None]  # the failed epoch's snapshot
    assert refs and not copies and info.value is not None

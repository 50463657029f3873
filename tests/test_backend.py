"""The backend selector: specs, precedence, unavailable backends, the report, and moving data."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import xpnet


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    xpnet.clear_backend_cache()
    yield
    xpnet.clear_backend_cache()


def test_asarray_and_to_numpy_round_trip(xpb, rng):
    data = rng.standard_normal((3, 4))
    arr = xpb.backend.asarray(data, dtype=xpb.dtype_name)
    xpb.check(arr, shape=(3, 4))
    back = xpb.backend.to_numpy(arr)
    assert isinstance(back, np.ndarray) and back.dtype == np.dtype(xpb.dtype_name)
    np.testing.assert_array_equal(back, data.astype(xpb.dtype_name))
    assert xpb.backend.owns(arr) and not xpb.backend.owns(data if xpb.backend.name != "numpy" else [1.0])
    xpb.backend.synchronize(arr)  # must not raise on any backend


def test_asarray_keeps_backend_arrays_and_float_dtypes(xpb):
    arr = xpb.asarray(np.ones((2, 2)))
    assert xpb.backend.asarray(arr) is arr
    f32 = xpb.backend.asarray(np.ones(3, dtype=np.float32))
    assert f32.dtype == xpb.backend.float_dtype("float32")


@pytest.mark.parametrize("data", [np.array(["a", "b"]), np.array([1 + 2j]), np.array([object()]), [[1.0, 2.0], [3.0]]])
def test_asarray_rejects_what_is_not_a_rectangle_of_real_numbers(xpb, data):
    with pytest.raises(xpnet.InputTypeError, match=r"real numbers|rectangular"):
        xpb.backend.asarray(data)


def test_asarray_takes_negative_strides_and_detaches_torch_tensors(xpb, rng):
    X = rng.standard_normal((3, 4))
    flipped = xpb.backend.asarray(X[:, ::-1], dtype=xpb.dtype_name)
    np.testing.assert_array_equal(xpb.np(flipped), X[:, ::-1].astype(xpb.dtype_name))
    if xpb.backend.name == "torch":
        t = xpb.asarray(X)
        t.requires_grad_(True)
        assert not xpb.backend.asarray(t).requires_grad


def test_float64_data_falls_back_to_float32_on_a_device_without_it():
    pytest.importorskip("array_api_strict")
    b = xpnet.get_backend("array_api_strict:no_float64")
    assert not b.supports_float64
    assert b.asarray(np.ones(3)).dtype == b.xp.float32
    with pytest.raises(xpnet.DTypeError, match="float64 is not available"):
        b.float_dtype("float64")


@pytest.mark.parametrize("spec", ["numpy", "NumPy", " numpy ", "np", "numpy:cpu"])
def test_numpy_specs(spec):
    b = xpnet.get_backend(spec)
    assert b.name == "numpy" and b.spec == "numpy" and b.device == "cpu"
    assert "Backend('numpy'" in repr(b)


def test_strict_specs():
    pytest.importorskip("array_api_strict")
    assert xpnet.get_backend("array_api_strict").spec == "array_api_strict:CPU_DEVICE"
    b = xpnet.get_backend("strict:device1")
    assert b.spec == "array_api_strict:device1" and str(b.device).endswith("device1')")
    with pytest.raises(xpnet.BackendSpecError, match="no device 'gpu7'"):
        xpnet.get_backend("array_api_strict:gpu7")


def test_torch_and_jax_specs():
    torch = pytest.importorskip("torch")
    assert xpnet.get_backend("torch:cpu").spec == "torch:cpu"
    b = xpnet.get_backend("torch:cpu:0")  # the same backend, and it owns the tensors it makes
    assert b == xpnet.get_backend("torch:cpu") and b.owns(b.asarray(np.ones(2))) and b.owns(torch.ones(2))
    with pytest.raises(xpnet.BackendSpecError, match="not a torch device"):
        xpnet.get_backend("torch:warp-drive")
    pytest.importorskip("jax")
    assert xpnet.get_backend("jax:cpu").spec == "jax:cpu:0"


@pytest.mark.parametrize(("spec", "message"), [
    ("tensorflow", "valid specs: auto, numpy, cupy, cupy:N, torch"),
    ("", "valid specs: auto, numpy"),
    ("numpy:gpu", "numpy runs on the CPU only"),
    ("auto:1", "'auto' takes no device"),
    ("cupy:x", "device index must be a non-negative integer"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(xpnet.BackendSpecError, match=message):
        xpnet.get_backend(spec)


def test_a_spec_must_be_a_string():
    with pytest.raises(xpnet.BackendSpecError, match="spec string"):
        xpnet.get_backend(3)


def test_precedence_argument_context_env_auto(monkeypatch):
    pytest.importorskip("array_api_strict")
    _pretend_missing(monkeypatch, "cupy")  # so that auto means numpy on GPU machines too
    assert xpnet.get_backend().name == "numpy"
    monkeypatch.setenv("XPNET_BACKEND", "array_api_strict")
    assert xpnet.get_backend().name == "array_api_strict"  # env beats auto
    with xpnet.use_backend("numpy") as b:
        assert b.name == "numpy"
        assert xpnet.get_backend().name == "numpy"  # context beats env
        with xpnet.use_backend("strict:device1"):
            assert xpnet.get_backend().spec == "array_api_strict:device1"  # contexts nest
        assert xpnet.get_backend().name == "numpy"
        assert xpnet.get_backend("array_api_strict").name == "array_api_strict"  # argument beats context
        with xpnet.use_backend("strict"):
            assert xpnet.get_backend("auto").name == "numpy"  # an explicit "auto" is an argument too
        params = xpnet.initialize_parameters([2, 1])
        assert isinstance(params["W1"], np.ndarray)  # functions with backend=None follow the context
    assert xpnet.get_backend().name == "array_api_strict"


def test_bad_env_var_names_the_variable(monkeypatch):
    monkeypatch.setenv("XPNET_BACKEND", "theano")
    with pytest.raises(xpnet.BackendSpecError, match="XPNET_BACKEND='theano'"):
        xpnet.get_backend()
    _pretend_missing(monkeypatch, "cupy")
    monkeypatch.setenv("XPNET_BACKEND", "cupy")
    with pytest.raises(xpnet.BackendUnavailableError, match=r"XPNET_BACKEND='cupy'.*unset XPNET_BACKEND"):
        xpnet.get_backend()


def _pretend_missing(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError


def test_not_installed_says_what_to_install(monkeypatch):
    _pretend_missing(monkeypatch, "cupy")
    with pytest.raises(xpnet.BackendUnavailableError, match=r'pip install "xpnet\[cuda12\]"') as info:
        xpnet.get_backend("cupy")
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, xpnet.XpnetError)
    _pretend_missing(monkeypatch, "torch")
    with pytest.raises(xpnet.BackendUnavailableError, match=r'pip install "xpnet\[torch\]"'):
        xpnet.get_backend("torch")
    _pretend_missing(monkeypatch, "jax")
    with pytest.raises(xpnet.BackendUnavailableError, match=r'pip install "xpnet\[jax\]"'):
        xpnet.get_backend("jax")


def _fake_cupy(device_count=1, count_error=None, kernel_error=None):
    """A stand-in CuPy module with just what the selector touches."""
    cupy = types.ModuleType("cupy")

    class Runtime:
        @staticmethod
        def getDeviceCount():
            if count_error:
                raise count_error
            return device_count

    class Device:
        def __init__(self, index=0):
            self.index = index

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def arange(n, dtype=None):
        if kernel_error:
            raise kernel_error
        return np.arange(n, dtype=np.float32)

    cupy.cuda = types.SimpleNamespace(runtime=Runtime, Device=Device)
    cupy.arange = arange
    cupy.float32 = np.float32
    return cupy


def test_no_cuda_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device_count=0))
    with pytest.raises(xpnet.BackendUnavailableError, match="no CUDA device found"):
        xpnet.get_backend("cupy")


def test_driver_error_text_is_passed_on(monkeypatch):
    err = RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(count_error=err))
    with pytest.raises(xpnet.BackendUnavailableError, match="CUDA driver version is insufficient"):
        xpnet.get_backend("cupy")


def test_device_index_out_of_range(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device_count=2))
    with pytest.raises(xpnet.BackendUnavailableError, match=r"CUDA device 3 does not exist \(this machine has 2"):
        xpnet.get_backend("cupy:3")


@pytest.mark.parametrize("cupy", [
    None,  # not installed
    "count",  # the runtime cannot count devices
    "kernel",  # a device is listed but no kernel runs (a broken driver/toolkit)
])
def test_auto_never_fails_because_cupy_is_broken(monkeypatch, cupy):
    fake = {None: None, "count": _fake_cupy(count_error=OSError("libcuda.so.1: cannot open shared object")),
            "kernel": _fake_cupy(kernel_error=RuntimeError("CUDA_ERROR_NO_BINARY_FOR_GPU"))}[cupy]
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert xpnet.get_backend("auto").name == "numpy"
    assert xpnet.get_backend().name == "numpy"


def test_broken_import_is_reported_not_raised(monkeypatch):
    class Exploding(types.ModuleType):
        def __getattr__(self, name):
            raise OSError("libcudart.so.12: cannot open shared object file")

    monkeypatch.setitem(sys.modules, "cupy", Exploding("cupy"))
    with pytest.raises(xpnet.BackendUnavailableError, match="libcudart"):
        xpnet.get_backend("cupy")
    assert xpnet.get_backend("auto").name == "numpy"


def test_torch_cuda_unavailable_on_a_cpu_machine():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(xpnet.BackendUnavailableError, match="torch:cpu"):
        xpnet.get_backend("torch:cuda:0")
    # The message names the spec given (BACKEND = "torch:cuda"), not just 'torch', which would work.
    with pytest.raises(xpnet.BackendUnavailableError, match=r"^backend 'torch:cuda' cannot be used"):
        xpnet.get_backend("torch:cuda")


def test_backends_report_lists_every_backend(monkeypatch):
    _pretend_missing(monkeypatch, "cupy")
    rows = {r.name: r for r in xpnet.backends_report()}
    assert list(rows) == ["numpy", "cupy", "torch", "jax", "array_api_strict"]
    assert rows["numpy"].usable and rows["numpy"].float64 and rows["numpy"].version == np.__version__
    assert rows["numpy"].devices == ["cpu"]
    assert not rows["cupy"].usable and "xpnet[cuda12]" in rows["cupy"].reason
    text = xpnet.format_backends_report(list(rows.values()))
    assert text.splitlines()[0].split()[:4] == ["backend", "usable", "version", "float64"]
    assert text.splitlines()[-1] == "auto -> numpy"


def test_jax_without_x64_reports_no_float64():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", False)
    try:
        b = xpnet.get_backend("jax")
        assert not b.supports_float64
        with pytest.raises(xpnet.DTypeError, match="jax_enable_x64"):
            b.float_dtype("float64")
    finally:
        jax.config.update("jax_enable_x64", True)



def test_dtype_arguments_accept_names_and_any_librarys_dtype_objects(xpb):
    for spec in (xpb.dtype_name, np.dtype(xpb.dtype_name), getattr(np, xpb.dtype_name), xpb.dtype):
        assert xpb.backend.float_dtype(spec) == xpb.dtype, spec
        params = xpnet.initialize_parameters([3, 2], dtype=spec, backend=xpb.backend)
        xpb.check(params["W1"])
    with pytest.raises(xpnet.DTypeError, match="'float32' or 'float64'"):
        xpb.backend.float_dtype("int32")


def test_check_finite_probes_with_a_sum_and_falls_back_when_the_sum_overflows(xpb):
    import warnings

    from xpnet.device.xp import check_finite

    big = np.full((3, 4), 3e38 if xpb.dtype_name == "float32" else 1.7e308)  # finite, but the sum overflows
    arr = xpb.backend.asarray(big, dtype=xpb.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning leaks to the user
        check_finite(xpb.xp, arr, "X")
    big[1, 2] = np.nan
    with pytest.raises(xpnet.InvalidValueError, match=r"X contains NaN: 1 of 12 values are not finite, the first "
                                                      r"is X\[1, 2\] = nan"):
        check_finite(xpb.xp, xpb.backend.asarray(big, dtype=xpb.dtype), "X")
    # A transposed view is read in its own layout: the position is that of the view.
    with pytest.raises(xpnet.InvalidValueError, match=r"Xt\[2, 1\] = nan"):
        check_finite(xpb.xp, xpb.backend.asarray(big, dtype=xpb.dtype).T, "Xt")

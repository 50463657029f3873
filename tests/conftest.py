"""The backend matrix every test runs over.

Entries: numpy x {f64, f32}; array_api_strict x {CPU_DEVICE f64, device1 f32, no_float64 f32}; torch cpu x
{f64, f32}; jax cpu f64 (x64 enabled here); cupy and torch-cuda x {f64, f32} (marked ``gpu``).
An entry whose library or device is missing is skipped with the reason, unless it is named in
``XPNET_REQUIRE_BACKENDS`` (comma-separated names, as CI sets it), where a missing CPU entry fails (GPU
entries skip without a GPU, unless ``XPNET_REQUIRE_GPU=1``, which ``scripts/gpu_check.sh`` sets: then they fail).

Narrow the matrix with ``--xp-backend NAME`` (repeatable) or ``XPNET_TEST_BACKENDS=numpy,torch``; a name
matches an entry id prefix (``strict``, ``torch-cuda``) or a library (``array_api_strict``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import xpnet
from xpnet import _xp


@dataclass(frozen=True)
class Entry:
    id: str
    spec: str
    dtype: str
    gpu: bool = False

    @property
    def library(self) -> str:
        return self.spec.split(":", 1)[0]


MATRIX = [
    Entry("numpy-f64", "numpy", "float64"),
    Entry("numpy-f32", "numpy", "float32"),
    Entry("strict-cpu-f64", "array_api_strict:CPU_DEVICE", "float64"),
    Entry("strict-device1-f32", "array_api_strict:device1", "float32"),
    Entry("strict-no_float64-f32", "array_api_strict:no_float64", "float32"),
    Entry("torch-cpu-f64", "torch:cpu", "float64"),
    Entry("torch-cpu-f32", "torch:cpu", "float32"),
    Entry("jax-cpu-f64", "jax:cpu", "float64"),
    Entry("cupy-f64", "cupy:0", "float64", gpu=True),
    Entry("cupy-f32", "cupy:0", "float32", gpu=True),
    Entry("torch-cuda-f64", "torch:cuda:0", "float64", gpu=True),
    Entry("torch-cuda-f32", "torch:cuda:0", "float32", gpu=True),
]

# Tolerances against the NumPy float64 oracle for one building block (inputs rounded to the entry's dtype
# first, so only the block's own rounding is measured).
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-6)}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--xp-backend", action="append", default=[], metavar="NAME",
                     help="run only matrix entries matching NAME (repeatable); also XPNET_TEST_BACKENDS")


def pytest_configure(config: pytest.Config) -> None:
    try:  # the matrix's jax entry is float64: x64 must be on before any jax array exists
        import jax

        jax.config.update("jax_enable_x64", True)
    except ImportError:
        pass
    try:  # prove the code needs nothing newer than the 2024.12 standard
        import array_api_strict

        array_api_strict.set_array_api_strict_flags(api_version="2024.12")
    except ImportError:
        pass


def _matches(entry: Entry, names: list[str]) -> bool:
    return any(entry.id.startswith(n) or entry.library == n or entry.spec == n for n in names)


def _selected(config: pytest.Config) -> list[Entry]:
    names = list(config.getoption("--xp-backend"))
    names += [n.strip() for n in os.environ.get("XPNET_TEST_BACKENDS", "").split(",") if n.strip()]
    return [e for e in MATRIX if not names or _matches(e, names)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, only64 in (("xpb", False), ("xpb64", True)):
        if fixture in metafunc.fixturenames:
            entries = [e for e in _selected(metafunc.config) if not only64 or e.dtype == "float64"]
            params = [pytest.param(e, id=e.id, marks=[pytest.mark.gpu] if e.gpu else []) for e in entries]
            metafunc.parametrize(fixture, params, indirect=True)


class Case:
    """One matrix entry, resolved: the backend, its dtype, and helpers to move data and check outputs."""

    def __init__(self, entry: Entry, backend: xpnet.Backend) -> None:
        self.entry = entry
        self.id = entry.id
        self.backend = backend
        self.xp = backend.xp
        self.device = backend.device
        self.dtype_name = entry.dtype
        self.dtype = backend.float_dtype(entry.dtype)
        self.tol = TOL[entry.dtype]

    def __repr__(self) -> str:
        return f"Case({self.id})"

    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """NumPy data onto the backend, in the entry's float dtype unless ``dtype`` says otherwise."""
        return self.backend.asarray(np.asarray(data), dtype=self.dtype if dtype is None else dtype)

    def rounded(self, data: Any) -> np.ndarray:
        """``data`` rounded to the entry's dtype and back to float64: what the backend actually sees."""
        return np.asarray(data).astype(self.dtype_name).astype(np.float64)

    def np(self, x: Any) -> np.ndarray:
        return _xp.to_numpy(x)

    def check(self, out: Any, dtype: Any = None, shape: tuple | None = None) -> None:
        """The output stays in this namespace, on this device, in this dtype (and shape)."""
        assert _xp.namespace_of(out) is self.xp, f"namespace changed: {type(out)}"
        assert _xp.device_of(out) == self.device, f"device changed: {_xp.device_of(out)} != {self.device}"
        want = self.dtype if dtype is None else dtype
        assert out.dtype == want, f"dtype changed: {out.dtype} != {want}"
        if shape is not None:
            assert tuple(out.shape) == tuple(shape)

    def assert_close(self, out: Any, expected: Any, **tol: Any) -> None:
        self.check(out)
        np.testing.assert_allclose(self.np(out).astype(np.float64), expected, **{**self.tol, **tol})


def _required() -> set[str]:
    return {n.strip() for n in os.environ.get("XPNET_REQUIRE_BACKENDS", "").split(",") if n.strip()}


def _case(request: pytest.FixtureRequest) -> Case:
    entry: Entry = request.param
    try:
        backend = xpnet.get_backend(entry.spec)
        backend.float_dtype(entry.dtype)
    except (xpnet.BackendUnavailableError, xpnet.DTypeError) as exc:
        if not entry.gpu and _matches(entry, sorted(_required())):
            pytest.fail(f"{entry.id} is required here (XPNET_REQUIRE_BACKENDS) but unavailable: {exc}")
        if entry.gpu and os.environ.get("XPNET_REQUIRE_GPU") == "1":  # scripts/gpu_check.sh on its GPU machine
            pytest.fail(f"{entry.id} is required here (XPNET_REQUIRE_GPU=1) but unavailable: {exc}")
        pytest.skip(f"{entry.id} unavailable: {exc}")
    return Case(entry, backend)


@pytest.fixture
def xpb(request: pytest.FixtureRequest) -> Case:
    """Every entry of the matrix."""
    return _case(request)


@pytest.fixture
def xpb64(request: pytest.FixtureRequest) -> Case:
    """The float64 entries of the matrix (gradient checks, agreement references)."""
    return _case(request)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def cupy1(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The fake CuPy of ``tests/fake_cupy.py`` installed (two simulated devices); yields the backend ``cupy:1``."""
    import fake_cupy

    fake_cupy.install(monkeypatch)
    try:
        yield xpnet.get_backend("cupy:1")
    finally:
        fake_cupy.clear_compat_caches()  # no answer about the fake's classes outlives the test

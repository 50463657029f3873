"""A NumPy-backed stand-in for CuPy with two simulated CUDA devices, for tests on machines without a GPU.

Real CuPy allocates every new array, and launches every kernel, on the *current* device (``cupy.cuda.Device(i)``
as a context manager makes ``i`` current); array-api-compat's CuPy ``zeros``/``empty``/``arange`` ignore their
``device=`` argument and do the same. Code that forgets to make a ``cupy:1`` network's device current therefore
allocates on device 0 and runs kernels there, which only shows on a machine with two GPUs. This module makes it
show on the CPU: it is registered as ``cupy`` in ``sys.modules`` (see :func:`install`), array-api-compat's
``array_api_compat.cupy`` is imported afresh on top of it, and every allocation and kernel is logged with the
device that was current then.

What is simulated, as CuPy behaves:

* ``cupy.ndarray``: a wrapper around a NumPy array, not a NumPy subclass (array-api-compat must see a CuPy
  array), with a ``device`` (the device current when it was allocated; views keep their base's), NumPy's
  operators and methods, ``get()``, and no implicit conversion to NumPy (``numpy.asarray`` of it raises, as
  CuPy's does);
* every public NumPy function and ufunc, under CuPy's names, taking and returning such arrays (``out=`` writes
  into the given array); a reduction to a scalar gives a 0-d array, as CuPy does;
* ``cupy.cuda.Device`` (a context manager; ``id``; equality by id; ``synchronize``), ``cupy.cuda.runtime``
  (two devices, their properties, ``memGetInfo``), ``cupy.cuda.memory.OutOfMemoryError``.

Every call that makes a new array or runs a kernel appends an :class:`Event` to :data:`EVENTS`: the operation,
the device current then, and the devices of its array operands. :func:`strays` lists the events of a block
that were not all on one expected device.
"""

from __future__ import annotations

import importlib
import numbers
import shutil
import sys
import threading
import traceback
import types
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

__all__ = ["EVENTS", "Event", "clear_compat_caches", "install", "strays"]

DEVICE_COUNT = 2


@dataclass
class Event:
    """One allocation or kernel: ``op`` ran while device ``current`` was current, on operands on ``operands``."""

    op: str
    current: int
    operands: tuple[int, ...]
    where: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.op} on device {self.current} (operands on {list(self.operands)}) at {' <- '.join(self.where)}"


EVENTS: list[Event] = []
_STATE = threading.local()


def _current() -> int:
    stack = getattr(_STATE, "stack", None)
    return stack[-1] if stack else 0  # CuPy's current device is 0 until one is made current


def _where() -> list[str]:
    # The innermost frames of xpnet (not of this module, NumPy or array-api-compat): where the stray came from.
    frames = [f for f in traceback.extract_stack()[:-3] if "/xpnet/" in f.filename and "fake_cupy" not in f.filename]
    return [f"{f.filename.rsplit('/xpnet/', 1)[1]}:{f.lineno} {f.name}" for f in frames[-3:][::-1]]


def _log(op: str, operands: list[ndarray]) -> None:
    EVENTS.append(Event(op, _current(), tuple(a.device.id for a in operands), _where()))


def strays(events: list[Event], device: int) -> list[Event]:
    """The events that did not run on ``device``, or took an operand from another device."""
    return [e for e in events if e.current != device or any(d != device for d in e.operands)]


# ----------------------------------------------------------------------------------------------- devices
class Device:
    """``cupy.cuda.Device``: ``with Device(1):`` makes device 1 current for the block (nested blocks restore)."""

    def __init__(self, device: Any = None) -> None:
        if device is None:
            device = _current()
        index = device.id if isinstance(device, Device) else int(device)
        if not 0 <= index < DEVICE_COUNT:
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {index}")
        self.id = index

    def __enter__(self) -> Device:
        stack = getattr(_STATE, "stack", None)
        if stack is None:
            stack = _STATE.stack = []
        stack.append(self.id)
        return self

    def __exit__(self, *exc: Any) -> bool:
        _STATE.stack.pop()
        return False

    def use(self) -> None:
        stack = getattr(_STATE, "stack", None)
        if stack is None:
            stack = _STATE.stack = []
        if stack:
            stack[-1] = self.id
        else:
            stack.append(self.id)

    def synchronize(self) -> None:
        pass

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("cuda", self.id))

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class _Runtime:
    @staticmethod
    def getDeviceCount() -> int:
        return DEVICE_COUNT

    @staticmethod
    def getDeviceProperties(index: int) -> dict[str, Any]:
        return {"name": b"Fake GPU (NumPy)", "totalGlobalMem": 16 * 2**30}

    @staticmethod
    def memGetInfo() -> tuple[int, int]:
        return 8 * 2**30, 16 * 2**30

    @staticmethod
    def runtimeGetVersion() -> int:
        return 12080


class OutOfMemoryError(MemoryError):
    """``cupy.cuda.memory.OutOfMemoryError``."""


# ------------------------------------------------------------------------------------------------ arrays
def _unwrap(x: Any, found: list[ndarray]) -> Any:
    if isinstance(x, ndarray):
        found.append(x)
        return x._a
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, found) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v, found) for k, v in x.items()}
    return x


def _wrap(result: Any, operands: list[ndarray]) -> Any:
    if isinstance(result, np.ndarray):
        for a in operands:  # an ``out=`` operand or the operand itself comes back as it was passed
            if result is a._a:
                return a
        for a in operands:  # a view keeps its base's device
            if np.may_share_memory(result, a._a):
                return ndarray(result, a.device)
        return ndarray(result, Device(_current()))
    if isinstance(result, np.generic):  # CuPy reductions give 0-d arrays, not scalars
        return ndarray(np.asarray(result), Device(_current()))
    if isinstance(result, tuple):
        return tuple(_wrap(r, operands) for r in result)
    if isinstance(result, list):
        return [_wrap(r, operands) for r in result]
    return result


def _is_view_only(result: Any, operands: list[ndarray]) -> bool:
    """Whether ``result`` only views its operands (reshape, transpose, slicing): no kernel, no allocation."""
    results = result if isinstance(result, (tuple, list)) else (result,)
    arrays = [r for r in results if isinstance(r, np.ndarray)]
    return bool(arrays) and len(arrays) == len(results) and all(
        any(r is not a._a and np.may_share_memory(r, a._a) for a in operands) for r in arrays)


def _call(op: str, fn: Any, args: Any, kwargs: Any) -> Any:
    operands: list[ndarray] = []
    a_args = _unwrap(args, operands)
    a_kwargs = _unwrap(kwargs, operands)
    result = fn(*a_args, **a_kwargs)
    if not _is_view_only(result, operands):
        _log(op, operands)
    return _wrap(result, operands)


class ndarray(np.lib.mixins.NDArrayOperatorsMixin):  # noqa: N801 (CuPy's name)
    """``cupy.ndarray``: a NumPy array on a simulated device."""

    __array_priority__ = 100

    def __init__(self, a: np.ndarray, device: Device) -> None:
        self._a = a
        self.device = device

    # NumPy's protocols: operators and NumPy functions on these arrays run the fake's way, logged.
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        return _call(name, getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _call(func.__name__, func, args, kwargs)

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
                        "NumPy array explicitly.")

    # Attributes and methods.
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: _wrap(self._a.T, [self]))
    mT = property(  # noqa: N815 (the Array API's name)
        lambda self: _wrap(np.swapaxes(self._a, -1, -2), [self]))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._a, name)
        if not callable(attr):
            return attr

        def method(*args: Any, **kwargs: Any) -> Any:
            operands: list[ndarray] = [self]
            a_args = _unwrap(args, operands)
            a_kwargs = _unwrap(kwargs, operands)
            result = attr(*a_args, **a_kwargs)
            if not _is_view_only(result, operands):
                _log(f"ndarray.{name}", operands)
            return _wrap(result, operands)

        return method

    def __getitem__(self, key: Any) -> Any:
        return _call("getitem", np.ndarray.__getitem__, (self, key), {})

    def __setitem__(self, key: Any, value: Any) -> None:
        operands: list[ndarray] = [self]
        self._a[_unwrap(key, operands)] = _unwrap(value, operands)
        _log("setitem", operands)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    # Device-to-host transfers: CuPy reads from the array's own device, whatever is current.
    def get(self, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
        return self._a.copy()

    def item(self) -> Any:
        return self._a.item()

    def tolist(self) -> Any:
        return self._a.tolist()

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __index__(self) -> int:
        return self._a.__index__()

    def __bool__(self) -> bool:
        return bool(self._a)

    def __complex__(self) -> complex:
        return complex(self._a)

    def __repr__(self) -> str:
        return f"fake_cupy.ndarray({self._a!r}, device={self.device.id})"

    def __dlpack_device__(self) -> tuple[int, int]:
        return (2, self.device.id)  # kDLCUDA

    def __array_namespace__(self, api_version: Any = None) -> Any:
        import array_api_compat.cupy

        return array_api_compat.cupy


def _asarray(obj: Any, dtype: Any = None, order: Any = None, **kwargs: Any) -> ndarray:
    """``cupy.asarray``: host data or another device's array copied to the current device (no copy when it is
    already there in that dtype)."""
    if isinstance(obj, ndarray):
        if obj.device.id == _current() and (dtype is None or np.dtype(dtype) == obj.dtype):
            return obj
        _log("asarray", [obj])
        return ndarray(np.array(obj._a, dtype=dtype, order=order or "K"), Device(_current()))
    _log("asarray", [])
    return ndarray(np.array(_unwrap(obj, []), dtype=dtype, order=order or "K"), Device(_current()))


def _array(obj: Any, dtype: Any = None, copy: Any = True, order: str = "K", **kwargs: Any) -> ndarray:
    if not copy:
        return _asarray(obj, dtype)
    operands: list[ndarray] = []
    _log("array", [obj] if isinstance(obj, ndarray) else [])
    return ndarray(np.array(_unwrap(obj, operands), dtype=dtype, order=order), Device(_current()))


class _Function:
    """A NumPy function or ufunc under CuPy's name, on fake arrays, logged."""

    def __init__(self, name: str, fn: Any) -> None:
        self.__name__ = self.__qualname__ = name
        self._fn = fn
        self.__doc__ = getattr(fn, "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self.__name__, self._fn, args, kwargs)

    def __getattr__(self, name: str) -> Any:  # ufunc attributes: reduce, nin, ...
        attr = getattr(self._fn, name)
        if callable(attr):
            return _Function(f"{self.__name__}.{name}", attr)
        return attr


class ElementwiseKernel:
    """``cupy.ElementwiseKernel`` run on the CPU: the kernel's C body is compiled by the host's C compiler (one
    shared library per kernel, loaded with ctypes) and run once per element of the broadcast operands. Only what
    xpnet's kernels use: parameters of type ``T`` (the arrays' float dtype), arrays and scalars as inputs, arrays
    as outputs (which the body may also read). C semantics, not CUDA's: no FMA contraction, the C library's
    ``exp``/``log1p``; the body's arithmetic and the caller's argument order are what this checks."""

    _built: ClassVar[dict[str, Any]] = {}  # compiled libraries by source, for the process

    def __init__(self, in_params: str, out_params: str, operation: str, name: str = "kernel") -> None:
        def names(params: str) -> list[str]:
            out = []
            for p in params.split(","):
                kind, var = p.split()
                if kind != "T":
                    raise NotImplementedError(f"fake ElementwiseKernel: only T parameters, got {p!r}")
                out.append(var)
            return out

        self.ins, self.outs, self.body, self.name = names(in_params), names(out_params), operation, name

    def _library(self, ctype: str, scalar: list[bool]) -> Any:
        import ctypes
        import subprocess
        import tempfile

        params = [f"T {v}" if sc else f"const T *{v}_p" for v, sc in zip(self.ins, scalar, strict=True)]
        params += [f"T *{v}_p" for v in self.outs]
        loads = [f"T {v} = {v}_p[i];" for v, sc in zip(self.ins, scalar, strict=True) if not sc]
        loads += [f"T {v} = {v}_p[i];" for v in self.outs]
        stores = [f"{v}_p[i] = {v};" for v in self.outs]
        source = (f"#include <math.h>\ntypedef {ctype} T;\nvoid kernel(long n, {', '.join(params)}) {{\n"
                  f"  for (long i = 0; i < n; i++) {{ {' '.join(loads)} {{ {self.body} }} {' '.join(stores)} }}\n}}\n")
        lib = self._built.get(source)
        if lib is None:
            folder = tempfile.mkdtemp(prefix="fake_cupy_kernel_")
            with open(f"{folder}/k.c", "w") as fh:
                fh.write(source)
            subprocess.run(["cc", "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-o", f"{folder}/k.so",
                            f"{folder}/k.c", "-lm"], check=True, capture_output=True)
            lib = self._built[source] = ctypes.CDLL(f"{folder}/k.so")
            shutil.rmtree(folder, ignore_errors=True)  # the loaded library stays mapped
        return lib

    def __call__(self, *args: Any) -> None:
        import ctypes

        if len(args) != len(self.ins) + len(self.outs):
            raise TypeError(f"{self.name}: {len(self.ins)} inputs and {len(self.outs)} outputs, got {len(args)} "
                            "arguments")
        operands = [a for a in args if isinstance(a, ndarray)]
        _log(f"ElementwiseKernel {self.name}", operands)
        dtype = operands[0].dtype
        if any(a.dtype != dtype for a in operands) or dtype not in (np.float32, np.float64):
            raise TypeError(f"{self.name}: T must be one float dtype, got {[str(a.dtype) for a in operands]}")
        ctype = "double" if dtype == np.float64 else "float"
        c_scalar = ctypes.c_double if dtype == np.float64 else ctypes.c_float
        outs = args[len(self.ins):]
        shape = np.broadcast_shapes(*(a.shape for a in operands))
        if any(not isinstance(o, ndarray) or o.shape != shape for o in outs):
            raise ValueError(f"{self.name}: every output must be an array of the broadcast shape {shape}")
        scalar = [not isinstance(a, ndarray) for a in args[: len(self.ins)]]
        keep, call = [], []
        for a, sc in zip(args[: len(self.ins)], scalar, strict=True):
            if sc:
                call.append(c_scalar(float(a)))
            else:
                buf = np.ascontiguousarray(np.broadcast_to(a._a, shape))
                keep.append(buf)
                call.append(buf.ctypes.data_as(ctypes.c_void_p))
        work = []
        for o in outs:  # outputs may be views (a strided scratch): run on contiguous copies, write back
            buf = np.ascontiguousarray(o._a)
            work.append(buf)
            call.append(buf.ctypes.data_as(ctypes.c_void_p))
        self._library(ctype, scalar).kernel(ctypes.c_long(int(np.prod(shape))), *call)
        for o, buf in zip(outs, work, strict=True):
            if buf is not o._a:
                o._a[...] = buf


def _module(name: str, source: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    public = []
    for key in dir(source):
        if key.startswith("_"):
            continue
        value = getattr(source, key)
        if isinstance(value, types.ModuleType):
            continue
        if isinstance(value, (type, numbers.Number, np.dtype, str)) or value is None:
            setattr(mod, key, value)  # dtypes, scalar types, constants
        elif callable(value):
            setattr(mod, key, _Function(key, value))
        else:
            continue
        public.append(key)
    mod.__all__ = public
    return mod


def build() -> dict[str, types.ModuleType]:
    """The fake ``cupy`` package and its submodules, by module name."""
    cupy = _module("cupy", np)
    cupy.ndarray = ndarray
    cupy.asarray = _asarray
    cupy.array = _array
    cupy.bool_ = np.bool_
    cupy.__version__ = "14.0.0.fake"
    cupy.ElementwiseKernel = ElementwiseKernel
    cupy.__path__ = []  # a package: ``import cupy.cuda`` works
    linalg = _module("cupy.linalg", np.linalg)
    fft = _module("cupy.fft", np.fft)
    memory = types.ModuleType("cupy.cuda.memory")
    memory.OutOfMemoryError = OutOfMemoryError
    cuda = types.ModuleType("cupy.cuda")
    cuda.__path__ = []
    device = types.ModuleType("cupy.cuda.device")
    device.Device = Device
    cuda.device = device
    cuda.Device = Device
    cuda.runtime = _Runtime
    cuda.memory = memory
    cuda.Stream = type("Stream", (), {})
    cuda.ExternalStream = cuda.Stream
    cupy.cuda, cupy.linalg, cupy.fft = cuda, linalg, fft
    cupy.get_default_memory_pool = lambda: types.SimpleNamespace(free_all_blocks=lambda: None,
                                                                 used_bytes=lambda: 0, total_bytes=lambda: 0)
    return {"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.memory": memory, "cupy.cuda.device": device,
            "cupy.cuda.runtime": _Runtime, "cupy.linalg": linalg, "cupy.fft": fft}


def clear_compat_caches() -> None:
    """Empty array-api-compat's caches of class -> namespace answers (they would hand a later test the wrapper
    of an earlier one's fake, or a real CuPy's class the fake's wrapper)."""
    from array_api_compat.common import _helpers

    for value in vars(_helpers).values():
        if hasattr(value, "cache_clear"):
            value.cache_clear()


def install(monkeypatch: Any) -> types.ModuleType:
    """Register the fake as ``cupy`` for one test (``monkeypatch`` undoes it): array-api-compat's CuPy wrapper
    is imported afresh on top of it, xpnet's backend cache is emptied, and :data:`EVENTS` is cleared. Returns the
    wrapper module ``array_api_compat.cupy``."""
    import array_api_compat

    from xpnet.device import backend

    for name, module in build().items():
        monkeypatch.setitem(sys.modules, name, module)
    # array-api-compat's CuPy wrapper, imported afresh on top of the fake; monkeypatch puts back whatever these
    # names held before (nothing, where no real CuPy was imported), so the wrapper does not outlive the test.
    import pkgutil

    names = ["array_api_compat.cupy"] + [f"array_api_compat.cupy.{m.name}" for m in
                                         pkgutil.iter_modules([f"{array_api_compat.__path__[0]}/cupy"])]
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)
        del sys.modules[name]
    monkeypatch.setattr(backend, "_CACHE", {})
    clear_compat_caches()
    wrapper = importlib.import_module("array_api_compat.cupy")
    monkeypatch.setattr(array_api_compat, "cupy", wrapper, raising=False)
    EVENTS.clear()
    return wrapper

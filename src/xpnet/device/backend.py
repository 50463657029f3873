"""The run-time backend selector: which array library, on which device.

A *spec* string names a backend and optionally a device::

    auto                      CuPy when it is installed and a CUDA device really runs a kernel, else NumPy
    numpy                     NumPy on the CPU
    cupy, cupy:1              CuPy on CUDA device 0 / 1
    torch, torch:cpu,         PyTorch; plain "torch" means cuda:0 when CUDA works, else cpu
    torch:cuda, torch:cuda:0
    jax, jax:cpu, jax:gpu:0   JAX; plain "jax" means JAX's default device
    array_api_strict,         the strict reference implementation, on CPU_DEVICE or one of its simulated
    array_api_strict:device1  devices (device1, device2, no_float64, no_x64); "strict" is an alias

Precedence when a function takes ``backend=None``: an explicit argument, then the innermost
:func:`use_backend` context, then the ``XPNET_BACKEND`` environment variable, then ``"auto"``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import BackendSpecError, BackendUnavailableError, DTypeError, InputTypeError
from . import xp as _xp

__all__ = [
    "ENV_VAR",
    "Backend",
    "BackendInfo",
    "backends_report",
    "clear_backend_cache",
    "format_backends_report",
    "get_backend",
    "use_backend",
]

ENV_VAR = "XPNET_BACKEND"
LIBRARIES = ("numpy", "cupy", "torch", "jax", "array_api_strict")
STRICT_DEVICES = ("CPU_DEVICE", "device1", "device2", "no_float64", "no_x64")
VALID_SPECS = (
    "auto",
    "numpy",
    "cupy",
    "cupy:N",
    "torch",
    "torch:cpu",
    "torch:cuda",
    "torch:cuda:N",
    "jax",
    "jax:cpu",
    "jax:gpu",
    "jax:gpu:N",
    "array_api_strict",
    *(f"array_api_strict:{d}" for d in STRICT_DEVICES),
)
_ALIASES = {"np": "numpy", "strict": "array_api_strict", "array-api-strict": "array_api_strict", "pytorch": "torch"}
_INSTALL_HINT = {
    "cupy": 'pip install "xpnet[cuda12]" (CUDA 12) or "xpnet[cuda13]" (CUDA 13)',
    "torch": 'pip install "xpnet[torch]"',
    "jax": 'pip install "xpnet[jax]"',
    "array_api_strict": 'pip install "xpnet[strict]"',
    "numpy": "pip install numpy",
}


class Backend:
    """An array library and a device: where xpnet computes.

    Attributes
    ----------
    name : str
        The library: ``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"`` or ``"array_api_strict"``.
    spec : str
        The canonical spec, e.g. ``"torch:cpu"`` or ``"cupy:0"``; ``get_backend(b.spec)`` gives ``b`` back.
    xp : module
        The Array API namespace (the array_api_compat wrapper for NumPy, CuPy and PyTorch).
    device : object
        The library's device object; every array this backend creates lives there.
    """

    __slots__ = ("device", "name", "spec", "xp")

    def __init__(self, name: str, spec: str, xp: Any, device: Any) -> None:
        self.name = name
        self.spec = spec
        self.xp = xp
        self.device = device

    def __repr__(self) -> str:
        return f"Backend({self.spec!r}, device={self.device!r}, float64={self.supports_float64})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backend) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # A Backend holds a module, which cannot be pickled; its spec resolves it again (estimators are
        # pickled by joblib and scikit-learn's tools, which must work whatever they compute on).
        return (get_backend, (self.spec,))

    @property
    def supports_float64(self) -> bool:
        """Whether this device computes in float64."""
        return _xp.supports_float64(self.xp, self.device)

    @property
    def default_float_dtype(self) -> Any:
        """float64 where the device has it, else float32 (xpnet's dtype policy)."""
        return _xp.default_float_dtype(self.xp, self.device)

    def float_dtype(self, dtype: Any = None) -> Any:
        """Resolve ``dtype`` (``"float32"``, ``"float64"``, any library's dtype object, or ``None`` for the
        default) to this namespace's dtype; raises :class:`~xpnet.errors.DTypeError` if the device lacks it."""
        if dtype is None:
            return self.default_float_dtype
        return _xp.resolve_float_dtype(self.xp, self.device, dtype)

    def _any_dtype(self, dtype: Any) -> Any:
        name = _xp.dtype_name(self.xp, dtype)
        if name in _xp.FLOAT_DTYPE_NAMES:
            return self.float_dtype(name)
        resolved = getattr(self.xp, name, None)
        if resolved is None:
            raise DTypeError(f"unknown dtype {dtype!r} for backend {self.spec}")
        return resolved

    def owns(self, x: Any) -> bool:
        """True when ``x`` is an array of this backend's namespace on this backend's device."""
        if not _xp.is_array(x):
            return False
        try:
            return _xp.namespace_of(x) is self.xp and _xp.device_of(x) == self.device
        except Exception:
            return False

    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """Move ``data`` (NumPy array, nested list, scalar or any supported array) onto this backend.

        This is the explicit boundary where copies between libraries and devices are allowed.

        Parameters
        ----------
        data : array_like
        dtype : str or dtype, optional
            ``None`` keeps the data's dtype, except that float64 data becomes float32 on a device without
            float64 (the documented fallback).

        Returns
        -------
        array of ``self.xp`` on ``self.device``, same shape as ``data``.
        """
        with self.activate():  # CuPy casts and copies on the current device: this backend's
            return self._asarray(data, dtype)

    def _asarray(self, data: Any, dtype: Any) -> Any:
        import numpy as np

        xp = self.xp
        target = None if dtype is None else self._any_dtype(dtype)
        if _xp.is_array(data) and not isinstance(data, np.ndarray):
            ns = _xp.namespace_of(data)
            if ns is xp:
                arr = _xp.detached(data)
                self._check_numeric(arr.dtype, xp.isdtype(arr.dtype, ("bool", "integral", "real floating")))
                if _xp.device_of(arr) != self.device:
                    arr = _xp.to_device(arr, self.device)
                if target is not None and arr.dtype != target:
                    arr = xp.astype(arr, target)
                return arr
            data = _xp.to_numpy(data)
        try:
            host = np.asarray(data)
            # Contiguous one way or the other: torch cannot wrap NumPy views with negative strides (X[:, ::-1]),
            # but a transposed view (X_rows.T, the lecture's layout of sample-major data) stays a view: copying it
            # into C order would copy the dataset, and the engine would copy it back to rows.
            if not (host.flags.c_contiguous or host.flags.f_contiguous):
                host = np.ascontiguousarray(host)
        except (ValueError, TypeError) as exc:
            raise InputTypeError(f"cannot make an array of this data ({exc}); pass a rectangular array of numbers") \
                from exc
        self._check_numeric(host.dtype, host.dtype.kind in "biuf")
        if target is None and host.dtype == np.float64 and not self.supports_float64:
            target = self.float_dtype("float32")
        return xp.asarray(host, dtype=target, device=self.device)

    def _check_numeric(self, dtype: Any, ok: bool) -> None:
        if not ok:
            raise InputTypeError(
                f"cannot use data of dtype {dtype} on {self.spec}: xpnet needs real numbers "
                "(bool, integer or float); convert strings, objects or complex numbers first"
            )

    def to_numpy(self, x: Any) -> Any:
        """Copy ``x`` to a NumPy array on the host (shape and dtype kept)."""
        return _xp.to_numpy(x)

    def activate(self) -> Any:
        """A context manager that makes this backend's device current where the library has such a notion
        (CuPy launches kernels on the *current* device); a no-op elsewhere."""
        return _xp.device_context(self.xp, self.device)

    def synchronize(self, *arrays: Any) -> None:
        """Wait until queued device work is done (a no-op on the CPU).

        JAX has no device-wide barrier: pass the arrays to wait for (``synchronize(out)``); called without
        arrays it returns at once on JAX."""
        if self.name == "cupy":
            self.device.synchronize()
        elif self.name == "torch" and getattr(self.device, "type", "cpu") == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        elif self.name == "jax":
            for a in arrays:
                a.block_until_ready()


def _unavailable(name: str, why: str, fix: str | None = None, spec: str | None = None) -> BackendUnavailableError:
    """The error for backend ``name``; the message names ``spec`` (the whole spec given, e.g. ``torch:cuda``)
    when there is one, so that a user finds what to change."""
    fix = fix if fix is not None else _INSTALL_HINT[name]
    return BackendUnavailableError(f"backend '{spec or name}' cannot be used: {why}. {fix}".rstrip(". ") + ".")


def _import(name: str, module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _unavailable(name, f"{module} is not installed ({exc})", f"Install it: {_INSTALL_HINT[name]}") from exc
    except Exception as exc:  # a broken install (missing shared library, ABI mismatch) must not crash "auto"
        raise _unavailable(name, f"importing {module} failed: {type(exc).__name__}: {exc}", "Reinstall it") from exc


def _parse_index(name: str, text: str) -> int:
    if not text.isdigit():
        raise BackendSpecError(f"'{name}:{text}': the device index must be a non-negative integer")
    return int(text)


def _load_numpy(device: str | None) -> Backend:
    if device not in (None, "", "cpu"):
        raise BackendSpecError(f"numpy runs on the CPU only; got device {device!r} (use 'numpy')")
    _import("numpy", "numpy")
    import array_api_compat.numpy as xp

    return Backend("numpy", "numpy", xp, "cpu")


def _load_cupy(device: str | None) -> Backend:
    if device and device.startswith("cuda:"):
        device = device[5:]
    index = 0 if not device else _parse_index("cupy", device)
    cupy = _import("cupy", "cupy")
    fix = "Use the CPU instead (backend='numpy') or check the NVIDIA driver with nvidia-smi"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise _unavailable("cupy", f"no CUDA device could be used ({type(exc).__name__}: {exc})", fix) from exc
    if count == 0:
        raise _unavailable("cupy", "no CUDA device found", fix)
    if index >= count:
        raise _unavailable("cupy", f"CUDA device {index} does not exist (this machine has {count}: 0..{count - 1})",
                           f"Use cupy:0 .. cupy:{count - 1}")
    try:
        with cupy.cuda.Device(index):
            # A tiny kernel: an installed CuPy with a broken driver/toolkit only fails when something runs.
            probe = float((cupy.arange(4, dtype=cupy.float32) * 2).sum())
        if probe != 12.0:
            raise RuntimeError(f"probe kernel returned {probe}, expected 12.0")
    except Exception as exc:
        raise _unavailable("cupy", f"CUDA device {index} failed to run a kernel ({type(exc).__name__}: {exc})",
                           fix) from exc
    import array_api_compat.cupy as xp

    return Backend("cupy", f"cupy:{index}", xp, cupy.cuda.Device(index))


def _load_torch(device: str | None) -> Backend:
    torch = _import("torch", "torch")
    if not device:
        # "torch" alone means cuda:0 when CUDA really works (the probe kernel runs), else the CPU.
        if torch.cuda.is_available():
            try:
                return _load_torch("cuda:0")
            except BackendUnavailableError:
                pass
        device = "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise BackendSpecError(
            f"'torch:{device}' is not a torch device ({exc}); use torch:cpu or torch:cuda:N"
        ) from exc
    if dev.type == "cpu":
        dev = torch.device("cpu")  # tensors report "cpu", never "cpu:0": keep equality with their device
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", 0)
        if not torch.cuda.is_available():
            why = ("this torch build has no CUDA support" if torch.version.cuda is None
                   else "no CUDA device found")
            raise _unavailable("torch", why, "Use torch:cpu, or install a CUDA build of torch on a machine with a GPU",
                               spec=f"torch:{device}")
        count = torch.cuda.device_count()
        if dev.index >= count:
            raise _unavailable("torch", f"CUDA device {dev.index} does not exist (this machine has {count})",
                               f"Use torch:cuda:0 .. torch:cuda:{count - 1}", spec=f"torch:{device}")
    try:
        float(torch.ones(4, device=dev).sum())
    except Exception as exc:
        raise _unavailable("torch", f"device {dev} failed to run a kernel ({type(exc).__name__}: {exc})",
                           "Use torch:cpu", spec=f"torch:{device}") from exc
    import array_api_compat.torch as xp

    spec = "torch:cpu" if dev.type == "cpu" else f"torch:{dev}"
    return Backend("torch", spec, xp, dev)


# JAX's GPU client reserves 75% of the GPU's memory when it starts (XLA_PYTHON_CLIENT_PREALLOCATE's default),
# which starves CuPy and torch in the same process. xpnet starts it allocating on demand instead, unless the user
# set the variable. jaxlib reads it when the client is created (the first jax.devices()), not at import.
JAX_MEMORY_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def _jax_memory_on_demand() -> None:
    """Set :data:`JAX_MEMORY_ENV` in ``os.environ`` where the user has not set those variables."""
    for name, value in JAX_MEMORY_ENV.items():
        os.environ.setdefault(name, value)


def _load_jax(device: str | None) -> Backend:
    _jax_memory_on_demand()
    jax = _import("jax", "jax")
    if not device:
        dev = jax.devices()[0]
    else:
        platform, _, idx = device.partition(":")
        platform = {"cuda": "gpu"}.get(platform, platform)
        index = _parse_index("jax", idx) if idx else 0
        try:
            devices = jax.devices(platform)
        except RuntimeError as exc:
            raise _unavailable("jax", f"no JAX '{platform}' device ({exc})", "Use jax:cpu", spec=f"jax:{device}") \
                from exc
        if index >= len(devices):
            raise _unavailable("jax", f"JAX has {len(devices)} '{platform}' device(s); index {index} does not exist",
                               f"Use jax:{platform}:0", spec=f"jax:{device}")
        dev = devices[index]
    import jax.numpy as xp

    return Backend("jax", f"jax:{dev.platform}:{dev.id}", xp, dev)


def _load_strict(device: str | None) -> Backend:
    strict = _import("array_api_strict", "array_api_strict")
    name = device or "CPU_DEVICE"
    known = [d.__str__().split("'")[1] for d in strict.__array_namespace_info__().devices()]
    try:
        dev = strict.Device(name)
    except Exception as exc:
        raise BackendSpecError(f"array_api_strict has no device {name!r}; its devices are {known}") from exc
    return Backend("array_api_strict", f"array_api_strict:{name}", strict, dev)


_LOADERS = {
    "numpy": _load_numpy,
    "cupy": _load_cupy,
    "torch": _load_torch,
    "jax": _load_jax,
    "array_api_strict": _load_strict,
}

# Successful and failed resolutions are cached: "auto" probes CuPy once per process, not once per call.
_CACHE: dict[str, Backend | BackendUnavailableError] = {}
_CURRENT: contextvars.ContextVar[Backend | None] = contextvars.ContextVar("xpnet_backend", default=None)


def clear_backend_cache() -> None:
    """Forget every resolved backend (e.g. after installing CuPy in a running session)."""
    _CACHE.clear()


def _split(spec: str) -> tuple[str, str | None]:
    text = spec.strip()
    name, _, device = text.partition(":")
    name = name.strip().lower()
    name = _ALIASES.get(name, name)
    if name != "auto" and name not in LIBRARIES:
        raise BackendSpecError(f"unknown backend spec {spec!r}; valid specs: {', '.join(VALID_SPECS)}")
    if name == "auto" and device:
        raise BackendSpecError(f"'auto' takes no device (got {spec!r}); name the backend, e.g. 'cupy:1'")
    return name, (device.strip() or None)


def _resolve(spec: str) -> Backend:
    name, device = _split(spec)
    key = f"{name}:{device}" if device else name
    cached = _CACHE.get(key)
    if cached is None:
        if name == "auto":
            try:
                cached = _resolve("cupy")
            except BackendUnavailableError:
                cached = _resolve("numpy")
        else:
            try:
                cached = _LOADERS[name](device)
            except BackendUnavailableError as exc:
                cached = exc
        _CACHE[key] = cached
    if isinstance(cached, BackendUnavailableError):
        raise BackendUnavailableError(str(cached))
    return cached


def get_backend(spec: str | Backend | None = None) -> Backend:
    """Resolve a backend.

    Parameters
    ----------
    spec : str, Backend or None
        A spec string (see the module docstring), a :class:`Backend` (returned as is) or ``None``:
        the innermost :func:`use_backend` context, else ``$XPNET_BACKEND``, else ``"auto"``.

    Raises
    ------
    BackendSpecError
        The spec is malformed; the message lists the valid specs.
    BackendUnavailableError
        The backend cannot be used here; the message says why and how to fix it.
    """
    if isinstance(spec, Backend):
        return spec
    if spec is None:
        current = _CURRENT.get()
        if current is not None:
            return current
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            try:
                return _resolve(env)
            except BackendSpecError as exc:
                raise BackendSpecError(f"environment variable {ENV_VAR}={env!r}: {exc}") from exc
            except BackendUnavailableError as exc:
                raise BackendUnavailableError(
                    f"environment variable {ENV_VAR}={env!r}: {exc} (or unset {ENV_VAR} to use 'auto')"
                ) from exc
        spec = "auto"
    if not isinstance(spec, str):
        raise BackendSpecError(f"backend must be a spec string or a Backend, got {type(spec).__name__}")
    return _resolve(spec)


def backend_of(x: Any) -> Backend:
    """The backend an array lives on: its library and device (``torch:cpu``, ``cupy:1``, ...).

    Raises :class:`~xpnet.errors.InputTypeError` for an object that is not an array of a supported library.
    """
    if not _xp.is_array(x):
        raise InputTypeError(f"expected an array, got {type(x).__module__}.{type(x).__name__}")
    if _xp.is_numpy_array(x):
        return _resolve("numpy")
    xp = _xp.namespace_of(x)
    device = _xp.device_of(x)
    for name in ("cupy", "torch", "jax", "array_api_strict"):
        if name in xp.__name__:
            break
    else:
        raise InputTypeError(f"arrays of {xp.__name__} are not supported; use numpy, cupy, torch, jax or "
                             "array_api_strict arrays")
    if name == "cupy":
        return _resolve(f"cupy:{device.id}")
    if name == "torch":
        return _resolve("torch:cpu" if device.type == "cpu" else f"torch:{device}")
    if name == "jax":
        return _resolve(f"jax:{device.platform}:{device.id}")
    return _resolve(f"array_api_strict:{str(device).split(chr(39))[1]}")


@contextlib.contextmanager
def use_backend(spec: str | Backend) -> Iterator[Backend]:
    """Make ``spec`` the default backend inside a ``with`` block (overrides ``$XPNET_BACKEND``).

    Contexts nest and are local to the thread/async task. Yields the resolved :class:`Backend`.
    """
    backend = get_backend(spec if spec is not None else "auto")
    token = _CURRENT.set(backend)
    try:
        yield backend
    finally:
        _CURRENT.reset(token)


@dataclass
class BackendInfo:
    """One row of :func:`backends_report`."""

    name: str
    usable: bool
    version: str | None
    devices: list[str] = field(default_factory=list)
    float64: bool | None = None
    reason: str = ""


def _version(module: str) -> str | None:
    from importlib import metadata

    dist = {"cupy": None, "array_api_strict": "array-api-strict"}.get(module, module)
    names = [dist] if dist else ["cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"]
    for n in names:
        try:
            return metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return None


def _devices_of(name: str, backend: Backend) -> list[str]:
    if name == "numpy":
        return ["cpu"]
    if name == "cupy":
        import cupy

        out = []
        for i in range(cupy.cuda.runtime.getDeviceCount()):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            dev_name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            out.append(f"cupy:{i} ({dev_name})")
        return out
    if name == "torch":
        import torch

        out = ["torch:cpu"]
        if torch.cuda.is_available():
            out += [f"torch:cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
        return out
    if name == "jax":
        import jax

        _jax_memory_on_demand()
        return [f"jax:{d.platform}:{d.id}" for d in jax.devices()]
    # float64 differs between strict's devices: say which lack it.
    return [f"array_api_strict:{d}" + ("" if _xp.supports_float64(backend.xp, backend.xp.Device(d)) else
                                        " (no float64)") for d in STRICT_DEVICES]


def backends_report() -> list[BackendInfo]:
    """Every backend xpnet knows: whether it is usable here, its version, devices and float64 support.

    Never raises: a backend that fails to load is reported as unusable with the reason.
    """
    rows = []
    for name in LIBRARIES:
        try:
            b = _resolve(name)
        except BackendUnavailableError as exc:
            rows.append(BackendInfo(name, False, _version(name), [], None, str(exc)))
            continue
        try:
            devices = _devices_of(name, b)
        except Exception as exc:  # listing is informative only
            devices = [f"? ({exc})"]
        rows.append(BackendInfo(name, True, _version(name), devices, b.supports_float64, f"default device {b.spec}"))
    return rows


def format_backends_report(rows: list[BackendInfo] | None = None) -> str:
    """The report as a plain-text table, plus the backend ``auto`` picks."""
    rows = backends_report() if rows is None else rows
    head = ("backend", "usable", "version", "float64", "devices / reason")
    lines = []
    for r in rows:
        detail = ", ".join(r.devices) if r.usable else r.reason
        f64 = "-" if r.float64 is None else ("yes" if r.float64 else "no")
        lines.append((r.name, "yes" if r.usable else "no", r.version or "-", f64, detail))
    widths = [max(len(str(x[i])) for x in [head, *lines]) for i in range(4)]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
           for row in [head, *lines]]
    try:
        auto = _resolve("auto").spec
    except Exception as exc:  # pragma: no cover - auto never fails by design
        auto = f"unavailable ({exc})"
    if auto.startswith("cupy"):  # the problem-size rule of xpnet.device.auto
        auto += " for networks whose step outweighs its kernel launches, numpy for smaller ones"
    out.append(f"auto -> {auto}")
    return "\n".join(out)

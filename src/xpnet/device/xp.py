"""The only glue between xpnet's math and concrete array libraries.

The math modules (activations, losses, initializers, functional, network, gradcheck) import nothing but
this module and the Array API namespace it hands them. Everything here is either a thin wrapper over
``array_api_compat`` or host-side I/O (``to_numpy``), which the math never calls in a hot loop.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import array_api_compat as _compat

from ..errors import DeviceMismatchError, DTypeError, InputTypeError, InvalidValueError, NamespaceMismatchError

FLOAT_DTYPE_NAMES = ("float32", "float64")

is_array = _compat.is_array_api_obj
is_numpy_array = _compat.is_numpy_array
to_device = _compat.to_device
is_numpy_namespace = _compat.is_numpy_namespace
is_cupy_namespace = _compat.is_cupy_namespace
is_torch_namespace = _compat.is_torch_namespace
is_jax_namespace = _compat.is_jax_namespace
is_array_api_strict_namespace = _compat.is_array_api_strict_namespace


def _describe(x: Any) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


def namespace_of(*arrays: Any) -> Any:
    """Return the Array API namespace shared by ``arrays`` (via ``array_api_compat.array_namespace``).

    Raises :class:`~xpnet.errors.InputTypeError` if an argument is not an array and
    :class:`~xpnet.errors.NamespaceMismatchError` if the arrays come from different libraries.
    """
    for a in arrays:
        if not is_array(a):
            raise InputTypeError(
                f"expected an array (NumPy, CuPy, PyTorch, JAX or array_api_strict), got {_describe(a)}; "
                "convert it first, e.g. with xpnet.get_backend().asarray(data)"
            )
    try:
        return _compat.array_namespace(*arrays)
    except TypeError as exc:
        kinds = sorted({_describe(a) for a in arrays})
        raise NamespaceMismatchError(
            f"arrays from different libraries were mixed in one call ({', '.join(kinds)}); "
            "move them to one backend first, e.g. backend.asarray(x)"
        ) from exc


def namespace_of_named(**arrays: Any) -> Any:
    """:func:`namespace_of` for the public entry points: the same checks, with each argument named in the
    message (``X is a numpy.ndarray but W1 is a torch.Tensor``)."""
    for name, a in arrays.items():
        if not is_array(a):
            raise InputTypeError(
                f"{name}: expected an array (NumPy, CuPy, PyTorch, JAX or array_api_strict), got {_describe(a)}; "
                "convert it first, e.g. with xpnet.get_backend().asarray(data)"
            )
    try:
        return _compat.array_namespace(*arrays.values())
    except TypeError as exc:
        kinds: dict[str, list[str]] = {}
        for name, a in arrays.items():
            kinds.setdefault(_describe(a), []).append(name)
        described = "; ".join(f"{' and '.join(names)}: {kind}" for kind, names in kinds.items())
        raise NamespaceMismatchError(
            f"arrays from different libraries were mixed in one call ({described}); "
            "move them to one backend first, e.g. backend.asarray(x)"
        ) from exc


def device_of(x: Any) -> Any:
    """The device ``x`` lives on (``array_api_compat.device``)."""
    return _compat.device(x)


def check_same_device(arrays: dict[str, Any]) -> Any:
    """Return the common device of the named arrays or raise :class:`DeviceMismatchError` naming them."""
    first_name, first_dev = None, None
    for name, a in arrays.items():
        dev = device_of(a)
        if first_name is None:
            first_name, first_dev = name, dev
        elif dev != first_dev:
            raise DeviceMismatchError(
                f"{first_name} is on device {first_dev!r} but {name} is on device {dev!r}; xpnet never copies "
                "between devices on its own: move both to one device (backend.asarray(x))"
            )
    return first_dev


def namespace_info(xp: Any) -> Any:
    """The namespace's inspection object (``xp.__array_namespace_info__()``): devices and dtypes."""
    return xp.__array_namespace_info__()


def float_dtypes_on(xp: Any, device: Any) -> dict[str, Any]:
    """The real floating dtypes ``device`` supports, by name (``{'float32': ..., 'float64': ...}``)."""
    info = namespace_info(xp)
    try:
        return dict(info.dtypes(device=device, kind="real floating"))
    except TypeError:  # an info object that takes no device
        return dict(info.dtypes(kind="real floating"))


def supports_float64(xp: Any, device: Any) -> bool:
    """Whether ``device`` of namespace ``xp`` has float64."""
    return "float64" in float_dtypes_on(xp, device)


def dtype_name(xp: Any, dtype: Any) -> str:
    """The standard name of ``dtype`` ('float32', 'int64', ...) for any library's dtype object or a name."""
    if isinstance(dtype, str):
        return dtype.strip().lower()
    if isinstance(dtype, type):  # NumPy scalar types such as numpy.float32
        return dtype.__name__.lower()
    name = getattr(dtype, "name", None)  # NumPy dtype objects (also what CuPy and JAX use)
    if isinstance(name, str):
        return name.lower()
    # torch and array_api_strict dtypes have no name: compare within their own library only (a comparison
    # across libraries is unsupported and warns).
    for candidate_name in ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "bool"):
        candidate = getattr(xp, candidate_name, None)
        if candidate is not None and type(candidate) is type(dtype) and dtype == candidate:
            return candidate_name
    return str(dtype).rsplit(".", 1)[-1].lower()


def resolve_float_dtype(xp: Any, device: Any, dtype: Any) -> Any:
    """Resolve ``dtype`` (a name like ``"float32"`` or any library's dtype object) to ``xp``'s dtype.

    Only float32 and float64 are supported for parameters and activations. float64 on a device that lacks
    it raises :class:`DTypeError` saying which dtypes the device has.
    """
    name = dtype_name(xp, dtype)
    if name not in FLOAT_DTYPE_NAMES:
        raise DTypeError(
            f"unsupported dtype {dtype!r}: xpnet computes in 'float32' or 'float64'; pass one of those"
        )
    available = float_dtypes_on(xp, device)
    if name not in available:
        hint = ""
        if is_jax_namespace(xp):
            hint = " (JAX: enable it with jax.config.update('jax_enable_x64', True) before creating arrays)"
        raise DTypeError(
            f"{name} is not available on device {device!r}{hint}; it has {sorted(available)}: "
            "pass dtype='float32'"
        )
    return available[name]


def default_float_dtype(xp: Any, device: Any) -> Any:
    """xpnet's dtype policy: float64 where the device has it (the lecture computes in float64), else float32."""
    available = float_dtypes_on(xp, device)
    return available.get("float64", available.get("float32"))


def index_dtype(xp: Any, device: Any) -> Any:
    """The namespace's default integer dtype for indices (labels returned by ``predict``)."""
    info = namespace_info(xp)
    try:
        return info.default_dtypes(device=device)["indexing"]
    except TypeError:
        return info.default_dtypes()["indexing"]


def is_floating(xp: Any, x: Any) -> bool:
    """Whether ``x`` has a real floating dtype."""
    return xp.isdtype(x.dtype, "real floating")


def all_finite(xp: Any, x: Any) -> bool:
    """Whether every value of the floating array ``x`` is finite, in one read-back: the sum of ``x`` first (one
    pass without a temporary; finite exactly when every value is, unless finite values overflow it), then, only
    when that sum is not finite, the elementwise test (whose boolean temporary is a quarter of a float32 ``x``).
    NumPy's overflow warning from the sum is silenced with ``errstate`` (thread-local), as it is the fallback."""
    if is_numpy_namespace(xp) or is_array_api_strict_namespace(xp):  # both compute with NumPy
        import numpy

        with numpy.errstate(over="ignore", invalid="ignore"):
            total = float(xp.sum(x))
    else:
        total = float(xp.sum(x))
    return math.isfinite(total) or bool(xp.all(xp.isfinite(x)))


def cast_quietly(xp: Any, x: Any, dtype: Any) -> Any:
    """``xp.astype(x, dtype)`` without NumPy's overflow warning for values beyond the target's range (they
    become infinite, which the caller checks and reports as an xpnet error)."""
    if is_numpy_namespace(xp) or is_array_api_strict_namespace(xp):
        import numpy

        with numpy.errstate(over="ignore", invalid="ignore"):
            return xp.astype(x, dtype)
    return xp.astype(x, dtype)


def values_readable(x: Any) -> bool:
    """Whether the values of ``x`` exist to be read: False only for an ``ndonnx`` array that stands for a graph's
    input (an ONNX export traces the forward code with one: its values come at run time, in another program)."""
    if _compat.is_ndonnx_array(x):
        try:
            x.unwrap_numpy()
        except ValueError:
            return False
    return True


def check_finite(xp: Any, x: Any, name: str) -> None:
    """Raise :class:`~xpnet.errors.InvalidValueError` when the floating array ``x`` holds NaN or infinity.

    Costs one boolean read back from the device: call it once per public call where user data enters, never
    inside a training loop. Integer and boolean arrays cannot hold either and are not read. The message names
    ``name``, counts the bad values and gives the first one's position (in ``x``'s own layout) and value;
    describing them costs a few more reads, on the error path only. The test itself is :func:`all_finite`. Arrays
    whose values cannot be read (:func:`values_readable`: traced for ONNX export) are not checked."""
    if not xp.isdtype(x.dtype, "real floating") or not values_readable(x) or all_finite(xp, x):
        return
    shape = tuple(int(d) for d in x.shape)
    flat = xp.reshape(x, (-1,))
    bad = xp.astype(~xp.isfinite(flat), index_dtype(xp, device_of(x)))
    count, first = int(xp.sum(bad)), int(xp.argmax(bad))
    value = float(flat[first])
    position = []
    for d in reversed(shape):  # the flat (C-order) index back to one index per axis
        position.append(first % d)
        first //= d
    where = f"{name}[{', '.join(str(i) for i in reversed(position))}]" if shape else name
    kinds = [k for k, present in (("NaN", bool(xp.any(xp.isnan(flat)))), ("infinity", bool(xp.any(xp.isinf(flat)))))
             if present]
    raise InvalidValueError(
        f"{name} contains {' and '.join(kinds)}: {count} of {flat.shape[0]} values are not finite, the first is "
        f"{where} = {value}; xpnet needs finite numbers: drop or impute those values first"
    )


def detached(x: Any) -> Any:
    """``x`` cut from any autograd graph (torch tensors with ``requires_grad``); other arrays as they are.

    xpnet computes its own gradients: a tensor that records history would make every training step extend
    one ever-growing graph."""
    if _compat.is_torch_array(x) and x.requires_grad:
        return x.detach()
    return x


def device_context(xp: Any, device: Any) -> Any:
    """Make ``device`` current for the ``with`` block where the library needs it (CuPy's kernels run on the
    current device, so arrays on ``cupy:1`` need device 1 current); ``nullcontext`` elsewhere."""

    if is_cupy_namespace(xp):
        return device
    return contextlib.nullcontext()


_F = TypeVar("_F", bound=Callable[..., Any])


def on_device_of_arrays(func: _F) -> _F:
    """``func`` run with the device of its first CuPy array argument current: an argument itself or a value of a
    mapping argument (a parameters dict). CuPy allocates and launches on the *current* device, not on its
    operands' (and array-api-compat's ``zeros`` ignores ``device=``), so work on arrays of ``cupy:1`` must run
    with device 1 current or its results land on device 0. Other libraries place results by their operands:
    for them this is a scan of the arguments and nothing more."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for arg in (*args, *kwargs.values()):
            for x in (arg.values() if isinstance(arg, Mapping) else (arg,)):
                if _compat.is_cupy_array(x):
                    with x.device:
                        return func(*args, **kwargs)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def to_numpy(x: Any) -> Any:
    """Copy any supported array to a NumPy array on the host (I/O and tests only, never in the math).

    NumPy arrays, Python scalars and nested lists are passed through ``numpy.asarray``.
    """
    import numpy as np

    if isinstance(x, np.ndarray) or not is_array(x):
        return np.asarray(x)
    if _compat.is_cupy_array(x):
        return x.get()
    if _compat.is_torch_array(x):
        return x.detach().to("cpu").numpy()
    if _compat.is_jax_array(x):
        return np.asarray(x)
    xp = namespace_of(x)
    if is_array_api_strict_namespace(xp):
        # array_api_strict refuses to hand out memory of its simulated non-CPU devices: move it first.
        return np.asarray(x.to_device(xp.Device("CPU_DEVICE")))
    if is_numpy_namespace(xp):
        return np.asarray(x)
    return np.from_dlpack(x)


# ------------------------------------------------------------------------------------------ out of memory
# Messages of out-of-memory errors that come as a generic type: XLA's RESOURCE_EXHAUSTED (JAX), a CUDA runtime
# allocation failure or a cuBLAS workspace that could not be allocated (CuPy, torch), torch's old "CUDA out of
# memory" RuntimeError.
_OOM_MESSAGES = ("RESOURCE_EXHAUSTED", "cudaErrorMemoryAllocation", "CUBLAS_STATUS_ALLOC_FAILED", "out of memory")


def out_of_memory_types() -> tuple[type[BaseException], ...]:
    """The exception types that mean "out of memory": :class:`MemoryError` (NumPy's ``_ArrayMemoryError`` is
    one), CuPy's ``cupy.cuda.memory.OutOfMemoryError`` and torch's ``OutOfMemoryError`` (also
    ``torch.cuda.OutOfMemoryError``). A library's type is looked up only if that library is already imported
    (``sys.modules``): an error can only come from a library that is loaded, and checking must load nothing."""
    found: list[Any] = [MemoryError]
    cupy_memory = sys.modules.get("cupy.cuda.memory")
    if cupy_memory is not None:
        found.append(getattr(cupy_memory, "OutOfMemoryError", None))
    torch = sys.modules.get("torch")
    if torch is not None:
        found.append(getattr(torch, "OutOfMemoryError", None))
        found.append(getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None))
    return tuple(t for t in found if isinstance(t, type) and issubclass(t, BaseException))


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` reports that memory (device or host) ran out: one of :func:`out_of_memory_types`, or a
    ``RuntimeError`` whose message is an allocation failure (JAX's ``RESOURCE_EXHAUSTED``, a CUDA allocation
    error)."""
    if isinstance(err, out_of_memory_types()):
        return True
    return isinstance(err, RuntimeError) and any(text in str(err) for text in _OOM_MESSAGES)


def ufunc_module(xp: Any) -> Any:
    """The raw module behind ``xp`` when it has NumPy's ufunc ``out=`` interface (NumPy, CuPy), else None: the
    engine's in-place step and its batch buffers write into arrays through it."""
    if is_numpy_namespace(xp):
        import numpy

        return numpy
    if is_cupy_namespace(xp):
        import cupy

        return cupy
    return None


def free_memory(xp: Any, device: Any) -> int | None:
    """Bytes free for new arrays of ``xp`` on ``device``: the host's available memory for NumPy, JAX and
    array_api_strict on a CPU (``MemAvailable`` of ``/proc/meminfo``), the device's free memory for CuPy and
    torch on CUDA; None where it cannot be told (then no estimate is checked)."""
    try:
        if is_cupy_namespace(xp):
            import cupy

            with cupy.cuda.Device(device if isinstance(device, int) else getattr(device, "id", 0)):
                return int(cupy.cuda.runtime.memGetInfo()[0])
        if is_torch_namespace(xp) and getattr(device, "type", None) == "cuda":
            import torch

            return int(torch.cuda.mem_get_info(device)[0])
        available = None
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
        # A container's memory limit (cgroup) can be far below the host's free memory, and exceeding it kills
        # the process instead of raising MemoryError: the smaller of the two is what is free.
        limited = cgroup_free_memory()
        if available is None or limited is None:
            return available if limited is None else limited
        return min(available, limited)
    except Exception:  # an estimate only: never a reason to fail
        return None


def cgroup_free_memory(root: str = "/sys/fs/cgroup", membership: str = "/proc/self/cgroup") -> int | None:
    """Bytes this process's memory cgroup still allows (limit minus usage), or None without a limit.

    cgroup v2 (``memory.max``, ``memory.current``) and v1 (``memory.limit_in_bytes``, ``memory.usage_in_bytes``),
    in the process's own cgroup and at the root of the mount (a container sees its cgroup there).
    """
    import os

    try:
        with open(membership) as fh:
            lines = [line.rstrip("\n").split(":", 2) for line in fh if line.count(":") >= 2]
    except OSError:
        return None
    candidates = []
    for _, controllers, path in lines:
        if controllers == "":  # v2
            for d in (root + path, root):
                candidates.append((os.path.join(d, "memory.max"), os.path.join(d, "memory.current")))
        elif "memory" in controllers.split(","):  # v1
            for d in (os.path.join(root, "memory") + path, os.path.join(root, "memory")):
                candidates.append((os.path.join(d, "memory.limit_in_bytes"), os.path.join(d, "memory.usage_in_bytes")))
    free = []
    for limit_file, usage_file in candidates:
        try:
            with open(limit_file) as fh:
                limit_text = fh.read().strip()
            with open(usage_file) as fh:
                usage = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= 2**60:  # no limit
            continue
        free.append(max(0, int(limit_text) - usage))
    return min(free) if free else None


def format_bytes(n: float) -> str:
    """``n`` bytes for a person: ``"7.28 TiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def suggested_batch_size(batch_size: int) -> int:
    """The batch size to try after ``batch_size`` ran out of memory: half of it (at least 1). Memory grows
    about linearly with the batch, so halving until it fits takes few tries."""
    return max(1, batch_size // 2)


class translating_oom:  # noqa: N801  (used as a function: ``with translating_oom(...):``)
    """A ``with`` block that turns an out-of-memory error (:func:`is_out_of_memory`: CuPy's, torch's, JAX's,
    NumPy's ``MemoryError``) raised inside it into :class:`~xpnet.errors.DeviceMemoryError`, chained
    ``from`` the original.

    The message says what was being done (``what``, e.g. ``"predicting"``), the batch size that was tried
    (``batch_size`` examples; ``None``: all of them at once), a smaller one (:func:`suggested_batch_size`) and
    how to pass it: ``how`` with ``{n}`` replaced by that size, e.g. ``"net.predict(X, batch_size={n})"``.
    A :class:`DeviceMemoryError` raised inside passes through unchanged; any other error too. The original
    error stays the cause, without its traceback: the failed attempt's frames, and the buffers their locals
    hold, are freed at once, so a retry with half the batch (a notebook keeps the last exception) finds the
    memory free. (A class rather than a generator: ``contextlib``'s frame would hold the traceback.)
    """

    def __init__(self, what: str, batch_size: int | None, *, how: str = "batch_size={n}") -> None:
        self.what, self.batch_size, self.how = what, batch_size, how

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, err: Any, tb: Any) -> bool:
        from ..errors import DeviceMemoryError

        del tb  # this frame is part of the new error's traceback: it must not hold the old one
        if err is None or isinstance(err, DeviceMemoryError) or not isinstance(err, Exception) \
                or not is_out_of_memory(err):
            return False
        what, batch_size, how = self.what, self.batch_size, self.how
        details = " ".join(str(err).split()) or "no details"  # the library's text, on one line
        source = f"{type(err).__module__}.{type(err).__qualname__}: {details}"
        if batch_size is None:
            tried = "all examples in one batch"
            advice = f"pass a batch size, {how.format(n='N')}, and halve N until it fits"
        elif batch_size > 1:
            n = suggested_batch_size(batch_size)
            tried = f"a batch of {batch_size} examples"
            advice = f"try batch_size={n} (half), e.g. {how.format(n=n)}, and halve again if it still fails"
        else:
            tried = "a batch of 1 example"
            advice = ("no smaller batch exists: free device memory (other arrays, a memory pool such as "
                      "cupy.get_default_memory_pool().free_all_blocks()), use a smaller network or a device "
                      "with more memory")
        cause: BaseException | None = err
        while cause is not None:  # the errors being handled when it happened hold frames too
            cause.__traceback__ = None
            cause = cause.__context__
        raise DeviceMemoryError(f"out of memory while {what} with {tried} ({source}); {advice}") from err


def copy_array(a: Any) -> Any:
    """A new array equal to ``a``, same shape, dtype and device: ``a.copy()`` for NumPy, CuPy and JAX arrays,
    ``a.detach().clone()`` for torch tensors (which have no ``copy``; the copy is the engine's own, outside any
    autograd graph ``a`` belongs to)."""
    copy = getattr(a, "copy", None)
    return copy() if copy is not None else a.detach().clone()


_TORCH_SCALARS: dict[tuple[float, bool, Any, Any], Any] = {}


def scalar_operand(xp: Any, value: float, like: Any) -> Any:
    """``value`` as the second operand of ``xp.maximum``/``xp.minimum``/``xp.logaddexp`` with the array ``like``:
    the Python number itself, except on torch, where array-api-compat turns a Python number in those functions
    into a new tensor at every call (on CUDA a host-to-device copy that waits for the device, and that a CUDA
    graph capture refuses); there it is :func:`torch_scalar`. So the operation and its result's bits are the
    same either way."""
    return torch_scalar(value, like) if is_torch_namespace(xp) else value


def torch_scalar(value: float, like: Any) -> Any:
    """``value`` as a 0-d torch tensor of the dtype array-api-compat would give it (``torch.result_type(like,
    value)``) on the torch tensor ``like``'s device, made once and kept (never written into; a captured CUDA
    graph keeps its address). Made outside inference mode (a tensor made inside it could never join autograd
    later); under a tracing or fake-tensor mode, or for a NaN, the number is returned as it is, uncached."""
    if value != value:
        return value
    key = (value, math.copysign(1.0, value) > 0, like.dtype, like.device)  # -0.0 and 0.0 apart
    t = _TORCH_SCALARS.get(key)
    if t is None:
        import torch

        compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)
        if torch._C._len_torch_dispatch_stack() or compiling():
            return value
        with torch.inference_mode(False):
            t = _TORCH_SCALARS[key] = torch.tensor(value, dtype=torch.result_type(like, value), device=like.device)
    return t


def no_autograd(xp: Any) -> Any:
    """A context without autograd recording for ``xp``'s arrays: ``torch.no_grad()`` on torch, else a no-op. The
    engine's steps compute their own gradients; autograd would only keep a growing graph of every update."""
    if is_torch_namespace(xp):
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()

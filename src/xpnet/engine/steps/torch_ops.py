"""PyTorch under NumPy's ufunc ``out=`` interface: what lets the in-place step run on the torch backend.

The in-place step (:mod:`xpnet.engine.steps.inplace`) writes every result into buffers it keeps, through NumPy's
ufunc calls (``multiply(a, b, out=c)``, ``matmul(a, b, out=c)``, ``sum(a, axis, keepdims=True, out=c)``); NumPy
and CuPy take them as they are. PyTorch has the same operations with ``out=`` under other names and argument
conventions (``torch.mul``, ``torch.amax(dim=, keepdim=)``, tensors only where NumPy takes a scalar first). This
adapter maps the dozen calls the step makes onto them, one torch call each, on one device, so the same step code
(the same arithmetic in the same order) runs on torch tensors on a CPU or a CUDA GPU.

Every call is the torch operation the generic step reaches through array-api-compat (``torch.matmul``,
``torch.sum``, ``torch.amax``, ``torch.logaddexp``, ...), so the in-place step gives the generic step's bits on
torch as on NumPy (``tests/test_fast.py`` trains both on torch and compares). Scalars where torch wants a
tensor (``1 - A``, ``maximum(Z, 0)``) become the cached 0-d tensors of :func:`xpnet.device.xp.torch_scalar`
(the cache the generic step's ``maximum``/``logaddexp`` operands come from); a 0-d tensor does not take part in
type promotion, so the result keeps the array's dtype as NumPy's Python scalars do. Commutative operations with
a scalar first swap their operands (``2 * a`` and ``a * 2`` round the same).
"""

from __future__ import annotations

from typing import Any

from ...device import xp as _xp

__all__ = ["TorchUfuncs"]


class TorchUfuncs:
    """The subset of NumPy's ufunc interface the in-place step calls, on torch tensors of one ``device``.

    Each method writes its result into ``out`` (a tensor of the result's shape and dtype; no broadcasting of
    ``out``) and returns it. ``empty``/``ones``/``zeros_like`` allocate on the device. ``__name__`` is "torch" (the
    steps tell the libraries apart by it)."""

    __name__ = "torch"

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.no_grad = torch.no_grad  # the in-place step runs under it: out= writes are not for autograd

    def __repr__(self) -> str:
        return f"TorchUfuncs(device={self.device!r})"

    # ------------------------------------------------------------------------------- allocation
    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.torch.empty(shape, dtype=dtype, device=self.device)

    def ones(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.torch.ones(shape, dtype=dtype, device=self.device)

    def zeros_like(self, a: Any) -> Any:
        return self.torch.zeros_like(a)

    def copyto(self, dst: Any, src: Any) -> None:
        """``dst[...] = src`` (same shape), whatever the two layouts."""
        dst.copy_(src)

    # ------------------------------------------------------------------------------- arithmetic
    def add(self, a: Any, b: Any, out: Any) -> Any:
        if not isinstance(a, self.torch.Tensor):  # a + b == b + a, to the bit
            a, b = b, a
        return self.torch.add(a, b, out=out)

    def subtract(self, a: Any, b: Any, out: Any) -> Any:
        if not isinstance(a, self.torch.Tensor):
            a = _xp.torch_scalar(a, b)
        return self.torch.sub(a, b, out=out)

    def multiply(self, a: Any, b: Any, out: Any) -> Any:
        if not isinstance(a, self.torch.Tensor):
            a, b = b, a
        return self.torch.mul(a, b, out=out)

    def divide(self, a: Any, b: Any, out: Any) -> Any:
        return self.torch.div(a, b, out=out)

    def negative(self, a: Any, out: Any) -> Any:
        return self.torch.neg(a, out=out)

    def abs(self, a: Any, out: Any) -> Any:
        return self.torch.abs(a, out=out)

    def exp(self, a: Any, out: Any) -> Any:
        return self.torch.exp(a, out=out)

    def log(self, a: Any, out: Any) -> Any:
        return self.torch.log(a, out=out)

    def sqrt(self, a: Any, out: Any) -> Any:
        return self.torch.sqrt(a, out=out)

    def tanh(self, a: Any, out: Any) -> Any:
        return self.torch.tanh(a, out=out)

    def maximum(self, a: Any, b: Any, out: Any) -> Any:
        if not isinstance(b, self.torch.Tensor):
            b = _xp.torch_scalar(b, a)
        return self.torch.maximum(a, b, out=out)

    def logaddexp(self, a: Any, b: Any, out: Any) -> Any:
        if not isinstance(b, self.torch.Tensor):
            b = _xp.torch_scalar(b, a)
        return self.torch.logaddexp(a, b, out=out)

    def greater(self, a: Any, b: Any, out: Any) -> Any:
        """``out = (a > b)`` as 1.0/0.0 in ``out``'s floating dtype (torch casts the booleans on write)."""
        return self.torch.gt(a, b, out=out)

    def greater_equal(self, a: Any, b: Any, out: Any) -> Any:
        return self.torch.ge(a, b, out=out)

    # ------------------------------------------------------------------------------- products, reductions
    def matmul(self, a: Any, b: Any, out: Any) -> Any:
        return self.torch.matmul(a, b, out=out)

    def max(self, a: Any, axis: int, keepdims: bool, out: Any) -> Any:
        return self.torch.amax(a, dim=axis, keepdim=keepdims, out=out)

    def sum(self, a: Any, axis: int | None = None, keepdims: bool = False, out: Any = None) -> Any:
        """``sum(a)`` (a new 0-d tensor) or, with ``axis``, the sum over it written into ``out``."""
        if axis is None:
            return self.torch.sum(a)
        return self.torch.sum(a, dim=axis, keepdim=keepdims, out=out)

    def sum_into(self, a: Any, axis: int, out: Any) -> None:
        """``out = sum(a, axis, keepdims=True)``: torch's own reduction writes into ``out`` (the generic step's
        ``xp.sum``, so the same bits)."""
        self.torch.sum(a, dim=axis, keepdim=True, out=out)


"""Batch sources: where the training loop's mini-batches come from (the engine's first seam).

Data stays as users hand it, sample-major: ``X`` is ``(m, n_x)``, one example per row, on the device. A
mini-batch is a block of rows; the lecture's ``(n_x, b)`` layout is its transposed view, which matrix
products (BLAS, cuBLAS) take without a copy. Without shuffling a batch is a slice of the data (no copy at
all); with shuffling its rows are gathered, on libraries with NumPy's ``take(..., out=)`` (NumPy, CuPy),
into one buffer per array that every step of the run reuses, so an epoch never copies the whole dataset
and a step allocates nothing for its batch.

:class:`BatchSource` is the interface (in-memory arrays now; memory-mapped and streamed files implement
the same three members); :class:`ArrayBatches` serves arrays held in memory.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

from ..device import xp as _xp
from ..errors import ConfigError, DeviceMismatchError, NamespaceMismatchError, ShapeError

__all__ = ["ArrayBatches", "BatchSource", "CheckedSource", "check_batch_size", "check_owned"]


def check_batch_size(batch_size: Any, m: int) -> int:
    """Resolve ``batch_size`` for ``m`` examples: a positive int (capped at ``m``), ``"full"`` (the lecture's
    full-batch gradient descent, ``m``) or ``"auto"`` (scikit-learn's ``min(200, m)``)."""
    if isinstance(batch_size, str):
        key = batch_size.strip().lower()
        if key == "full":
            return m
        if key == "auto":
            return min(200, m)
    elif not isinstance(batch_size, bool) and isinstance(batch_size, numbers.Integral) and batch_size >= 1:
        return min(int(batch_size), m)
    raise ConfigError(f"batch_size must be a positive integer, 'full' or 'auto', got {batch_size!r}")




class BatchSource:
    """Where a training run's examples come from.

    Attributes
    ----------
    m : int, the number of examples
    n_outputs : int, rows of a target batch (``n_L``)
    weighted : bool, whether batches carry per-example weights

    A source yields batches in the lecture's layout, ``X_b`` ``(n_x, b)``, ``Y_b`` ``(n_L, b)`` and ``w_b``
    ``(1, b)`` or None, on the network's backend and in its dtype. A batch's arrays may be views of buffers
    that the next batch overwrites: a step uses them before asking for the next one.
    """

    m: int
    n_outputs: int
    weighted: bool

    def batches(self, order: Any, batch_size: int) -> Iterator[tuple[Any, Any, Any]]:
        """Yield ``(X_b, Y_b, w_b)`` for the examples ``order[0:b], order[b:2b], ...`` (the last batch
        partial), or in stored order when ``order`` is None. ``order`` is a host NumPy permutation of
        ``range(m)``."""
        raise NotImplementedError

    def targets(self) -> Any:
        """All targets, ``(n_L, m)`` in the lecture's layout (for metrics that need the whole set, such as the
        spread of the targets in R^2)."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop buffers kept between batches (the end of a ``fit`` call)."""


class ArrayBatches(BatchSource):
    """Mini-batches of arrays held in memory on the device, stored sample-major.

    Parameters
    ----------
    backend : the :class:`~xpnet.device.backend.Backend` the arrays live on
    X : (m, n_x) examples as rows
    Y : (m, n_L) targets as rows
    sample_weight : (m, 1) per-example weights, or None

    Use :meth:`from_columns` for data in the lecture's ``(n_x, m)`` layout: it takes the transposed view (a
    copy is made once per fit only where that view is not row-contiguous on NumPy or CuPy).
    """

    def __init__(self, backend: Any, X: Any, Y: Any, sample_weight: Any = None) -> None:
        for name, a in (("X", X), ("Y", Y), ("sample_weight", sample_weight)):
            if a is not None and (getattr(a, "ndim", None) != 2 or a.shape[0] != X.shape[0]):
                raise ShapeError(f"ArrayBatches takes sample-major arrays with one row per example: {name} has "
                                 f"shape {getattr(a, 'shape', type(a).__name__)}, X has {X.shape[0]} rows")
        self.backend = backend
        self.X, self.Y, self.w = X, Y, sample_weight
        self.m = int(X.shape[0])
        self.n_outputs = int(Y.shape[1])
        self.weighted = sample_weight is not None
        self._mod = _xp.ufunc_module(backend.xp)
        self._numpy = _xp.is_numpy_namespace(backend.xp)
        self._buffers: dict[str, Any] = {}
        # Each example's class, (m, 1), once per run (keep_labels), and the current batch's, (b,).
        self.labels: Any = None
        self.batch_labels: Any = None

    @classmethod
    def from_columns(cls, backend: Any, X: Any, Y: Any, sample_weight: Any = None) -> ArrayBatches:
        """A source for the lecture's layout: ``X`` (n_x, m), ``Y`` (n_L, m), ``sample_weight`` (1, m) or None.

        The rows are the transposed views. Without shuffling a batch is a slice of them, whatever their
        layout. On NumPy and CuPy, rows that are not contiguous (a C-ordered ``(n_x, m)`` array) are copied once,
        at the first shuffled epoch, so that gathering a batch copies whole rows; an array that is the transpose
        of row-major data (``X_rows.T``, the estimators' case) is used as it is.
        """
        return cls(backend, X.T, Y.T, None if sample_weight is None else sample_weight.T)

    def keep_labels(self) -> None:
        """Compute each example's class once for the run: ``argmax`` of its target row (one-hot for a softmax
        network). Every batch then carries its own in :attr:`batch_labels` (``(b,)``), sliced or gathered with
        the batch, so the accuracy of a step compares the predicted class with it instead of taking an ``argmax``
        over the targets at every step. Dropped by :meth:`release`."""
        if self.labels is None:
            with self.backend.activate():
                xp = self.backend.xp
                self.labels = xp.reshape(xp.argmax(self.Y, axis=1), (-1, 1))

    def _gather(self, slot: str, rows: Any, idx: Any, batch_size: int) -> Any:
        """``rows[idx]`` (b, n) into the slot's buffer of ``batch_size`` rows, kept for the run."""
        mod = self._mod
        if mod is None:  # the Array API: a new array per batch
            return self.backend.xp.take(rows, idx, axis=0)
        buf = self._buffers.get(slot)
        if buf is None or buf.shape != (batch_size, rows.shape[1]) or buf.dtype != rows.dtype:
            with self.backend.activate():
                buf = self._buffers[slot] = mod.empty((batch_size, rows.shape[1]), dtype=rows.dtype)
        out = buf[: idx.shape[0]]
        if self._numpy:
            # NumPy buffers take(out=) in its default mode="raise", a second copy of every batch (2.8x slower
            # measured on 1024 x 784 float32 rows); the order is a permutation of range(m), always in bounds.
            mod.take(rows, idx, axis=0, out=out, mode="wrap")
        else:
            mod.take(rows, idx, axis=0, out=out)
        return out

    def _row_major(self) -> None:
        """Make the stored rows contiguous (once, NumPy and CuPy): gathers then copy whole rows."""
        mod = self._mod
        if mod is not None and not all(a is None or a.flags.c_contiguous for a in (self.X, self.Y, self.w)):
            with self.backend.activate():  # CuPy allocates on the current device
                self.X, self.Y = mod.ascontiguousarray(self.X), mod.ascontiguousarray(self.Y)
                self.w = None if self.w is None else mod.ascontiguousarray(self.w)

    def batches(self, order: Any, batch_size: int) -> Iterator[tuple[Any, Any, Any]]:
        spans = [(start, min(start + batch_size, self.m)) for start in range(0, self.m, batch_size)]
        return self.blocks(order, spans, batch_size)

    def blocks(self, order: Any, spans: Any, capacity: int) -> Iterator[tuple[Any, Any, Any]]:
        """Yield ``(X_b, Y_b, w_b)`` for the examples ``order[start:stop]`` of each ``(start, stop)`` in ``spans``
        (rows ``start:stop`` in stored order when ``order`` is None), ``stop - start <= capacity``.
        :meth:`batches` is the spans of consecutive batches; a data-parallel rank asks for its shard of each
        (:class:`xpnet.engine.parallel.ShardedBatches`)."""
        if order is not None:
            # The gather trusts its indices (NumPy's take runs in mode="wrap"): one host check per epoch.
            if order.shape != (self.m,) or (self.m and (order.min() < 0 or order.max() >= self.m)):
                raise ShapeError(f"the order of an epoch must index the {self.m} examples, got shape "
                                 f"{order.shape} with values from {order.min()} to {order.max()}")
            self._row_major()
        X, Y, w = self.X, self.Y, self.w
        # The order moves to the device once per epoch; each batch slices it there.
        idx = None if order is None else self.backend.asarray(order)
        for start, stop in spans:
            if idx is None:
                Xr, Yr = X[start:stop, :], Y[start:stop, :]  # the standard needs every axis indexed
                wr = None if w is None else w[start:stop, :]
            else:
                ib = idx[start:stop]
                Xr, Yr = self._gather("X", X, ib, capacity), self._gather("Y", Y, ib, capacity)
                wr = None if w is None else self._gather("w", w, ib, capacity)
            if self.labels is not None:
                lr = self.labels[start:stop, :] if idx is None else self._gather("labels", self.labels, ib, capacity)
                self.batch_labels = lr[:, 0]
            yield Xr.T, Yr.T, None if wr is None else wr.T

    def targets(self) -> Any:
        return self.Y.T

    def release(self) -> None:
        self._buffers.clear()
        self.labels = self.batch_labels = None


def check_owned(backend: Any, name: str, A: Any) -> None:
    """``A`` must be an array of ``backend`` (its library and device): the engine never copies silently."""
    if backend.owns(A):
        return
    if _xp.is_array(A) and _xp.namespace_of(A) is backend.xp:
        raise DeviceMismatchError(f"{name} is on device {_xp.device_of(A)!r} but the network lives on "
                                  f"{backend.device!r}: move it with network.backend.asarray({name})")
    raise NamespaceMismatchError(f"{name} is a {type(A).__module__}.{type(A).__name__} but the network computes on "
                                 f"{backend.spec}: move it with network.backend.asarray({name})")


class CheckedSource(BatchSource):
    """A user's :class:`BatchSource` as :meth:`~xpnet.engine.trainer.Trainer.fit` runs it: its batches checked as
    they pass: shapes ``(n_x, b)``, ``(n_L, b)`` and
    ``(1, b)`` with one ``b``, arrays of the network's backend, cast to the network's dtype (as arrays handed to
    ``Trainer.fit`` are), and ``m`` examples per epoch. Attribute checks only: no device work, no sync."""

    def __init__(self, source: BatchSource, network: Any) -> None:
        m = getattr(source, "m", None)
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1:
            raise ConfigError(f"a BatchSource needs m, its number of examples (an int >= 1), got {m!r} from "
                              f"{type(source).__name__}")
        self.source, self.network = source, network
        self.m = int(m)
        self.n_outputs = getattr(source, "n_outputs", network.layer_dims[-1])
        self.weighted = bool(getattr(source, "weighted", False))
        if self.n_outputs != network.layer_dims[-1]:
            raise ShapeError(f"{type(source).__name__} yields targets of {self.n_outputs} rows but the network has "
                             f"{network.layer_dims[-1]} outputs: give Y_b as (n_L, b) targets (one-hot for softmax)")

    def __getattr__(self, name: str) -> Any:
        if name == "epoch_order":  # the source's own order of an epoch, where it has one
            return self.source.epoch_order
        raise AttributeError(name)

    def batches(self, order: Any, batch_size: int) -> Any:
        return self._checked(self.source.batches(order, batch_size), self.m, 1)

    def blocks(self, order: Any, spans: Any, capacity: int) -> Any:
        """The source's ``blocks`` (a data-parallel rank's shards), checked as :meth:`batches` checks."""
        if not callable(getattr(self.source, "blocks", None)):
            raise ConfigError(f"{type(self.source).__name__} cannot be sharded across ranks: data-parallel "
                              "training needs a source with blocks(order, spans, capacity), as ArrayBatches and "
                              "FileBatches have")
        # A rank's shard of a batch smaller than the number of ranks is empty.
        return self._checked(self.source.blocks(order, spans, capacity), sum(b - a for a, b in spans), 0)

    def _checked(self, batches: Any, m: int, least: int) -> Any:
        net = self.network
        n_x, n_out, bk = net.layer_dims[0], net.layer_dims[-1], net.backend
        seen = 0
        for batch in batches:
            Xb, Yb, wb = batch
            b = getattr(Xb, "shape", (None, None))[-1]
            want = {"X_b": (n_x, b), "Y_b": (n_out, b), "w_b": (1, b)}
            for name, A in (("X_b", Xb), ("Y_b", Yb), ("w_b", wb)):
                if A is None and name == "w_b":
                    continue
                if tuple(getattr(A, "shape", ())) != want[name] or b is None or b < least:
                    shown = tuple(A.shape) if hasattr(A, "shape") else type(A).__name__
                    raise ShapeError(f"{type(self.source).__name__} yielded {name} of shape "
                                     f"{shown}; the network needs X_b ({n_x}, b), "
                                     f"Y_b ({n_out}, b) and w_b (1, b) or None, with one b >= 1 (the lecture's "
                                     "layout: examples are columns)")
                check_owned(bk, name, A)
            seen += b
            yield tuple(a if a is None or a.dtype == net.dtype else bk.xp.astype(a, net.dtype) for a in batch)
        if seen != m:
            raise ShapeError(f"{type(self.source).__name__} yielded {seen} examples in an epoch but says m = {self.m}: "
                             "the epoch's loss is averaged over m, so they must agree")

    def targets(self) -> Any:
        return self.source.targets()

    def release(self) -> None:
        self.source.release()

"""Data larger than memory: a batch source that reads a ``.npy`` or Parquet file chunk by chunk.

The examples are cut into **chunks** of consecutive rows (``chunk_rows`` rows of a ``.npy`` file; the row
groups of a Parquet file). An epoch's order, with shuffling (:func:`chunked_order`), is

    p = rng.permutation(n_chunks)                      the chunks in a seeded random order
    for each window of ``window`` consecutive chunks of p:
        rows = the window's rows (chunk after chunk), permuted by rng.permutation(len(rows))

so every row is visited once, rows mix within a window of ``window`` chunks, and the whole order comes from
the trainer's seeded "shuffle" stream: it is a permutation of ``range(m)`` like any other, and an in-memory run
given the same order (:class:`ChunkedOrder` on an :class:`~xpnet.engine.batches.ArrayBatches`) trains the same
model. Reading it takes each chunk from the file once per epoch and holds at most two windows of chunks (a
batch may straddle two windows), whatever the file's size.

Rows are read with ``readinto`` at the ``.npy`` header's offset (the file's layout, as ``np.load(...,
mmap_mode="r")`` maps it) rather than through a memory map: pages of a map that were read stay counted in the
process's resident memory until the kernel evicts them, so a run over a file larger than memory would look as
large as the file. Parquet row groups are read with pyarrow.

The next batch can be prepared while the current step runs (``prefetch=True``, the default on GPU backends):
a thread reads, gathers and moves it to the device (on CuPy on a stream of its own, synchronised before the
batch is handed over; written but not run here, there is no GPU in CI). On the CPU the thread competes with the
step's BLAS threads for the same cores: measured here (``examples/data_parallel_scaling.py --stream``) it gains
a little with one BLAS thread (0.36 s against 0.38 s an epoch) and loses badly when BLAS already takes every
core (10.9 s against 4.8 s with two BLAS threads on two busy cores), so CPU backends read in the training
thread unless asked.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from ..device import xp as _xp
from ..errors import ConfigError, DatasetError, ShapeError
from .batches import BatchSource

__all__ = ["ChunkedOrder", "FileBatches", "NpyRows", "ParquetRows", "chunked_order"]


def chunked_order(rng: Any, bounds: Sequence[int], window: int) -> Any:
    """The chunked shuffle of one epoch: a permutation of ``range(bounds[-1])`` (host int64).

    ``bounds`` are the chunks' first rows and the end (``[0, c, 2c, ..., m]``); ``window`` chunks are mixed
    together. Two draws per window and one for the chunks, in that order, from ``rng``.
    """
    import numpy as np

    n_chunks = len(bounds) - 1
    chunks = rng.permutation(n_chunks)
    pieces = []
    for w in range(0, n_chunks, window):
        rows = np.concatenate([np.arange(bounds[c], bounds[c + 1]) for c in chunks[w:w + window]])
        pieces.append(rows[rng.permutation(rows.shape[0])])
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)


class ChunkedOrder:
    """Makes a source draw its epochs' orders with :func:`chunked_order` (``bounds``, ``window``) instead of a
    full permutation: ``ChunkedOrder.wrap(ArrayBatches(...), bounds, window)`` trains in memory on the order a
    :class:`FileBatches` with the same chunks reads from its file."""

    @staticmethod
    def wrap(source: Any, bounds: Sequence[int], window: int) -> Any:
        source.epoch_order = lambda rng: chunked_order(rng, bounds, window)
        return source


class NpyRows:
    """Rows ``a:b`` of a 2-D C-ordered ``.npy`` file, read into memory on demand (``read``)."""

    def __init__(self, path: Any) -> None:
        import numpy as np

        self.path = os.fspath(path)
        try:  # only the header is read: shape, dtype, data offset
            mapped = np.load(self.path, mmap_mode="r")
        except (OSError, ValueError) as exc:  # missing, not a .npy file, pickled objects (cannot be mapped)
            raise DatasetError(f"cannot stream {self.path!r}: {exc}; it must be a .npy file of a 2-D numeric "
                               "array (np.save(path, np.ascontiguousarray(X, dtype=np.float32)))") from None
        if mapped.dtype.kind not in "biuf":
            raise DatasetError(f"{self.path!r} holds {mapped.dtype} values; streaming needs numbers (bool, int or "
                               "float)")
        if mapped.ndim != 2 or not mapped.flags.c_contiguous:
            raise ShapeError(f"{self.path!r} holds a {mapped.ndim}-D {'C' if mapped.flags.c_contiguous else 'Fortran'}"
                             "-ordered array; streaming needs a 2-D C-ordered (rows are examples) .npy file: save it "
                             "with np.save(path, np.ascontiguousarray(X))")
        self.shape, self.dtype, self.offset = mapped.shape, mapped.dtype, int(mapped.offset)
        del mapped
        self._file = open(self.path, "rb")  # noqa: SIM115  (kept open for the source's life; closed in close())

    def read(self, a: int, b: int) -> Any:
        import numpy as np

        out = np.empty((b - a, self.shape[1]), dtype=self.dtype)
        self._file.seek(self.offset + a * self.shape[1] * self.dtype.itemsize)
        got = self._file.readinto(memoryview(out).cast("B"))
        if got != out.nbytes:
            raise ShapeError(f"{self.path!r} ended after {got} of {out.nbytes} bytes of rows {a}:{b}: the file was "
                             "truncated or changed while training")
        return out

    def close(self) -> None:
        self._file.close()


class ParquetRows:
    """The row groups of a Parquet file as chunks, ``columns`` (default: all) as the features."""

    def __init__(self, path: Any, columns: Sequence[str] | None = None) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ConfigError(f"reading Parquet needs pyarrow ({exc}): pip install pyarrow") from None
        self.path = os.fspath(path)
        try:
            self._file = pq.ParquetFile(self.path)
        except (OSError, ValueError) as exc:  # missing, or not Parquet (pyarrow's ArrowInvalid is a ValueError)
            raise DatasetError(f"cannot stream {self.path!r}: {exc}") from None
        meta = self._file.metadata
        self.columns = list(columns) if columns is not None else list(self._file.schema_arrow.names)
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.bounds = [0]
        for n in sizes:
            self.bounds.append(self.bounds[-1] + n)
        self.shape = (self.bounds[-1], len(self.columns))

    def read_group(self, i: int) -> Any:
        import numpy as np

        table = self._file.read_row_group(i, columns=self.columns)
        return np.column_stack([table.column(c).to_numpy() for c in self.columns])

    def close(self) -> None:
        self._file.close()


class FileBatches(BatchSource):
    """Mini-batches read from a file larger than memory, chunk by chunk (see the module's docstring).

    Parameters
    ----------
    backend : the network's :class:`~xpnet.device.backend.Backend`
    X : a ``.npy`` path (2-D, C-ordered, rows are examples), a ``.parquet`` path, or a :class:`NpyRows` /
        :class:`ParquetRows`
    Y : (m, n_L) host targets, rows are examples (one-hot for softmax): targets are small next to ``X``
    sample_weight : (m, 1) host per-example weights, or None
    dtype : the network's dtype (each chunk is cast once, as it is read)
    chunk_rows : rows per chunk of a ``.npy`` file (Parquet files use their row groups)
    window : chunks mixed together by the shuffle; at most ``2 * window`` chunks are held at once
    columns : the feature columns of a Parquet file (default: all)
    prefetch : prepare the next batch in a thread while the current step runs (default: on GPU backends only,
        where the step runs on the device; on the CPU the thread takes a core from the step's BLAS)

    Resident memory: two windows of chunks, the batches in flight, and ``Y``. Any order works (a full
    permutation too: a batch then reads the chunks its rows live in, over and over); the order the trainer
    draws for this source is :func:`chunked_order`, which reads each chunk once per epoch.
    """

    def __init__(self, backend: Any, X: Any, Y: Any, sample_weight: Any = None, *, dtype: Any = None,
                 chunk_rows: int = 65536, window: int = 4, columns: Sequence[str] | None = None,
                 prefetch: bool | None = None) -> None:
        import numpy as np

        if isinstance(X, (str, os.PathLike)):
            X = ParquetRows(X, columns) if os.fspath(X).lower().endswith((".parquet", ".pq")) else NpyRows(X)
        if not isinstance(X, (NpyRows, ParquetRows)):
            raise ConfigError(f"FileBatches reads a .npy or .parquet path, got {X!r}")
        for name, value in (("chunk_rows", chunk_rows), ("window", window)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        self.rows, self.backend = X, backend
        self.m = int(X.shape[0])
        Y = np.asarray(Y)
        if Y.ndim != 2 or Y.shape[0] != self.m:
            raise ShapeError(f"FileBatches takes targets of shape (m, n_L) with one row per example: the file has "
                             f"{self.m} rows, Y has shape {Y.shape}")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)
            if sample_weight.size != self.m:
                raise ShapeError(f"sample_weight has shape {sample_weight.shape} but the file has {self.m} rows: "
                                 "pass one weight per example")
            sample_weight = sample_weight.reshape(self.m, 1)
        self.dtype = np.dtype(_xp.dtype_name(backend.xp, dtype) if dtype is not None else "float64")
        self.Y = Y.astype(self.dtype, copy=False)
        self.w = None if sample_weight is None else sample_weight.astype(self.dtype, copy=False)
        self.n_outputs = int(Y.shape[1])
        self.weighted = sample_weight is not None
        self.window = int(window)
        if isinstance(X, ParquetRows):
            self.bounds = list(X.bounds)
        else:
            self.bounds = [*range(0, self.m, chunk_rows), self.m]
        on_gpu = backend.name == "cupy" or any(k in str(backend.device).lower() for k in ("cuda", "gpu"))
        self.prefetch = on_gpu if prefetch is None else bool(prefetch)
        self._cache: OrderedDict[int, Any] = OrderedDict()

    # ------------------------------------------------------------------------------------------ order
    def epoch_order(self, rng: Any) -> Any:
        """This epoch's order (the trainer calls it with its "shuffle" stream): :func:`chunked_order`."""
        return chunked_order(rng, self.bounds, self.window)

    # ------------------------------------------------------------------------------------------ reading
    def _chunk(self, c: int) -> Any:
        """Chunk ``c`` as a host array in the network's dtype, kept among the last ``2 * window`` read."""
        cached = self._cache.get(c)
        if cached is not None:
            self._cache.move_to_end(c)
            return cached
        a, b = self.bounds[c], self.bounds[c + 1]
        rows = self.rows.read_group(c) if isinstance(self.rows, ParquetRows) else self.rows.read(a, b)
        rows = rows.astype(self.dtype, copy=False)
        self._cache[c] = rows
        while len(self._cache) > 2 * self.window:
            self._cache.popitem(last=False)
        return rows

    def _host_rows(self, idx: Any) -> Any:
        """``X[idx]`` (host, (b, n_x)) from the chunks the rows live in."""
        import numpy as np

        chunk_of = np.searchsorted(self.bounds, idx, side="right") - 1
        out = np.empty((idx.shape[0], self.rows.shape[1]), dtype=self.dtype)
        for c in np.unique(chunk_of):
            sel = chunk_of == c
            out[sel] = self._chunk(int(c))[idx[sel] - self.bounds[c]]
        return out

    def _host_batch(self, idx: Any) -> tuple[Any, Any, Any]:
        return self._host_rows(idx), self.Y[idx], None if self.w is None else self.w[idx]

    def _to_device(self, batch: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
        """The lecture's layout on the device: ``(n_x, b)``, ``(n_L, b)``, ``(1, b)``."""
        bk = self.backend
        with bk.activate():
            return tuple(None if a is None else bk.asarray(a).T for a in batch)

    def blocks(self, order: Any, spans: Any, capacity: int) -> Iterator[tuple[Any, Any, Any]]:
        """Yield the batches of ``order[start:stop]`` for each span (rows ``start:stop`` when ``order`` is None)."""
        import numpy as np

        def indices() -> Iterator[Any]:
            for start, stop in spans:
                yield np.arange(start, stop) if order is None else np.asarray(order[start:stop])

        if order is not None and (order.shape != (self.m,) or (self.m and (order.min() < 0 or order.max() >= self.m))):
            raise ShapeError(f"the order of an epoch must index the {self.m} examples, got shape {order.shape}")
        if not self.prefetch:
            for idx in indices():
                yield self._to_device(self._host_batch(idx))
            return
        yield from _prefetched(self, indices())

    def batches(self, order: Any, batch_size: int) -> Iterator[tuple[Any, Any, Any]]:
        spans = [(s, min(s + batch_size, self.m)) for s in range(0, self.m, batch_size)]
        return self.blocks(order, spans, batch_size)

    def targets(self) -> Any:
        with self.backend.activate():
            return self.backend.asarray(self.Y).T

    def release(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        """Close the file (the source cannot read after this)."""
        self.release()
        self.rows.close()


_DONE = object()


def _prefetched(source: FileBatches, indices: Iterator[Any]) -> Iterator[tuple[Any, Any, Any]]:
    """The batches of ``indices``, each prepared by a thread while the consumer uses the one before.

    One batch ahead (a queue of one): the memory in flight is two batches. On CuPy the thread copies on a
    non-blocking stream of its own and synchronises it before handing the batch over, so the step's stream
    never sees a half-copied batch. An error in the thread is raised here; a consumer that stops early stops
    the thread."""
    q: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    cupy_stream = None
    if _xp.is_cupy_namespace(source.backend.xp):
        import cupy

        with source.backend.activate():
            cupy_stream = cupy.cuda.Stream(non_blocking=True)

    def work() -> None:
        try:
            for idx in indices:
                if stop.is_set():
                    return
                host = source._host_batch(idx)
                if cupy_stream is not None:
                    with cupy_stream:
                        batch = source._to_device(host)
                    cupy_stream.synchronize()
                else:
                    batch = source._to_device(host)
                while not stop.is_set():
                    try:
                        q.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)

    thread = threading.Thread(target=work, name="xpnet-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)

"""Sparse ``X`` (scipy CSR/CSC) in the estimators: kept sparse on the host, densified one mini-batch (or one
prediction chunk) at a time and moved to the device, never whole.

:class:`SparseRows` is the validated matrix (CSR, in the compute dtype); :class:`SparseBatches` serves its
mini-batches to the trainer (a :class:`~xpnet.engine.batches.BatchSource`: ``X_b`` ``(n_x, b)`` dense on the
device, the targets and weights gathered on the device).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..engine.batches import BatchSource

__all__ = ["CHUNK_ROWS", "SparseBatches", "SparseRows"]

CHUNK_ROWS = 4096  # rows densified at once outside training (prediction, lbfgs, a validation split)


class SparseRows:
    """A validated sparse ``X`` (m, n_x): ``csr`` (scipy CSR in the compute dtype), the backend and its dtype."""

    def __init__(self, csr: Any, backend: Any, dtype: Any) -> None:
        self.csr, self.backend, self.dtype = csr, backend, dtype
        self.shape = csr.shape

    def rows(self, index: Any) -> SparseRows:
        """The rows ``index`` (host integers), still sparse."""
        return SparseRows(self.csr[np.asarray(index)], self.backend, self.dtype)

    def dense(self, start: int = 0, stop: int | None = None) -> Any:
        """Rows ``start:stop`` densified on the device, ``(rows, n_x)``."""
        return self.backend.asarray(self.csr[start:stop].toarray(), dtype=self.dtype)

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[tuple[int, Any]]:
        """``(start, rows (b, n_x) dense on the device)`` for consecutive blocks of ``size`` rows."""
        for start in range(0, self.shape[0], size):
            yield start, self.dense(start, start + size)


class SparseBatches(BatchSource):
    """Mini-batches of a :class:`SparseRows` for :meth:`xpnet.engine.Trainer.fit`: each batch's rows densified on
    the host and moved to the device (``X_b`` ``(n_x, b)``), ``Y_b`` ``(n_L, b)`` and ``w_b`` ``(1, b)`` taken from
    the device targets ``T`` ``(n_L, m)`` and weights ``(1, m)`` or None."""

    def __init__(self, X: SparseRows, T: Any, weights: Any = None) -> None:
        self.X, self.T, self.w = X, T, weights
        self.m = int(X.shape[0])
        self.n_outputs = int(T.shape[0])
        self.weighted = weights is not None

    def batches(self, order: Any, batch_size: int) -> Iterator[tuple[Any, Any, Any]]:
        bk = self.X.backend
        xp = bk.xp
        order = np.arange(self.m) if order is None else np.asarray(order)
        for start in range(0, self.m, batch_size):
            rows = order[start:start + batch_size]
            Xb = bk.asarray(self.X.csr[rows].toarray(), dtype=self.X.dtype)
            idx = bk.asarray(rows)
            Yb = xp.take(self.T, idx, axis=1)
            wb = None if self.w is None else xp.take(self.w, idx, axis=1)
            yield xp.permute_dims(Xb, (1, 0)), Yb, wb

    def targets(self) -> Any:
        return self.T

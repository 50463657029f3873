"""Data-parallel training: the engine's side of it (the communicators live in :mod:`xpnet.distributed`).

``N`` processes ("ranks") train one network. Every rank holds the same parameters, draws the same seeded
order and the same dropout masks, and for each global mini-batch of ``B`` examples takes its shard, the
columns ``lo_r:hi_r`` of :func:`shard_bounds` (``B = sum_r b_r``, shards differ by at most one example).
Each rank computes the mean gradient of its shard, ``g_r`` (each gradient carries ``1/b_r``); the gradient
hook (:class:`AllreduceHook`) sums ``(b_r/B) g_r`` over the ranks, which is the gradient of the whole batch,

    g = (1/B) sum_j grad loss_j = sum_r (b_r/B) g_r,

and then every rank adds the L2 term once, at the global batch's scale, ``(lambd/B) W``, and applies the same
update. The parameters therefore stay equal on every rank and equal to those of one process on the same
global batches, up to the order of the floating-point sums (tests: 1e-12 relative in float64 after 20
epochs). Dropout masks are drawn for the whole global batch from the seeded stream on every rank and each
rank uses its columns: the masks, hence the result, do not depend on ``N``.

The epoch's loss and metric sums, the validation set's (sharded the same way) and the divergence probe are
summed across ranks where the trainer reads them back (once per epoch), so every rank sees the same numbers
and takes the same decisions (early stopping, divergence). Only rank 0 writes files (checkpoints, model
files, progress).

Each step's cost on a rank carries the L2 penalty ``(lambd/(2 b_r)) sum||W||^2``; summed over ``N`` ranks
that would count it ``N`` times, so ranks other than 0 subtract it (one more pass over the weights per step,
on those ranks, only with L2).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, MutableMapping
from typing import Any

from ..device import xp as _xp
from ..errors import ConfigError
from .batches import BatchSource
from .hooks import GradientHook

__all__ = ["AllreduceHook", "Communicator", "ShardedBatches", "check_communicator", "shard_bounds"]


class Communicator:
    """What data-parallel training needs from a group of ``size`` processes; this one is rank ``rank``.

    Implementations: :class:`xpnet.distributed.MPICommunicator` (mpi4py), :class:`xpnet.distributed.
    NCCLCommunicator` (CuPy + NCCL), :class:`xpnet.distributed.TorchCommunicator` (``torch.distributed``).
    """

    rank: int = 0
    size: int = 1

    def allreduce(self, backend: Any, buffer: Any) -> Any:
        """The element-wise sum of ``buffer`` (a 1-D array of ``backend``, the same shape and dtype on every
        rank) over the ranks. May write into ``buffer`` and return it."""
        raise NotImplementedError

    def allreduce_host(self, values: Any) -> Any:
        """The element-wise sum over the ranks of a 1-D host NumPy array (float64 for the epoch's sums)."""
        raise NotImplementedError

    def barrier(self) -> None:
        """Wait until every rank got here."""


def check_communicator(communicator: Any) -> Any:
    """``None`` (one process) or a :class:`Communicator`; anything else is a :class:`ConfigError`."""
    if communicator is None or isinstance(communicator, Communicator):
        return communicator
    raise ConfigError(f"communicator must be an xpnet.distributed communicator (e.g. xpnet.distributed.world() "
                      f"under mpiexec) or None, got {communicator!r}")


def data_parallel(communicator: Any, network: Any, hook: GradientHook) -> tuple[Any, GradientHook]:
    """A trainer's communicator (checked) and gradient hook: the :class:`AllreduceHook` when there is a
    communicator (a hook of one's own cannot be combined with it), else ``hook`` as given."""
    communicator = check_communicator(communicator)
    if communicator is None:
        return None, hook
    if not getattr(hook, "is_identity", False):
        raise ConfigError("a trainer with a communicator sums the ranks' gradients with its own hook: give either "
                          "communicator or gradient_hook, not both")
    return communicator, AllreduceHook(communicator, network.backend)


def one_process(state: dict[str, Any]) -> dict[str, Any]:
    """A trainer's pickled state without its process group (which does not travel): one process's trainer."""
    if state.get("communicator") is not None:
        from .hooks import IDENTITY

        state["communicator"], state["gradient_hook"] = None, IDENTITY
    return state


def shard_bounds(b: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s columns ``lo:hi`` of a global batch of ``b`` examples split over ``size`` ranks: the first
    ``b mod size`` ranks get ``ceil(b/size)`` examples, the others ``floor(b/size)`` (e.g. 10 over 3: 4, 3, 3)."""
    q, r = divmod(b, size)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (rank < r)


class AllreduceHook(GradientHook):
    """The gradient hook of data-parallel training: ``g = sum_r (b_r/B) g_r`` over the ranks, in one buffer.

    ``global_batch`` is the size ``B`` of the global batch the current shard belongs to; :class:`ShardedBatches`
    sets it before it hands out each shard. Without it (``Trainer.step`` called on each rank with a batch of its
    own) ``B`` is the sum of the ranks' batch sizes, one small host all-reduce per step; dropout masks are then
    each rank's own. The gradients are packed, each scaled by ``b_r/B`` (exactly 1.0 for
    one rank, which then keeps the bits of a single process), into one flat buffer, summed with one collective
    call, and handed back as views of it.
    """

    def __init__(self, communicator: Communicator, backend: Any) -> None:
        self.communicator, self.backend = communicator, backend
        self.global_batch: int | None = None
        self._flat: Any = None

    def __call__(self, xp: Any, grads: MutableMapping[str, Any], batch_size: int) -> MutableMapping[str, Any]:
        if self.global_batch is None:  # Trainer.step on each rank's own batch: B is their total (a host sum)
            import numpy as np

            self.global_batch = int(self.communicator.allreduce_host(np.array([batch_size], dtype=np.int64))[0])
            self._one_step = True
        B = self.global_batch
        weight = batch_size / B
        keys = sorted(grads)  # one layout on every rank, whatever order a step built its dict in
        sizes = [math.prod(grads[k].shape) for k in keys]  # torch tensors have size(), not size
        total = sum(sizes)
        dtype = grads[keys[0]].dtype
        flat = self._flat
        if flat is None or flat.shape != (total,) or flat.dtype != dtype:
            with self.backend.activate():
                flat = self._flat = xp.zeros((total,), dtype=dtype)
        offset = 0
        pieces = []
        for k, n in zip(keys, sizes, strict=True):
            pieces.append((k, offset, n, grads[k].shape))
            offset += n
        mod = _xp.ufunc_module(xp)
        if mod is not None:  # NumPy and CuPy: written into the kept buffer, no temporaries
            for k, start, n, _ in pieces:
                mod.multiply(xp.reshape(grads[k], (n,)), weight, out=flat[start:start + n])
        else:
            flat = xp.concat([xp.reshape(grads[k], (n,)) * weight for k, _, n, _ in pieces])
        flat = self.communicator.allreduce(self.backend, flat)
        for k, start, n, shape in pieces:
            grads[k] = xp.reshape(flat[start:start + n], shape)
        return grads

    def l2_batch_size(self, batch_size: int) -> int:
        B = self.global_batch or batch_size
        if getattr(self, "_one_step", False):  # Trainer.step: the next step's ranks may hold other sizes
            self.global_batch, self._one_step = None, False
        return B

    def release(self) -> None:
        self._flat = None


class ShardedBatches(BatchSource):
    """This rank's shards of the global mini-batches of ``source`` (which must have ``blocks``, as
    :class:`~xpnet.engine.batches.ArrayBatches` and :class:`~xpnet.engine.streaming.FileBatches` do).

    ``m`` is the global number of examples: the trainer averages the epoch's summed loss over it after the sums
    are reduced across ranks. A global batch of fewer examples than ranks (a last partial batch) leaves some
    ranks an empty shard: they still join the sum, with zeros, and make the same update (:func:`empty_step`).
    """

    def __init__(self, source: Any, communicator: Communicator, hook: AllreduceHook) -> None:
        if not callable(getattr(source, "blocks", None)):
            raise ConfigError(f"{type(source).__name__} cannot be sharded across ranks: data-parallel training needs "
                              "a source with blocks(order, spans, capacity), as ArrayBatches and FileBatches have")
        self.source, self.communicator, self.hook = source, communicator, hook
        self.m, self.n_outputs, self.weighted = source.m, source.n_outputs, source.weighted

    def batches(self, order: Any, batch_size: int) -> Iterator[tuple[Any, Any, Any]]:
        rank, size, m = self.communicator.rank, self.communicator.size, self.m
        spans, sizes = [], []
        for start in range(0, m, batch_size):
            b = min(batch_size, m - start)
            lo, hi = shard_bounds(b, rank, size)
            spans.append((start + lo, start + hi))
            sizes.append(b)
        capacity = -(-batch_size // size)
        for b, batch in zip(sizes, self.source.blocks(order, spans, capacity), strict=True):
            self.hook.global_batch = b
            yield batch

    def __getattr__(self, name: str) -> Any:
        if name == "epoch_order":  # the source's own order (a file's chunked shuffle), where it has one
            return self.source.epoch_order
        raise AttributeError(name)

    @property
    def batch_labels(self) -> Any:
        """The current shard's classes where the source keeps them (``ArrayBatches.keep_labels``), else None."""
        return getattr(self.source, "batch_labels", None)

    def targets(self) -> Any:
        return self.source.targets()

    def release(self) -> None:
        self.hook.global_batch = None
        self.hook.release()
        self.source.release()


def shard_masks(masks: Iterator[dict[int, Any]], communicator: Communicator) -> Iterator[dict[int, Any]]:
    """This rank's columns of each global batch's dropout masks ``{l: M[l] (n_l, B)}``."""
    rank, size = communicator.rank, communicator.size
    for batch in masks:
        yield {l: M[:, slice(*shard_bounds(M.shape[1], rank, size))] for l, M in batch.items()}


def empty_step(trainer: Any, xp: Any, Yb: Any, lr: float) -> tuple[Any, Any]:
    """The step of a rank whose shard of the global batch is empty: zero gradients into the sum (which then
    holds the other ranks' whole batch), L2 at the global batch's scale, and the optimizer's update, the same
    values every rank applies (the generic update, proven equal bit for bit to the in-place one). Returns a zero
    cost and an empty ``(n_L, 0)`` output."""
    from .hooks import add_l2_gradients, run_hook

    net, hook = trainer.network, trainer.gradient_hook
    params = net.parameters
    grads = run_hook(hook, xp, {f"d{k}": xp.zeros_like(v) for k, v in params.items()}, 0)
    grads = add_l2_gradients(xp, grads, params, trainer.l2, hook.l2_batch_size(0))
    net.parameters = trainer.optimizer.update(xp, params, grads, lr)
    return xp.zeros((), dtype=net.dtype), Yb


def read_path(path: Any) -> Any:
    """A checkpoint path as ranks other than 0 use it: read (to resume), never written nor probed (rank 0 checks
    and writes it; probes of several ranks in one directory would race with its clean-up)."""
    import os
    from pathlib import Path

    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ConfigError(f"checkpoint must be a file path, got {path!r}")
    return Path(os.fspath(path))


def local_penalty(trainer: Any, xp: Any, b: int) -> Any:
    """``(lambd/(2b)) sum_l ||W[l]||^2`` of the current parameters (the part of a step's cost that ranks other
    than 0 take out again, so that the summed epoch loss counts it once), or None without L2 or on rank 0."""
    comm = trainer.communicator
    if comm is None or comm.rank == 0 or not trainer.l2:
        return None
    from ..lecture.network import l2_penalty

    return (0.5 * trainer.l2 / b) * l2_penalty(xp, trainer.network.parameters)


def evaluate_sharded(trainer: Any, X: Any, Y: Any, w: Any = None) -> tuple[float, float]:
    """:meth:`Trainer.evaluate` over ranks: each rank the columns :func:`shard_bounds` gives it, the loss and
    metric sums reduced across ranks, so every rank returns the same numbers as one process would."""
    from ..lecture.network import forward_output, l2_penalty
    from .batches import check_batch_size
    from .metrics import finish_metric, metric_terms

    net, comm = trainer.network, trainer.communicator
    xp = net.backend.xp
    m = int(X.shape[1])
    lo, hi = shard_bounds(m, comm.rank, comm.size)
    out = net.output.name
    import numpy as np

    # the loss, then metric_terms' entries: one (the correct count) for sigmoid and softmax, else one per output
    host = np.zeros(1 + (1 if out in ("sigmoid", "softmax") else int(Y.shape[0])))
    if hi > lo:
        Xs, Ys = X[:, lo:hi], Y[:, lo:hi]
        ws = None if w is None else w[:, lo:hi]
        ZL, AL = forward_output(xp, net.parameters, Xs, net.hidden, net.output)
        cost = net.loss.fused_cost(xp, ZL, Ys, ws) * (hi - lo)
        terms = xp.astype(metric_terms(xp, out, AL, Ys), cost.dtype)
        host[:] = net.backend.to_numpy(xp.concat([xp.reshape(cost, (1,)), terms]))
    host = comm.allreduce_host(host)
    loss = float(host[0]) / m
    if trainer.l2:
        scale = getattr(trainer, "_penalty_scale", 1.0 / check_batch_size(trainer.batch_size, m))
        penalty = net.backend.to_numpy(l2_penalty(xp, net.parameters))
        loss += 0.5 * trainer.l2 * scale * float(penalty)
    spread = trainer._spread(xp, Y, lambda: Y) if out == "linear" else None
    return loss, finish_metric(out, host[1:], m, spread)

"""The ``torch.distributed`` communicator for torch networks (optional: a process group the caller set up)."""

from __future__ import annotations

from typing import Any

from ..engine.parallel import Communicator
from ..errors import ConfigError

__all__ = ["TorchCommunicator"]


class TorchCommunicator(Communicator):
    """``torch.distributed.all_reduce`` over ``group`` (default: the initialised default group).

    The caller runs ``torch.distributed.init_process_group`` first (``"gloo"`` for CPU tensors, ``"nccl"`` for
    CUDA ones); the epoch's host sums travel as CPU tensors, which need a group that takes them (gloo, or a
    second gloo group given as ``host_group``).
    """

    def __init__(self, group: Any = None, *, host_group: Any = None) -> None:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise ConfigError("TorchCommunicator needs an initialised torch.distributed process group: call "
                              "torch.distributed.init_process_group(...) first, or use xpnet.distributed.world()")
        self._dist, self.group = dist, group
        self.host_group = group if host_group is None else host_group
        self.rank, self.size = int(dist.get_rank(group)), int(dist.get_world_size(group))

    def __repr__(self) -> str:
        return f"TorchCommunicator(rank={self.rank}, size={self.size})"

    def allreduce(self, backend: Any, buffer: Any) -> Any:
        self._dist.all_reduce(buffer, op=self._dist.ReduceOp.SUM, group=self.group)
        return buffer

    def allreduce_host(self, values: Any) -> Any:
        import torch

        t = torch.from_numpy(values.copy())
        self._dist.all_reduce(t, op=self._dist.ReduceOp.SUM, group=self.host_group)
        return t.numpy()

    def barrier(self) -> None:
        self._dist.barrier(group=self.group)

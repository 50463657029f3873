"""The NCCL communicator for CuPy networks: NCCL sums device buffers on the current stream, MPI only hands out
NCCL's unique id. Written against CuPy's NCCL binding (``cupy.cuda.nccl``); not run in xpnet's CI, which has no
GPU (see the README's data-parallel section)."""

from __future__ import annotations

from typing import Any

from ..engine.parallel import Communicator
from ..errors import ConfigError
from .mpi import MPICommunicator

__all__ = ["NCCLCommunicator", "local_rank"]


def local_rank(mpi: MPICommunicator) -> int:
    """This process's index among the ranks on its node (the GPU it should use: ``cupy:<local_rank>``)."""
    node = mpi.comm.Split_type(mpi._MPI.COMM_TYPE_SHARED, key=mpi.rank)
    try:
        return int(node.Get_rank())
    finally:
        node.Free()


class NCCLCommunicator(Communicator):
    """NCCL all-reduce of CuPy buffers in place, on CuPy's current stream (no host sync, no host copy).

    ``mpi`` (default :func:`xpnet.distributed.world`) gives the ranks and carries the unique id from rank 0 and
    the epoch's host sums. ``device`` is the CUDA device of this rank (default: its local rank on the node); the
    network must live there (``backend=f"cupy:{comm.device}"``).
    """

    def __init__(self, mpi: MPICommunicator | None = None, *, device: int | None = None) -> None:
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as exc:
            raise ConfigError(f"NCCLCommunicator needs CuPy with NCCL ({exc}): pip install 'xpnet[cuda12]' and "
                              "use MPICommunicator on machines without NVIDIA GPUs") from None
        self.mpi = mpi if mpi is not None else MPICommunicator()
        self.rank, self.size = self.mpi.rank, self.mpi.size
        self.device = local_rank(self.mpi) if device is None else int(device)
        self._nccl_module, self._cupy = nccl, cupy
        uid = self.mpi.bcast(nccl.get_unique_id() if self.rank == 0 else None)
        with cupy.cuda.Device(self.device):
            self._comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self._types = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64, "float16": nccl.NCCL_FLOAT16}

    def __repr__(self) -> str:
        return f"NCCLCommunicator(rank={self.rank}, size={self.size}, device={self.device})"

    def allreduce(self, backend: Any, buffer: Any) -> Any:
        if not isinstance(buffer, self._cupy.ndarray):
            raise ConfigError(f"NCCLCommunicator sums CuPy arrays; this network computes on {backend.spec}: use "
                              "MPICommunicator for it")
        kind = self._types.get(buffer.dtype.name)
        if kind is None:
            raise ConfigError(f"NCCLCommunicator sums float16/32/64 buffers, got {buffer.dtype}")
        stream = self._cupy.cuda.get_current_stream()
        self._comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, kind, self._nccl_module.NCCL_SUM,
                             stream.ptr)
        return buffer

    def allreduce_host(self, values: Any) -> Any:
        return self.mpi.allreduce_host(values)

    def barrier(self) -> None:
        self.mpi.barrier()

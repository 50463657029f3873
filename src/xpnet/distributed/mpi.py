"""The MPI communicator (mpi4py), and :func:`world`, the communicator of the processes ``mpiexec`` started."""

from __future__ import annotations

import os
from typing import Any

from ..device import xp as _xp
from ..engine.parallel import Communicator
from ..errors import ConfigError

__all__ = ["MPICommunicator", "launched_by_mpi", "mpi_module", "world"]

# Set by the launchers of MPICH/Hydra (PMI_*), Open MPI (OMPI_*), PMIx-based ones and Slurm's srun (PMI_*).
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALRANKID")


def mpi_module() -> Any:
    """``mpi4py.MPI`` (importing it initialises MPI), or a :class:`ConfigError` saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ConfigError(f"data-parallel training needs mpi4py and an MPI library ({exc}): pip install "
                          "'xpnet[mpi]' (mpi4py with the mpich wheel), then launch with mpiexec -n N") from None
    return MPI


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher (``mpiexec``, ``srun``), from its environment: no MPI
    call, so asking never initialises MPI."""
    return any(v in os.environ for v in _LAUNCHER_VARIABLES)


def world(cuda_aware: bool | None = None) -> MPICommunicator:
    """The communicator of every process the launcher started (``MPI.COMM_WORLD``; size 1 without ``mpiexec``)."""
    return MPICommunicator(None, cuda_aware=cuda_aware)


class MPICommunicator(Communicator):
    """Sums across the ranks of an MPI communicator (``mpi4py``; ``comm`` defaults to ``MPI.COMM_WORLD``).

    ``allreduce`` sums a NumPy buffer in place (``MPI_Allreduce`` with ``MPI_IN_PLACE``); a CuPy buffer in place
    on the device when the MPI is CUDA-aware (``cuda_aware=True``, or ``XPNET_MPI_CUDA_AWARE=1``: the current
    stream is synchronised first, since MPI does not order itself after CUDA work), otherwise through a host
    copy; other backends (torch, JAX, array_api_strict) through a host copy.
    """

    def __init__(self, comm: Any = None, *, cuda_aware: bool | None = None) -> None:
        MPI = mpi_module()
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = int(self.comm.Get_rank()), int(self.comm.Get_size())
        if cuda_aware is None:
            cuda_aware = os.environ.get("XPNET_MPI_CUDA_AWARE", "") == "1"
        self.cuda_aware = bool(cuda_aware)

    def __repr__(self) -> str:
        return f"MPICommunicator(rank={self.rank}, size={self.size})"

    def allreduce(self, backend: Any, buffer: Any) -> Any:
        """The sum of ``buffer`` (1-D) over the ranks: written into ``buffer`` where it can be, and returned."""
        MPI, xp = self._MPI, backend.xp
        if _xp.is_numpy_namespace(xp):
            self.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
            return buffer
        if _xp.is_cupy_namespace(xp) and self.cuda_aware:
            import cupy

            cupy.cuda.get_current_stream().synchronize()
            self.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
            return buffer
        import numpy as np

        host = np.array(backend.to_numpy(buffer), copy=True)
        self.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
        return backend.asarray(host)

    def allreduce_host(self, values: Any) -> Any:
        import numpy as np

        out = np.array(values, copy=True)
        self.comm.Allreduce(self._MPI.IN_PLACE, out, op=self._MPI.SUM)
        return out

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """End every rank of the job (``MPI_Abort``): what a rank that failed alone must do, since the others
        would wait for it in their next collective."""
        self.comm.Abort(code)

    def bcast(self, obj: Any, root: int = 0) -> Any:
        """``obj`` of rank ``root`` on every rank (pickled)."""
        return self.comm.bcast(obj, root=root)

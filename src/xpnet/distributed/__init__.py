"""Data-parallel training across processes: communicators for :class:`xpnet.engine.Trainer` (extra ``xpnet[mpi]``).

Launch ``N`` copies of a training script with ``mpiexec -n N python script.py`` (or ``mpiexec -n N xpnet train
... --distributed``); each builds the same network and data and trains with ``communicator=world()``::

    from xpnet.distributed import world
    net.train(X, Y, epochs=20, batch_size=256, communicator=world())

Every rank computes the gradients of its shard of each seeded global mini-batch; they are summed (weighted by
the shard sizes) before the update, L2 is added once after the sum, and dropout masks are the global batch's,
so the result equals one process's on the same global batches (see :mod:`xpnet.engine.parallel` for the math).

* :class:`MPICommunicator` (mpi4py): NumPy buffers in place; CuPy buffers in place when the MPI is CUDA-aware
  (``cuda_aware=True`` or ``XPNET_MPI_CUDA_AWARE=1``), else through the host; other backends through the host.
* :class:`NCCLCommunicator` (CuPy's NCCL binding, MPI only to hand out NCCL's unique id): CuPy networks.
* :class:`TorchCommunicator` (``torch.distributed``, a process group the caller initialised): torch networks.

:func:`xpnet.distributed.cluster.local_cluster` is the other way to use many processes: a dask cluster for
``GridSearchCV`` under ``joblib.parallel_backend("dask")``, each worker's BLAS on pinned threads.
"""

from __future__ import annotations

from ..engine.parallel import Communicator, shard_bounds
from .mpi import MPICommunicator, launched_by_mpi, world
from .nccl import NCCLCommunicator
from .torch_group import TorchCommunicator

__all__ = [
    "Communicator",
    "MPICommunicator",
    "NCCLCommunicator",
    "TorchCommunicator",
    "launched_by_mpi",
    "shard_bounds",
    "world",
]

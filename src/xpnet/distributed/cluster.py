"""Hyper-parameter search on a dask cluster: a ``LocalCluster`` whose workers each run BLAS on a set number of
threads, for ``joblib.parallel_backend("dask")`` around scikit-learn's ``GridSearchCV``."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError

__all__ = ["BLAS_VARIABLES", "local_cluster"]

#: The variables OpenBLAS, MKL, BLIS, Accelerate and OpenMP read for their thread counts at import.
BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def local_cluster(n_workers: int = 2, *, blas_threads: int = 1, **kwargs: Any) -> Any:
    """A ``dask.distributed.LocalCluster`` of ``n_workers`` worker processes, one task at a time each, whose
    BLAS and OpenMP pools have ``blas_threads`` threads (set in each worker's environment before it starts, so
    ``n_workers * blas_threads`` threads share the cores instead of every worker taking all of them).

    ``kwargs`` go to ``LocalCluster`` (``dashboard_address=None`` unless given). Use it as::

        with local_cluster(2) as cluster, Client(cluster), joblib.parallel_backend("dask"):
            GridSearchCV(DNNClassifier(...), grid, n_jobs=-1).fit(X, y)
    """
    try:
        from dask.distributed import LocalCluster
    except ImportError as exc:
        raise ConfigError(f"a dask cluster needs dask[distributed] ({exc}): pip install 'dask[distributed]'") from None
    for name, value in (("n_workers", n_workers), ("blas_threads", blas_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    env = {**{v: str(blas_threads) for v in BLAS_VARIABLES}, **kwargs.pop("env", {})}
    kwargs.setdefault("dashboard_address", None)
    kwargs.setdefault("threads_per_worker", 1)
    return LocalCluster(n_workers=n_workers, processes=True, env=env, **kwargs)

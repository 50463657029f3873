"""GridSearchCV over xpnet estimators on a real dask.distributed cluster (two worker processes) gives the
results of n_jobs=1, and each worker's BLAS runs on the threads it was given."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
joblib = pytest.importorskip("joblib")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from xpnet.distributed.cluster import local_cluster  # noqa: E402
from xpnet.estimators import DNNClassifier  # noqa: E402


def _blas_threads() -> list[int]:
    import numpy  # noqa: F401  (loads the BLAS whose pool is asked about)
    from threadpoolctl import threadpool_info

    return sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})


@pytest.mark.slow  # a cluster of two processes starts (about 3 s) and each imports xpnet and scikit-learn
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_on_a_dask_cluster_equals_one_job() -> None:
    from dask.distributed import Client

    X, y = load_digits(return_X_y=True)
    X, y = X[:200], y[:200]
    grid = {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(16,), (32,)]}
    est = DNNClassifier(max_iter=5, batch_size=32, random_state=0, dtype="float64", backend="numpy")
    serial = GridSearchCV(est, grid, cv=2, n_jobs=1).fit(X, y)
    with local_cluster(2, blas_threads=1) as cluster, Client(cluster) as client:
        threads = client.run(_blas_threads)  # {worker: the thread counts of its BLAS pools}
        assert len(threads) == 2 and all(v == [1] for v in threads.values()), threads
        with joblib.parallel_backend("dask"):
            spread = GridSearchCV(est, grid, cv=2, n_jobs=-1).fit(X, y)
        ran = client.run(lambda dask_worker: len(dask_worker.data) + dask_worker.state.executed_count)
    assert all(n > 0 for n in ran.values()), ran  # both workers took part
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(spread.cv_results_[key], serial.cv_results_[key])
    assert spread.best_params_ == serial.best_params_
    a, b = spread.best_estimator_.network_.get_parameters(), serial.best_estimator_.network_.get_parameters()
    assert all(np.array_equal(a[k], b[k]) for k in b)

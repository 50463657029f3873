"""Data-parallel training (xpnet.distributed, xpnet.engine.parallel).

Run as an ordinary test (one rank) and under MPI, where every rank runs the same tests in the same order:

    mpiexec -n 2 python -m pytest -q -p no:cacheprovider tests/test_distributed.py
    mpiexec -n 3 python -m pytest -q -p no:cacheprovider tests/test_distributed.py

Each rank trains the distributed model (the collective calls) and the one-process reference on the same
global batches by itself, and compares. CI runs both commands (``.ci/run``). Without mpi4py the module is
skipped, unless ``XPNET_REQUIRE_MPI=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import pytest

if os.environ.get("XPNET_REQUIRE_MPI") == "1":
    import mpi4py.MPI  # noqa: F401  (CI: a missing MPI fails here instead of skipping)
else:
    pytest.importorskip("mpi4py.MPI")

import xpnet
from xpnet.distributed import MPICommunicator, shard_bounds, world
from xpnet.engine import ArrayBatches, ModelCheckpoint, Trainer
from xpnet.engine.parallel import AllreduceHook
from xpnet.errors import ConfigError

COMM = world()
N = COMM.size


def _data(m: int = 100, n_x: int = 5, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_x, m))
    y = (X[0] + X[1] ** 2 > 0.5).astype(int) + (X[2] > 1)
    return X, np.eye(classes)[:, y % classes]


def _train(dtype: str, communicator, epochs: int = 20, **kwargs):
    X, Y = _data()
    net = xpnet.DNN([5, 8, 6, 3], hidden="tanh", output="softmax", seed=3, dtype=dtype)
    net.train(X, Y, epochs=epochs, batch_size=kwargs.pop("batch_size", 16), optimizer="adam", learning_rate=0.01,
              l2=0.05, dropout=0.2, communicator=communicator, **kwargs)
    return net


def _relative(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k] - b[k])) / max(np.max(np.abs(b[k])), 1e-300)) for k in b)


def _same_on_every_rank(value: float) -> bool:
    values = COMM.comm.allgather(value)
    return all(v == values[0] for v in values)


def test_shard_bounds_cover_the_batch_unevenly() -> None:
    assert [shard_bounds(10, r, 3) for r in range(3)] == [(0, 4), (4, 7), (7, 10)]
    for b in (3, 7, 16):
        for size in (1, 2, 3):
            spans = [shard_bounds(b, r, size) for r in range(size)]
            assert spans[0][0] == 0 and spans[-1][1] == b
            assert all(spans[i][1] == spans[i + 1][0] for i in range(size - 1))
            assert max(hi - lo for lo, hi in spans) - min(hi - lo for lo, hi in spans) <= 1


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-12), ("float32", 1e-5)])
def test_ranks_equal_one_process(dtype: str, tolerance: float) -> None:
    # 100 examples in batches of 16 (the last of 4): shards of 6/5/5 and 2/1/1 for three ranks. Adam, L2 and
    # dropout: the weighting, the single L2 term and the global batch's masks all matter here.
    ref = _train(dtype, None)
    dist = _train(dtype, COMM, validation_data=_data(m=30, seed=1))
    p_ref, p_dist = ref.get_parameters(), dist.get_parameters()
    assert _relative(p_dist, p_ref) <= tolerance, (N, _relative(p_dist, p_ref))
    # The reduced epoch loss (L2 counted once) and accuracy are the one process's, the same on every rank.
    np.testing.assert_allclose(dist.history["loss"], ref.history["loss"], rtol=100 * tolerance)
    np.testing.assert_allclose(dist.history["metric"], ref.history["metric"], rtol=1e-12)
    assert _same_on_every_rank(dist.history["val_loss"][-1])
    val = Trainer(ref, l2=0.05, batch_size=16)
    val._penalty_scale = 7 / 100  # the scale the training loss carries it at (7 batches of 100 examples)
    loss, _ = val.evaluate(*(ref.backend.asarray(a) for a in _data(m=30, seed=1)))
    np.testing.assert_allclose(dist.history["val_loss"][-1], loss, rtol=100 * tolerance)


def test_regression_with_sample_order_and_weights_equal_one_process() -> None:
    # No shuffle, a linear output (R^2 from reduced squared errors), plain gradient descent with momentum.
    X, _ = _data()
    y = X[:1] * 2.0 - X[3:4]
    nets = []
    for comm in (None, COMM):
        net = xpnet.DNN([5, 7, 1], hidden="relu", output="linear", seed=1, dtype="float64")
        net.train(X, y, epochs=20, batch_size=10, shuffle=False, optimizer="momentum", learning_rate=0.05,
                  communicator=comm)
        nets.append(net)
    assert _relative(nets[1].get_parameters(), nets[0].get_parameters()) <= 1e-12
    np.testing.assert_allclose(nets[1].history["metric"], nets[0].history["metric"], rtol=1e-12)


def test_resume_and_files_under_mpi() -> None:
    # The checkpoint path must be one file for every rank (a shared directory): rank 0 makes it (not pytest's
    # tmp_path: each rank's pytest would clean up the others' old base directories).
    directory = COMM.bcast(tempfile.mkdtemp(prefix="xpnet-mpi-") if COMM.rank == 0 else None)
    try:
        _resume_and_files(directory)
    finally:
        COMM.barrier()
        if COMM.rank == 0:
            shutil.rmtree(directory)


def _resume_and_files(directory: str) -> None:
    checkpoint = os.path.join(directory, "run.ckpt")
    saved = os.path.join(directory, f"model-rank{COMM.rank}.xpnet")
    whole = _train("float64", COMM, epochs=10)
    _train("float64", COMM, epochs=6, checkpoint=checkpoint, callbacks=[ModelCheckpoint(saved)])
    COMM.barrier()
    resumed = _train("float64", COMM, epochs=10, checkpoint=checkpoint, resume=True)
    assert _relative(resumed.get_parameters(), whole.get_parameters()) == 0.0
    COMM.barrier()
    # Only rank 0 wrote: its model file exists, no other rank's does.
    assert sorted(os.listdir(directory)) == ["model-rank0.xpnet", "run.ckpt"]


@pytest.mark.parametrize("streamed", [False, True])
def test_a_last_batch_smaller_than_the_ranks_leaves_empty_shards_that_still_update(streamed: bool) -> None:
    # 100 examples in batches of 33 leave a last batch of 1: ranks 1 and 2 have nothing of it, join the sum with
    # zeros and make the same update (in-place step on rank 0, the generic update on the empty ranks).
    from xpnet.engine.streaming import FileBatches

    X, Y = _data()
    directory = COMM.bcast(tempfile.mkdtemp(prefix="xpnet-mpi-") if COMM.rank == 0 else None)
    try:
        if COMM.rank == 0:
            np.save(os.path.join(directory, "X.npy"), np.ascontiguousarray(X.T))
        COMM.barrier()
        nets = []
        for comm in (None, COMM):
            net = xpnet.DNN([5, 8, 6, 3], hidden="tanh", output="softmax", seed=3, dtype="float64")
            data = FileBatches(net.backend, os.path.join(directory, "X.npy"), Y.T, dtype="float64", chunk_rows=30) \
                if streamed else ArrayBatches(net.backend, np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T))
            Trainer(net, optimizer="adam", learning_rate=0.01, batch_size=33, l2=0.05, dropout=0.2,
                    communicator=comm).fit(data, epochs=20, validation_data=_data(m=2, seed=1))
            nets.append(net)
        assert _relative(nets[1].get_parameters(), nets[0].get_parameters()) <= 1e-12
    finally:
        COMM.barrier()
        if COMM.rank == 0:
            shutil.rmtree(directory)


def test_the_hook_sums_weighted_by_shard_size() -> None:
    # Rank r contributes a gradient of value r+1 from a shard of b_r examples of a global batch of 10.
    net = xpnet.DNN([2, 1], seed=0)
    hook = AllreduceHook(COMM, net.backend)
    lo, hi = shard_bounds(10, COMM.rank, N)
    hook.global_batch = 10
    grads = hook(np, {"dW1": np.full((1, 2), COMM.rank + 1.0), "db1": np.ones((1, 1))}, hi - lo)
    want = sum((r + 1.0) * (shard_bounds(10, r, N)[1] - shard_bounds(10, r, N)[0]) / 10 for r in range(N))
    np.testing.assert_allclose(grads["dW1"], want, rtol=1e-15)
    np.testing.assert_allclose(grads["db1"], 1.0, rtol=1e-15)
    assert hook.l2_batch_size(hi - lo) == 10


def test_a_communicator_must_be_one() -> None:
    with pytest.raises(ConfigError, match="communicator"):
        Trainer(xpnet.DNN([2, 1]), communicator="mpi")
    assert isinstance(COMM, MPICommunicator) and COMM.rank < N


def test_ranks_stream_a_file_and_equal_one_process() -> None:
    # Each rank reads its shards' rows of the same .npy file, in the file's chunked order (xpnet.engine.streaming).
    from xpnet.engine.streaming import FileBatches

    X, Y = _data(m=300)
    directory = COMM.bcast(tempfile.mkdtemp(prefix="xpnet-mpi-") if COMM.rank == 0 else None)
    try:
        if COMM.rank == 0:
            np.save(os.path.join(directory, "X.npy"), np.ascontiguousarray(X.T))
        COMM.barrier()
        nets = []
        for comm in (None, COMM):
            net = xpnet.DNN([5, 8, 6, 3], hidden="tanh", output="softmax", seed=3, dtype="float64")
            source = FileBatches(net.backend, os.path.join(directory, "X.npy"), Y.T, dtype="float64", chunk_rows=40,
                                 window=2)
            Trainer(net, optimizer="adam", learning_rate=0.01, batch_size=32, l2=0.05, dropout=0.2,
                    communicator=comm).fit(source, epochs=10)
            source.close()
            nets.append(net)
        assert _relative(nets[1].get_parameters(), nets[0].get_parameters()) <= 1e-12
    finally:
        COMM.barrier()
        if COMM.rank == 0:
            shutil.rmtree(directory)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_estimator_fits_data_parallel_and_pickles_as_one_process() -> None:
    import pickle

    from xpnet.estimators import DNNClassifier

    X, Y = _data(m=120)
    y = Y.argmax(axis=0)
    est = DNNClassifier(hidden_layer_sizes=(8,), max_iter=5, batch_size=20, random_state=0, dtype="float64")
    ref = DNNClassifier(hidden_layer_sizes=(8,), max_iter=5, batch_size=20, random_state=0, dtype="float64")
    est.fit(X.T, y, communicator=COMM)
    ref.fit(X.T, y)
    assert _relative(est.network_.get_parameters(), ref.network_.get_parameters()) <= 1e-12
    copy = pickle.loads(pickle.dumps(est))  # a process group does not travel
    assert copy.trainer_.communicator is None and not hasattr(copy, "_communicator")
    assert np.array_equal(copy.predict(X.T), est.predict(X.T))


def test_trainer_step_sums_the_ranks_own_batches() -> None:
    # Trainer.step with a communicator: each rank steps on a batch of its own (here its shard of 23 columns);
    # the update is the one of one process on all of them, L2 at the scale of their total.
    X, Y = _data(m=23)
    nets = [xpnet.DNN([5, 8, 3], output="softmax", seed=1, dtype="float64") for _ in range(2)]
    one = Trainer(nets[0], optimizer="adam", learning_rate=0.01, l2=0.3)
    ranks = Trainer(nets[1], optimizer="adam", learning_rate=0.01, l2=0.3, communicator=COMM)
    lo, hi = shard_bounds(23, COMM.rank, N)
    for _ in range(3):
        one.step(X, Y)
        ranks.step(X[:, lo:hi], Y[:, lo:hi])
    assert _relative(nets[1].get_parameters(), nets[0].get_parameters()) <= 1e-12


def test_the_command_trains_data_parallel_and_rank_0_writes(capsys) -> None:
    from xpnet.cli import main

    directory = COMM.bcast(tempfile.mkdtemp(prefix="xpnet-mpi-") if COMM.rank == 0 else None)
    try:
        common = ["train", "--dataset", "moons", "--epochs", "5", "--batch-size", "32", "--dtype", "float64"]
        assert main([*common, "--distributed", "--out", os.path.join(directory, "dist.xpnet")]) == 0
        shown = capsys.readouterr().out
        assert ("test accuracy" in shown) == (COMM.rank == 0)  # rank 0 alone prints
        COMM.barrier()
        if COMM.rank == 0:
            assert main([*common, "--out", os.path.join(directory, "one.xpnet"), "--quiet"]) == 0
            dist, one = (xpnet.load(os.path.join(directory, f)).network_.get_parameters()
                         for f in ("dist.xpnet", "one.xpnet"))
            assert _relative(dist, one) <= 1e-12
            assert sorted(os.listdir(directory)) == ["dist.xpnet", "one.xpnet"]
    finally:
        COMM.barrier()
        if COMM.rank == 0:
            shutil.rmtree(directory)


def test_torch_networks_through_mpi_and_torch_distributed() -> None:
    # The host path of MPICommunicator, and TorchCommunicator (gloo, set up from MPI's ranks), on torch tensors.
    pytest.importorskip("torch")
    import socket

    import torch.distributed as dist

    from xpnet.distributed import TorchCommunicator

    def train(comm):
        X, Y = _data()
        net = xpnet.DNN([5, 8, 6, 3], hidden="tanh", output="softmax", seed=3, dtype="float64", backend="torch")
        net.train(X, Y, epochs=5, batch_size=16, optimizer="adam", learning_rate=0.01, l2=0.05, dropout=0.2,
                  communicator=comm)
        return {k: net.backend.to_numpy(v) for k, v in net.parameters.items()}

    if not dist.is_initialized():
        port = None
        if COMM.rank == 0:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        port = COMM.bcast(port)
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=COMM.rank, world_size=N)
    one = train(None)
    assert _relative(train(COMM), one) <= 1e-12
    assert _relative(train(TorchCommunicator()), one) <= 1e-12


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_stopping_and_divergence_are_decided_alike_on_every_rank() -> None:
    from xpnet.errors import DivergenceError

    X, Y = _data()
    runs = []
    for comm in (None, COMM):
        net = xpnet.DNN([5, 8, 3], output="softmax", seed=4, dtype="float64")
        net.train(X, Y, epochs=60, batch_size=16, learning_rate=0.05, validation_data=_data(m=30, seed=1),
                  early_stopping=2, communicator=comm)
        runs.append(len(net.history))
    assert runs[1] == runs[0] < 60 and _same_on_every_rank(runs[1])  # stopped early, at the one process's epoch
    net = xpnet.DNN([5, 8, 3], output="softmax", seed=4, dtype="float64")
    with pytest.raises(DivergenceError) as caught:
        net.train(X * 1e200, Y, epochs=3, batch_size=16, optimizer="gd", learning_rate=1e300, communicator=COMM)
    assert _same_on_every_rank(caught.value.epoch)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_poisson_regressor_with_several_outputs_validates_data_parallel() -> None:
    # metric_terms gives the exp output one squared error per output (not one count as sigmoid and softmax): the
    # sharded validation's buffer must hold them all (it raised a bare ValueError for two outputs)
    from xpnet.estimators import DNNRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    Y = rng.poisson(np.exp(0.3 * X[:, :2]))
    params = dict(hidden_layer_sizes=(4,), loss="poisson", max_iter=3, early_stopping=True, random_state=0,
                  batch_size=10, dtype="float64")
    est = DNNRegressor(**params).fit(X, Y, communicator=COMM)
    ref = DNNRegressor(**params).fit(X, Y)
    np.testing.assert_allclose(est.history_["val_loss"], ref.history_["val_loss"], rtol=1e-10)
    np.testing.assert_allclose(est.validation_scores_, ref.validation_scores_, rtol=1e-10)

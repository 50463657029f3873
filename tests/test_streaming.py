"""Training from files larger than memory (xpnet.engine.streaming): the chunked shuffle, the same model as in
memory on the same order, and the resident memory bounded by the chunks, not the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xpnet
from xpnet.engine import ArrayBatches, Trainer
from xpnet.engine.streaming import ChunkedOrder, FileBatches, chunked_order
from xpnet.errors import ConfigError, DatasetError, ShapeError


def _write(tmp_path, m: int = 1000, n_x: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n_x))
    Y = (X[:, :1] - 0.5 * X[:, 1:2] + 0.1 * rng.standard_normal((m, 1)))
    path = tmp_path / "X.npy"
    np.save(path, X)
    return path, X, Y


def _trainer(net, **kw):
    return Trainer(net, optimizer="adam", learning_rate=0.01, batch_size=kw.pop("batch_size", 64), l2=0.01,
                   dropout=0.1, seed=5, **kw)


def _net(n_x: int = 6):
    return xpnet.DNN([n_x, 8, 1], hidden="tanh", output="linear", seed=2, dtype="float64")


def test_chunked_order_is_a_seeded_permutation_mixing_within_windows() -> None:
    bounds = [0, 10, 20, 30, 40, 45]
    a = chunked_order(np.random.default_rng(1), bounds, 2)
    b = chunked_order(np.random.default_rng(1), bounds, 2)
    assert np.array_equal(a, b) and sorted(a.tolist()) == list(range(45))
    # The first window is the rows of the first two chunks the stream drew, in an order of their own.
    first = np.random.default_rng(1).permutation(5)[:2]
    rows = sorted(r for c in first for r in range(bounds[c], bounds[c + 1]))
    assert sorted(a[:len(rows)].tolist()) == rows and a[:len(rows)].tolist() != rows
    assert not np.array_equal(a, chunked_order(np.random.default_rng(2), bounds, 2))


@pytest.mark.parametrize("prefetch", [True, False])
def test_npy_file_trains_the_model_of_memory_on_the_same_order(tmp_path, prefetch: bool) -> None:
    path, X, Y = _write(tmp_path)
    source = FileBatches(_net().backend, path, Y, dtype="float64", chunk_rows=96, window=3, prefetch=prefetch)
    streamed = _net()
    h_streamed = _trainer(streamed).fit(source, epochs=4)
    in_memory = _net()
    h_memory = _trainer(in_memory).fit(ChunkedOrder.wrap(ArrayBatches(in_memory.backend, X, Y), source.bounds, 3),
                                       epochs=4)
    for k, v in in_memory.get_parameters().items():
        assert np.array_equal(streamed.get_parameters()[k], v), k  # the same bits: the same batches, the same steps
    assert h_streamed["loss"] == h_memory["loss"]
    # A full permutation (the in-memory default) gives another model: the order really is the chunked one.
    other = _net()
    _trainer(other).fit(ArrayBatches(other.backend, X, Y), epochs=4)
    assert not np.array_equal(other.get_parameters()["W1"], in_memory.get_parameters()["W1"])
    source.close()


def test_parquet_row_groups_are_the_chunks(tmp_path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    _, X, Y = _write(tmp_path, m=500)
    table = pa.table({f"f{i}": X[:, i] for i in range(X.shape[1])} | {"label": Y[:, 0]})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=120)
    source = FileBatches(_net().backend, tmp_path / "d.parquet", Y, dtype="float64", window=2,
                         columns=[f"f{i}" for i in range(X.shape[1])])
    assert source.bounds == [0, 120, 240, 360, 480, 500]
    streamed, in_memory = _net(), _net()
    _trainer(streamed, batch_size=50).fit(source, epochs=3)
    _trainer(in_memory, batch_size=50).fit(ChunkedOrder.wrap(ArrayBatches(in_memory.backend, X, Y), source.bounds, 2),
                                           epochs=3)
    for k, v in in_memory.get_parameters().items():
        assert np.array_equal(streamed.get_parameters()[k], v), k


def test_a_truncated_file_and_bad_targets_are_named(tmp_path) -> None:
    path, _, Y = _write(tmp_path, m=300)
    with pytest.raises(ShapeError, match="one row per example"):
        FileBatches(_net().backend, path, Y[:10], dtype="float64")
    with pytest.raises(ConfigError, match="chunk_rows"):
        FileBatches(_net().backend, path, Y, chunk_rows=0)
    source = FileBatches(_net().backend, path, Y, dtype="float64", chunk_rows=64)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 8 * 6 * 50)  # the last 50 rows are gone
    with pytest.raises(ShapeError, match="truncated"):
        _trainer(_net()).fit(source, epochs=1)
    source.close()


def test_files_that_cannot_be_streamed_and_bad_weights_are_named(tmp_path) -> None:
    # xpnet errors naming the file, not numpy's or pyarrow's bare ones
    path, _, Y = _write(tmp_path, m=30)
    with pytest.raises(ShapeError, match="one weight per example"):
        FileBatches(_net().backend, path, Y, sample_weight=np.ones(7))
    (tmp_path / "text.npy").write_text("not an array")
    np.save(tmp_path / "objects.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    np.save(tmp_path / "complex.npy", np.ones((3, 2), dtype=complex))
    (tmp_path / "text.parquet").write_text("not parquet")
    for name in ("missing.npy", "text.npy", "objects.npy", "complex.npy", "missing.parquet", "text.parquet"):
        with pytest.raises(DatasetError, match=name):
            FileBatches(_net().backend, str(tmp_path / name), Y)


_BOUNDED = textwrap.dedent("""
    import json, os, sys, threading
    import numpy as np
    import xpnet
    from xpnet.engine import Trainer
    from xpnet.engine.streaming import FileBatches

    def rss():  # resident bytes now (Linux): ru_maxrss would keep the peak of the imports before training
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    path, out = sys.argv[1], sys.argv[2]
    net = xpnet.DNN([32, 16, 1], hidden="tanh", output="linear", seed=2, dtype="float64")
    Y = np.load(path.replace("X.npy", "Y.npy"))
    source = FileBatches(net.backend, path, Y, dtype="float64", chunk_rows=4096, window=2)
    trainer = Trainer(net, optimizer="adam", learning_rate=0.01, batch_size=256, seed=5)
    base, peak, done = rss(), [0], threading.Event()

    def sample():  # the peak of the resident memory while training, sampled every millisecond
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            done.wait(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    trainer.fit(source, epochs=1)
    trainer.fit(source, epochs=2)
    done.set()
    sampler.join()
    np.savez(out, **net.get_parameters())
    print(json.dumps({"base": base, "peak": max(peak[0], rss())}))
""")


def test_a_file_four_times_the_memory_bound_trains_within_it(tmp_path) -> None:
    # 262144 x 32 float64 = 64 MiB of examples; the run may grow its resident memory by 16 MiB at most.
    m, n_x = 262144, 32
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype="float64", shape=(m, n_x))
    for a in range(0, m, 32768):
        X[a:a + 32768] = rng.standard_normal((min(32768, m - a), n_x))
    X.flush()
    Y = np.asarray(X[:, :1] - 0.5 * X[:, 1:2])
    np.save(tmp_path / "Y.npy", Y)
    del X
    out = tmp_path / "params.npz"
    run = subprocess.run([sys.executable, "-c", _BOUNDED, str(tmp_path / "X.npy"), str(out)], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    usage = json.loads(run.stdout.splitlines()[-1])
    file_bytes = m * n_x * 8
    bound = file_bytes // 4
    assert usage["peak"] - usage["base"] <= bound, (usage, bound)
    print(f"peak resident growth {(usage['peak'] - usage['base']) / 2**20:.1f} MiB for a {file_bytes / 2**20:.0f} MiB "
          "file")
    # The same model as in memory, on the same (chunked) order: 1 + 2 epochs.
    net = xpnet.DNN([32, 16, 1], hidden="tanh", output="linear", seed=2, dtype="float64")
    Xm = np.load(tmp_path / "X.npy")
    trainer = Trainer(net, optimizer="adam", learning_rate=0.01, batch_size=256, seed=5)
    bounds = [*range(0, m, 4096), m]
    source = ChunkedOrder.wrap(ArrayBatches(net.backend, Xm, Y), bounds, 2)
    trainer.fit(source, epochs=1)
    trainer.fit(source, epochs=2)
    streamed = np.load(out)
    for k, v in net.get_parameters().items():
        assert np.array_equal(streamed[k], v), k

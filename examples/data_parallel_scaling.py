"""Data-parallel scaling, measured and modelled (README: "Scaling: measured here, modelled for GPUs").

Measured (NumPy, float32, the mnist-sized network 784-256-128-10, 235,146 parameters, one BLAS thread per rank):

    python examples/data_parallel_scaling.py                  # 1 rank, no communicator
    mpiexec -n 1 python examples/data_parallel_scaling.py     # 1 rank through the MPI hook
    mpiexec -n 2 python examples/data_parallel_scaling.py     # 2 ranks

prints, per global batch size, the median time of one training step and of one in-place ``Allreduce`` of the
gradient buffer (235,146 float32 values). Modelled (``--model``): the ring all-reduce of NCCL against the step
time of N GPUs, for a range of widths and batches (the constants are stated assumptions, not measurements).
``--stream [--threads T]``: one epoch from a 32 MiB ``.npy`` file (FileBatches) with and without the
prefetching thread, against the same data in memory, BLAS on T threads (default 1).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def measure(batches: list[int], steps: int) -> None:
    from threadpoolctl import threadpool_limits

    import xpnet
    from xpnet.distributed import launched_by_mpi, world
    from xpnet.engine import ArrayBatches, Trainer

    comm = world() if launched_by_mpi() else None
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for B in batches:
            m = B * steps
            X = rng.standard_normal((m, 784)).astype("float32")
            Y = np.eye(10, dtype="float32")[rng.integers(0, 10, m)]
            net = xpnet.DNN([784, 256, 128, 10], seed=0, backend="numpy", dtype="float32")
            trainer = Trainer(net, optimizer="adam", batch_size=B, shuffle=False, communicator=comm)
            source = ArrayBatches(net.backend, X, Y)
            trainer.fit(source, epochs=1)  # warm-up: buffers, first touches
            times = []
            for _ in range(5):
                if comm is not None:
                    comm.barrier()
                t = time.perf_counter()
                trainer.fit(source, epochs=1)
                times.append((time.perf_counter() - t) / steps)
            step = statistics.median(times)
            ar = float("nan")
            if comm is not None:
                buf = np.ones(235146, dtype="float32")
                reps = []
                for _ in range(200):
                    comm.barrier()
                    t = time.perf_counter()
                    comm.allreduce(net.backend, buf)
                    reps.append(time.perf_counter() - t)
                ar = statistics.median(reps)
            if rank == 0:
                print(f"ranks {size}  global batch {B:5d}: step {step * 1e3:7.3f} ms   allreduce {ar * 1e3:6.3f} ms")


def model() -> None:
    """Speed-up of N GPUs on one global batch B for a square MLP of width w and depth L (P ~ L w^2).

    One GPU's step: t1 = max(6 P B / F, k * launch) (6 flops per parameter and example: forward 2, backward 4;
    at least k kernels of a few microseconds each). N GPUs: tN = max(6 P (B/N) / F, k * launch) + allreduce,
    ring allreduce = 2 (N-1)/N * 4P / BW + 2 (N-1) * alpha (bytes of float32 gradients, no overlap with backward).
    """
    F = 2.0e14      # sustained float32/TF32 matmul rate of one H100/H200-class GPU, flop/s (~40% of TF32 peak)
    BW = 3.6e11     # NCCL bus bandwidth over NVLink 4 in one node, bytes/s
    alpha = 5e-6    # per ring step latency, s
    launch, k = 5e-6, 40  # kernel launch + tiny-kernel time, kernels per step (3 layers fwd/bwd + Adam per tensor)
    L = 4
    print("speed-up of N GPUs over one (square MLP, 4 layers, float32, Adam; model, not measured)")
    print(f"{'width':>6} {'params':>9} {'batch':>6} " + " ".join(f"{'N=' + str(n):>6}" for n in (2, 4, 8)))
    for w in (256, 1024, 4096, 8192):
        P = L * w * w
        for B in (256, 1024, 4096, 16384):
            t1 = max(6 * P * B / F, k * launch)
            row = []
            for n in (2, 4, 8):
                ar = 2 * (n - 1) / n * 4 * P / BW + 2 * (n - 1) * alpha
                row.append(t1 / (max(6 * P * (B / n) / F, k * launch) + ar))
            print(f"{w:6d} {P:9.2e} {B:6d} " + " ".join(f"{s:6.2f}" for s in row))


def stream(threads: int) -> None:
    import os
    import tempfile

    from threadpoolctl import threadpool_limits

    import xpnet
    from xpnet.engine import ArrayBatches, Trainer
    from xpnet.engine.streaming import ChunkedOrder, FileBatches

    m, n_x = 65536, 64
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d, threadpool_limits(threads):
        path = os.path.join(d, "X.npy")
        np.save(path, rng.standard_normal((m, n_x)))
        Y = np.eye(10)[rng.integers(0, 10, m)]
        for name in ("memory", "file, prefetch", "file, no prefetch"):
            times = []
            for _ in range(3):
                net = xpnet.DNN([n_x, 128, 10], seed=0, backend="numpy", dtype="float64")
                if name == "memory":
                    source = ChunkedOrder.wrap(ArrayBatches(net.backend, np.load(path), Y), [*range(0, m, 8192), m], 2)
                else:
                    source = FileBatches(net.backend, path, Y, dtype="float64", chunk_rows=8192, window=2,
                                         prefetch=name == "file, prefetch")
                t = time.perf_counter()
                Trainer(net, batch_size=512, seed=1).fit(source, epochs=1)
                times.append(time.perf_counter() - t)
            print(f"{name:18s}: one epoch of {m} x {n_x} float64, BLAS on {threads} thread(s): "
                  f"{statistics.median(times):.2f} s (median of 3)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="store_true", help="print the GPU model's table instead of measuring")
    parser.add_argument("--stream", action="store_true", help="time an epoch from a file, with and without prefetch")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of --stream (default 1)")
    parser.add_argument("--batches", default="64,256,1024", help="global batch sizes (default 64,256,1024)")
    parser.add_argument("--steps", type=int, default=16, help="steps per timed epoch (default 16)")
    args = parser.parse_args()
    if args.model:
        model()
    elif args.stream:
        stream(args.threads)
    else:
        measure([int(b) for b in args.batches.split(",")], args.steps)


if __name__ == "__main__":
    main()

"""Measure the CPU side of ``auto``'s rule: the median time of one training step (the in-place step, gd,
float32) on NumPy with one BLAS thread, against the step's arithmetic, ``6 b sum_l n_{l-1} n_l`` flops.

Run: OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python scripts/measure_auto_rule.py
Prints one row per shape (the step's rate includes xpnet's own Python work, the same on every backend, which
dominates small shapes) and NumPy's cost per call on small arrays: ``CPU_FLOPS`` and ``CPU_CALL_S`` of
:mod:`xpnet.device.auto` come from these (the rate of the compute-bound shapes, the call cost).
"""

from __future__ import annotations

import statistics
import time
import timeit

import numpy as np

import xpnet
from xpnet.device.auto import step_flops

SHAPES = [((2, 4, 1), 400), ((2, 16, 1), 256), ((20, 64, 1), 128), ((64, 128, 10), 128), ((784, 64, 10), 128),
          ((784, 256, 128, 10), 128), ((12288, 20, 7, 5, 1), 209), ((784, 256, 128, 10), 1024)]


def step_time(dims: tuple[int, ...], b: int, repeats: int = 7) -> float:
    net = xpnet.DNN(list(dims), output="softmax" if dims[-1] > 1 else "sigmoid", backend="numpy", dtype="float32")
    rng = np.random.default_rng(0)
    X = net.backend.asarray(rng.normal(size=(dims[0], b)).astype(np.float32))
    Y = np.zeros((dims[-1], b), np.float32)
    Y[rng.integers(0, dims[-1], b) if dims[-1] > 1 else 0, np.arange(b)] = 1.0
    trainer = xpnet.Trainer(net, optimizer="gd", learning_rate=0.01, batch_size=b)
    for _ in range(3):
        trainer.step(X, Y)
    n = max(3, int(0.05 / max(1e-6, _once(trainer, X, Y))))
    rounds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            trainer.step(X, Y)
        rounds.append((time.perf_counter() - t0) / n)
    return statistics.median(rounds)


def _once(trainer, X, Y) -> float:
    t0 = time.perf_counter()
    trainer.step(X, Y)
    return time.perf_counter() - t0


def main() -> None:
    rows = []
    for dims, b in SHAPES:
        t = step_time(dims, b)
        f = step_flops(dims, b)
        rows.append((f, t))
        print(f"{'-'.join(map(str, dims)):>22} b={b:<5} flops/step {f:12.3g}  cpu step {t * 1e6:9.1f} us  "
              f"{f / t / 1e9:6.2f} GFLOP/s")
    a, W = np.ones((4, 400), np.float32), np.ones((4, 2), np.float32)
    X, Z = np.ones((2, 400), np.float32), np.empty((4, 400), np.float32)
    for name, call in (("multiply(out=)", lambda: np.multiply(a, 0.5, out=a)),
                       ("matmul(out=)", lambda: np.matmul(W, X, out=Z))):
        best = min(timeit.repeat(call, number=2000, repeat=7)) / 2000
        print(f"NumPy call on small arrays, {name}: {best * 1e6:.2f} us")

if __name__ == "__main__":
    main()

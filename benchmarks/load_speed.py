"""Load speed of a large numeric CSV: ``xpnet.datasets.load`` against ``pandas.read_csv`` (and a pyarrow table).

    python benchmarks/load_speed.py /tmp/big.csv --make 1000000x50   # writes the file first if it is missing
    python benchmarks/load_speed.py /tmp/big.csv

Each reader runs in a fresh process (so peak memory is its own: ``ru_maxrss`` of the child), ``--repeat``
times; the report gives the median seconds, MB/s of the file and the peak resident memory against the
float32 array of the data. CPU seconds (``time.process_time``, all threads) are the figure to compare on a shared
machine, where the wall time depends on the other processes. The file is never committed: generate it in /tmp.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, time
path, how = sys.argv[1], sys.argv[2]
start, cpu = time.perf_counter(), time.process_time()
if how == "xpnet":
    import xpnet.datasets as d
    ds = d.load(path)
    shape = ds.X.shape
elif how == "pandas":
    import pandas as pd
    frame = pd.read_csv(path)
    X = frame.iloc[:, :-1].to_numpy(dtype="float64")
    shape = X.shape
elif how == "pyarrow-table":
    import pyarrow.csv as pc
    table = pc.read_csv(path)
    shape = (table.num_rows, table.num_columns - 1)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu": cpu, "shape": list(shape),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_file(path: str, rows: int, cols: int, seed: int = 0) -> None:
    """Write ``rows`` x ``cols`` features with 6 decimals and an integer label (0..9) as the last column."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pc

    rng = np.random.default_rng(seed)
    names = [f"x{j}" for j in range(cols)] + ["label"]
    with pc.CSVWriter(path, pa.schema([(n, pa.float64()) for n in names[:-1]] + [("label", pa.int64())])) as w:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            block = np.round(rng.standard_normal((n, cols)), 6)
            arrays = [pa.array(block[:, j]) for j in range(cols)] + [pa.array(rng.integers(0, 10, n))]
            w.write_table(pa.table(arrays, names=names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--make", default=None, metavar="ROWSxCOLS", help="write the file first if missing")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--readers", default="xpnet,pandas")
    args = parser.parse_args()
    if args.make and not os.path.exists(args.path):
        rows, cols = (int(v) for v in args.make.lower().split("x"))
        make_file(args.path, rows, cols)
    size_mb = os.path.getsize(args.path) / 1e6
    print(f"{args.path}: {size_mb:.0f} MB")
    for how in args.readers.split(","):
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", _CHILD, args.path, how], capture_output=True, text=True,
                                 check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        seconds = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        peak = max(r["peak_mb"] for r in runs)
        m, n = runs[0]["shape"]
        f32_mb = m * n * 4 / 1e6
        print(f"{how:>14}: {seconds:6.2f} s wall ({size_mb / seconds:4.0f} MB/s), {cpu:5.2f} s CPU "
              f"({size_mb / cpu:4.0f} MB/s), medians of {len(runs)}; peak {peak:5.0f} MB = {peak / f32_mb:.1f}x the "
              f"float32 array ({f32_mb:.0f} MB); shape {m}x{n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Learning quality of xpnet's estimators against scikit-learn's MLP (issue 12, item 2).

For each of 11 datasets (every dataset bundled with scikit-learn, plus make_classification 5000x20, moons,
circles, make_regression and friedman1), each seed and each epoch budget (``max_iter``), both libraries are fitted
in ``Pipeline(StandardScaler(), estimator)`` on 75% of the data and scored (accuracy or R^2) on the other 25%:

* ``defaults``: each library's defaults, ``max_iter=budget``, ``random_state=seed``;
* ``explicit``: the same explicit settings for both (adam, lr 0.001, batch 200, alpha 1e-4, (100,) relu units,
  no early stop: ``tol=0``, ``n_iter_no_change=budget``), so each runs exactly ``budget`` epochs.

Run (over an hour of CPU for 5 seeds and all budgets; nice it on a shared machine):

    nice python benchmarks/sklearn_comparison.py --out benchmarks/sklearn_comparison.json
    python benchmarks/sklearn_comparison.py --table benchmarks/sklearn_comparison.json  # the Markdown table

``--seeds`` and ``--budgets`` shorten it. The JSON is written after every dataset (through xpnet's safe writer),
so an interrupted run keeps what it measured; a rerun skips the rows already there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from xpnet import DNNClassifier, DNNRegressor
from xpnet.files.atomic import write_file_atomically


def _datasets():
    """name -> (X, y, task) for the 11 datasets."""
    out = {}
    for name, loader in (("iris", datasets.load_iris), ("wine", datasets.load_wine),
                         ("breast_cancer", datasets.load_breast_cancer), ("digits", datasets.load_digits)):
        X, y = loader(return_X_y=True)
        out[name] = (X, y, "classification")
    for name, loader in (("diabetes", datasets.load_diabetes), ("linnerud", datasets.load_linnerud)):
        X, y = loader(return_X_y=True)
        out[name] = (X, y, "regression")
    X, y = datasets.make_classification(5000, 20, n_informative=10, random_state=0)
    out["classification_5000"] = (X, y, "classification")
    X, y = datasets.make_moons(1000, noise=0.3, random_state=0)
    out["moons"] = (X, y, "classification")
    X, y = datasets.make_circles(1000, noise=0.1, factor=0.5, random_state=0)
    out["circles"] = (X, y, "classification")
    X, y = datasets.make_regression(1000, 20, n_informative=10, noise=10.0, random_state=0)
    out["make_regression"] = (X, y, "regression")
    X, y = datasets.make_friedman1(1000, noise=1.0, random_state=0)
    out["friedman1"] = (X, y, "regression")
    return out


def _estimators(task, setting, budget, seed):
    if setting == "defaults":
        params = dict(max_iter=budget, random_state=seed)
    else:
        params = dict(hidden_layer_sizes=(100,), solver="adam", learning_rate_init=0.001, batch_size=200, alpha=1e-4,
                      max_iter=budget, tol=0.0, n_iter_no_change=budget, random_state=seed)
    if task == "classification":
        return MLPClassifier(**params), DNNClassifier(backend="numpy", **params)
    return MLPRegressor(**params), DNNRegressor(backend="numpy", **params)


def run(out_path, seeds, budgets, only=None):
    results = {}
    if os.path.exists(out_path):
        with open(out_path) as fh:
            results = json.load(fh)
    for name, (X, y, task) in _datasets().items():
        if only and name not in only:
            continue
        for setting in ("defaults", "explicit"):
            for budget in budgets:
                key = f"{name}|{setting}|{budget}"
                if key in results and len(results[key]["sklearn"]) >= len(seeds):
                    continue
                row = {"sklearn": [], "xpnet": [], "seconds": [0.0, 0.0]}
                for seed in seeds:
                    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed)
                    for i, est in enumerate(_estimators(task, setting, budget, seed)):
                        pipe = make_pipeline(StandardScaler(), est)
                        started = time.perf_counter()
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            pipe.fit(X_tr, y_tr)
                        row["seconds"][i] += time.perf_counter() - started
                        row["sklearn" if i == 0 else "xpnet"].append(float(pipe.score(X_te, y_te)))
                results[key] = row
                print(key, *(f"{np.mean(row[k]):.4f}+-{np.std(row[k]):.4f}" for k in ("sklearn", "xpnet")),
                      flush=True)
            write_file_atomically(out_path, json.dumps(results, indent=1).encode())
    return results


def table(results):
    """The Markdown table: mean +- std per library, and whether xpnet >= scikit-learn - 1 std."""
    lines = ["| dataset | setting | epochs | seeds | scikit-learn | xpnet | xpnet >= sklearn - 1 std |",
             "| --- | --- | ---: | ---: | ---: | ---: | :---: |"]
    order = list(_datasets())
    for key, row in sorted(results.items(), key=lambda kv: (order.index(kv[0].split("|")[0]), kv[0].split("|")[1],
                                                             int(kv[0].split("|")[2]))):
        name, setting, budget = key.split("|")
        sk, xp = np.array(row["sklearn"]), np.array(row["xpnet"])
        ok = xp.mean() >= sk.mean() - sk.std()
        lines.append(f"| {name} | {setting} | {budget} | {len(sk)} | {sk.mean():.3f} ± {sk.std():.3f} | "
                     f"{xp.mean():.3f} ± {xp.std():.3f} | {'yes' if ok else '**no**'} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/sklearn_comparison.json")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budgets", type=int, nargs="+", default=[10, 30, 100, 300])
    p.add_argument("--datasets", nargs="+", help="only these datasets (by name)")
    p.add_argument("--table", metavar="JSON", nargs="+", help="print the Markdown table of results files and exit")
    args = p.parse_args(argv)
    if args.table:
        results = {}
        for path in args.table:
            with open(path) as fh:
                results.update(json.load(fh))
        print(table(results))
        return 0
    run(args.out, list(range(args.seeds)), args.budgets, args.datasets)
    return 0


if __name__ == "__main__":
    sys.exit(main())

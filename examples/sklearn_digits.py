"""xpnet's DNNClassifier as a scikit-learn estimator: a Pipeline, a grid search and a held-out score.

    python examples/sklearn_digits.py                         # the default backend (XPNET_BACKEND or auto)
    python examples/sklearn_digits.py --backend torch:cpu

The grid search tries two hidden-layer shapes and two dropout rates with 3-fold cross-validation on the
training split of the digits, refits the best on the whole training split and scores the test split.
Expected: test accuracy >= 0.95.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import xpnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend spec (default: XPNET_BACKEND or auto)")
    args = parser.parse_args()

    X, y = xpnet.datasets.load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    pipe = make_pipeline(StandardScaler(), xpnet.DNNClassifier(
        learning_rate_init=0.003, max_iter=40, batch_size=64, random_state=0, backend=args.backend))
    grid = {"dnnclassifier__hidden_layer_sizes": [(64,), (128, 64)], "dnnclassifier__dropout": [0.0, 0.2]}
    search = GridSearchCV(pipe, grid, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 40 epochs is a budget, not a convergence goal
        search.fit(X_train, y_train)
    print(f"backend: {search.best_estimator_[-1].history_.backend}")
    print(f"best parameters: {search.best_params_}")
    print(f"cross-validated accuracy: {search.best_score_:.3f}")
    print(f"test accuracy: {search.score(X_test, y_test):.3f}")


if __name__ == "__main__":
    try:
        main()
    except xpnet.XpnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)

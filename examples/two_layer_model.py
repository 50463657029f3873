"""The lecture's two-layer model, step by step with xpnet's building blocks.

    LINEAR -> TANH -> LINEAR -> SIGMOID (4 hidden units, as in the lecture's planar-data model), trained by
    gradient descent on the planar "flower" data. ``--hidden relu`` gives the lecture's LINEAR -> RELU variant.

Every step is the lecture's function: initialize_parameters, linear_activation_forward,
compute_cost, linear_activation_backward (starting from dA2 = -(Y/A2 - (1-Y)/(1-A2))), update_parameters.
The same script runs on any backend:

    python examples/two_layer_model.py                      # the default backend (XPNET_BACKEND or auto)
    python examples/two_layer_model.py --backend torch:cpu
    XPNET_BACKEND=array_api_strict python examples/two_layer_model.py

Expected (float32, seed 1): the cost falls from about 0.72 to about 0.20; train and test accuracy >= 0.90.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import xpnet
from xpnet import functional as F


def two_layer_model(X: Any, Y: Any, layer_dims: list[int], *, hidden: str, learning_rate: float,
                    num_iterations: int, print_every: int, backend: xpnet.Backend, dtype: str) -> dict[str, Any]:
    """Gradient descent on LINEAR -> hidden -> LINEAR -> SIGMOID.

    X: (n_x, m), Y: (1, m), both already on ``backend``. Returns the trained parameters
    W1 (n_h, n_x), b1 (n_h, 1), W2 (1, n_h), b2 (1, 1)."""
    init = "he" if hidden == "relu" else "xavier"
    parameters = F.initialize_parameters(layer_dims, init=init, seed=1, dtype=dtype, backend=backend)
    for i in range(num_iterations):
        A1, cache1 = F.linear_activation_forward(X, parameters["W1"], parameters["b1"], hidden, layer=1)
        A2, cache2 = F.linear_activation_forward(A1, parameters["W2"], parameters["b2"], "sigmoid", layer=2)
        dA2 = -(Y / A2 - (1 - Y) / (1 - A2))
        dA1, dW2, db2 = F.linear_activation_backward(dA2, cache2, "sigmoid", layer=2)
        # dA0 (the gradient with respect to the input features) is not needed for training.
        _, dW1, db1 = F.linear_activation_backward(dA1, cache1, hidden, layer=1)
        grads = {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}
        parameters = F.update_parameters(parameters, grads, learning_rate)
        if i % print_every == 0 or i == num_iterations - 1:
            print(f"Cost after iteration {i}: {F.compute_cost(A2, Y):.6f}")
    return parameters


def accuracy(X: Any, Y: Any, parameters: dict[str, Any], backend: xpnet.Backend, hidden: str) -> float:
    """The fraction of the m columns of X (n_x, m) whose predicted label equals Y (1, m)."""
    labels = F.predict(X, parameters, hidden=hidden, output="sigmoid")
    return float((backend.to_numpy(labels) == backend.to_numpy(Y)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend spec (default: XPNET_BACKEND or auto)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--hidden", default="tanh", choices=["tanh", "relu", "leaky_relu", "sigmoid"])
    parser.add_argument("--hidden-units", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1.2)
    parser.add_argument("--iterations", type=int, default=2500)
    parser.add_argument("--print-every", type=int, default=500)
    args = parser.parse_args()

    backend = xpnet.get_backend(args.backend)
    print(f"backend: {backend}")
    X_train, y_train = xpnet.datasets.make_flower(400, seed=1)
    X_test, y_test = xpnet.datasets.make_flower(400, seed=2)
    # The lecture's layout: one example per column.
    X = backend.asarray(X_train.T, dtype=args.dtype)
    Y = backend.asarray(y_train.reshape(1, -1), dtype=args.dtype)
    parameters = two_layer_model(X, Y, [2, args.hidden_units, 1], hidden=args.hidden,
                                 learning_rate=args.learning_rate,
                                 num_iterations=args.iterations, print_every=args.print_every,
                                 backend=backend, dtype=args.dtype)
    train = accuracy(X, Y, parameters, backend, args.hidden)
    test = accuracy(backend.asarray(X_test.T, dtype=args.dtype), backend.asarray(y_test.reshape(1, -1)),
                    parameters, backend, args.hidden)
    print(f"train accuracy: {train:.3f}")
    print(f"test accuracy: {test:.3f}")


if __name__ == "__main__":
    try:
        main()
    except xpnet.XpnetError as exc:  # a bad --backend/--dtype is a one-line message, not a traceback
        sys.exit(f"error: {exc}")

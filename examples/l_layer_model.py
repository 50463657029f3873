"""The lecture's L-layer model: [LINEAR -> RELU] x (L-1) -> LINEAR -> SIGMOID, with xpnet.DNN.

DNN.fit is the lecture's L_layer_model (full-batch gradient descent), trained through the fused, stable
output gradient (dZL = AL - Y) and without computing dA0. On the planar "flower" data:

    python examples/l_layer_model.py                        # the default backend (XPNET_BACKEND or auto)
    python examples/l_layer_model.py --backend torch:cpu --layers 2,20,7,5,1

Expected (float32, seed 2): the cost falls from about 0.7 to under 0.2; train accuracy >= 0.90, test >= 0.88.
"""

from __future__ import annotations

import argparse
import sys

import xpnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend spec (default: XPNET_BACKEND or auto)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--layers", default="2,20,7,5,1", help="layer sizes, input first (default 2,20,7,5,1)")
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--iterations", type=int, default=2500)
    parser.add_argument("--print-every", type=int, default=500)
    args = parser.parse_args()
    layer_dims = [int(n) for n in args.layers.split(",")]

    X_train, y_train = xpnet.datasets.make_flower(400, seed=1)
    X_test, y_test = xpnet.datasets.make_flower(400, seed=2)
    net = xpnet.DNN(layer_dims, hidden="relu", output="sigmoid", init="he", seed=2, dtype=args.dtype,
                    backend=args.backend)
    print(net)
    # NumPy in, the lecture's layout (one example per column); the network moves it to its backend.
    net.fit(X_train.T, y_train.reshape(1, -1), learning_rate=args.learning_rate, num_iterations=args.iterations,
            print_every=args.print_every)
    print(f"train accuracy: {net.score(X_train.T, y_train):.3f}")
    print(f"test accuracy: {net.score(X_test.T, y_test):.3f}")


if __name__ == "__main__":
    try:
        main()
    except xpnet.XpnetError as exc:  # a bad --backend/--dtype is a one-line message, not a traceback
        sys.exit(f"error: {exc}")

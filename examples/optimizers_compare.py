"""Mini-batch gradient descent, momentum and Adam side by side (the lecture's optimization lesson).

The same network ([2, 5, 2, 1], ReLU, sigmoid output, He init, seed 3) is trained on the same "moons" data
with mini-batches of 64 for 1000 epochs by each optimizer, from the same initial weights and with the same
batches (xpnet's seeded shuffling), so only the update rule differs:

    python examples/optimizers_compare.py                     # the default backend (XPNET_BACKEND or auto)
    python examples/optimizers_compare.py --backend torch:cpu

Expected (float32): Adam reaches train accuracy >= 0.95 and a final cost under half of plain gradient
descent's.
"""

from __future__ import annotations

import argparse
import sys

import xpnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend spec (default: XPNET_BACKEND or auto)")
    parser.add_argument("--epochs", type=int, default=1000)
    args = parser.parse_args()

    X, y = xpnet.datasets.make_moons(300, noise=0.2, seed=3)
    print(f"backend: {xpnet.get_backend(args.backend).spec}")
    for optimizer, lr in (("gd", 0.0007), ("momentum", 0.0007), ("adam", 0.0007)):
        net = xpnet.DNN([2, 5, 2, 1], hidden="relu", output="sigmoid", seed=3, backend=args.backend)
        history = net.train(X.T, y, epochs=args.epochs, batch_size=64, optimizer=optimizer, learning_rate=lr)
        print(f"{optimizer:>8}: final cost {history['loss'][-1]:.4f}, "
              f"train accuracy {net.score(X.T, y):.3f}")


if __name__ == "__main__":
    try:
        main()
    except xpnet.XpnetError as exc:  # a bad --backend and the like: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)

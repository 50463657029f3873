"""What a step benchmark runs, and the constants every part of the bench shares.

* the configurations: :data:`CONFIGS` (``mnist``, ``mnist-1024``, ``wide``, ``lecture``, ``tiny``),
  :func:`parse_configs` (the ``--config`` argument), :func:`custom_config` (``--layers/--batch/--output``);
* how to run: :class:`BenchSettings` (backend, dtype, optimizer, threads, rounds, memory runs);
* the step's arithmetic: :func:`gemm_plan` (its ``3L - 1`` matrix products), :func:`gemm_flops`;
* one configuration's host data, the same for every candidate: :class:`Problem`, :func:`make_problem`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

CANDIDATES = ("xpnet", "numpy-ref", "torch", "gemm", "sklearn")
SCHEMA_VERSION = 1
# After a NumPy GEMM, OpenBLAS worker threads busy-wait for ~0.1 s (torch's OpenMP threads likewise): a block
# of another library that starts right away would share the cores with them. See PERFORMANCE.md.
SWITCH_PAUSE_S = 0.15
ADAM = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
DEFAULT_LR = {"gd": 0.01, "adam": 0.001}


# ------------------------------------------------------------------------------------------ configs
@dataclass(frozen=True)
class BenchConfig:
    """One benchmark configuration: ``layers = (n_0, ..., n_L)``, batch size ``b``, output activation."""

    name: str
    layers: tuple[int, ...]
    batch: int
    output: str

    def describe(self) -> str:
        """``784-256-128-10 softmax, batch 128``."""
        return f"{'-'.join(map(str, self.layers))} {self.output}, batch {self.batch}"


CONFIGS: dict[str, BenchConfig] = {
    "mnist": BenchConfig("mnist", (784, 256, 128, 10), 128, "softmax"),
    "mnist-1024": BenchConfig("mnist-1024", (784, 256, 128, 10), 1024, "softmax"),
    "wide": BenchConfig("wide", (2048, 2048, 2048, 2048, 10), 512, "softmax"),
    "lecture": BenchConfig("lecture", (12288, 20, 7, 5, 1), 209, "sigmoid"),
    "tiny": BenchConfig("tiny", (2, 4, 1), 400, "sigmoid"),
}
OUTPUTS = ("softmax", "sigmoid", "linear")


def parse_configs(text: str) -> tuple[str, ...]:
    """``"tiny,mnist"`` or ``"all"`` -> the configuration names, in the order given (an argparse type: an
    unknown name raises ``argparse.ArgumentTypeError`` listing the valid ones, which argparse turns into
    exit code 2)."""
    import argparse

    names: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if part == "all":
            names.extend(n for n in CONFIGS if n not in names)
        elif part in CONFIGS:
            if part not in names:
                names.append(part)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown configuration {part!r}; valid: {', '.join(CONFIGS)}, all (or --layers/--batch)")
    if not names:
        raise argparse.ArgumentTypeError(f"no configuration given; valid: {', '.join(CONFIGS)}, all")
    return tuple(names)


def custom_config(layers: Sequence[int], batch: int, output: str | None) -> BenchConfig:
    """A configuration from ``--layers n_0,...,n_L --batch b --output ...`` (default output: softmax for
    several outputs, sigmoid for one)."""
    dims = tuple(int(n) for n in layers)
    if len(dims) < 2 or any(n < 1 for n in dims):
        raise ConfigError(f"--layers needs at least an input and an output size, all >= 1, got {dims}")
    if batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {batch}")
    out = output or ("softmax" if dims[-1] > 1 else "sigmoid")
    if out not in OUTPUTS:
        raise ConfigError(f"unknown output {out!r}; valid: {', '.join(OUTPUTS)}")
    if out == "softmax" and dims[-1] < 2:
        raise ConfigError("a softmax output needs at least 2 units; use --output sigmoid for one")
    return BenchConfig("custom", dims, int(batch), out)


@dataclass(frozen=True)
class BenchSettings:
    """How to run: backend spec, dtype, optimizer and learning rate, threads, timing and memory options."""

    backend: str = "numpy"
    dtype: str = "float32"
    optimizer: str = "gd"
    learning_rate: float | None = None  # None: 0.01 for gd, 0.001 for adam
    threads: int | None = None  # None: leave the libraries' thread counts as they are
    rounds: int = 20
    warmup: int = 3
    min_block_seconds: float = 0.05
    torch: bool = True
    sklearn: bool = True
    memory: bool = True
    memory_seconds: float = 0.5
    memory_min_steps: int = 15
    profile_seconds: float = 1.5  # --profile: profiled steps per configuration, in seconds of unprofiled time
    seed: int = 0

    @property
    def lr(self) -> float:
        """The learning rate in use."""
        return DEFAULT_LR[self.optimizer] if self.learning_rate is None else float(self.learning_rate)

    @classmethod
    def quick(cls, **kwargs: Any) -> BenchSettings:
        """Few, short rounds: for tests and a first look, not for numbers to quote."""
        base = {"rounds": 3, "warmup": 1, "min_block_seconds": 0.002, "memory_seconds": 0.05, "memory_min_steps": 12,
                "profile_seconds": 0.15}
        base.update(kwargs)
        return cls(**base)


# --------------------------------------------------------------------------------------- arithmetic
@dataclass(frozen=True)
class GemmProduct:
    """One matrix product of a training step: ``out (m, n) = a (m, k) @ b (k, n)``.

    ``a_transposed`` / ``b_transposed``: the operand is the transpose (a view) of a stored array, as in
    ``dW = dZ @ A_prev.T`` and ``dA = W.T @ dZ``.
    """

    label: str
    m: int
    k: int
    n: int
    a_transposed: bool = False
    b_transposed: bool = False

    @property
    def flops(self) -> int:
        """``2 m k n`` (one multiply and one add per term)."""
        return 2 * self.m * self.k * self.n


def gemm_plan(layers: Sequence[int], batch: int) -> list[GemmProduct]:
    """The matrix products of one training step in the lecture's layout, in execution order.

    Forward, for ``l = 1..L``: ``Z[l] = W[l] @ A[l-1]``, ``(n_l, n_{l-1}) @ (n_{l-1}, b)``. Backward, for
    ``l = L..1``: ``dW[l] = dZ[l] @ A[l-1].T``, ``(n_l, b) @ (b, n_{l-1})``, and for ``l >= 2`` only
    ``dA[l-1] = W[l].T @ dZ[l]``, ``(n_{l-1}, n_l) @ (n_l, b)`` (no ``dA[0]``: training does not need the
    gradient with respect to the inputs). ``3L - 1`` products in all.
    """
    dims = [int(n) for n in layers]
    L = len(dims) - 1
    b = int(batch)
    plan = [GemmProduct(f"Z{l} = W{l} @ A{l - 1}", dims[l], dims[l - 1], b) for l in range(1, L + 1)]
    for l in range(L, 0, -1):
        plan.append(GemmProduct(f"dW{l} = dZ{l} @ A{l - 1}.T", dims[l], b, dims[l - 1], b_transposed=True))
        if l > 1:
            plan.append(GemmProduct(f"dA{l - 1} = W{l}.T @ dZ{l}", dims[l - 1], dims[l], b, a_transposed=True))
    return plan


def gemm_flops(layers: Sequence[int], batch: int) -> int:
    """Floating-point operations of a step's matrix products (the numerator of every GFLOP/s here):

    ``2 b sum_{l=1..L} n_l n_{l-1}`` (forward) ``+ 2 b sum_{l=1..L} n_l n_{l-1}`` (``dW``)
    ``+ 2 b sum_{l=2..L} n_l n_{l-1}`` (``dA``, none for the first layer).
    """
    dims = [int(n) for n in layers]
    b = int(batch)
    pairs = [dims[l] * dims[l - 1] for l in range(1, len(dims))]
    return 2 * b * sum(pairs) * 2 + 2 * b * sum(pairs[1:])


@dataclass
class Problem:
    """One configuration's data on the host (NumPy), shared by every candidate.

    ``params``: ``W{l}`` (n_l, n_{l-1}) and ``b{l}`` (n_l, 1), xpnet's He initialization from ``seed``;
    ``X``: (n_0, b) standard normal; ``Y``: (n_L, b) targets (one-hot for softmax, 0/1 for sigmoid, normal
    for linear); ``labels``: (b,) class indices for softmax, else None.
    """

    config: BenchConfig
    dtype: str
    params: dict[str, Any]
    X: Any
    Y: Any
    labels: Any


def make_problem(config: BenchConfig, dtype: str = "float32", seed: int = 0) -> Problem:
    """The batch and the initial weights of ``config`` on the host, in ``dtype`` (the same on every call)."""
    import numpy as np

    from ..lecture.functional import initialize_parameters

    dims = config.layers
    params = {k: np.asarray(v) for k, v in
              initialize_parameters(dims, init="he", seed=seed, dtype=dtype, backend="numpy").items()}
    rng = np.random.default_rng([seed, 1])  # the data stream, apart from the weights' stream
    X = rng.standard_normal((dims[0], config.batch)).astype(dtype)
    n_out = dims[-1]
    labels = None
    if config.output == "softmax":
        labels = rng.integers(n_out, size=config.batch)
        Y = (np.arange(n_out)[:, None] == labels[None, :]).astype(dtype)
    elif config.output == "sigmoid":
        Y = rng.integers(0, 2, size=(n_out, config.batch)).astype(dtype)
    else:
        Y = rng.standard_normal((n_out, config.batch)).astype(dtype)
    return Problem(config, dtype, params, X, Y, labels)


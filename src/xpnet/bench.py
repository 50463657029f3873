"""``xpnet bench``: time xpnet's training step against PyTorch, a GEMM bound, a bare NumPy script and
scikit-learn, side by side in one run.

What one *step* is, for every candidate: forward, cost, backward, optimizer update on one batch of ``b``
examples, for a dense network ``n_0 - n_1 - ... - n_L`` (ReLU hidden layers, a softmax / sigmoid / linear
output fused with its loss). The candidates:

* ``xpnet``: :meth:`xpnet.training.Trainer.step` on the chosen backend and device;
* ``numpy-ref`` (CPU): a plain NumPy script of the same arithmetic (:func:`make_numpy_reference_step`);
* ``torch``: PyTorch eager on the same device, ``nn.Sequential`` of ``Linear``/``ReLU``, the matching fused
  loss, autograd, ``torch.optim.SGD`` / ``Adam`` with the same hyper-parameters;
* ``gemm``: only the step's matrix products (:func:`gemm_plan`) on preallocated operands with the backend's
  library: the step's lower bound;
* ``sklearn`` (CPU): ``MLPClassifier.partial_fit`` (``MLPRegressor`` for a linear output) on the same batch.

All get the same batch and the same initial weights. Rounds are interleaved (every candidate once per round,
after a warm-up and a calibration that makes each timed block last at least ``min_block_seconds``); a
candidate's time is the median of its per-step block times, and every ratio is the median of per-round
ratios (absolute times drift between rounds on a shared machine, ratios within a round hold). A device is
synchronized before each clock read. Peak memory per step is measured for each candidate in a fresh process.

Nothing here imports an array library at ``import xpnet`` time: numpy, torch and scikit-learn are imported
inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ConfigError, XpnetError

__all__ = [
    "CANDIDATES",
    "CONFIGS",
    "BenchConfig",
    "BenchSettings",
    "Candidate",
    "GemmProduct",
    "Problem",
    "SkippedCandidateError",
    "build_candidate",
    "check_correctness",
    "cpus_busy",
    "custom_config",
    "end_to_end",
    "environment_info",
    "format_config_report",
    "format_end_to_end",
    "format_header",
    "format_profile",
    "gemm_flops",
    "gemm_plan",
    "make_numpy_reference_step",
    "make_problem",
    "measure_memory",
    "parse_configs",
    "profile_config",
    "run_bench",
    "run_command",
    "run_config",
    "run_profile",
    "skip_reason",
]

CANDIDATES = ("xpnet", "numpy-ref", "torch", "gemm", "sklearn")
SCHEMA_VERSION = 1
# After a NumPy GEMM, OpenBLAS worker threads busy-wait for ~0.1 s (torch's OpenMP threads likewise): a block
# of another library that starts right away would share the cores with them. See PERFORMANCE.md.
SWITCH_PAUSE_S = 0.15
ADAM = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
DEFAULT_LR = {"gd": 0.01, "adam": 0.001}
_MIB = float(1 << 20)
_MARK = "XPNET_BENCH_MEMORY "


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

    from .functional import initialize_parameters

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


def make_numpy_reference_step(output: str, learning_rate: float, optimizer: str = "gd") -> Callable[..., Any]:
    """The "bare NumPy script": a plain, idiomatic NumPy training step, as a learner writes it.

    Returns ``step(params, X, Y) -> cost`` that updates ``params`` (``W{l}``, ``b{l}``) in place. The arithmetic
    is the training step's: ``Z[l] = W[l] A[l-1] + b[l]``, ``A[l] = relu(Z[l])``; the output fused with its
    loss (softmax: ``cost = (1/m) sum Y (lse(Z) - Z)``, sigmoid: ``(1/m) sum(logaddexp(0, Z) - Y Z)``, linear:
    ``(1/(2m)) sum (Z - Y)^2``), ``dZ[L] = A[L] - Y``; ``dW[l] = (1/m) dZ[l] A[l-1]^T``,
    ``db[l] = (1/m) sum_cols dZ[l]``, ``dZ[l-1] = (W[l]^T dZ[l]) * (Z[l-1] > 0)`` stopping at layer 1; then
    ``W -= lr * dW`` (gd) or Adam with bias correction (``beta1 0.9, beta2 0.999, eps 1e-8``). Temporaries are
    allocated freely; nothing is tuned.
    """
    import numpy as np

    b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["epsilon"]
    state: dict[str, Any] = {"t": 0}
    last_grads: dict[str, Any] = {}

    def step(params: dict[str, Any], X: Any, Y: Any) -> Any:
        L = len(params) // 2
        m = X.shape[1]
        caches = []
        A = X
        for l in range(1, L + 1):
            Z = params[f"W{l}"] @ A + params[f"b{l}"]
            caches.append((A, Z))
            if l < L:
                A = np.maximum(Z, 0)
        if output == "softmax":
            shifted = Z - Z.max(axis=0, keepdims=True)
            expZ = np.exp(shifted)
            total = expZ.sum(axis=0, keepdims=True)
            AL = expZ / total
            cost = np.sum(Y * (np.log(total) - shifted)) / m
        elif output == "sigmoid":
            AL = 1 / (1 + np.exp(-Z))
            cost = np.sum(np.logaddexp(0, Z) - Y * Z) / m
        else:
            AL = Z
            cost = 0.5 * np.sum((AL - Y) ** 2) / m
        grads = last_grads  # kept for the correctness check; refilled every step
        dZ = AL - Y
        for l in range(L, 0, -1):
            A_prev = caches[l - 1][0]
            grads[f"dW{l}"] = dZ @ A_prev.T / m
            grads[f"db{l}"] = np.sum(dZ, axis=1, keepdims=True) / m
            if l > 1:
                dA = params[f"W{l}"].T @ dZ
                dZ = dA * (caches[l - 2][1] > 0)
        if optimizer == "gd":
            for key in params:
                params[key] -= learning_rate * grads["d" + key]
        else:
            state["t"] += 1
            t = state["t"]
            for key in params:
                g = grads["d" + key]
                if "v" + key not in state:
                    state["v" + key] = np.zeros_like(g)
                    state["s" + key] = np.zeros_like(g)
                state["v" + key] = b1 * state["v" + key] + (1 - b1) * g
                state["s" + key] = b2 * state["s" + key] + (1 - b2) * g * g
                v_hat = state["v" + key] / (1 - b1**t)
                s_hat = state["s" + key] / (1 - b2**t)
                params[key] -= learning_rate * v_hat / (np.sqrt(s_hat) + eps)
        return cost

    step.last_grads = last_grads  # type: ignore[attr-defined]
    return step


# ------------------------------------------------------------------------------------------ devices
def _torch_device_for(bk: Any) -> str:
    """The torch device matching the xpnet backend's: ``cuda:N`` for cupy:N / torch:cuda:N / jax:gpu:N."""
    if bk.name == "torch":
        return str(bk.device)
    if bk.name == "cupy":
        return f"cuda:{bk.device.id}"
    if bk.name == "jax" and getattr(bk.device, "platform", "cpu") == "gpu":
        return f"cuda:{bk.device.id}"
    return "cpu"


def _on_gpu(bk: Any) -> bool:
    return _torch_device_for(bk) != "cpu"


def _library_of(bk: Any) -> str:
    return "numpy" if bk.name == "array_api_strict" else bk.name


def _torch_available() -> tuple[bool, str]:
    try:
        import torch  # noqa: F401
    except Exception as exc:  # not installed, or a broken install
        return False, f"not installed ({type(exc).__name__})" if isinstance(exc, ImportError) else f"unusable: {exc}"
    return True, ""


def _sklearn_available() -> tuple[bool, str]:
    try:
        import sklearn.neural_network  # noqa: F401
    except Exception as exc:
        return False, f"not installed ({type(exc).__name__})"
    return True, ""


def _torch_sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        import torch

        dev = torch.device(device)
        return lambda: torch.cuda.synchronize(dev)
    return lambda: None


# ----------------------------------------------------------------------------------------- candidates
@dataclass
class Candidate:
    """A timed contender: ``step()`` runs one training step (asynchronously on a GPU), ``sync()`` waits for
    the device, ``context()`` is entered around a timed block. ``library`` names the library whose threads it
    runs (a switch between libraries gets a pause on a multi-threaded CPU)."""

    name: str
    library: str
    step: Callable[[], Any]
    sync: Callable[[], None] = lambda: None
    context: Callable[[], Any] = contextlib.nullcontext
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def time_block(self, k: int) -> float:
        """Seconds per step of a block of ``k`` steps (the device synchronized before both clock reads)."""
        with self.context():
            self.sync()
            start = time.perf_counter()
            for _ in range(k):
                self.step()
            self.sync()
            return (time.perf_counter() - start) / k


class SkippedCandidateError(Exception):
    """A candidate that does not apply here; the message says why."""


def _build_xpnet(problem: Problem, settings: BenchSettings, bk: Any) -> Candidate:
    from .network import DNN
    from .training import Trainer

    cfg = problem.config
    net = DNN(cfg.layers, hidden="relu", output=cfg.output, dtype=settings.dtype, backend=bk, seed=settings.seed)
    # The same initial weights as every other candidate (a copy: the step may update in place).
    net.parameters = {k: bk.asarray(v.copy(), dtype=net.dtype) for k, v in problem.params.items()}
    options = ADAM if settings.optimizer == "adam" else {}
    trainer = Trainer(net, optimizer=settings.optimizer, learning_rate=settings.lr, batch_size=cfg.batch,
                      shuffle=False, **options)
    X = bk.asarray(problem.X, dtype=net.dtype)
    Y = bk.asarray(problem.Y, dtype=net.dtype)
    last: list[Any] = [None]

    def step() -> Any:
        last[0] = trainer.step(X, Y)
        return last[0]

    def sync() -> None:
        if last[0] is not None:
            bk.synchronize(last[0])
        else:
            bk.synchronize()

    return Candidate("xpnet", _library_of(bk), step, sync, bk.activate, _torch_device_for(bk),
                     {"trainer": trainer, "network": net, "X": X, "Y": Y})


def _torch_model(problem: Problem, settings: BenchSettings, device: str) -> tuple[Any, Any, Any, Callable[..., Any]]:
    """``(model, X (b, n_0), targets, loss_fn)`` on ``device`` with the problem's weights (row layout)."""
    import numpy as np
    import torch

    cfg = problem.config
    dims = cfg.layers
    L = len(dims) - 1
    dtype = getattr(torch, settings.dtype)
    modules: list[Any] = []
    for l in range(1, L + 1):
        modules.append(torch.nn.Linear(dims[l - 1], dims[l]))
        if l < L:
            modules.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*modules).to(device=device, dtype=dtype)
    with torch.no_grad():
        for l in range(1, L + 1):
            lin = modules[2 * (l - 1)]
            lin.weight.copy_(torch.from_numpy(problem.params[f"W{l}"]))  # (n_l, n_{l-1}), the lecture's W
            lin.bias.copy_(torch.from_numpy(problem.params[f"b{l}"][:, 0]))
    X = torch.from_numpy(np.ascontiguousarray(problem.X.T)).to(device)
    b, n_out = cfg.batch, dims[-1]
    if cfg.output == "softmax":
        target = torch.from_numpy(problem.labels.astype(np.int64)).to(device)
        loss_fn = torch.nn.CrossEntropyLoss()  # mean over the batch of -log softmax(z)_y
    else:
        target = torch.from_numpy(np.ascontiguousarray(problem.Y.T)).to(device)
        # xpnet's costs sum over the outputs and average over the examples: the library's mean equals that for
        # one output; several outputs sum and scale by 1/b.
        if cfg.output == "sigmoid":
            loss_fn = torch.nn.BCEWithLogitsLoss() if n_out == 1 else _scaled(torch.nn.BCEWithLogitsLoss(
                reduction="sum"), 1.0 / b)
        else:
            loss_fn = _scaled(torch.nn.MSELoss(), 0.5) if n_out == 1 else _scaled(torch.nn.MSELoss(reduction="sum"),
                                                                                0.5 / b)
    return model, X, target, loss_fn


def _scaled(loss: Any, factor: float) -> Callable[..., Any]:
    return lambda out, target: loss(out, target) * factor


def _torch_optimizer(model: Any, settings: BenchSettings) -> Any:
    import torch

    if settings.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings.lr, betas=(ADAM["beta1"], ADAM["beta2"]),
                                eps=ADAM["epsilon"])
    return torch.optim.SGD(model.parameters(), lr=settings.lr)


def _build_torch(problem: Problem, settings: BenchSettings, bk: Any) -> Candidate:
    device = _torch_device_for(bk)
    model, X, target, loss_fn = _torch_model(problem, settings, device)
    opt = _torch_optimizer(model, settings)

    def step() -> Any:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(X), target)
        loss.backward()
        opt.step()
        return loss

    return Candidate("torch", "torch", step, _torch_sync(device), contextlib.nullcontext, device,
                     {"model": model, "optimizer": opt})


def _native_matmul(bk: Any) -> Callable[..., Any]:
    """``matmul(a, b, out)`` of the backend's own library, writing into ``out`` where the library can."""
    if bk.name == "numpy":
        import numpy as np

        return lambda a, b, out: np.matmul(a, b, out=out)
    if bk.name == "torch":
        import torch

        return lambda a, b, out: torch.mm(a, b, out=out)
    if bk.name == "cupy":
        import cupy

        return lambda a, b, out: cupy.matmul(a, b, out=out)
    # jax and array_api_strict have no out=: the product is computed and dropped.
    return lambda a, b, out: a @ b


def _build_gemm(problem: Problem, settings: BenchSettings, bk: Any,
                matmul: Callable[..., Any] | None = None) -> Candidate:
    """The GEMM bound: :func:`gemm_plan`'s products, back to back, on operands allocated once.

    ``matmul(a, b, out)`` defaults to the backend library's own (``np.matmul``/``torch.mm``/``cupy.matmul``
    with ``out=``); ``A[l-1].T`` and ``W[l].T`` are transposed views, as in the step."""
    import numpy as np

    cfg = problem.config
    dims = cfg.layers
    L = len(dims) - 1
    b = cfg.batch
    rng = np.random.default_rng([settings.seed, 2])
    dtype = bk.float_dtype(settings.dtype)

    def dev(host: Any) -> Any:
        return bk.asarray(np.ascontiguousarray(host), dtype=dtype)

    W = {l: dev(problem.params[f"W{l}"]) for l in range(1, L + 1)}
    A = {0: dev(problem.X)}
    for l in range(1, L):
        A[l] = dev(np.maximum(rng.standard_normal((dims[l], b)), 0).astype(settings.dtype))
    dZ = {l: dev((0.01 * rng.standard_normal((dims[l], b))).astype(settings.dtype)) for l in range(1, L + 1)}
    xp = bk.xp
    Z = {l: xp.empty((dims[l], b), dtype=dtype, device=bk.device) for l in range(1, L + 1)}
    dW = {l: xp.empty((dims[l], dims[l - 1]), dtype=dtype, device=bk.device) for l in range(1, L + 1)}
    dA = {l: xp.empty((dims[l], b), dtype=dtype, device=bk.device) for l in range(1, L)}
    mm = matmul or _native_matmul(bk)
    ops: list[tuple[Any, Any, Any]] = [(W[l], A[l - 1], Z[l]) for l in range(1, L + 1)]
    for l in range(L, 0, -1):
        ops.append((dZ[l], A[l - 1].T, dW[l]))
        if l > 1:
            ops.append((W[l].T, dZ[l], dA[l - 1]))
    last: list[Any] = [None]

    def step() -> None:
        for a, bb, out in ops:
            last[0] = mm(a, bb, out)

    def sync() -> None:
        if last[0] is not None:
            bk.synchronize(last[0])
        else:
            bk.synchronize()

    return Candidate("gemm", _library_of(bk), step, sync, bk.activate, _torch_device_for(bk), {"ops": ops})


def _build_numpy_ref(problem: Problem, settings: BenchSettings, bk: Any) -> Candidate:
    import numpy as np

    params = {k: v.copy() for k, v in problem.params.items()}
    step_fn = make_numpy_reference_step(problem.config.output, settings.lr, settings.optimizer)
    X, Y = problem.X, problem.Y

    def step() -> Any:
        return step_fn(params, X, Y)

    # A learner's sigmoid overflows exp(-Z) for very negative Z (harmlessly): keep the warnings out of the report.
    return Candidate("numpy-ref", "numpy", step, context=lambda: np.errstate(over="ignore"),
                     extra={"params": params, "grads": step_fn.last_grads})


def _build_sklearn(problem: Problem, settings: BenchSettings, bk: Any) -> Candidate:
    import warnings

    import numpy as np
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cfg = problem.config
    dims = cfg.layers
    n_out = dims[-1]
    if cfg.output == "softmax" and n_out == 2:
        raise SkippedCandidateError("a 2-class softmax is one logistic output in scikit-learn: not the same network")
    common: dict[str, Any] = {"hidden_layer_sizes": tuple(dims[1:-1]), "activation": "relu", "alpha": 0.0,
                              "batch_size": cfg.batch, "learning_rate_init": settings.lr, "shuffle": False,
                              "random_state": settings.seed}
    if settings.optimizer == "adam":
        common.update(solver="adam", beta_1=ADAM["beta1"], beta_2=ADAM["beta2"], epsilon=ADAM["epsilon"])
    else:
        common.update(solver="sgd", momentum=0.0, nesterovs_momentum=False, learning_rate="constant")
    X = np.ascontiguousarray(problem.X.T)  # scikit-learn's layout: (b, n_0)
    first: dict[str, Any] = {}
    if cfg.output == "linear":
        est = MLPRegressor(**common)
        y = problem.Y[0].copy() if n_out == 1 else np.ascontiguousarray(problem.Y.T)
    else:
        est = MLPClassifier(**common)
        if cfg.output == "softmax":
            y, first["classes"] = problem.labels, np.arange(n_out)
        else:  # one output: binary labels; several: a multilabel indicator matrix, one logistic output each
            y = problem.Y[0].astype(np.int64) if n_out == 1 else np.ascontiguousarray(problem.Y.T.astype(np.int64))
            first["classes"] = np.arange(2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.partial_fit(X, y, **first)  # builds the network and the solver's state
    except ValueError as exc:
        raise SkippedCandidateError(f"scikit-learn refused this network ({exc})") from None
    shapes = [c.shape for c in est.coefs_]
    wanted = [(dims[l - 1], dims[l]) for l in range(1, len(dims))]
    if shapes != wanted:
        raise SkippedCandidateError(f"scikit-learn built layers {shapes}, not {wanted}")
    for l in range(1, len(dims)):
        # In place: the solver holds references to these arrays. Same initial weights as the others.
        est.coefs_[l - 1][...] = problem.params[f"W{l}"].T
        est.intercepts_[l - 1][...] = problem.params[f"b{l}"][:, 0]

    def step() -> Any:
        return est.partial_fit(X, y)

    return Candidate("sklearn", "numpy", step, extra={"estimator": est})


_BUILDERS = {"xpnet": _build_xpnet, "numpy-ref": _build_numpy_ref, "torch": _build_torch, "gemm": _build_gemm,
             "sklearn": _build_sklearn}


def skip_reason(name: str, settings: BenchSettings, bk: Any) -> str | None:
    """Why candidate ``name`` does not run with these settings on this backend (None: it runs)."""
    gpu = _on_gpu(bk)
    if name in ("numpy-ref", "sklearn") and gpu:
        return f"CPU only (the device is {_torch_device_for(bk)})"
    if name == "torch":
        if not settings.torch:
            return "--no-torch"
        ok, why = _torch_available()
        if not ok:
            return why
    if name == "sklearn":
        if not settings.sklearn:
            return "--no-sklearn"
        ok, why = _sklearn_available()
        if not ok:
            return why
    return None


def build_candidate(name: str, problem: Problem, settings: BenchSettings, bk: Any) -> Candidate:
    """Build candidate ``name`` (one of :data:`CANDIDATES`) for ``problem`` on backend ``bk``; raises
    :class:`SkippedCandidateError` when it does not apply."""
    reason = skip_reason(name, settings, bk)
    if reason is not None:
        raise SkippedCandidateError(reason)
    with bk.activate():
        return _BUILDERS[name](problem, settings, bk)


# -------------------------------------------------------------------------------------- correctness
def _tolerance(dtype: str) -> dict[str, float]:
    # float32: the products' summation order differs between BLAS libraries (relative error ~1e-6 per
    # product, amplified through the layers); float64 leaves room for the same with 9 more digits. ``noise``:
    # a gradient entry under this fraction of its parameter's largest is rounding noise, whose sign Adam's
    # normalization g / (|g| + eps) turns into a full-size step (see _compare).
    if dtype == "float32":
        return {"cost": 1e-4, "update": 2e-3, "noise": 1e-4}
    return {"cost": 1e-10, "update": 1e-7, "noise": 1e-12}


def _compare(name: str, optimizer: str, got: tuple[float, dict[str, Any]], ref: tuple[float, dict[str, Any]],
             before: dict[str, Any], grads: dict[str, Any] | None, tol: dict[str, float]) -> dict[str, Any]:
    """Relative differences of one step's cost and parameter updates ``u = after - before`` against a reference:
    per parameter ``max|u - u_ref| / max|u_ref|``, the worst parameter reported.

    With Adam the first update is ``lr g / (|g| + eps)``: every entry moves by about ``lr``, and an entry whose
    gradient is rounding noise moves by ``+-lr`` at random. Those entries (``|g_ref| < noise * max|g_ref|`` in
    the parameter) are left out and counted; the gradient-descent check, where ``u = -lr g``, covers them.
    """
    import numpy as np

    cost, after = got
    ref_cost, ref_after = ref
    cost_diff = abs(cost - ref_cost) / max(abs(ref_cost), 1e-30)
    worst, worst_key, left_out = 0.0, None, 0
    for key, start in before.items():
        s = start.astype(np.float64)
        du = after[key].astype(np.float64) - s
        du_ref = ref_after[key].astype(np.float64) - s
        if grads is not None:
            g = np.abs(grads[key].astype(np.float64))
            keep = g >= tol["noise"] * float(g.max(initial=0.0))
            left_out += int(np.count_nonzero(~keep & (g > 0)))  # exact zeros (dead units) are not noise
            du, du_ref = du[keep], du_ref[keep]
        scale = float(np.max(np.abs(du_ref), initial=0.0))
        err = float(np.max(np.abs(du - du_ref), initial=0.0))
        rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
        if not np.isfinite(after[key]).all():
            rel = math.inf
        if rel > worst or worst_key is None:
            worst, worst_key = rel, key
    ok = bool(cost_diff <= tol["cost"] and worst <= tol["update"] and math.isfinite(cost))
    out = {"candidate": name, "optimizer": optimizer, "cost": cost, "reference_cost": ref_cost,
           "cost_rel_diff": cost_diff, "update_rel_diff": worst, "worst_parameter": worst_key,
           "tolerance": {"cost": tol["cost"], "update": tol["update"]}, "ok": ok}
    if grads is not None:
        out["entries_left_out"] = left_out
    return out


def _one_step(name: str, problem: Problem, settings: BenchSettings, bk: Any
              ) -> tuple[float, dict[str, Any], dict[str, Any] | None]:
    """``(cost, parameters after, gradients or None)`` of one step of candidate ``name``, all on the host."""
    import numpy as np

    # Built directly, not through build_candidate: the NumPy script checks on the host even when the timing
    # leaves it out (a GPU run), and the caller has made sure torch is there.
    with bk.activate():
        cand = _BUILDERS[name](problem, settings, bk)
    with cand.context():
        cost = cand.step()
        cand.sync()
    if name == "xpnet":
        params = cand.extra["network"].parameters
        return float(bk.to_numpy(cost)), {k: np.asarray(bk.to_numpy(v)) for k, v in params.items()}, None
    if name == "numpy-ref":
        return float(cost), cand.extra["params"], {k[1:]: v for k, v in cand.extra["grads"].items()}
    model = cand.extra["model"]
    after, grads = {}, {}
    for l in range(1, len(problem.config.layers)):
        lin = model[2 * (l - 1)]
        after[f"W{l}"] = lin.weight.detach().cpu().numpy()
        after[f"b{l}"] = lin.bias.detach().cpu().numpy()[:, None]
        grads[f"W{l}"] = lin.weight.grad.detach().cpu().numpy()
        grads[f"b{l}"] = lin.bias.grad.detach().cpu().numpy()[:, None]
    return float(cost.item()), after, grads


def check_correctness(problem: Problem, settings: BenchSettings, bk: Any) -> dict[str, Any]:
    """One step of xpnet (and of the NumPy script) from the problem's weights and batch, against one step of
    PyTorch (without torch: against the NumPy script). The cost and the parameter updates must agree within a
    tolerance for the dtype, for a gradient-descent step (``u = -lr g``: checks forward, cost and backward)
    and, when the run uses Adam, for an Adam step too. Returns ``{"reference", "pairs": [...], "ok"}``."""
    tol = _tolerance(settings.dtype)
    reference = "torch" if skip_reason("torch", settings, bk) is None else "numpy-ref"
    names = [n for n in ("xpnet", "numpy-ref") if n != reference]
    optimizers = ["gd"] + (["adam"] if settings.optimizer == "adam" else [])
    pairs = []
    for opt in optimizers:
        step_settings = replace(settings, optimizer=opt, learning_rate=settings.lr if opt == settings.optimizer
                                else None)
        ref_cost, ref_after, grads = _one_step(reference, problem, step_settings, bk)
        for name in names:
            cost, after, _ = _one_step(name, problem, step_settings, bk)
            pairs.append(_compare(name, opt, (cost, after), (ref_cost, ref_after), problem.params,
                                  grads if opt == "adam" else None, tol))
    return {"reference": reference, "pairs": pairs, "ok": all(p["ok"] for p in pairs)}


# ------------------------------------------------------------------------------------------- timing
def _calibrate(cand: Candidate, warmup: int, min_block: float) -> int:
    """Warm up, then the number of steps ``k`` a timed block needs to last at least ``min_block`` seconds."""
    for _ in range(max(1, warmup)):
        with cand.context():
            cand.step()
    cand.sync()
    k = 1
    for _ in range(40):
        block = cand.time_block(k) * k
        if block >= min_block:
            break
        # Aim 20% over the target, at least doubling: one or two more trials.
        k = max(2 * k, math.ceil(k * 1.2 * min_block / max(block, 1e-9)))
    return k


def _median_ratio(num: list[float], den: list[float]) -> float | None:
    pairs = [a / b for a, b in zip(num, den, strict=True) if b > 0]
    return statistics.median(pairs) if pairs else None


def _effective_threads() -> int:
    """The most threads any loaded BLAS / OpenMP runtime or torch will use now."""
    counts = [1]
    try:
        from threadpoolctl import threadpool_info

        counts += [int(i.get("num_threads") or 1) for i in threadpool_info()]
    except Exception:  # reporting only
        pass
    if "torch" in sys.modules:
        counts.append(sys.modules["torch"].get_num_threads())
    return max(counts)


def run_config(config: BenchConfig, settings: BenchSettings, bk: Any, *,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Benchmark one configuration: the correctness check, then interleaved timing rounds, then (unless
    ``settings.memory`` is off) each candidate's peak memory in a fresh process. Returns a JSON-able dict."""
    say = progress or (lambda text: None)
    problem = make_problem(config, settings.dtype, settings.seed)
    flops = gemm_flops(config.layers, config.batch)
    result: dict[str, Any] = {"name": config.name, "layers": list(config.layers), "batch": config.batch,
                              "output": config.output, "gemm_flops_per_step": flops}
    say(f"{config.name}: correctness check")
    result["correctness"] = check_correctness(problem, settings, bk)

    built: list[Candidate] = []
    cands: dict[str, dict[str, Any]] = {}
    for name in CANDIDATES:
        try:
            cand = build_candidate(name, problem, settings, bk)
        except SkippedCandidateError as exc:
            cands[name] = {"status": "skipped", "reason": str(exc)}
            continue
        built.append(cand)
        cands[name] = {"status": "ok", "library": cand.library, "device": cand.device}
    # One library after another: fewer switches, so fewer pauses for spinning threads.
    lead = built[0].library
    built.sort(key=lambda c: c.library != lead)
    pause = not _on_gpu(bk) and _effective_threads() > 1
    say(f"{config.name}: warm-up and calibration")
    for cand in built:
        if pause:
            time.sleep(SWITCH_PAUSE_S)
        cands[cand.name]["steps_per_block"] = _calibrate(cand, settings.warmup, settings.min_block_seconds)
    times: dict[str, list[float]] = {c.name: [] for c in built}
    previous = None
    for r in range(settings.rounds):
        say(f"{config.name}: round {r + 1}/{settings.rounds}")
        for cand in built:
            if pause and cand.library != previous:
                time.sleep(SWITCH_PAUSE_S)
            times[cand.name].append(cand.time_block(cands[cand.name]["steps_per_block"]))
            previous = cand.library
    for cand in built:
        t = times[cand.name]
        entry = cands[cand.name]
        med = statistics.median(t)
        entry.update(ms_per_step=med * 1e3, gflops=flops / med / 1e9, times_ms=[x * 1e3 for x in t])
        entry["gemm_fraction"] = _median_ratio(times["gemm"], t) if "gemm" in times else None
        entry["torch_ratio"] = _median_ratio(t, times["torch"]) if "torch" in times else None
    ratios: dict[str, float | None] = {
        "xpnet_over_torch": cands["xpnet"].get("torch_ratio"),
        "gemm_fraction_of_xpnet": cands["xpnet"].get("gemm_fraction"),
        "xpnet_over_numpy_ref": _median_ratio(times["xpnet"], times["numpy-ref"]) if "numpy-ref" in times else None,
    }
    result["candidates"] = cands
    result["ratios"] = ratios
    del built, cand, problem  # before the memory runs: the children should not compete with our arrays
    if settings.memory:
        for name, entry in cands.items():
            if entry["status"] == "ok":
                say(f"{config.name}: peak memory of {name}")
                entry["memory"] = measure_memory(name, config, settings)
    return result


# ------------------------------------------------------------------------------------------- memory
def _proc_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) of this process; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _child_settings(settings: BenchSettings) -> dict[str, Any]:
    return {k: getattr(settings, k) for k in ("backend", "dtype", "optimizer", "learning_rate", "threads", "warmup",
                                              "memory_seconds", "memory_min_steps", "seed", "torch", "sklearn")}


def measure_memory(name: str, config: BenchConfig, settings: BenchSettings, timeout: float = 600.0) -> dict[str, Any]:
    """Peak memory of candidate ``name``'s steps, measured in a fresh Python process.

    The child builds the model and batch, reads a baseline, runs warm-up plus at least
    ``settings.memory_min_steps`` steps (and at least ``memory_seconds``), and reports ``peak_mib``: the peak
    during the steps minus the baseline (host RSS from ``VmHWM`` after resetting it on the CPU; the torch
    allocator's ``max_memory_allocated`` or the CuPy pool's growth on a GPU), and ``growth_mib``: what was held
    after the last step minus after step 10 (a leak grows it; a steady step keeps it near 0).
    """
    import xpnet

    payload = json.dumps({"candidate": name, "config": {"name": config.name, "layers": list(config.layers),
                                                        "batch": config.batch, "output": config.output},
                          "settings": _child_settings(settings)})
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.abspath(xpnet.__file__)))
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = "import sys; from xpnet.bench import _memory_child; sys.exit(_memory_child(sys.argv[1]))"
    try:
        proc = subprocess.run([sys.executable, "-c", code, payload], capture_output=True, text=True, env=env,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"the measuring process took over {timeout:g} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"the measuring process failed (exit {proc.returncode}): {tail}"}


def _memory_child(payload: str) -> int:
    """Entry point of the measuring process (see :func:`measure_memory`): prints one JSON line."""
    import gc

    from . import _fast  # noqa: F401  (imported by the first step otherwise: a module is not step memory)
    from .backend import get_backend

    spec = json.loads(payload)
    settings = BenchSettings(**spec["settings"], rounds=1, memory=False)
    cfg = BenchConfig(**{**spec["config"], "layers": tuple(spec["config"]["layers"])})
    name = spec["candidate"]
    # Only what this candidate runs on is loaded: importing torch alone costs seconds and memory.
    on_torch = name == "torch" or (name in ("xpnet", "gemm") and settings.backend.startswith("torch"))
    with _thread_limits(settings.threads, want_torch=on_torch, want_sklearn=name == "sklearn"):
        bk = get_backend(settings.backend)
        problem = make_problem(cfg, settings.dtype, settings.seed)
        cand = build_candidate(name, problem, settings, bk)
        del problem
        gc.collect()
        meter = _Meter(cand)
        base = meter.start()
        with cand.context():
            for _ in range(max(1, settings.warmup)):
                cand.step()
            cand.sync()
            warm_peak, warm_held = meter.peak(), meter.held()
            meter.reset_peak()
            steps, at10 = 0, None
            started = time.perf_counter()
            while steps < settings.memory_min_steps or time.perf_counter() - started < settings.memory_seconds:
                cand.step()
                steps += 1
                if steps == 10:
                    cand.sync()
                    at10 = meter.held()
                if steps >= 100000:
                    break
            cand.sync()
        steady_peak, end = meter.peak(), meter.held()
    out = {"kind": meter.kind, "peak_mib": max(0.0, max(warm_peak, steady_peak) - base) / _MIB,
           "steady_peak_mib": max(0.0, steady_peak - warm_held) / _MIB,
           "state_mib": (warm_held - base) / _MIB,
           "growth_mib": None if at10 is None else (end - at10) / _MIB,
           "steps": steps + max(1, settings.warmup)}
    if meter.note:
        out["note"] = meter.note
    print(_MARK + json.dumps(out), flush=True)
    return 0


class _Meter:
    """Where a candidate's memory goes: host RSS on the CPU, the torch CUDA allocator or the CuPy pool.

    ``held()`` is what is held now and ``peak()`` the most held since the last ``reset_peak()``, in bytes."""

    def __init__(self, cand: Candidate) -> None:
        self.kind = "host-rss"
        self.note = ""
        if cand.device.startswith("cuda") and cand.library not in ("cupy", "torch"):
            self.kind = "none"
            self.note = f"no device memory statistics for {cand.library}"
        elif cand.device.startswith("cuda"):
            self.kind = "cupy-pool" if cand.library == "cupy" else "torch-cuda"
            if self.kind == "torch-cuda":
                import torch

                self.torch, self.dev = torch, torch.device(cand.device)
            else:
                import cupy

                self.pool = cupy.get_default_memory_pool()

    def held(self) -> float:
        if self.kind == "none":
            return 0.0
        if self.kind == "torch-cuda":
            return float(self.torch.cuda.memory_allocated(self.dev))
        if self.kind == "cupy-pool":
            return float(self.pool.used_bytes())
        return float((_proc_status_kib("VmRSS") or 0) * 1024)

    def peak(self) -> float:
        if self.kind == "none":
            return 0.0
        if self.kind == "torch-cuda":
            return float(self.torch.cuda.max_memory_allocated(self.dev))
        if self.kind == "cupy-pool":
            # The pool keeps every block it once needed: what it holds is the peak demand (to its rounding).
            return float(self.pool.total_bytes())
        if self.resettable:
            return float((_proc_status_kib("VmHWM") or 0) * 1024)
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0

    def reset_peak(self) -> None:
        if self.kind == "torch-cuda":
            self.torch.cuda.reset_peak_memory_stats(self.dev)
        elif self.kind == "host-rss":
            self.resettable = _reset_peak_rss()
            if not self.resettable:
                self.note = "peak RSS could not be reset: an upper bound (the process's lifetime peak)"

    def start(self) -> float:
        """Reset the peak and return the baseline: what is held before the first step."""
        if self.kind == "torch-cuda":
            self.torch.cuda.synchronize(self.dev)
        self.reset_peak()
        return float(self.pool.total_bytes()) if self.kind == "cupy-pool" else self.held()


# -------------------------------------------------------------------------------------- environment
@contextlib.contextmanager
def _thread_limits(threads: int | None, *, want_torch: bool = True, want_sklearn: bool = True) -> Any:
    """Set every BLAS / OpenMP pool (threadpoolctl) and torch to ``threads`` for the block, then restore.

    The libraries are imported first (torch and scikit-learn when wanted and installed) so that their
    runtimes are among the pools limited."""
    if threads is None:
        yield
        return
    torch = None
    if want_torch:
        with contextlib.suppress(Exception):
            import torch
    import numpy  # noqa: F401  (its BLAS must be loaded to be limited)

    if want_sklearn:
        with contextlib.suppress(Exception):
            import sklearn.neural_network  # noqa: F401
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=int(threads)):
        if torch is not None:
            torch.set_num_threads(int(threads))
        try:
            yield
        finally:
            if torch is not None and before is not None:
                torch.set_num_threads(before)


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment_info(settings: BenchSettings, bk: Any) -> dict[str, Any]:
    """Versions, CPU / GPU, BLAS libraries with their thread counts, torch's threads: what the numbers were
    measured with."""
    from . import __version__

    versions = {"xpnet": __version__, "python": platform.python_version()}
    for dist in ("numpy", "torch", "scikit-learn", "array-api-compat", "array-api-strict", "threadpoolctl"):
        versions[dist] = _version(dist)
    if bk.name == "cupy":
        versions["cupy"] = next((v for d in ("cupy-cuda13x", "cupy-cuda12x", "cupy") if (v := _version(d))), None)
    if bk.name == "jax":
        versions["jax"] = _version("jax")
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    info: dict[str, Any] = {"versions": versions, "cpu": _cpu_model(), "cpus": cpus,
                            "platform": platform.platform(), "load_average": _load_average(),
                            "cpus_busy_before": cpus_busy()}
    pools = []
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_info

        for p in threadpool_info():
            pools.append({"user_api": p.get("user_api"), "library": p.get("internal_api"),
                          "version": p.get("version"), "architecture": p.get("architecture"),
                          "threads": p.get("num_threads"), "file": os.path.basename(p.get("filepath", ""))})
    info["thread_pools"] = pools
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = {"threads": torch.get_num_threads(), "mkl": bool(torch.backends.mkl.is_available())}
    device = _torch_device_for(bk)
    info["device"] = device
    if device.startswith("cuda"):
        info["gpu"] = _gpu_name(bk, device)
    return info


def _load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _cpu_times() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)  # total, idle + iowait


def cpus_busy(seconds: float = 0.3) -> float | None:
    """How many CPUs other processes keep busy, sampled from ``/proc/stat`` while this one sleeps for
    ``seconds`` (None where there is no ``/proc/stat``). The load average would also count this run's own
    recent work; this does not."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(seconds)
    second = _cpu_times()
    if second is None or second[0] <= first[0]:
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return round((1.0 - idle / total) * (os.cpu_count() or 1), 2)


def _busy_warning(busy: float | None, cpus: int) -> str | None:
    # A multi-threaded BLAS or OpenMP team on a machine where another job runs waits for a descheduled
    # thread at every barrier: times become meaningless long before the CPUs look saturated.
    if busy is not None and busy >= 0.3:
        return (f"warning: other processes keep {busy:.1f} of {cpus} CPU(s) busy: the times are unreliable (the "
                "ratios less so); measure on a quiet machine")
    return None


def _gpu_name(bk: Any, device: str) -> str:
    with contextlib.suppress(Exception):
        if bk.name == "cupy":
            import cupy

            name = cupy.cuda.runtime.getDeviceProperties(bk.device.id)["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return "unknown GPU"


# --------------------------------------------------------------------------------------------- report
def _fmt_ms(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.3f}"
    return f"{x:.4f}"


def _fmt(x: float | None, spec: str, suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def format_header(env: dict[str, Any], settings: BenchSettings, bk: Any, *, profile: bool = False) -> str:
    """The lines above the tables: where and with what it ran (``profile``: for ``--profile``, whose timing is
    described per configuration)."""
    v = env["versions"]
    shown = ", ".join(f"{k} {v[k]}" for k in ("xpnet", "numpy", "torch", "scikit-learn", "array-api-compat",
                                                "array-api-strict", "cupy", "jax", "python") if v.get(k))
    lines = [f"xpnet bench: backend {bk.spec} (device {env['device']}), {settings.dtype}, {settings.optimizer} "
             f"lr {settings.lr:g}" + (", Adam betas 0.9/0.999 eps 1e-8" if settings.optimizer == "adam" else ""),
             f"versions: {shown}",
             f"CPU: {env['cpu']} ({env['cpus']} usable)" + (f"; GPU: {env['gpu']}" if env.get("gpu") else "")]
    blas = [p for p in env["thread_pools"] if p["user_api"] == "blas"]
    parts = [f"{p['library']} {p['version'] or '?'}" + (f" {p['architecture']}" if p.get("architecture") else "") +
             f" ({p['file']}): {p['threads']} thread(s)" for p in blas]
    lines.append("BLAS: " + ("; ".join(parts) if parts else "none found by threadpoolctl"))
    if "torch" in env:
        lines.append(f"torch: {env['torch']['threads']} thread(s), MKL {'yes' if env['torch']['mkl'] else 'no'}")
    busy = _busy_warning(env.get("cpus_busy_before"), env["cpus"])
    if busy:
        lines.append(busy)
    threads = f"threads: {'as found' if settings.threads is None else settings.threads}; "
    if profile:
        lines.append(threads + f"profile: ~{settings.profile_seconds:g} s of profiled steps per configuration after "
                     f"{settings.warmup} warm-up step(s), interleaved with unprofiled blocks of >= "
                     f"{settings.min_block_seconds:g} s; medians over blocks")
    else:
        lines.append(threads + f"timing: {settings.rounds} interleaved rounds after {settings.warmup} warm-up "
                     f"step(s), blocks of >= {settings.min_block_seconds:g} s, medians (ratios: medians of per-round "
                     "ratios)")
    return "\n".join(lines)


def _targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for this configuration (CPU float32): name, value, limit, met."""
    name = result["name"]
    c = result["candidates"]
    r = result["ratios"]
    out = []

    def add(label: str, value: float | None, limit: float, upper: bool) -> None:
        if value is not None:
            out.append({"target": label, "value": value, "limit": limit, "op": "<=" if upper else ">=",
                        "met": bool(value <= limit if upper else value >= limit)})

    add("xpnet/torch", r["xpnet_over_torch"], 0.8 if name in ("tiny", "mnist") else 1.0, True)
    if name in ("wide", "mnist-1024", "lecture"):
        add("GEMM fraction", r["gemm_fraction_of_xpnet"], 0.9, False)
    if name == "tiny":
        add("xpnet/numpy-ref", r["xpnet_over_numpy_ref"], 1.3, True)
    mx = (c["xpnet"].get("memory") or {})
    mt = (c.get("torch", {}).get("memory") or {})
    if mx.get("peak_mib") is not None and mt.get("peak_mib") is not None:
        add("peak MiB xpnet/torch", mx["peak_mib"], mt["peak_mib"], True)
    if mx.get("growth_mib") is not None:
        add("growth MiB", mx["growth_mib"], 1.0, True)
    return out


def format_config_report(result: dict[str, Any], *, meaningful: bool = True, targets: bool = True) -> str:
    """One configuration's table: candidate, ms/step, GFLOP/s, GEMM fraction, ratio to torch, peak and growth
    memory; then the correctness check and the target ratios."""
    lines = [f"{result['name']}: {'-'.join(map(str, result['layers']))} {result['output']}, batch "
             f"{result['batch']}, {result['gemm_flops_per_step'] / 1e9:.4g} GFLOP of GEMMs per step"
             + ("" if meaningful else "  [times NOT meaningful on this backend: correctness only]")]
    head = ("candidate", "ms/step", "GFLOP/s", "GEMM frac", "vs torch", "peak MiB", "growth MiB")
    rows = []
    for name, e in result["candidates"].items():
        if e["status"] != "ok":
            rows.append((name, f"skipped: {e['reason']}"))
            continue
        mem = e.get("memory") or {}
        if "error" in mem:
            peak, growth = "error", "error"
        else:
            peak, growth = _fmt(mem.get("peak_mib"), ".1f"), _fmt(mem.get("growth_mib"), ".2f")
        ratio = e.get("torch_ratio") if meaningful else None
        rows.append((name, _fmt_ms(e["ms_per_step"]), f"{e['gflops']:.1f}", _fmt(e.get("gemm_fraction"), ".0%"),
                     _fmt(ratio, ".2f", "x"), peak, growth))
    widths = [max(len(r[i]) for r in [head, *rows] if len(r) == len(head)) for i in range(len(head))]
    for row in [head, *rows]:
        if len(row) == 2:
            lines.append(f"  {row[0].ljust(widths[0])}  {row[1]}")
        else:
            lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    for e in result["candidates"].values():
        if (e.get("memory") or {}).get("error"):
            lines.append(f"  memory: {e['memory']['error']}")
    check = result["correctness"]
    parts = []
    for p in check["pairs"]:
        text = (f"{p['candidate']} ({p['optimizer']}) cost {p['cost_rel_diff']:.1e}, update "
                f"{p['update_rel_diff']:.1e}")
        if p.get("entries_left_out"):
            text += f" ({p['entries_left_out']} noise-gradient entries left out)"
        if not p["ok"]:
            text += f" > tolerance {p['tolerance']['cost']:g} / {p['tolerance']['update']:g} <- MISMATCH"
        parts.append(text)
    verdict = "ok" if check["ok"] else "MISMATCH"
    lines.append(f"  check against {check['reference']} after one step: {verdict}; relative differences: "
                 + "; ".join(parts))
    r = result["ratios"]
    if meaningful:
        lines.append("  ratios: xpnet/torch " + _fmt(r["xpnet_over_torch"], ".2f", "x") + ", GEMM fraction of xpnet "
                     + _fmt(r["gemm_fraction_of_xpnet"], ".0%") + ", xpnet/numpy-ref "
                     + _fmt(r["xpnet_over_numpy_ref"], ".2f", "x"))
    if targets and result.get("targets"):
        lines.append("  targets (NumPy, CPU, float32): " + "; ".join(
            f"{t['target']} {t['value']:.3g} {t['op']} {t['limit']:.3g} {'ok' if t['met'] else 'MISS'}"
            for t in result["targets"]))
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- profile
PROFILE_SKIP = "profile needs the numpy backend's in-place step"
# The categories of a step's time, in the step's order; the last is what no operation accounts for.
PROFILE_CATEGORIES = ("GEMMs", "forward elementwise", "output and cost", "backward elementwise", "reductions (db)",
                      "optimizer update", "Python and dispatch overhead")
_OVERHEAD = PROFILE_CATEGORIES[-1]


class _OpRecorder:
    """Accumulates ``[calls, seconds]`` per ``(category, item)`` for the timing proxy, and tracks where in the
    step the next operation falls.

    The in-place step performs :func:`gemm_plan`'s products in :func:`gemm_plan`'s order, so the ``i``-th matmul
    of a step is the plan's ``i``-th product (checked against its shapes; a product that does not match is
    labelled by its shape alone). ``phase`` is the category of the next non-GEMM operation: a forward product
    is followed by its bias add and activation, the output's hooks and the reduction hook switch it (see
    :func:`_instrumented`)."""

    def __init__(self, plan: Sequence[GemmProduct], L: int) -> None:
        self.plan = list(plan)
        self.L = L
        self.acc: dict[tuple[str, str], list[float]] = {}
        self.shapes: dict[str, tuple[int, int, int]] = {}
        self.index = 0
        self.phase = PROFILE_CATEGORIES[1]

    def begin_step(self) -> None:
        """Called before every step: the next matmul is the step's first product."""
        self.index = 0
        self.phase = PROFILE_CATEGORIES[1]

    def add(self, key: tuple[str, str], seconds: float) -> None:
        """One call of ``key`` that took ``seconds``."""
        entry = self.acc.get(key)
        if entry is None:
            entry = self.acc[key] = [0, 0.0]
        entry[0] += 1
        entry[1] += seconds

    def gemm(self, a_shape: tuple[int, ...], out_shape: tuple[int, ...], seconds: float) -> None:
        """One matrix product ``out = a @ b``, labelled by its position in the step."""
        i = self.index
        self.index += 1
        shape = (int(a_shape[-2]), int(a_shape[-1]), int(out_shape[-1]))
        p = self.plan[i] if i < len(self.plan) else None
        label = p.label if p is not None and shape == (p.m, p.k, p.n) else "matmul {}x{}x{}".format(*shape)
        self.shapes[label] = shape
        self.add(("GEMMs", label), seconds)
        # Forward: the bias add and the activation follow. Backward: after dW the L2 term (when on), after dA the
        # activation's derivative; the reduction hook moves on to the update.
        self.phase = PROFILE_CATEGORIES[1] if i < self.L else PROFILE_CATEGORIES[3]

    def take(self, steps: int) -> dict[tuple[str, str], tuple[float, float]]:
        """``{key: (calls per step, seconds per step)}`` over the last ``steps`` steps; starts afresh."""
        out = {key: (n / steps, s / steps) for key, (n, s) in self.acc.items()}
        self.acc = {}
        return out


class _TimingModule:
    """Stands in for the numpy module in an :class:`~xpnet._fast.InplaceStep`: every attribute is numpy's, except
    that callables (ufuncs, ``matmul``, ``sum``, ...) come back wrapped in a clock that charges the call to the
    recorder (its current phase and the function's name; matmuls by their place in the step)."""

    def __init__(self, mod: Any, recorder: _OpRecorder) -> None:
        self._mod = mod
        self._rec = recorder

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._mod, name)
        if not callable(value) or isinstance(value, type):  # dtypes and classes: isinstance checks must still work
            return value
        wrapped = self._timed_matmul(value) if name == "matmul" else self._timed(name, value)
        # Kept on the instance: later look-ups skip __getattr__, so the proxy slows the step as little as it can.
        object.__setattr__(self, name, wrapped)
        return wrapped

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        rec, clock = self._rec, time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            result = fn(*args, **kwargs)
            rec.add((rec.phase, name), clock() - start)
            return result

        return timed

    def _timed_matmul(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        rec, clock = self._rec, time.perf_counter

        def timed_matmul(a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:
            start = clock()
            result = fn(a, b, *args, **kwargs)
            seconds = clock() - start
            rec.gemm(a.shape, result.shape, seconds)
            return result

        return timed_matmul


@contextlib.contextmanager
def _instrumented(step: Any, recorder: _OpRecorder) -> Any:
    """Profile the in-place ``step`` for the block: its ``mod`` is a :class:`_TimingModule`, and three hooks on the
    instance tell the recorder the phase. Everything is restored on exit (nothing in :mod:`xpnet._fast` changes).

    ``_sum_into`` was bound to ``numpy.add.reduce`` when the step was built, past the proxy: it is timed as a
    whole (``add.reduce``), a reduction of the backward pass (``db``) unless the output's softmax calls it.
    ``_output_and_cost`` starts the output phase, which goes on through ``dZ[L] = (A[L] - Y) / m`` (the output's
    gradient); ``_hidden_backward`` is the activation's derivative, and the update follows it."""
    names = ("mod", "_sum_into", "_output_and_cost", "_hidden_backward")
    saved = {n: step.__dict__[n] for n in names if n in step.__dict__}
    proxy = _TimingModule(step.mod, recorder)
    timed_sum = proxy._timed("add.reduce", step._sum_into)
    output_and_cost, hidden_backward = step._output_and_cost, step._hidden_backward
    out_phase, back_phase, db_phase, update_phase = (PROFILE_CATEGORIES[i] for i in (2, 3, 4, 5))

    def sum_into(a: Any, axis: int, out: Any) -> Any:
        if recorder.phase != out_phase:
            recorder.phase = db_phase
        result = timed_sum(a, axis, out)
        if recorder.phase == db_phase:
            recorder.phase = update_phase  # then dA[l-1] (which sets its own phase) or, at layer 1, the update
        return result

    def output(*args: Any, **kwargs: Any) -> Any:
        recorder.phase = out_phase
        return output_and_cost(*args, **kwargs)

    def backward(*args: Any, **kwargs: Any) -> Any:
        recorder.phase = back_phase
        result = hidden_backward(*args, **kwargs)
        recorder.phase = update_phase
        return result

    step.mod, step._sum_into, step._output_and_cost, step._hidden_backward = proxy, sum_into, output, backward
    try:
        yield proxy
    finally:
        for n in names:
            if n in saved:
                setattr(step, n, saved[n])
            else:
                step.__dict__.pop(n, None)


def _timer_overhead(calls: int = 20000, repeats: int = 5) -> float:
    """Seconds the proxy's clock adds to one call it measures: the median of ``repeats`` means over ``calls``
    calls of an empty function through the same wrapper (the two clock reads and the call forwarding)."""
    import types

    rec = _OpRecorder([], 0)
    noop = _TimingModule(types.SimpleNamespace(noop=lambda *a, **k: None), rec).noop
    means = []
    for _ in range(repeats):
        for _ in range(calls):
            noop(1, 2, out=None)
        ((n, s),) = rec.take(calls).values()
        means.append(s / n)
    return statistics.median(means)


def _median_per_key(blocks: list[dict[Any, tuple[float, float]]], overhead: float) -> dict[Any, tuple[float, float]]:
    """Per key: mean calls per step over all blocks and the median over blocks of the time per step, less the
    clock's overhead for those calls (a key missing from a block counts 0 there)."""
    keys = {k for b in blocks for k in b}
    out = {}
    for key in keys:
        calls = statistics.fmean(b.get(key, (0.0, 0.0))[0] for b in blocks)
        secs = statistics.median(b[key][1] - b[key][0] * overhead if key in b else 0.0 for b in blocks)
        out[key] = (calls, secs)
    return out


def profile_config(config: BenchConfig, settings: BenchSettings, bk: Any, *,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Where one xpnet training step of ``config`` spends its time (``xpnet bench --profile``). JSON-able.

    Builds the bench's xpnet candidate (a :class:`~xpnet.training.Trainer` stepping with the in-place step) and
    the GEMM bound's products, warms up, then runs interleaved rounds of four blocks: unprofiled steps (the step
    time), steps whose ``InplaceStep.mod`` is a timing proxy (every numpy call timed and charged to a category;
    see :func:`_instrumented`), the GEMM bound's products each timed the same way (a GEMM alone), and the GEMM
    bound untimed. Rounds continue until the profiled steps stand for about ``settings.profile_seconds`` of
    step time (and at least 20 steps). Times are medians over blocks, less the clock's own cost per call
    (:func:`_timer_overhead`); "Python and dispatch overhead" is the step time less all operations: the
    trainer's and the step's Python, and the little arithmetic that does not go through the module (the sigmoid
    output's ``T -= Y * ZL``, Python-float scalars).

    Returns ``skipped`` (the reason) on a backend other than NumPy or when the in-place step is off; else
    ``step_us``, ``items`` (sorted by time), ``categories``, ``gemms`` (in the step against alone) and totals.
    """
    import numpy as np

    say = progress or (lambda text: None)
    head: dict[str, Any] = {"name": config.name, "layers": list(config.layers), "batch": config.batch,
                            "output": config.output}
    if bk.name != "numpy":
        return {**head, "skipped": PROFILE_SKIP}
    problem = make_problem(config, settings.dtype, settings.seed)
    xcand = build_candidate("xpnet", problem, settings, bk)
    gcand = build_candidate("gemm", problem, settings, bk)
    trainer = xcand.extra["trainer"]
    say(f"{config.name}: warm-up and calibration")
    k = _calibrate(xcand, settings.warmup, settings.min_block_seconds)
    step = trainer._choose_step()
    if not step:
        return {**head, "skipped": PROFILE_SKIP + " (off here: XPNET_FAST=0)"}
    kg = _calibrate(gcand, settings.warmup, settings.min_block_seconds)
    L = len(config.layers) - 1
    plan = gemm_plan(config.layers, config.batch)
    rec = _OpRecorder(plan, L)
    grec = _OpRecorder(plan, L)
    gemm_mm = _TimingModule(np, grec).matmul
    ops = gcand.extra["ops"]
    quick = settings.profile_seconds < 0.5
    overhead = _timer_overhead(calls=2000 if quick else 20000)

    def profiled_block(n: int) -> float:
        with xcand.context(), _instrumented(step, rec):
            start = time.perf_counter()
            for _ in range(n):
                rec.begin_step()
                xcand.step()
            return (time.perf_counter() - start) / n

    def gemm_timed_block(n: int) -> None:
        for _ in range(n):
            grec.begin_step()
            for a, b, out in ops:
                gemm_mm(a, b, out=out)

    # One profiled and one timed GEMM sequence first: the proxy's wrappers are made on first use.
    profiled_block(1)
    rec.take(1)
    gemm_timed_block(1)
    grec.take(1)
    t_step = xcand.time_block(k)
    # At least 20 profiled steps; at most 400 rounds (a tiny step's blocks are short).
    rounds = min(400, max(5, math.ceil(20 / k), math.ceil(settings.profile_seconds / (k * t_step))))
    plain: list[float] = []
    profiled: list[float] = []
    bound: list[float] = []
    step_blocks: list[dict[Any, tuple[float, float]]] = []
    gemm_blocks: list[dict[Any, tuple[float, float]]] = []
    for r in range(rounds):
        say(f"{config.name}: profile round {r + 1}/{rounds}")
        plain.append(xcand.time_block(k))
        profiled.append(profiled_block(k))
        step_blocks.append(rec.take(k))
        gemm_timed_block(kg)
        gemm_blocks.append(grec.take(kg))
        bound.append(gcand.time_block(kg))

    step_us = statistics.median(plain) * 1e6
    in_step = _median_per_key(step_blocks, overhead)
    alone = _median_per_key(gemm_blocks, overhead)
    items = [{"item": key[1], "category": key[0], "calls_per_step": calls, "us_per_step": secs * 1e6,
              "percent_of_step": 100 * secs * 1e6 / step_us} for key, (calls, secs) in in_step.items()]
    ops_us = sum(i["us_per_step"] for i in items)
    items.append({"item": _OVERHEAD, "category": _OVERHEAD, "calls_per_step": None, "us_per_step": step_us - ops_us,
                  "percent_of_step": 100 * (step_us - ops_us) / step_us})
    items.sort(key=lambda i: -i["us_per_step"])
    categories = {}
    for cat in PROFILE_CATEGORIES:
        mine = [i for i in items if i["category"] == cat]
        if mine:
            us = sum(i["us_per_step"] for i in mine)
            calls = None if cat == _OVERHEAD else sum(i["calls_per_step"] for i in mine)
            categories[cat] = {"calls_per_step": calls, "us_per_step": us, "percent_of_step": 100 * us / step_us}
    gemms = []
    for p in plan:
        got, ref = in_step.get(("GEMMs", p.label)), alone.get(("GEMMs", p.label))
        in_us = None if got is None else got[1] * 1e6
        alone_us = None if ref is None else ref[1] * 1e6
        gemms.append({"label": p.label, "shape": [p.m, p.k, p.n], "in_step_us": in_us, "alone_us": alone_us,
                      "ratio": in_us / alone_us if in_us is not None and alone_us else None})
    gemm_in_us = categories.get("GEMMs", {}).get("us_per_step", 0.0)
    gemm_alone_us = sum(g["alone_us"] or 0.0 for g in gemms)
    elementwise_us = sum(c["us_per_step"] for n, c in categories.items() if n not in ("GEMMs", _OVERHEAD))
    return {**head, "optimizer": settings.optimizer, "dtype": settings.dtype, "threads": settings.threads,
            "rounds": rounds, "steps_per_block": k, "gemm_steps_per_block": kg, "steps_profiled": rounds * k,
            "step_us": step_us, "profiled_step_us": statistics.median(profiled) * 1e6,
            "gemm_bound_us": statistics.median(bound) * 1e6, "timer_overhead_us_per_call": overhead * 1e6,
            "ops_us": ops_us, "overhead_us": step_us - ops_us,
            "matmuls_per_step": sum(i["calls_per_step"] for i in items if i["category"] == "GEMMs"),
            "items": items, "categories": categories, "gemms": gemms,
            "over_gemm_bound": {"step_minus_gemms_alone_us": step_us - gemm_alone_us,
                                "gemms_slower_in_step_us": gemm_in_us - gemm_alone_us,
                                "elementwise_and_reductions_us": elementwise_us,
                                "python_and_dispatch_us": step_us - ops_us}}


def format_profile(prof: dict[str, Any]) -> str:
    """One configuration's profile as text: the items sorted by time, the totals per category, each GEMM in the
    step against alone, and the step's time over the GEMMs alone split into its three causes."""
    title = f"{prof['name']}: {'-'.join(map(str, prof['layers']))} {prof['output']}, batch {prof['batch']}"
    if "skipped" in prof:
        return f"{title}: profile skipped: {prof['skipped']}"
    lines = [f"{title} ({prof['optimizer']}, {prof['dtype']}): profile of {prof['steps_profiled']} steps "
             f"({prof['rounds']} blocks of {prof['steps_per_block']}, interleaved with unprofiled ones)",
             f"  step {prof['step_us']:.1f} us (unprofiled median; {prof['profiled_step_us']:.1f} us under the "
             f"profiler), GEMM bound {prof['gemm_bound_us']:.1f} us; the clock's "
             f"{prof['timer_overhead_us_per_call']:.2f} us per call is subtracted"]

    def table(head: Sequence[str], rows: list[Sequence[str]]) -> None:
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for row in [head, *rows]:
            lines.append("  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(row, widths, strict=True))))

    def calls(x: float | None) -> str:
        return "-" if x is None else (f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.2f}")

    def shape_of(item: dict[str, Any]) -> str:
        g = next((g for g in prof["gemms"] if g["label"] == item["item"]), None)
        return f"{item['item']}  ({'x'.join(map(str, g['shape']))})" if g else item["item"]

    rows = [(shape_of(i), i["category"] if i["category"] != i["item"] else "", calls(i["calls_per_step"]),
             f"{i['us_per_step']:.1f}", f"{i['percent_of_step']:.1f}%") for i in prof["items"]]
    table(("item", "category", "calls/step", "us/step", "% of step"), rows)
    lines.append("  by category:")
    rows = [(name, "", calls(c["calls_per_step"]), f"{c['us_per_step']:.1f}", f"{c['percent_of_step']:.1f}%")
            for name, c in sorted(prof["categories"].items(), key=lambda kv: -kv[1]["us_per_step"])]
    rows.append(("step (total)", "", calls(sum(c["calls_per_step"] or 0 for c in prof["categories"].values())),
                 f"{prof['step_us']:.1f}", "100.0%"))
    table(("category", "", "calls/step", "us/step", "% of step"), rows)
    lines.append("  each GEMM in the step against alone (the GEMM bound's products back to back, each timed):")
    rows = [(g["label"], "x".join(map(str, g["shape"])), _fmt(g["in_step_us"], ".1f"), _fmt(g["alone_us"], ".1f"),
             _fmt(g["ratio"], ".2f", "x")) for g in prof["gemms"]]
    total_in = prof["categories"].get("GEMMs", {}).get("us_per_step")
    total_alone = sum(g["alone_us"] or 0.0 for g in prof["gemms"])
    rows.append(("all", "", _fmt(total_in, ".1f"), f"{total_alone:.1f}",
                 _fmt(total_in / total_alone if total_in and total_alone else None, ".2f", "x")))
    table(("product", "m x k x n", "in step us", "alone us", "step/alone"), rows)
    o = prof["over_gemm_bound"]
    lines.append(f"  step - GEMMs alone = {o['step_minus_gemms_alone_us']:.1f} us: GEMMs slower in the step "
                 f"{o['gemms_slower_in_step_us']:+.1f}, elementwise and reductions "
                 f"{o['elementwise_and_reductions_us']:.1f}, Python and dispatch {o['python_and_dispatch_us']:.1f}")
    return "\n".join(lines)


def run_profile(configs: Sequence[BenchConfig], settings: BenchSettings, *, emit: Callable[[str], None] = print,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``xpnet bench --profile``: :func:`profile_config` for every configuration, each printed as soon as it is
    ready. Returns ``environment``, ``settings`` and ``profile`` (one dict per configuration), JSON-able."""
    from .backend import get_backend

    bk = get_backend(settings.backend)
    env = environment_info(settings, bk)
    emit(format_header(env, settings, bk, profile=True))
    out: dict[str, Any] = {"schema": SCHEMA_VERSION, "environment": env, "backend": bk.spec,
                           "settings": {**{k: getattr(settings, k) for k in settings.__dataclass_fields__},
                                        "lr": settings.lr}, "profile": [], "ok": True}
    for cfg in configs:
        prof = profile_config(cfg, settings, bk, progress=progress)
        out["profile"].append(prof)
        emit("")
        emit(format_profile(prof))
    # Our own OpenBLAS workers spin for ~0.1 s after the last GEMM: let them stop before sampling the machine.
    time.sleep(SWITCH_PAUSE_S)
    out["cpus_busy_after"] = cpus_busy()
    busy = _busy_warning(out["cpus_busy_after"], env["cpus"])
    if busy:
        emit("")
        emit(busy.replace("warning: ", "warning: at the end of the run, "))
    return out


# ------------------------------------------------------------------------------------------ the run
def run_bench(configs: Sequence[BenchConfig], settings: BenchSettings, *, emit: Callable[[str], None] = print,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every configuration; ``emit`` gets the header and each table as soon as it is ready. Returns the
    whole result (JSON-able): ``environment``, ``settings``, ``configs`` (one :func:`run_config` dict each, with
    ``targets``), ``ok`` (every correctness check passed)."""
    from .backend import get_backend

    bk = get_backend(settings.backend)
    meaningful = bk.name != "array_api_strict"
    # Load the libraries the candidates use now, so the header reports their thread pools.
    for name in ("torch", "sklearn"):
        skip_reason(name, settings, bk)
    env = environment_info(settings, bk)
    emit(format_header(env, settings, bk))
    if not meaningful:
        emit("array_api_strict is the Array API's reference implementation, built for checking, not speed: the "
             "times below are NOT meaningful (no ratio is claimed); the correctness check is the point.")
    # The targets are stated for NumPy on the CPU in float32.
    show_targets = bk.name == "numpy" and settings.dtype == "float32"
    out: dict[str, Any] = {"schema": SCHEMA_VERSION, "environment": env, "backend": bk.spec,
                           "settings": {**{k: getattr(settings, k) for k in settings.__dataclass_fields__},
                                        "lr": settings.lr}, "timing_meaningful": meaningful, "configs": []}
    for cfg in configs:
        res = run_config(cfg, settings, bk, progress=progress)
        res["targets"] = _targets(res) if show_targets else []
        if not meaningful:
            for e in res["candidates"].values():
                e.pop("torch_ratio", None)
            res["ratios"] = dict.fromkeys(res["ratios"])
        out["configs"].append(res)
        emit("")
        emit(format_config_report(res, meaningful=meaningful, targets=show_targets))
    out["ok"] = all(c["correctness"]["ok"] for c in out["configs"])
    out["cpus_busy_after"] = cpus_busy()
    busy = _busy_warning(out["cpus_busy_after"], env["cpus"])
    if busy:
        emit("")
        emit(busy.replace("warning: ", "warning: at the end of the run, "))
    return out


def end_to_end(settings: BenchSettings, *, epochs: int = 30, repeats: int = 3,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``xpnet train``'s default network on digits against scikit-learn's ``MLPClassifier``, same everything.

    Both train a 64-128-64-10 ReLU network with Adam (lr 0.003, betas 0.9/0.999, eps 1e-8), batch 64, no
    L2 (``alpha=0``), shuffling every epoch, for exactly ``epochs`` epochs (no early stopping), on the same
    standardized training split (80%, ``xpnet train``'s test split and seed; mean and standard deviation
    learned on it) in ``settings.dtype``; scored on the same test split. The runs are interleaved ``repeats``
    times; the median wall time of ``fit`` and the test accuracy are reported for each.
    """
    import warnings

    from sklearn.neural_network import MLPClassifier

    from . import datasets
    from .estimators import DNNClassifier

    say = progress or (lambda text: None)
    seed = settings.seed
    ds = datasets.load("digits", seed=seed)
    X_train, X_test, y_train, y_test = datasets.train_test_split(ds.X, ds.y, test_size=0.2, seed=seed)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std <= 1e-12] = 1.0  # constant pixels: left as they are (as xpnet's standardize does)
    X_train = ((X_train - mean) / std).astype(settings.dtype)
    X_test = ((X_test - mean) / std).astype(settings.dtype)
    common = {"hidden_layer_sizes": (128, 64), "activation": "relu", "solver": "adam", "learning_rate_init": 0.003,
              "batch_size": 64, "max_iter": epochs, "alpha": 0.0, "shuffle": True, "random_state": seed,
              "tol": 0.0, "n_iter_no_change": epochs + 1, "early_stopping": False,
              "beta_1": ADAM["beta1"], "beta_2": ADAM["beta2"], "epsilon": ADAM["epsilon"]}

    def fit_xpnet() -> tuple[float, float, int]:
        est = DNNClassifier(**common, backend=settings.backend, dtype=settings.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "max_iter reached": asked for, as for scikit-learn
            start = time.perf_counter()
            est.fit(X_train, y_train)
            seconds = time.perf_counter() - start
        return seconds, float(est.score(X_test, y_test)), len(est.history_)

    def fit_sklearn() -> tuple[float, float, int]:
        est = MLPClassifier(**common)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            est.fit(X_train, y_train)
            seconds = time.perf_counter() - start
        return seconds, float(est.score(X_test, y_test)), int(est.n_iter_)

    runs: dict[str, list[tuple[float, float, int]]] = {"xpnet": [], "sklearn": []}
    pause = _effective_threads() > 1
    for r in range(repeats):
        for name, fit in (("xpnet", fit_xpnet), ("sklearn", fit_sklearn)):
            say(f"end-to-end: {name}, run {r + 1}/{repeats}")
            if pause:
                time.sleep(SWITCH_PAUSE_S)
            runs[name].append(fit())
    out: dict[str, Any] = {"dataset": "digits", "n_train": len(y_train), "n_test": len(y_test),
                           "network": "64-128-64-10 relu -> softmax", "optimizer": "adam", "learning_rate": 0.003,
                           "batch_size": 64, "epochs": epochs, "dtype": settings.dtype, "backend": settings.backend,
                           "repeats": repeats, "results": {}}
    for name, rs in runs.items():
        secs = [x[0] for x in rs]
        out["results"][name] = {"seconds": statistics.median(secs), "seconds_all": secs,
                                "accuracy": statistics.median(x[1] for x in rs), "accuracy_all": [x[1] for x in rs],
                                "epochs_run": [x[2] for x in rs]}
    out["time_ratio_xpnet_over_sklearn"] = _median_ratio([x[0] for x in runs["xpnet"]], [x[0] for x in runs["sklearn"]])
    return out


def format_end_to_end(res: dict[str, Any]) -> str:
    """The end-to-end comparison as a small table."""
    lines = [f"end to end: {res['dataset']} ({res['n_train']} train / {res['n_test']} test, standardized), "
             f"{res['network']}, {res['optimizer']} lr {res['learning_rate']:g}, batch {res['batch_size']}, "
             f"{res['epochs']} epochs, no early stopping, {res['dtype']}, median of {res['repeats']} interleaved "
             "run(s)"]
    head = ("model", "fit seconds", "ms/epoch", "test accuracy", "epochs")
    rows = [head]
    for name, r in res["results"].items():
        label = f"xpnet ({res['backend']})" if name == "xpnet" else "scikit-learn MLPClassifier"
        epochs = sorted(set(r["epochs_run"]))
        rows.append((label, f"{r['seconds']:.3f}", f"{1e3 * r['seconds'] / max(1, epochs[0]):.1f}",
                     f"{r['accuracy']:.4f}", "/".join(map(str, epochs))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    lines.append("  time xpnet/scikit-learn: " + _fmt(res["time_ratio_xpnet_over_sklearn"], ".2f", "x"))
    return "\n".join(lines)


def _progress_printer() -> Callable[[str], None] | None:
    # Progress goes to a terminal only: a log file or a test gets the tables alone.
    if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None

    def show(text: str) -> None:
        sys.stderr.write("\r\033[K" + text)
        sys.stderr.flush()

    return show


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None: strict JSON (a failed check's ``inf``
    difference, a ratio without a denominator) that any parser reads."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def run_command(args: Any) -> int:
    """``xpnet bench`` with parsed arguments (see :func:`xpnet.cli.build_parser`); returns the exit code:
    0, or 1 when a correctness check failed."""
    settings = BenchSettings.quick() if args.quick else BenchSettings()
    changes: dict[str, Any] = {"backend": args.backend, "dtype": args.dtype, "optimizer": args.optimizer,
                               "learning_rate": args.lr, "threads": args.threads, "torch": not args.no_torch,
                               "sklearn": not args.no_sklearn, "memory": not args.no_memory, "seed": args.seed}
    for key, value in (("rounds", args.rounds), ("warmup", args.warmup), ("min_block_seconds", args.min_block_seconds)):
        if value is not None:
            changes[key] = value
    settings = replace(settings, **changes)
    configs: list[BenchConfig] = []
    if args.layers is not None:
        configs.append(custom_config(args.layers, 128 if args.batch is None else args.batch, args.output))
    elif args.batch is not None or args.output is not None:
        raise ConfigError("--batch and --output describe a custom network: give --layers too")
    names = args.config
    if names is None and not configs and not args.end_to_end:
        names = tuple(CONFIGS)
    configs = [CONFIGS[n] for n in names or ()] + configs
    progress = _progress_printer()

    def emit(text: str) -> None:
        if progress:
            sys.stderr.write("\r\033[K")
        print(text, flush=True)

    result: dict[str, Any] = {}
    profile = bool(getattr(args, "profile", False))
    # A profile runs xpnet and NumPy's GEMMs only: no need to load torch (seconds) or scikit-learn.
    with _thread_limits(settings.threads, want_torch=settings.torch and not profile,
                        want_sklearn=not profile or args.end_to_end):
        if configs and profile:
            result = run_profile(configs, settings, emit=emit, progress=progress)
        elif configs:
            result = run_bench(configs, settings, emit=emit, progress=progress)
        if args.end_to_end:
            if not configs:
                from .backend import get_backend

                bk = get_backend(settings.backend)
                env = environment_info(settings, bk)
                emit(format_header(env, settings, bk))
                result = {"schema": SCHEMA_VERSION, "environment": env, "backend": bk.spec, "ok": True}
            e2e = end_to_end(settings, epochs=args.epochs, repeats=1 if args.quick else 3, progress=progress)
            result["end_to_end"] = e2e
            emit("")
            emit(format_end_to_end(e2e))
    if progress:
        sys.stderr.write("\r\033[K")
    if args.json:
        from .io import write_file_atomically

        def failed(path: Any, reason: str) -> Exception:
            return XpnetError(f"cannot write benchmark results {str(path)!r}: {reason}")

        text = json.dumps(_json_safe(result), indent=1, default=str, allow_nan=False)
        write_file_atomically(args.json, (text + "\n").encode("utf-8"), error=failed)
        emit(f"wrote {args.json}")
    if not result.get("ok", True):
        bad = [f"{c['name']} ({', '.join(p['candidate'] for p in c['correctness']['pairs'] if not p['ok'])})"
               for c in result["configs"] if not c["correctness"]["ok"]]
        print("xpnet: error: CORRECTNESS CHECK FAILED: one step differs from the reference beyond the tolerance in "
              + "; ".join(bad), file=sys.stderr)
        return 1
    return 0

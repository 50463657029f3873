"""The step benchmark's candidates: what one training step is for each contender, built from a
:class:`~xpnet.bench.configs.Problem`.

* ``xpnet``: :meth:`xpnet.engine.Trainer.step` on the chosen backend and device;
* ``numpy-ref`` (CPU): a plain NumPy script of the same arithmetic (:func:`make_numpy_reference_step`);
* ``torch``: PyTorch eager, ``nn.Sequential`` of ``Linear``/``ReLU``, the matching fused loss, autograd,
  ``torch.optim.SGD`` / ``Adam`` with the same hyper-parameters;
* ``gemm``: only the step's matrix products on preallocated operands: the step's lower bound;
* ``sklearn`` (CPU): ``MLPClassifier.partial_fit`` (``MLPRegressor`` for a linear output).

Also the device helpers the other modules share (which torch device matches a backend, whether torch and
scikit-learn are usable) and :func:`skip_reason` / :func:`build_candidate`. ``_BUILDERS`` maps a candidate's
name to its builder (a test replaces one entry to plant a wrong step).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .configs import ADAM, BenchSettings, Problem


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
    from ..dnn import DNN
    from ..engine import Trainer

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


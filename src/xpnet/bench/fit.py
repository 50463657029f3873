"""``xpnet bench --fit``: whole fits, as users run them, against the peers a user would pick (DESIGN principle 9).

A step benchmark times one prepared batch; a user's ``fit`` also shuffles, gathers each batch's rows,
accumulates the loss and the metric, reads them back once an epoch and, with validation data, scores it every
epoch. This module times that whole unit.

What one *fit* is, for every candidate: ``E`` epochs (default 3) over ``m = batches x b`` rows (default 8
batches) of synthetic data seeded by ``--seed`` (``X`` (m, n_0) standard normal in the dtype; class labels
spread evenly over the classes for softmax, 0/1 labels for one sigmoid output, normal targets for a linear
output), plain SGD (``gd``) or Adam with the same hyper-parameters, shuffled every epoch, from a model built
inside the timed region with the library's own initialization (a fit starts from nothing). The candidates:

* ``xpnet-estimator``: ``DNNClassifier(...).fit(X, y)`` (``DNNRegressor`` for a linear output), ``X`` and
  ``y`` NumPy arrays as a scikit-learn user hands them; ``alpha=0``, ``tol=0`` and ``n_iter_no_change=E+1``
  (it never stops early), ``early_stopping=False``: no validation. Its ConvergenceWarning is silenced.
* ``xpnet-train``: ``DNN(layers).train(X.T, y, ..., validation_data=(Xv.T, yv))`` on backend arrays made
  before the clock starts; a validation set of ``b`` rows (one batch) is scored every epoch.
* ``torch-loop``: the peer of ``xpnet-estimator``, a plain PyTorch loop doing its work: per epoch
  ``torch.randperm``; per batch ``X[perm[a:b]]``, forward through ``nn.Sequential`` of ``Linear``/``ReLU``, the
  fused loss (``CrossEntropyLoss``, ``BCEWithLogitsLoss``, half the ``MSELoss``), backward, ``optim.SGD``
  (no momentum) or ``Adam``; the loss and the correct count summed as tensors; one read per epoch.
* ``torch-loop-val``: the same plus, every epoch, a validation forward under ``no_grad`` with its loss and
  accuracy (read with the training ones): the peer of ``xpnet-train``.
* ``sklearn`` (CPU): ``MLPClassifier`` / ``MLPRegressor`` ``.fit`` with the same settings, no validation.

Two torch loops, not one, so that each xpnet candidate is compared with a loop doing exactly its work: the
estimator without validation (what the issue measured), ``DNN.train`` with it. ``xpnet`` also checks after
every epoch that the parameters are finite (divergence detection, inside the same read-back); the loops do
not. Every candidate is timed in blocks of whole fits (one fit, or more when a fit is shorter than
``min_block_seconds``), once per round, rounds interleaved; a fit's time is the median over rounds, and its
ratio to the peer (``vs torch``) and to scikit-learn the median of per-round ratios (:func:`fit_ratios`).

Peak memory of one fit is measured in a fresh process for ``xpnet-estimator``, ``xpnet-train`` and the torch
loops (:func:`measure_fit_memory`): the most held during the fit above what was held before it (libraries
imported and warmed up by a fit of a 2-3-k network on 4 rows, the data made), and the growth from the end of
epoch 1 to the end of the last epoch (none expected). Host RSS on the CPU, the device allocator on a GPU.

Supported outputs: softmax with 3 or more units, one sigmoid unit, linear. For other networks only
``xpnet-train`` and the torch loops run (the estimators would build another network); the table says why.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .configs import ADAM, SCHEMA_VERSION, SWITCH_PAUSE_S, BenchConfig, BenchSettings
from .environment import _effective_threads, environment_info, note_busy_at_end
from .memory import measure_fit_memory
from .peers import (
    SkippedCandidateError,
    _library_of,
    _on_gpu,
    _sklearn_available,
    _torch_available,
    _torch_device_for,
    _torch_optimizer,
    _torch_sync,
)
from .report import _fit_timing_line, format_fit_report, format_header
from .timing import _median_ratio

FIT_CANDIDATES = ("xpnet-estimator", "xpnet-train", "sklearn", "torch-loop", "torch-loop-val")
# Each candidate's PyTorch counterpart: the loop that does the same work (with or without validation).
PEERS = {"xpnet-estimator": "torch-loop", "xpnet-train": "torch-loop-val"}
WITH_VALIDATION = ("xpnet-train", "torch-loop-val")
MEASURED_MEMORY = ("xpnet-estimator", "xpnet-train", "torch-loop", "torch-loop-val")


@dataclass(frozen=True)
class FitSettings:
    """The shape of a timed fit and of its timing: epochs, batches per epoch, rounds, warm-up fits, and the
    shortest timed block (short fits run several to a block)."""

    epochs: int = 3
    batches: int = 8
    rounds: int = 7
    warmup: int = 1
    min_block_seconds: float = 0.2

    @classmethod
    def quick(cls, **kwargs: Any) -> FitSettings:
        """Two rounds of single fits: for tests and a first look, not for numbers to quote."""
        return cls(**{"rounds": 2, "warmup": 1, "min_block_seconds": 0.0, **kwargs})


@dataclass
class FitData:
    """One configuration's fit data on the host: ``X`` (m, n_0), ``y`` (m,) labels or (m, n_L) targets, and the
    validation pair ``Xv``, ``yv`` (b rows), as users hand them to scikit-learn (rows are samples)."""

    config: BenchConfig
    X: Any
    y: Any
    Xv: Any
    yv: Any


def make_fit_data(config: BenchConfig, fit: FitSettings, dtype: str = "float32", seed: int = 0) -> FitData:
    """``fit.batches x b`` training rows and ``b`` validation rows for ``config`` (the same on every call)."""
    import numpy as np

    rng = np.random.default_rng([seed, 3])  # apart from the step bench's streams
    n_in, n_out, b = config.layers[0], config.layers[-1], config.batch

    def draw(m: int) -> tuple[Any, Any]:
        X = rng.standard_normal((m, n_in)).astype(dtype)
        if config.output == "softmax":  # every class present whenever m >= n_out
            y = rng.permutation(np.arange(m) % n_out)
        elif config.output == "sigmoid":
            y = rng.permutation(np.arange(m) % 2) if n_out == 1 else rng.integers(0, 2, size=(m, n_out))
        else:
            y = rng.standard_normal(m if n_out == 1 else (m, n_out)).astype(dtype)
        return X, y

    X, y = draw(fit.batches * b)
    Xv, yv = draw(b)
    return FitData(config, X, y, Xv, yv)


def fit_skip_reason(name: str, config: BenchConfig, settings: BenchSettings, bk: Any) -> str | None:
    """Why fit candidate ``name`` does not run for ``config`` here (None: it runs)."""
    n_out = config.layers[-1]
    if name in ("xpnet-estimator", "sklearn"):
        if config.output == "softmax" and n_out == 2:
            return "two classes are one logistic output in the estimators: not the same network"
        if config.output == "sigmoid" and n_out > 1:
            return "several sigmoid outputs (multilabel): the classifiers take one label per sample"
    if name == "sklearn":
        if _on_gpu(bk):
            return f"CPU only (the device is {_torch_device_for(bk)})"
        if not settings.sklearn:
            return "--no-sklearn"
        return _sklearn_available()[1] or None
    if name.startswith("torch"):
        if not settings.torch:
            return "--no-torch"
        return _torch_available()[1] or None
    return None


@dataclass
class FitCandidate:
    """A timed contender: ``fit()`` runs one whole fit from nothing and returns ``{"final_loss", "epochs"}``."""

    name: str
    library: str
    fit: Callable[[], dict[str, Any]]
    device: str = "cpu"


def _epoch_callback(on_epoch_end: Callable[[], None] | None) -> list[Any]:
    """``on_epoch_end`` as an xpnet callback list (empty without one)."""
    if on_epoch_end is None:
        return []
    from ..engine import Callback

    class _EpochEnd(Callback):
        def on_epoch_end(self, trainer: Any, epoch: int, logs: Any) -> None:
            on_epoch_end()

    return [_EpochEnd()]


def _estimator_params(config: BenchConfig, settings: BenchSettings, fit: FitSettings, sklearn: bool) -> dict[str, Any]:
    """scikit-learn's MLP parameters for exactly ``fit.epochs`` epochs, no L2, no early stop, no validation."""
    params: dict[str, Any] = {
        "hidden_layer_sizes": tuple(config.layers[1:-1]), "activation": "relu", "alpha": 0.0,
        "batch_size": config.batch, "learning_rate": "constant", "learning_rate_init": settings.lr,
        "max_iter": fit.epochs, "shuffle": True, "tol": 0.0, "n_iter_no_change": fit.epochs + 1,
        "early_stopping": False, "random_state": settings.seed}
    if settings.optimizer == "adam":
        # xpnet's estimator runs DNN.train's (and torch's) Adam, eps added after the bias correction: its 'adam' is
        # scikit-learn's, eps before it, which would train another network than the candidates it is paired with.
        params.update(solver="adam" if sklearn else "lecture_adam", beta_1=ADAM["beta1"], beta_2=ADAM["beta2"],
                      epsilon=ADAM["epsilon"])
    elif sklearn:
        params.update(solver="sgd", momentum=0.0, nesterovs_momentum=False)
    else:
        params.update(solver="gd")
    return params


def _build_estimator(data: FitData, settings: BenchSettings, fit: FitSettings, bk: Any,
                     on_epoch_end: Callable[[], None] | None = None) -> FitCandidate:
    from sklearn.exceptions import ConvergenceWarning

    from ..estimators import DNNClassifier, DNNRegressor

    cls = DNNRegressor if data.config.output == "linear" else DNNClassifier
    # DNN.train's initialization (He, seeded as DNN(seed=...)), not the estimator's default (scikit-learn's
    # Glorot-uniform): the estimator and DNN.train start from the same weights and learn the same network.
    params = {**_estimator_params(data.config, settings, fit, sklearn=False), "backend": settings.backend,
              "dtype": settings.dtype, "standardize": False, "init": "he"}
    callbacks = _epoch_callback(on_epoch_end)
    X, y = data.X, data.y

    def run() -> dict[str, Any]:
        est = cls(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: asked for
            est.fit(X, y, callbacks=callbacks)
        return {"final_loss": float(est.loss_curve_[-1]), "epochs": int(est.n_iter_)}

    return FitCandidate("xpnet-estimator", _library_of(bk), run, _torch_device_for(bk))


def _build_train(data: FitData, settings: BenchSettings, fit: FitSettings, bk: Any,
                 on_epoch_end: Callable[[], None] | None = None) -> FitCandidate:
    from ..dnn import DNN

    cfg = data.config
    with bk.activate():  # the lecture's layout as views of the row-major data, made before the clock starts
        XT, XvT = bk.asarray(data.X).T, bk.asarray(data.Xv).T
        y, yv = (bk.asarray(v) if v.ndim == 1 else bk.asarray(v).T for v in (data.y, data.yv))
    options = ADAM if settings.optimizer == "adam" else {}
    callbacks = _epoch_callback(on_epoch_end)

    def run() -> dict[str, Any]:
        net = DNN(cfg.layers, hidden="relu", output=cfg.output, dtype=settings.dtype, backend=bk, seed=settings.seed)
        history = net.train(XT, y, epochs=fit.epochs, batch_size=cfg.batch, shuffle=True,
                            optimizer=settings.optimizer, learning_rate=settings.lr, validation_data=(XvT, yv),
                            callbacks=callbacks, **options)
        return {"final_loss": float(history["loss"][-1]), "epochs": len(history)}

    return FitCandidate("xpnet-train", _library_of(bk), run, _torch_device_for(bk))


def _torch_loss(output: str, n_out: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(loss(out, target), hits(out, target))``: xpnet's fused cost (summed over the outputs, averaged over the
    examples) and the metric's numerator (correct examples, or the squared error for a linear output)."""
    import torch

    if output == "softmax":
        return torch.nn.CrossEntropyLoss(), lambda out, t: (out.argmax(1) == t).sum()
    if output == "sigmoid":
        bce = torch.nn.BCEWithLogitsLoss(reduction="sum")
        return (lambda out, t: bce(out, t) / out.shape[0]), lambda out, t: ((out > 0) == (t > 0.5)).all(1).sum()
    mse = torch.nn.MSELoss(reduction="sum")
    return (lambda out, t: 0.5 * mse(out, t) / out.shape[0]), lambda out, t: ((out - t) ** 2).sum()


def _build_torch_loop(data: FitData, settings: BenchSettings, fit: FitSettings, bk: Any, *, validation: bool,
                      on_epoch_end: Callable[[], None] | None = None) -> FitCandidate:
    import numpy as np
    import torch

    cfg = data.config
    dims, b, n_out = cfg.layers, cfg.batch, cfg.layers[-1]
    device = _torch_device_for(bk)
    dtype = getattr(torch, settings.dtype)

    def target(y: Any) -> Any:  # class indices for the cross-entropy, else (rows, n_out) floats
        host = y.astype(np.int64) if cfg.output == "softmax" else y.reshape(len(y), -1).astype(settings.dtype)
        return torch.from_numpy(host).to(device)

    X, Xv = (torch.from_numpy(a).to(device=device, dtype=dtype) for a in (data.X, data.Xv))
    T, Tv = target(data.y), target(data.yv)
    m = X.shape[0]
    loss_fn, hits = _torch_loss(cfg.output, n_out)
    sync = _torch_sync(device)

    def run() -> dict[str, Any]:
        torch.manual_seed(settings.seed)
        layers: list[Any] = []
        for l in range(1, len(dims)):
            layers += [torch.nn.Linear(dims[l - 1], dims[l])] + ([torch.nn.ReLU()] if l < len(dims) - 1 else [])
        model = torch.nn.Sequential(*layers).to(device=device, dtype=dtype)
        opt = _torch_optimizer(model, settings)
        values: list[float] = []
        for _ in range(fit.epochs):
            model.train()
            perm = torch.randperm(m, device=device)
            loss_sum = torch.zeros((), dtype=dtype, device=device)
            correct = torch.zeros((), dtype=dtype, device=device)
            for a in range(0, m, b):
                idx = perm[a:a + b]
                xb, tb = X[idx], T[idx]
                opt.zero_grad(set_to_none=True)
                out = model(xb)
                loss = loss_fn(out, tb)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    loss_sum += loss.detach() * xb.shape[0]
                    correct += hits(out, tb)
            reads = [loss_sum / m, correct]
            if validation:
                model.eval()
                with torch.no_grad():
                    vout = model(Xv)
                    reads += [loss_fn(vout, Tv), hits(vout, Tv).to(dtype)]
            values = torch.stack(reads).tolist()  # one read-back per epoch
            if on_epoch_end is not None:
                on_epoch_end()
        sync()
        return {"final_loss": float(values[0]), "epochs": fit.epochs}

    return FitCandidate("torch-loop-val" if validation else "torch-loop", "torch", run, device)


def _build_sklearn(data: FitData, settings: BenchSettings, fit: FitSettings, bk: Any,
                   on_epoch_end: Callable[[], None] | None = None) -> FitCandidate:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPRegressor if data.config.output == "linear" else MLPClassifier
    params = _estimator_params(data.config, settings, fit, sklearn=True)
    X, y = data.X, data.y

    def run() -> dict[str, Any]:
        est = cls(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        return {"final_loss": float(est.loss_curve_[-1]), "epochs": int(est.n_iter_)}

    return FitCandidate("sklearn", "numpy", run)


_FIT_BUILDERS: dict[str, Callable[..., FitCandidate]] = {
    "xpnet-estimator": _build_estimator, "xpnet-train": _build_train, "sklearn": _build_sklearn,
    "torch-loop": lambda *a, **k: _build_torch_loop(*a, validation=False, **k),
    "torch-loop-val": lambda *a, **k: _build_torch_loop(*a, validation=True, **k)}


def build_fit_candidate(name: str, data: FitData, settings: BenchSettings, fit: FitSettings, bk: Any,
                        on_epoch_end: Callable[[], None] | None = None) -> FitCandidate:
    """Fit candidate ``name`` (one of :data:`FIT_CANDIDATES`); :class:`SkippedCandidateError` when it does not
    apply. ``on_epoch_end`` (no arguments) runs after every epoch (the memory child reads the memory there)."""
    reason = fit_skip_reason(name, data.config, settings, bk)
    if reason is not None:
        raise SkippedCandidateError(reason)
    with bk.activate():
        return _FIT_BUILDERS[name](data, settings, fit, bk, on_epoch_end=on_epoch_end)


# ------------------------------------------------------------------------------------------- timing
def fit_ratios(times: dict[str, list[float]]) -> dict[str, dict[str, float | None]]:
    """Per candidate, ``vs_torch`` (its time over its PyTorch peer's, :data:`PEERS`; the torch loops have none)
    and ``vs_sklearn``, each the median over rounds of the ratio within the round (round ``r`` of every list
    was measured in the same round). A candidate or peer that did not run gives None."""
    out = {}
    for name, t in times.items():
        peer = PEERS.get(name)
        out[name] = {"vs_torch": _median_ratio(t, times[peer]) if peer in times else None,
                     "vs_sklearn": _median_ratio(t, times["sklearn"]) if "sklearn" in times and name != "sklearn"
                     else None}
    return out


def _fit_block(cand: FitCandidate, k: int) -> tuple[float, dict[str, Any]]:
    """Seconds per fit of a block of ``k`` whole fits, and the last fit's summary."""
    start = time.perf_counter()
    for _ in range(k):
        summary = cand.fit()
    return (time.perf_counter() - start) / k, summary


def _fits_per_block(cand: FitCandidate, warmup: int, min_block: float) -> tuple[int, float]:
    """Warm up (at least one fit: first calls load modules and fill caches), then how many fits a block needs
    to last ``min_block`` seconds; with the seconds of the last warm-up fit."""
    seconds = 0.0
    for _ in range(max(1, warmup)):
        seconds, _ = _fit_block(cand, 1)
    return (max(1, math.ceil(min_block / max(seconds, 1e-9))) if min_block > 0 else 1), seconds


def fit_limit(name: str) -> float:
    """The issue's target for a whole fit over its PyTorch loop: 0.85x on mnist b128 and b1024, 0.5x on tiny,
    1.0x everywhere else."""
    return {"mnist": 0.85, "mnist-1024": 0.85, "tiny": 0.5}.get(name, 1.0)


def run_fit_config(config: BenchConfig, settings: BenchSettings, fit: FitSettings, bk: Any, *,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time whole fits of ``config``: every candidate once per round, ``fit.rounds`` interleaved rounds, then
    (unless ``settings.memory`` is off) each measured candidate's peak memory in a fresh process. JSON-able."""
    say = progress or (lambda text: None)
    data = make_fit_data(config, fit, settings.dtype, settings.seed)
    m = data.X.shape[0]
    result: dict[str, Any] = {"name": config.name, "layers": list(config.layers), "batch": config.batch,
                              "output": config.output, "epochs": fit.epochs, "batches_per_epoch": fit.batches,
                              "rows": m, "validation_rows": data.Xv.shape[0]}
    built: list[FitCandidate] = []
    cands: dict[str, dict[str, Any]] = {}
    for name in FIT_CANDIDATES:
        try:
            cand = build_fit_candidate(name, data, settings, fit, bk)
        except SkippedCandidateError as exc:
            cands[name] = {"status": "skipped", "reason": str(exc)}
            continue
        built.append(cand)
        cands[name] = {"status": "ok", "library": cand.library, "device": cand.device,
                       "validation": name in WITH_VALIDATION, "peer": PEERS.get(name)}
    pause = not _on_gpu(bk) and _effective_threads() > 1
    for cand in built:
        say(f"{config.name}: warm-up fit of {cand.name}")
        if pause:
            time.sleep(SWITCH_PAUSE_S)
        cands[cand.name]["fits_per_block"] = _fits_per_block(cand, fit.warmup, fit.min_block_seconds)[0]
    times: dict[str, list[float]] = {c.name: [] for c in built}
    previous = None
    for r in range(fit.rounds):
        say(f"{config.name}: fit round {r + 1}/{fit.rounds}")
        for cand in built:
            if pause and cand.library != previous:
                time.sleep(SWITCH_PAUSE_S)
            seconds, summary = _fit_block(cand, cands[cand.name]["fits_per_block"])
            times[cand.name].append(seconds)
            cands[cand.name].update(final_loss=summary["final_loss"], epochs_run=summary["epochs"])
            previous = cand.library
    ratios = fit_ratios(times)
    for name, t in times.items():
        med = statistics.median(t)
        cands[name].update(seconds_per_fit=med, ms_per_epoch=1e3 * med / fit.epochs, times_s=t, **ratios[name])
    result["candidates"] = cands
    del built, data
    if settings.memory:
        for name, entry in cands.items():
            if entry["status"] == "ok" and name in MEASURED_MEMORY:
                say(f"{config.name}: peak memory of a fit of {name}")
                entry["memory"] = measure_fit_memory(name, config, settings, fit)
    return result


def _fit_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets (NumPy, CPU, float32): each xpnet candidate over its PyTorch loop."""
    limit = fit_limit(result["name"])
    out = []
    for name, peer in PEERS.items():
        value = result["candidates"].get(name, {}).get("vs_torch")
        if value is not None:
            out.append({"target": f"{name}/{peer}", "value": value, "limit": limit, "op": "<=",
                        "met": bool(value <= limit)})
    return out


# ------------------------------------------------------------------------------------------- the run
def run_fit_bench(configs: Sequence[BenchConfig], settings: BenchSettings, fit: FitSettings, *,
                  emit: Callable[[str], None] = print, progress: Callable[[str], None] | None = None
                  ) -> dict[str, Any]:
    """``xpnet bench --fit``: :func:`run_fit_config` for every configuration, each table printed when ready.
    Returns ``environment``, ``settings``, ``fit`` (``settings``: the fit's shape and timing; ``configs``: one
    dict per configuration, with ``targets``), JSON-able."""
    from ..device import get_backend

    bk = get_backend(settings.backend)
    meaningful = bk.name != "array_api_strict"
    for name in ("torch-loop", "sklearn"):  # loaded now, so the header reports their thread pools
        fit_skip_reason(name, BenchConfig("probe", (3, 2, 3), 1, "softmax"), settings, bk)
    env = environment_info(settings, bk)
    timing = _fit_timing_line(settings, fit.rounds, fit.warmup, fit.min_block_seconds)
    emit(format_header(env, settings, bk, timing=timing))
    emit("fit candidates: xpnet-estimator (DNNClassifier.fit, NumPy in, no validation) vs torch-loop; xpnet-train "
         "(DNN.train on backend arrays, validation every epoch) vs torch-loop-val (the same loop plus a validation "
         "forward); sklearn (MLPClassifier.fit). Each fit builds its model inside the timed region.")
    show_targets = bk.name == "numpy" and settings.dtype == "float32"
    out: dict[str, Any] = {"schema": SCHEMA_VERSION, "environment": env, "backend": bk.spec,
                           "settings": {**{k: getattr(settings, k) for k in settings.__dataclass_fields__},
                                        "lr": settings.lr}, "timing_meaningful": meaningful,
                           "fit": {"settings": asdict(fit), "configs": []}, "ok": True}
    for cfg in configs:
        res = run_fit_config(cfg, settings, fit, bk, progress=progress)
        res["targets"] = _fit_targets(res) if show_targets and meaningful else []
        out["fit"]["configs"].append(res)
        emit("")
        emit(format_fit_report(res, meaningful=meaningful, targets=show_targets))
    time.sleep(SWITCH_PAUSE_S)
    note_busy_at_end(out, env["cpus"], emit)
    return out


__all__ = ["FIT_CANDIDATES", "PEERS", "FitCandidate", "FitData", "FitSettings", "build_fit_candidate", "fit_limit",
           "fit_ratios", "fit_skip_reason", "format_fit_report", "make_fit_data",
           "run_fit_bench", "run_fit_config"]

"""The training engine: mini-batches, optimizers, regularization, validation, history and callbacks.

One epoch, for a network of ``L`` layers and ``m`` training examples::

    order = permutation(m) from xpnet's seeded "shuffle" stream      (the same on every backend)
    for each mini-batch (X_t, Y_t) of ``batch_size`` columns (the last, partial one kept):
        masks = dropout masks from the seeded "dropout" stream       (the same on every backend)
        grads, cost = fused_gradients(X_t, Y_t, lambd, masks, weights)
        parameters = optimizer.update(parameters, grads, schedule(epoch))
    logs = train loss/metric (running over the batches), validation loss/metric, lr, time
    callbacks.on_epoch_end(trainer, epoch, logs)                      (early stopping, checkpoint, progress)

Everything inside the loop stays on the device: the batch costs and correct counts are summed as 0-d device
arrays and read back once per epoch (DESIGN principle 4). Layout is the lecture's: ``X`` is ``(n_x, m)``,
``Y`` is ``(n_L, m)``.

The train loss and metric of an epoch are running values over its mini-batches, computed with dropout
active and including the L2 penalty (what the optimizer minimised); the validation loss and metric are
computed after the epoch on the whole validation set without dropout, the L2 penalty included in the loss
so both curves measure the same objective.

Numerical faults are caught where the loss is read back anyway, once per epoch: a NaN or infinite training
loss (or validation loss, or parameters) stops training with a :class:`~xpnet.errors.DivergenceError` that
names the epoch and the first mini-batch whose loss was not finite, and the network goes back to the
parameters (and optimizer state and random streams) it had at the end of the previous epoch. Checking per
epoch rather than per step is what keeps the loop free of host syncs; the batch costs of the epoch are kept
as device arrays and read back only when the epoch diverged, to name the step.

Checkpoints (``Trainer.fit(..., checkpoint=path, checkpoint_every=N, resume=True)``) hold the whole training
state: parameters, optimizer state and update count, the epoch, the shuffle and dropout generators' states,
the history and the early-stopping state. A resumed run therefore reproduces the uninterrupted one exactly
on the same backend (bit for bit on NumPy). They are written atomically with :mod:`xpnet.io`, so a kill at
any moment leaves either the previous checkpoint or the new one, never half a file.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _xp
from .errors import ConfigError, DivergenceError, ModelFileError, ShapeError
from .io import read_model_file, register_kind, write_model_file
from .optimizers import Optimizer, Schedule, get_optimizer, get_schedule
from .random import check_seed, host_generator

__all__ = [
    "Callback",
    "EarlyStopping",
    "History",
    "ModelCheckpoint",
    "ProgressBar",
    "Trainer",
    "check_batch_size",
    "check_dropout",
    "dropout_masks",
    "split_indices",
]


# Dropout masks move to the device in chunks of about this many bytes (one 0/1 byte per unit and example).
_MASK_CHUNK_BYTES = 16 << 20

# ------------------------------------------------------------------------------------------- checks
def check_batch_size(batch_size: Any, m: int) -> int:
    """Resolve ``batch_size`` for ``m`` examples: a positive int (capped at ``m``), ``"full"`` (the lecture's
    full-batch gradient descent, ``m``) or ``"auto"`` (scikit-learn's ``min(200, m)``)."""
    if isinstance(batch_size, str):
        key = batch_size.strip().lower()
        if key == "full":
            return m
        if key == "auto":
            return min(200, m)
    elif not isinstance(batch_size, bool) and isinstance(batch_size, numbers.Integral) and batch_size >= 1:
        return min(int(batch_size), m)
    raise ConfigError(f"batch_size must be a positive integer, 'full' or 'auto', got {batch_size!r}")


def check_dropout(dropout: Any, n_hidden: int) -> dict[int, float]:
    """Dropout rates per hidden layer -> ``{l: keep_prob}`` for the layers that drop anything.

    ``dropout`` is one rate for every hidden layer or a sequence of ``n_hidden`` rates (layer 1 first), each
    in ``[0, 1)``; the keep probability is ``1 - rate``. The output layer never drops.
    """
    if isinstance(dropout, numbers.Real) and not isinstance(dropout, bool):
        rates = [dropout] * n_hidden
    elif isinstance(dropout, Sequence) and not isinstance(dropout, str):
        rates = list(dropout)
        if len(rates) != n_hidden:
            raise ConfigError(f"dropout has {len(rates)} rates but the network has {n_hidden} hidden layers: "
                              "give one rate per hidden layer, or a single number for all")
    else:
        raise ConfigError(f"dropout must be a rate in [0, 1) or a sequence of them, got {dropout!r}")
    keep = {}
    for l, rate in enumerate(rates, start=1):
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not (0 <= rate < 1):
            raise ConfigError(f"dropout rate of hidden layer {l} must be in [0, 1) (the fraction of units "
                              f"dropped), got {rate!r}")
        if rate > 0:
            keep[l] = 1.0 - float(rate)
    return keep


def _check_nonnegative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 <= value < math.inf):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def dropout_masks(rng: Any, layer_dims: Sequence[int], keep: Mapping[int, float], m: int, dtype_name: str
                  ) -> dict[int, Any]:
    """Inverted-dropout masks for one mini-batch, drawn on the host (NumPy arrays).

    ``M[l] = D[l] / keep_prob[l]`` with ``D[l] = (U < keep_prob[l])`` of shape ``(n_l, m)``: a kept unit is
    scaled up so the layer's expected output is unchanged. Drawn from xpnet's seeded generator on the host,
    so the masks are bit-identical on every backend (DESIGN principle 5).

    ``U`` is a 16-bit uniform integer (``D = U < round(keep_prob * 2^16)``), read from the generator's raw
    bytes: 2 bytes per unit instead of a float64 draw, about 4x faster on the host; the keep probability is
    exact to 2^-17 (under 8e-6).
    """
    import numpy as np

    dtype = np.dtype(dtype_name)
    masks = {}
    for l, p in keep.items():
        mask = _kept(rng, layer_dims[l] * m, p).reshape(layer_dims[l], m).astype(dtype)
        mask *= dtype.type(1.0 / p)
        masks[l] = mask
    return masks


def _kept(rng: Any, n: int, p: float) -> Any:
    """``n`` host booleans, each True with probability ``p`` (to 2^-17): 16-bit uniforms from raw bytes."""
    import numpy as np

    return np.frombuffer(rng.bytes(2 * n), dtype="<u2") < round(p * 65536)


def split_indices(m: int, fraction: float, seed: int | None, labels: Any = None) -> tuple[Any, Any]:
    """Split ``range(m)`` into training and validation indices (host NumPy int64 arrays, each sorted).

    ``fraction`` of the examples (at least one) go to validation. With ``labels`` (a host 1-D array of class
    labels) the split is stratified when every class has at least two members, so both parts keep the class
    proportions; otherwise it is a plain seeded shuffle.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not (0 < fraction < 1):
        raise ConfigError(f"validation_fraction must be in (0, 1), got {fraction!r}")
    n_val = max(1, round(fraction * m))
    if m - n_val < 1:
        raise ShapeError(f"validation_fraction={fraction} of {m} examples leaves none to train on: "
                         "give more examples or a smaller fraction")
    stratify = None
    if labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2 and n_val >= len(counts) and m - n_val >= len(counts):
            stratify = labels
    rng_seed = int(host_generator(seed, "validation-split").integers(2**31 - 1))
    train, val = train_test_split(np.arange(m), test_size=n_val, random_state=rng_seed, stratify=stratify)
    return np.sort(train), np.sort(val)


# ------------------------------------------------------------------------------------------- history
@dataclass
class History:
    """Per-epoch record of a training run.

    ``columns`` maps ``epoch``, ``loss``, ``metric``, ``val_loss``, ``val_metric``, ``lr`` and ``time``
    (seconds since the run began) to lists with one entry per epoch (``None`` where there is no validation
    set). ``metric_name`` is ``"accuracy"`` for classifiers and ``"r2"`` for regression. ``backend``,
    ``device`` and ``dtype`` say where it ran. ``history["loss"]`` is ``history.columns["loss"]``.
    """

    metric_name: str
    backend: str
    device: str
    dtype: str
    columns: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in History.KEYS})

    KEYS = ("epoch", "loss", "metric", "val_loss", "val_metric", "lr", "time")

    def __getitem__(self, key: str) -> list[Any]:
        return self.columns[key]

    def __len__(self) -> int:
        return len(self.columns["epoch"])

    def append(self, logs: Mapping[str, Any]) -> None:
        for key in self.KEYS:
            self.columns[key].append(logs.get(key))

    def last(self) -> dict[str, Any]:
        """The last epoch's logs (empty before the first epoch)."""
        return {k: v[-1] for k, v in self.columns.items()} if len(self) else {}

    def summary(self) -> dict[str, Any]:
        """A small JSON-able summary for model files: where it ran, epochs, final and best values."""
        out: dict[str, Any] = {"metric_name": self.metric_name, "backend": self.backend, "device": self.device,
                               "dtype": self.dtype, "epochs": len(self)}
        if len(self):
            out.update({f"final_{k}": v for k, v in self.last().items() if k not in ("epoch",) and v is not None})
            vals = [v for v in self.columns["val_loss"] if v is not None]
            if vals:
                out["best_val_loss"] = min(vals)
        return out

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-able: the columns plus ``metric_name``, ``backend``, ``device``, ``dtype``."""
        return {"metric_name": self.metric_name, "backend": self.backend, "device": self.device,
                "dtype": self.dtype, **{k: list(v) for k, v in self.columns.items()}}


# ----------------------------------------------------------------------------------------- callbacks
class Callback:
    """The callback protocol. Every hook is optional; ``trainer`` gives access to ``trainer.network``,
    ``trainer.history``, ``trainer.epoch`` and ``trainer.stop_training`` (set it to stop after this epoch).

    ``logs`` in :meth:`on_epoch_end` holds ``epoch, loss, metric, val_loss, val_metric, lr, time``.
    """

    def on_train_begin(self, trainer: Trainer) -> None:
        """Called once when :meth:`Trainer.fit` starts."""

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        """Called before each epoch (``epoch`` counts from 0 over the trainer's whole life)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Mapping[str, Any]) -> None:
        """Called after each epoch with that epoch's logs."""

    def on_train_end(self, trainer: Trainer) -> None:
        """Called once when :meth:`Trainer.fit` ends, also when a callback stopped it early."""

    # A callback with state of its own that a resumed run needs overrides these two (EarlyStopping does);
    # the others start afresh when a run resumes from a checkpoint.
    def _checkpoint_state(self, trainer: Trainer) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(JSON-able dict, {name: backend array})``: what a checkpoint keeps of this callback."""
        raise NotImplementedError

    def _restore_checkpoint_state(self, trainer: Trainer, state: Mapping[str, Any], arrays: Mapping[str, Any]
                                  ) -> None:
        """Take back what :meth:`_checkpoint_state` gave (called after :meth:`on_train_begin`)."""
        raise NotImplementedError


_MODES = {"loss": "min", "val_loss": "min", "metric": "max", "val_metric": "max"}


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs in a row.

    ``monitor`` is ``"val_loss"`` (default), ``"val_metric"``, ``"loss"`` or ``"metric"``; losses must go
    down, metrics up. The best value and its parameters are tracked on any strict improvement, while only an
    improvement by more than ``min_delta`` on that best resets the count of epochs without one (scikit-learn's
    ``tol`` rule). With ``restore_best_weights`` the network gets back the parameters of its best epoch when
    training ends. ``stopped_epoch`` is the epoch it stopped at (None if it never fired) and ``best_epoch`` /
    ``best`` the best epoch and value.
    """

    def __init__(self, monitor: str = "val_loss", *, patience: int = 10, min_delta: float = 0.0,
                 restore_best_weights: bool = True) -> None:
        if monitor not in _MODES:
            raise ConfigError(f"unknown monitor {monitor!r}; valid: {', '.join(_MODES)}")
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 1:
            raise ConfigError(f"patience must be a positive integer (epochs), got {patience!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = _check_nonnegative("min_delta", min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self._wait = 0
        self._best_parameters: dict[str, Any] | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        self.best, self.best_epoch, self.stopped_epoch, self._wait = None, None, None, 0
        self._best_parameters = None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Mapping[str, Any]) -> None:
        value = logs.get(self.monitor)
        if value is None:
            raise ConfigError(f"early stopping monitors {self.monitor!r}, which this run does not compute "
                              "(val_* needs validation data or a validation fraction)")
        sign = 1.0 if _MODES[self.monitor] == "min" else -1.0
        gain = math.inf if self.best is None else sign * (self.best - value)
        self._wait = 0 if gain > self.min_delta else self._wait + 1
        if gain > 0:
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:  # a copy per improving epoch on the in-place path: only when needed
                self._best_parameters = trainer.snapshot_parameters()
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer: Trainer) -> None:
        # After a divergence the network keeps the last finite epoch's parameters, as the error says.
        if self.restore_best_weights and self._best_parameters is not None \
                and getattr(trainer, "divergence", None) is None:
            trainer.network.parameters = self._best_parameters

    def _checkpoint_state(self, trainer: Trainer) -> tuple[dict[str, Any], dict[str, Any]]:
        state = {"monitor": self.monitor, "best": self.best, "best_epoch": self.best_epoch,
                 "stopped_epoch": self.stopped_epoch, "wait": self._wait}
        return state, dict(self._best_parameters or {})

    def _restore_checkpoint_state(self, trainer: Trainer, state: Mapping[str, Any], arrays: Mapping[str, Any]
                                  ) -> None:
        if state.get("monitor") != self.monitor:
            raise ConfigError(f"the checkpoint's early stopping monitored {state.get('monitor')!r}, this run's "
                              f"monitors {self.monitor!r}: resume with the same settings")
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.stopped_epoch, self._wait = state["stopped_epoch"], int(state["wait"])
        self._best_parameters = dict(arrays) if arrays else None


class ModelCheckpoint(Callback):
    """Save ``trainer.model`` (the estimator being fitted, or the network) to ``path`` every ``every`` epochs
    and at the end, with :func:`xpnet.io.save` (atomic: an interrupted save leaves the previous file)."""

    def __init__(self, path: Any, *, every: int = 1) -> None:
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ConfigError(f"every must be a positive integer (epochs), got {every!r}")
        self.path = path
        self.every = int(every)
        self.saved = 0

    def on_train_begin(self, trainer: Trainer) -> None:
        # Checked before the first epoch: a missing directory must not surface only after `every` epochs.
        parent = Path(os.path.realpath(os.fspath(self.path))).parent
        if not parent.is_dir():
            raise ConfigError(f"ModelCheckpoint cannot write {os.fspath(self.path)!r}: directory {str(parent)!r} "
                              "does not exist; create it first")

    def _save(self, trainer: Trainer) -> None:
        from .io import save

        save(trainer.model, self.path)
        self.saved += 1

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Mapping[str, Any]) -> None:
        if (epoch + 1) % self.every == 0:
            self._save(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        if len(trainer.history):
            self._save(trainer)


class ProgressBar(Callback):
    """A tqdm bar over the epochs showing the live loss and metric.

    Silent when ``verbose`` is 0 or the stream is not a terminal (a log file gets no bar characters).
    """

    def __init__(self, verbose: int = 1, stream: Any = None) -> None:
        self.verbose = verbose
        self.stream = stream
        self._bar: Any = None

    def enabled(self) -> bool:
        stream = self.stream if self.stream is not None else sys.stderr
        return bool(self.verbose) and hasattr(stream, "isatty") and stream.isatty()

    def on_train_begin(self, trainer: Trainer) -> None:
        if self.enabled():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=trainer.planned_epochs, unit="epoch", file=self.stream or sys.stderr,
                             dynamic_ncols=True, leave=True)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Mapping[str, Any]) -> None:
        if self._bar is not None:
            shown = {k: f"{v:.4g}" for k in ("loss", "metric", "val_loss", "val_metric")
                     if (v := logs.get(k)) is not None}
            if "metric" in shown:
                shown[trainer.history.metric_name] = shown.pop("metric")
            if "val_metric" in shown:
                shown[f"val_{trainer.history.metric_name}"] = shown.pop("val_metric")
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(1)

    def on_train_end(self, trainer: Trainer) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# ------------------------------------------------------------------------------------------- trainer
class Trainer:
    """Trains a :class:`~xpnet.network.DNN` by mini-batch optimization (the engine behind ``DNN.train`` and
    the estimators).

    Parameters
    ----------
    network : the DNN to train (its parameters are replaced after every step)
    optimizer : ``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"`` or an :class:`~xpnet.optimizers.Optimizer`
    learning_rate : the initial learning rate ``alpha0``
    schedule : ``None``/``"constant"``, ``"inverse_time"``, ``"step"``, ``"exponential"``, ``"cosine"`` or a
        :class:`~xpnet.optimizers.Schedule`; ``decay_rate``, ``decay_steps``, ``min_lr`` configure it
    batch_size : int, ``"full"`` or ``"auto"`` (see :func:`check_batch_size`)
    shuffle : reshuffle the examples every epoch (from xpnet's seeded generator)
    l2 : L2 strength ``lambd`` (cost ``+ lambd/(2m) sum ||W||^2``), >= 0
    dropout : rate for every hidden layer or one per hidden layer (see :func:`check_dropout`)
    seed : seeds the shuffling and dropout streams; ``None`` takes the network's seed
    callbacks : :class:`Callback` objects, called in order
    verbose : 0 silent, 1 a progress bar when stderr is a terminal
    model : the object a :class:`ModelCheckpoint` saves (default: the network)
    beta, beta1, beta2, epsilon : the optimizer's hyper-parameters (see :mod:`xpnet.optimizers`)

    The optimizer's state, the epoch counter, the random streams and the history carry over between calls
    to :meth:`fit` (``partial_fit``/``warm_start``), so two calls of 5 epochs equal one of 10; a checkpoint
    (``fit(..., checkpoint=path)``) holds the same state on disk, so a resumed run equals one that never
    stopped.

    ``divergence`` is the :class:`~xpnet.errors.DivergenceError` of the last :meth:`fit` (None when it ended
    normally); ``resumed_epoch`` the epoch the last fit resumed from (None when it started afresh).
    """

    def __init__(self, network: Any, *, optimizer: str | Optimizer = "adam", learning_rate: float = 0.001,
                 schedule: str | Schedule | None = None, decay_rate: float | None = None, decay_steps: int = 1,
                 min_lr: float = 0.0, batch_size: int | str = "auto", shuffle: bool = True, l2: float = 0.0,
                 dropout: float | Sequence[float] = 0.0, seed: int | None = None,
                 callbacks: Iterable[Callback] = (), verbose: int = 0, model: Any = None,
                 beta: float | None = None, beta1: float | None = None, beta2: float | None = None,
                 epsilon: float | None = None) -> None:
        self.network = network
        self.model = network if model is None else model
        self.optimizer = get_optimizer(optimizer, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon)
        self.schedule = get_schedule(schedule, learning_rate, decay_rate=decay_rate, decay_steps=decay_steps,
                                     min_lr=min_lr)
        check_batch_size(batch_size, 1)
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.l2 = _check_nonnegative("l2 (alpha)", l2)
        self.keep = check_dropout(dropout, network.num_layers - 1)
        self.seed = network.seed if seed is None else check_seed(seed)
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise ConfigError(f"callbacks must be xpnet.training.Callback objects, got {cb!r}")
        if verbose and not any(isinstance(cb, ProgressBar) for cb in self.callbacks):
            self.callbacks.append(ProgressBar(verbose))
        self.epoch = 0
        self.stop_training = False
        self.planned_epochs = 0
        bk = network.backend
        metric = "r2" if network.output.name == "linear" else "accuracy"
        self.history = History(metric, bk.spec, str(bk.device), _xp.dtype_name(bk.xp, network.dtype))
        self._totals: dict[int, Any] = {}
        self._shuffle_rng = host_generator(self.seed, "shuffle")
        self._dropout_rng = host_generator(self.seed, "dropout")
        self._fast: Any = None  # the in-place step (xpnet._fast) once chosen; False when none applies
        # The parameter and state dicts the fast step may write into, and the arrays in them that it owns.
        self._owned: tuple[Any, Any, dict[str, Any], dict[str, Any]] | None = None
        self._fast_key: Any = None
        self.divergence: DivergenceError | None = None  # set when the last fit stopped on a non-finite loss
        self.resumed_epoch: int | None = None  # the checkpoint's epoch when the last fit resumed from one

    def __getstate__(self) -> dict[str, Any]:
        # The in-place step holds a module and buffers: a pickled trainer (inside a fitted estimator) drops it
        # and builds it again on its next step.
        state = self.__dict__.copy()
        state["_fast"], state["_owned"] = None, None
        return state

    # ------------------------------------------------------------------------------------ one step
    def _choose_step(self) -> Any:
        """The in-place step (:mod:`xpnet._fast`) for the trainer's current settings, or False. Built on the
        first step (``XPNET_FAST`` is read then) and again whenever ``l2``, the dropout rates or the optimizer
        object change, so a step never runs with settings it was not built for."""
        key = (self.l2, tuple(sorted(self.keep.items())), id(self.optimizer))
        if self._fast is None or self._fast_key != key:
            from . import _fast

            self._fast = _fast.inplace_step(self.network, self.optimizer, self.l2, self.keep) or False
            self._fast_key = key
        return self._fast

    def _adopt(self) -> None:
        """Give the in-place step arrays of its own: a copy of every parameter and optimizer-state array it did
        not allocate itself, made when :meth:`fit` starts and whenever an array was put in since (a restore,
        a resume, a user assigning ``parameters["W1"]``). Arrays handed in are never written into; arrays
        read from ``network.parameters`` during a :meth:`fit` call or between :meth:`step` calls are the live
        ones (use ``get_parameters()`` or copy them)."""
        net, opt = self.network, self.optimizer
        owned = self._owned
        if owned is not None and owned[0] is net.parameters and owned[1] is opt.state \
                and all(net.parameters[k] is a for k, a in owned[2].items()) and len(owned[2]) == len(net.parameters) \
                and all(opt.state.get(k) is a for k, a in owned[3].items()) and len(owned[3]) == len(opt.state):
            return
        mine = owned[2] if owned is not None else {}
        mine_state = owned[3] if owned is not None else {}
        net.parameters = {k: v if mine.get(k) is v else v.copy() for k, v in net.parameters.items()}
        opt.state = {k: v if mine_state.get(k) is v else v.copy() for k, v in opt.state.items()}
        self._owned = (net.parameters, opt.state, dict(net.parameters), dict(opt.state))

    def _note_new_state(self) -> None:
        # The in-place step allocated optimizer state on its first update: that array is its own.
        if self._owned is not None and len(self._owned[3]) != len(self.optimizer.state):
            self._owned[3].update(self.optimizer.state)

    def snapshot_parameters(self) -> dict[str, Any]:
        """The current parameters as arrays no later step writes into (copies when the in-place step runs)."""
        params = self.network.parameters
        if self._fast:
            return {k: v.copy() for k, v in params.items()}
        # The generic updates build new arrays and never write into old ones: the dict is a snapshot.
        return dict(params)

    def _step(self, xp: Any, Xb: Any, Yb: Any, lr: float, masks: Any, wb: Any) -> tuple[Any, Any]:
        """Forward, cost, backward and update on one batch; returns ``(cost, AL)`` (0-d and (n_L, b) arrays).

        ``AL`` may live in a buffer the next step overwrites: use it before then."""
        net = self.network
        fast = self._choose_step()
        if fast:
            self._adopt()
            self.optimizer.t += 1
            out = fast(net.parameters, self.optimizer, Xb, Yb, lr, masks, wb)
            self._note_new_state()
            return out
        from .network import fused_gradients

        grads, cost, AL = fused_gradients(xp, net.parameters, Xb, Yb, net.hidden, net.output, net.loss,
                                          lambd=self.l2, keep_masks=masks, sample_weight=wb)
        net.parameters = self.optimizer.update(xp, net.parameters, grads, lr)
        return cost, AL

    def _in_dtype(self, xp: Any, X: Any, Y: Any, w: Any) -> tuple[Any, Any, Any]:
        # Data in another dtype (NumPy's default float64 for a float32 network) is cast once here: the generic
        # step would otherwise promote the parameters silently, and the two paths would differ.
        dt = self.network.dtype
        return tuple(a if a is None or a.dtype == dt else xp.astype(a, dt) for a in (X, Y, w))

    def step(self, X: Any, Y: Any, sample_weight: Any = None) -> Any:
        """One optimization step on one mini-batch: forward, fused cost, backward, optimizer update.

        ``X`` is ``(n_x, b)`` and ``Y`` ``(n_L, b)`` on the network's backend (cast to its dtype, as :meth:`fit`
        does); ``sample_weight`` is ``(1, b)`` or None. On NumPy and CuPy the step updates the parameters in
        place: an array read from ``network.parameters`` between two steps changes with the next one. The
        learning rate is the schedule's at the current epoch and dropout masks come from the trainer's stream,
        so a loop of ``step`` calls over an epoch's batches trains like :meth:`fit`. Returns the batch cost
        ``(1/b) sum_j w_j loss_j + (lambd/(2b)) sum_l ||W[l]||_F^2`` as a 0-d device array (no host sync).
        """
        if getattr(X, "ndim", None) != 2 or getattr(Y, "ndim", None) != 2 or X.shape[1] != Y.shape[1]:
            raise ShapeError(f"Trainer.step takes X (n_x, b) and Y (n_L, b) with the same b, got "
                             f"{getattr(X, 'shape', type(X).__name__)} and {getattr(Y, 'shape', type(Y).__name__)}")
        xp = self.network.backend.xp
        X, Y, sample_weight = self._in_dtype(xp, X, Y, sample_weight)
        masks = next(self._mask_chunks(X.shape[1], X.shape[1])) if self.keep else None
        return self._step(xp, X, Y, self.schedule(self.epoch), masks, sample_weight)[0]

    # ------------------------------------------------------------------------------------ one epoch
    def _batch_order(self, m: int) -> Any:
        import numpy as np

        if self.shuffle:
            return self._shuffle_rng.permutation(m)
        return np.arange(m)

    def _metric_terms(self, xp: Any, AL: Any, Y: Any) -> Any:
        """Per-batch numerators of the metric, a 1-D array: correct examples (classifiers, one entry) or the
        squared error of each output (regression, n_L entries)."""
        out = self.network.output.name
        if out == "sigmoid":
            correct = xp.all((AL > 0.5) == (Y > 0.5), axis=0)
        elif out == "softmax":
            correct = xp.argmax(AL, axis=0) == xp.argmax(Y, axis=0)
        else:
            D = AL - Y
            return xp.sum(D * D, axis=1)
        return xp.reshape(xp.sum(xp.astype(correct, AL.dtype)), (1,))

    def _finish_metric(self, xp: Any, numerators: Any, Y: Any) -> float:
        """Accuracy, or R^2 averaged uniformly over the outputs (scikit-learn's ``r2_score`` default): an output
        with constant targets scores 1 when predicted exactly, else 0."""
        m = Y.shape[1]
        if self.network.output.name != "linear":
            return float(numerators[0]) / m
        # The targets' spread does not change between epochs (nor under shuffling): read back once per fit.
        cached = self._totals.get(id(Y))
        if cached is None or cached[0] is not Y:
            spread = xp.sum((Y - xp.mean(Y, axis=1, keepdims=True)) ** 2, axis=1)
            cached = self._totals[id(Y)] = (Y, self.network.backend.to_numpy(spread))
        total = cached[1]
        scores = [(1.0 - sse / tot) if tot > 0 else (1.0 if sse == 0 else 0.0)
                  for sse, tot in zip(numerators.tolist(), total.tolist(), strict=True)]
        return sum(scores) / len(scores)

    def _readback(self, xp: Any, loss: Any, metric: Any) -> tuple[float, Any]:
        # One transfer for the loss and the metric terms together.
        host = self.network.backend.to_numpy(xp.concat([xp.reshape(loss, (1,)), xp.astype(metric, loss.dtype)]))
        return float(host[0]), host[1:]

    def _mask_chunks(self, m: int, bs: int) -> Any:
        """Yield, for each mini-batch in order, its ``{l: M[l]}`` dropout masks on the device.

        The masks of many batches are drawn on the host in batch order (the same generator calls as one
        batch at a time, so the bits do not depend on the chunking) and moved in one transfer of at most
        ~16 MB of 0/1 bytes, then scaled on the device: one host-device copy per chunk, not per batch.
        """
        import numpy as np

        net = self.network
        xp, bk = net.backend.xp, net.backend
        dims = net.layer_dims
        units = sum(dims[l] for l in self.keep)
        per_chunk = max(1, _MASK_CHUNK_BYTES // max(1, units * bs))
        starts = list(range(0, m, bs))
        dtype = net.dtype
        for c in range(0, len(starts), per_chunk):
            group = starts[c:c + per_chunk]
            pieces, layout = [], []
            for start in group:
                mb = min(start + bs, m) - start
                for l, p in self.keep.items():
                    pieces.append(_kept(self._dropout_rng, dims[l] * mb, p).view(np.uint8))
                    layout.append((l, dims[l], mb))
            flat = bk.asarray(np.concatenate(pieces))
            offset = 0
            batch: dict[int, Any] = {}
            for l, n_l, mb in layout:
                keep01 = xp.reshape(flat[offset:offset + n_l * mb], (n_l, mb))
                batch[l] = xp.astype(keep01, dtype) * (1.0 / self.keep[l])
                offset += n_l * mb
                if len(batch) == len(self.keep):
                    yield batch
                    batch = {}

    def _run_epoch(self, xp: Any, X: Any, Y: Any, w: Any) -> tuple[float, float]:
        net = self.network
        bk = net.backend
        m = X.shape[1]
        bs = check_batch_size(self.batch_size, m)
        lr = self.schedule(self.epoch)
        Y_given = Y
        if self.shuffle:
            idx = bk.asarray(self._batch_order(m))
            fast = self._choose_step()
            if fast:  # into buffers kept for the run, not a fresh copy of the data every epoch
                X, Y = fast.gather_columns("X", X, idx), fast.gather_columns("Y", Y, idx)
                if w is not None:
                    w = fast.gather_columns("w", w, idx)
            else:
                X, Y = xp.take(X, idx, axis=1), xp.take(Y, idx, axis=1)
                if w is not None:
                    w = xp.take(w, idx, axis=1)
        masks = self._mask_chunks(m, bs) if self.keep else None
        loss_sum = metric_sum = None
        costs = []  # each batch's 0-d cost, on the device: read back only if the epoch diverged
        for start in range(0, m, bs):
            stop = min(start + bs, m)
            Xb, Yb = X[:, start:stop], Y[:, start:stop]
            wb = None if w is None else w[:, start:stop]
            cost, AL = self._step(xp, Xb, Yb, lr, next(masks) if masks else None, wb)
            costs.append(cost)
            # Terms are summed on the device; the host reads them once, after the epoch.
            batch_loss = cost * (stop - start)
            batch_metric = self._metric_terms(xp, AL, Yb)
            loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
            metric_sum = batch_metric if metric_sum is None else metric_sum + batch_metric
        n_batches = len(costs)
        # Each batch's cost carries lambd/(2 m_b) sum||W||^2, so the epoch's running loss carries
        # n_batches * lambd / (2m) sum||W||^2: the validation loss gets the same penalty (see evaluate).
        self._penalty_scale = n_batches / m
        # The count of non-finite parameter entries rides along in the same transfer: the last update of an
        # epoch can make the parameters non-finite while every batch's loss (computed before it) was finite.
        bad = sum(xp.sum(xp.astype(xp.logical_not(xp.isfinite(p)), loss_sum.dtype))
                  for p in net.parameters.values())
        loss, numerators = self._readback(xp, loss_sum, xp.concat([xp.astype(metric_sum, loss_sum.dtype),
                                                                   xp.reshape(bad, (1,))]))
        if not math.isfinite(loss) or numerators[-1]:
            raise self._diverged(xp, costs, loss / m, lr, parameters_finite=not numerators[-1])
        return loss / m, self._finish_metric(xp, numerators[:-1], Y_given)

    def _diverged(self, xp: Any, costs: list[Any], loss: float, lr: float, *, parameters_finite: bool = True,
                  validation: bool = False) -> DivergenceError:
        """The :class:`DivergenceError` of the current epoch: which batch first had a non-finite loss (its
        costs read back now, once), the loss, the learning rate, what to try and what the network keeps."""
        import numpy as np

        e, n, t_end = self.epoch, len(costs), self.optimizer.t
        step = None
        if validation:
            what = f"the validation loss became {loss!r} after epoch {e + 1} (the training loss was finite)"
        else:
            host = self.network.backend.to_numpy(xp.stack(costs)) if costs else np.zeros(0)
            bad = np.flatnonzero(~np.isfinite(host))
            if bad.size:
                step = int(bad[0])
                loss = float(host[step])
                what = f"the loss became {loss!r} in epoch {e + 1}, mini-batch {step + 1} of {n}"
            elif not parameters_finite:
                step = n - 1
                what = (f"the parameters became non-finite (nan or inf) in epoch {e + 1}, at its last update "
                        f"(mini-batch {n} of {n}), while every batch's loss was finite")
            else:
                what = f"the loss summed over epoch {e + 1} overflowed to {loss!r} (each batch's loss was finite)"
        global_step = None if step is None else t_end - n + step + 1
        where = "" if global_step is None else f" (optimizer step {global_step})"
        kept = (f"from the end of epoch {e}, the last epoch whose loss was finite" if e > 0 else
                "from before epoch 1, its initial ones")
        a0 = self.schedule.initial
        err = DivergenceError(
            f"training diverged: {what}{where}, at learning rate {lr:g}. Try a lower learning rate, e.g. "
            f"{a0 / 10:g} instead of {a0:g}. The network keeps its parameters {kept}")
        err.epoch, err.step, err.global_step, err.loss, err.learning_rate = e, step, global_step, loss, lr
        return err

    def evaluate(self, X: Any, Y: Any, w: Any = None) -> tuple[float, float]:
        """Loss and metric of the current parameters on ``(X, Y)``, without dropout.

        The loss includes the L2 penalty at the scale the training loss carries it (``lambd/(2 b) sum||W||^2``
        for batches of ``b``), so the train and validation curves measure the same objective.
        """
        from .network import forward_output, l2_penalty

        net = self.network
        xp = net.backend.xp
        # Forward only: the validation set needs the cost and the outputs, not a backward pass.
        ZL, AL = forward_output(xp, net.parameters, X, net.hidden, net.output)
        cost = net.loss.fused_cost(xp, ZL, Y, w)
        if self.l2:
            scale = getattr(self, "_penalty_scale", 1.0 / check_batch_size(self.batch_size, X.shape[1]))
            cost = cost + (0.5 * self.l2 * scale) * l2_penalty(xp, net.parameters)
        loss, numerators = self._readback(xp, cost, self._metric_terms(xp, AL, Y))
        return loss, self._finish_metric(xp, numerators, Y)

    # ----------------------------------------------------------------------------------------- fit
    def fit(self, X: Any, Y: Any, *, epochs: int, validation_data: tuple[Any, Any] | None = None,
            sample_weight: Any = None, callbacks: Iterable[Callback] = (), checkpoint: Any = None,
            checkpoint_every: int = 1, resume: bool = False) -> History:
        """Train for ``epochs`` more epochs (fewer if a callback stops it) and return the history.

        Parameters
        ----------
        X : (n_x, m) array on the network's backend, in its dtype
        Y : (n_L, m) float targets (:func:`xpnet.losses.as_targets`)
        epochs : int >= 0; with ``resume``, the total the run trains to (see below)
        validation_data : ``(X_val, Y_val)`` in the same layout, evaluated after every epoch
        sample_weight : (1, m) per-example weights (class weights), or None
        callbacks : more callbacks for this call only (the trainer's own run first)
        checkpoint : a file path, or None. The training state (parameters, optimizer state and update count,
            epoch, the shuffle and dropout generators' states, history, early-stopping state) is written there
            atomically every ``checkpoint_every`` epochs, when a callback stops training and at the end; an
            existing file is replaced. Stale temporary files of an earlier write that was killed are removed
            first (one run per checkpoint path at a time). Not written for an epoch that diverged.
            ``xpnet.load(path)`` gives the checkpoint's network as a :class:`~xpnet.network.DNN`.
        checkpoint_every : int >= 1, epochs between checkpoints (counted on :attr:`epoch`, so a resumed run
            writes at the same epochs as an uninterrupted one)
        resume : with an existing ``checkpoint`` file, load it and go on from there; without one, start
            afresh. With ``resume``, ``epochs`` is the run's total: training goes on until :attr:`epoch`
            reaches ``epochs`` (a run of ``epochs=10`` killed after epoch 6 trains 4 more), and a run that a
            callback had stopped stays stopped. The resumed run reproduces the uninterrupted one exactly on
            the same backend (bit for bit on NumPy) when it is given the same data, settings and callbacks;
            a checkpoint of another architecture, other settings or another number of examples is refused
            with a :class:`~xpnet.errors.ConfigError`, a damaged or foreign file with a
            :class:`~xpnet.errors.ModelFileError`.

        Raises
        ------
        DivergenceError
            The epoch's training loss, its validation loss or the parameters after it are NaN or infinite. The
            message names the epoch and the first mini-batch whose loss was not finite (counted from 1; the
            error's ``epoch``, ``step`` and ``global_step`` attributes count from 0 as :attr:`epoch` does, and
            ``global_step`` is the optimizer's update count), the loss and the learning rate, and suggests a
            lower one. The network, the optimizer state and the random streams are put back as they were at
            the end of the previous epoch, the last one whose loss was finite; callbacks still get
            :meth:`Callback.on_train_end` (early stopping then keeps those parameters rather than its best).
            The check is per epoch, where the loss is read back anyway: the loop stays free of host syncs.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
            raise ConfigError(f"epochs must be an integer >= 0, got {epochs!r}")
        for name, A in (("X", X), ("Y", Y)):
            if not hasattr(A, "ndim") or A.ndim != 2:
                raise ShapeError(f"Trainer.fit takes the lecture's layout: {name} must be a 2-D array (features or "
                                 f"outputs, m), got {getattr(A, 'shape', type(A).__name__)}; DNN.train and the "
                                 "estimators accept other forms")
        if Y.shape[1] != X.shape[1] or X.shape[1] == 0:
            raise ShapeError(f"X {tuple(X.shape)} and Y {tuple(Y.shape)} must hold the same m > 0 examples "
                             "(columns)")
        active = self.callbacks + list(callbacks)
        for cb in active:
            if not isinstance(cb, Callback):
                raise ConfigError(f"callbacks must be xpnet.training.Callback objects, got {cb!r}")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, numbers.Integral) \
                or checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be a positive integer (epochs), got {checkpoint_every!r}")
        if resume and checkpoint is None:
            raise ConfigError("resume=True needs checkpoint=PATH, the file to resume from")
        config = None
        loaded = None
        if checkpoint is not None:
            checkpoint = _check_checkpoint_path(checkpoint)
            n_val = None if validation_data is None else int(validation_data[0].shape[1])
            config = {**self._settings(), "examples": int(X.shape[1]), "validation_examples": n_val}
            if resume and checkpoint.exists():
                loaded = self._read_checkpoint(checkpoint, config, active)
            _remove_stale_temporaries(checkpoint)
        xp = self.network.backend.xp
        X, Y, sample_weight = self._in_dtype(xp, X, Y, sample_weight)
        if validation_data is not None:
            validation_data = self._in_dtype(xp, *validation_data, None)[:2]
        self._owned = None  # the in-place step copies the parameters once per call (arrays read meanwhile stay)
        self.stop_training = False
        self.divergence = None
        self.resumed_epoch = None
        # Out-of-memory errors of any backend become DeviceMemoryError naming the batch size (for DNN.train,
        # the estimators and the command alike).
        oom = _xp.translating_oom("training", check_batch_size(self.batch_size, X.shape[1]), how="batch_size={n}")
        with self.network.backend.activate(), oom:
            if loaded is not None:
                self._load_checkpoint(*loaded)
            n_epochs = max(0, int(epochs) - self.epoch) if resume else int(epochs)
            self.planned_epochs = n_epochs
            start = time.perf_counter() - (self.history["time"][-1] if len(self.history) else 0.0)
            written = self.epoch if loaded is not None else None  # the epoch the file on disk holds
            for cb in active:
                cb.on_train_begin(self)
            try:
                if loaded is not None:
                    self._load_callback_states(*loaded, active)
                for _ in range(n_epochs):
                    if self.stop_training:  # resumed from a run a callback had stopped
                        break
                    for cb in active:
                        cb.on_epoch_begin(self, self.epoch)
                    lr = self.schedule(self.epoch)
                    before = self._epoch_snapshot()
                    try:
                        loss, metric = self._run_epoch(xp, X, Y, sample_weight)
                        logs: dict[str, Any] = {"epoch": self.epoch, "loss": loss, "metric": metric, "lr": lr}
                        if validation_data is not None:
                            logs["val_loss"], logs["val_metric"] = self.evaluate(*validation_data)
                            if not math.isfinite(logs["val_loss"]):
                                raise self._diverged(xp, [], logs["val_loss"], lr, validation=True)
                    except DivergenceError as exc:
                        self._restore_snapshot(before)
                        self.divergence = exc
                        raise
                    logs["time"] = time.perf_counter() - start
                    self.history.append(logs)
                    for cb in active:
                        cb.on_epoch_end(self, self.epoch, logs)
                    self.epoch += 1
                    if checkpoint is not None and (self.epoch % checkpoint_every == 0 or self.stop_training):
                        self._write_checkpoint(checkpoint, config, active)
                        written = self.epoch
                    if self.stop_training:
                        break
                if checkpoint is not None and written != self.epoch and len(self.history):
                    self._write_checkpoint(checkpoint, config, active)
            finally:
                self._totals.clear()  # it holds the targets alive
                if self._fast:  # its buffers hold a shuffled copy of the data: not kept past the call
                    self._fast.release()
                for cb in active:
                    cb.on_train_end(self)
        return self.history

    # ------------------------------------------------------------------------ divergence snapshots
    def _epoch_snapshot(self) -> tuple[Any, ...]:
        """What the trainer goes back to when an epoch diverges: parameters, optimizer state and count, the
        generators' states. Copies only where the in-place step would write into the arrays."""
        opt = self.optimizer
        state = {k: v.copy() for k, v in opt.state.items()} if self._fast else dict(opt.state)
        return (self.snapshot_parameters(), state, opt.t, self._shuffle_rng.bit_generator.state,
                self._dropout_rng.bit_generator.state)

    def _restore_snapshot(self, snapshot: tuple[Any, ...]) -> None:
        params, state, t, shuffle, dropout = snapshot
        # New dicts: the in-place step adopts (copies) them before it writes again.
        self.network.parameters, self.optimizer.state, self.optimizer.t = params, state, t
        self._shuffle_rng.bit_generator.state = shuffle
        self._dropout_rng.bit_generator.state = dropout

    # -------------------------------------------------------------------------------- checkpoints
    def _settings(self) -> dict[str, Any]:
        """What a resumed run must share with the run that wrote the checkpoint, JSON-normalized."""
        net = self.network
        settings = {
            "network": {"layer_dims": list(net.layer_dims), "hidden": net.hidden.name, "output": net.output.name,
                        "dtype": _xp.dtype_name(net.backend.xp, net.dtype)},
            "optimizer": {"name": self.optimizer.name, **self.optimizer.hyperparameters()},
            "schedule": self.schedule.describe(), "batch_size": self.batch_size, "shuffle": self.shuffle,
            "l2": self.l2, "dropout": {str(l): p for l, p in self.keep.items()}, "seed": self.seed,
        }
        return json.loads(json.dumps(settings, sort_keys=True))

    def _write_checkpoint(self, path: Path, config: dict[str, Any], active: Sequence[Callback]) -> None:
        """Write the training state to ``path`` atomically (one host copy of the arrays per checkpoint)."""
        net = self.network
        host = net.backend.to_numpy
        tensors = {f"param/{k}": host(v) for k, v in net.parameters.items()}
        tensors.update({f"optimizer/{k}": host(v) for k, v in self.optimizer.state.items()})
        states = []
        for cb in _stateful(active):
            state, arrays = cb._checkpoint_state(self)
            tensors.update({f"callback{len(states)}/{k}": host(v) for k, v in arrays.items()})
            states.append({"class": type(cb).__name__, "state": state})
        meta = {
            "kind": CHECKPOINT_KIND,
            "checkpoint_version": _CHECKPOINT_VERSION,
            "epoch": self.epoch,
            "stopped": bool(self.stop_training),
            # The block DNN files have, so xpnet.load(checkpoint) gives the network.
            "network": {**config["network"], "init": net.init, "seed": net.seed, "n_iter": net.n_iter_},
            "settings": config,
            "optimizer_t": int(self.optimizer.t),
            "generators": {"shuffle": _json_state(self._shuffle_rng.bit_generator.state),
                           "dropout": _json_state(self._dropout_rng.bit_generator.state)},
            "history": self.history.as_dict(),
            "callbacks": states,
        }
        write_model_file(path, tensors, meta)

    def _read_checkpoint(self, path: Path, config: dict[str, Any], active: Sequence[Callback]
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read and check a checkpoint before anything is changed: ``(tensors, meta)``."""
        tensors, meta = read_model_file(path)
        if meta.get("kind") != CHECKPOINT_KIND:
            raise ModelFileError(f"cannot resume from '{path}': it is a {meta.get('kind')} model file, not a "
                                 "training checkpoint (those are written by fit(..., checkpoint=PATH))")
        version = meta.get("checkpoint_version")
        if version != _CHECKPOINT_VERSION:
            raise ModelFileError(f"cannot resume from '{path}': checkpoint version {version!r}, this xpnet reads "
                                 f"version {_CHECKPOINT_VERSION}")
        saved = meta.get("settings")
        if not isinstance(saved, dict):
            raise ModelFileError(f"cannot resume from '{path}': the checkpoint's settings are missing")
        differ = [f"{k}: {saved.get(k)!r} in the checkpoint, {v!r} here" for k, v in config.items()
                  if saved.get(k) != v]
        if differ:
            raise ConfigError(f"cannot resume from '{path}': it was written by a run with other settings or data "
                              f"({'; '.join(differ)}); resume with the same ones, or start afresh without resuming "
                              "(which overwrites the checkpoint)")
        names = [type(cb).__name__ for cb in _stateful(active)]
        saved_names = [c.get("class") for c in meta.get("callbacks") or [] if isinstance(c, dict)]
        if names != saved_names:
            raise ConfigError(f"cannot resume from '{path}': it holds the state of the callbacks {saved_names}, "
                              f"this run has {names}; resume with the same callbacks")
        net = self.network
        want = {f"param/W{l}": (net.layer_dims[l], net.layer_dims[l - 1]) for l in range(1, net.num_layers + 1)}
        want.update({f"param/b{l}": (net.layer_dims[l], 1) for l in range(1, net.num_layers + 1)})
        for key, shape in want.items():
            if key not in tensors or tuple(tensors[key].shape) != shape:
                raise ModelFileError(f"cannot resume from '{path}': tensor {key!r} is missing or not of shape "
                                     f"{shape}")
        try:
            int(meta["epoch"]), int(meta["optimizer_t"]), meta["history"]["loss"]
            for name in ("shuffle", "dropout"):
                _state_from_json(meta["generators"][name])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"cannot resume from '{path}': the checkpoint is malformed ({exc!r})") from None
        return tensors, meta

    def _load_checkpoint(self, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
        """Put the checkpoint's state in place (arrays to the backend; new dicts, which the in-place step
        adopts before writing into them)."""
        net = self.network
        bk = net.backend
        net.parameters = {k[6:]: bk.asarray(v) for k, v in tensors.items() if k.startswith("param/")}
        self.optimizer.state = {k[10:]: bk.asarray(v) for k, v in tensors.items() if k.startswith("optimizer/")}
        self.optimizer.t = int(meta["optimizer_t"])
        self.epoch = int(meta["epoch"])
        self.stop_training = bool(meta.get("stopped"))
        self._shuffle_rng.bit_generator.state = _state_from_json(meta["generators"]["shuffle"])
        self._dropout_rng.bit_generator.state = _state_from_json(meta["generators"]["dropout"])
        saved = meta["history"]
        h = self.history
        self.history = History(h.metric_name, h.backend, h.device, h.dtype,
                               {k: list(saved.get(k) or [None] * len(saved["loss"])) for k in History.KEYS})
        self.resumed_epoch = self.epoch

    def _load_callback_states(self, tensors: dict[str, Any], meta: dict[str, Any], active: Sequence[Callback]
                              ) -> None:
        bk = self.network.backend
        for i, (cb, saved) in enumerate(zip(_stateful(active), meta["callbacks"], strict=True)):
            prefix = f"callback{i}/"
            arrays = {k[len(prefix):]: bk.asarray(v) for k, v in tensors.items() if k.startswith(prefix)}
            cb._restore_checkpoint_state(self, saved["state"], arrays)

    def continue_from(self, previous: Trainer) -> Trainer:
        """Carry ``previous``'s run over into this trainer (``warm_start`` with changed hyper-parameters):
        the epoch counter, history and random streams, and the optimizer's state when it is the same kind of
        optimizer. Returns ``self``."""
        self.epoch = previous.epoch
        self.history = previous.history
        self._shuffle_rng, self._dropout_rng = previous._shuffle_rng, previous._dropout_rng
        if type(self.optimizer) is type(previous.optimizer):
            # A copy of the dict: this trainer's updates must not rewrite the previous trainer's state.
            self.optimizer.state, self.optimizer.t = dict(previous.optimizer.state), previous.optimizer.t
        return self


# --------------------------------------------------------------------------------------- checkpoints
#: The ``kind`` of a training checkpoint file (see :meth:`Trainer.fit`'s ``checkpoint``).
CHECKPOINT_KIND = "TrainingCheckpoint"
_CHECKPOINT_VERSION = 1


class _TrainingCheckpointFile:
    """What :func:`xpnet.io.load` makes of a training checkpoint: the :class:`~xpnet.network.DNN` it holds."""

    @classmethod
    def _xpnet_import(cls, tensors: Mapping[str, Any], meta: Mapping[str, Any], backend: Any) -> Any:
        from .network import DNN

        params = {k[6:]: v for k, v in tensors.items() if k.startswith("param/")}
        return DNN._xpnet_import(params, meta, backend)


register_kind(CHECKPOINT_KIND, f"{__name__}:_TrainingCheckpointFile")


def _check_checkpoint_path(path: Any) -> Path:
    """The checkpoint path, checked before training starts: a run must not fail after its first epoch."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ConfigError(f"checkpoint must be a file path, got {path!r}")
    target = Path(os.fspath(path)).expanduser()
    if target.is_dir():
        raise ModelFileError(f"cannot write checkpoint '{target}': it is a directory; name a file inside it")
    parent = Path(os.path.realpath(target)).parent
    if not parent.is_dir():
        raise ModelFileError(f"cannot write checkpoint '{target}': directory '{parent}' does not exist")
    return target


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files an atomic write of ``path`` left when its process was killed mid-write
    (:func:`xpnet.io.write_model_file` writes ``.NAME.<random>.tmp`` beside the target, then renames it)."""
    real = Path(os.path.realpath(path))
    pattern = re.compile(re.escape(f".{real.name}.") + r"[A-Za-z0-9_]+\.tmp")
    try:
        names = os.listdir(real.parent)
    except OSError:
        return
    for name in names:
        if pattern.fullmatch(name):
            with contextlib.suppress(OSError):
                os.unlink(real.parent / name)


def _stateful(callbacks: Iterable[Callback]) -> list[Callback]:
    """The callbacks whose state a checkpoint keeps (those overriding ``_checkpoint_state``), in order."""
    return [cb for cb in callbacks if type(cb)._checkpoint_state is not Callback._checkpoint_state]


def _json_state(value: Any) -> Any:
    """A NumPy bit generator's state as JSON: integer arrays as exact lists of Python ints."""
    import numpy as np

    if isinstance(value, Mapping):
        return {k: _json_state(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__array__": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _state_from_json(value: Any) -> Any:
    """The inverse of :func:`_json_state`."""
    import numpy as np

    if isinstance(value, Mapping):
        if "__array__" in value:
            return np.asarray(value["data"], dtype=np.dtype(value["__array__"])).reshape(value["shape"])
        return {k: _state_from_json(v) for k, v in value.items()}
    return value

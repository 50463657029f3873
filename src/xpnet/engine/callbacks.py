"""Callbacks: the hooks of the training loop (:class:`Callback`) and the ones xpnet ships, early stopping,
periodic model saving and the progress bar.

A callback sees the :class:`~xpnet.engine.trainer.Trainer` it runs in (``trainer.network``,
``trainer.history``, ``trainer.epoch``, ``trainer.stop_training``); nothing here imports the trainer.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..files import check_destination, save

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "ProgressBar", "check_nonnegative", "format_value"]


def check_nonnegative(name: str, value: Any) -> float:
    """``value`` as a float, which must be finite and >= 0 (a :class:`~xpnet.errors.ConfigError` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 <= value < math.inf):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


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
        self.min_delta = check_nonnegative("min_delta", min_delta)
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
        # Checked before the first epoch, by the safe writer's own check (a missing or unwritable directory, a
        # special file): a bad destination must not surface only after `every` epochs. Rank 0 of a data-parallel
        # run alone writes, and checks.
        if not getattr(trainer, "writes_files", True):
            return
        check_destination(self.path, what="a model",
                          error=lambda p, reason: ConfigError(f"ModelCheckpoint cannot write {os.fspath(p)!r}: "
                                                              f"{reason}"))

    def _save(self, trainer: Trainer) -> None:
        if not getattr(trainer, "writes_files", True):  # data-parallel: rank 0 alone writes the (equal) model
            return
        save(trainer.model, self.path)
        self.saved += 1

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Mapping[str, Any]) -> None:
        if (epoch + 1) % self.every == 0:
            self._save(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        if len(trainer.history):
            self._save(trainer)


def format_value(value: float) -> str:
    """A metric at fixed precision: 4 decimals (``0.0276``, ``12.5000``), and 4 significant digits in scientific
    notation from 1e5 or below 1e-3 (``3.142e+06``, ``6.211e-04``, where 4 decimals would keep fewer), so columns
    of numbers line up and a bar's width does not jump."""
    if (value != 0 and not 1e-3 <= abs(value) < 1e5) or not math.isfinite(value):
        return f"{value:.3e}"
    return f"{value:.4f}"


class ProgressBar(Callback):
    """Progress for people and for logs: a bar on a terminal, one line per epoch elsewhere.

    On a terminal (``stream``, default stderr, is a tty) with ``verbose=1``: a tqdm bar at most 80 columns wide
    (narrower terminals: their width) showing the epoch, the loss and the validation loss and metric (or the
    training metric without validation) at fixed precision, all of which always fit.
    Off a terminal (pipes, log files, notebooks, CI), or with ``verbose=2``: one line per epoch on ``line_stream``
    (default stdout), Keras ``verbose=2`` style::

        epoch 3/100 - loss 0.0824 - accuracy 0.9807 - val_loss 0.1695 - val_accuracy 0.9375 - lr 0.003 - 0.03 s

    ``log_every=N`` writes a line every N epochs (and always the first and the last). ``verbose=0``: nothing.
    """

    def __init__(self, verbose: int = 1, stream: Any = None, *, log_every: int = 1, line_stream: Any = None) -> None:
        if isinstance(log_every, bool) or not isinstance(log_every, numbers.Integral) or log_every < 1:
            raise ConfigError(f"log_every must be a positive integer (epochs), got {log_every!r}")
        self.verbose = verbose
        self.stream = stream
        self.line_stream = line_stream
        self.log_every = int(log_every)
        self._bar: Any = None
        self._lines = False
        self._last_time = 0.0
        self._pending: str | None = None
        self._seen = 0
        self._done = self._total = 0

    def enabled(self) -> bool:
        """Whether the bar is drawn (verbose 1 and a terminal)."""
        stream = self.stream if self.stream is not None else sys.stderr
        return self.verbose == 1 and hasattr(stream, "isatty") and stream.isatty()

    def on_train_begin(self, trainer: Trainer) -> None:
        self._bar, self._lines, self._pending, self._seen = None, False, None, 0
        self._last_time = 0.0
        # The run's total, not the epochs left: a run resumed at epoch 6 of 10 (or a second fit call) shows
        # "epoch 7/10", the bar starts at 6 of 10.
        self._done = int(trainer.epoch)
        self._total = self._done + int(trainer.planned_epochs)
        if not getattr(trainer, "writes_files", True):  # one progress, rank 0's, in a parallel run
            return
        if self.enabled():
            import shutil

            from tqdm.auto import tqdm

            width = min(80, shutil.get_terminal_size((80, 24)).columns)
            self._bar = tqdm(total=self._total, initial=self._done, unit="epoch", file=self.stream or sys.stderr,
                             ncols=width, dynamic_ncols=False, leave=True, ascii=None,
                             bar_format="{n_fmt}/{total_fmt} |{bar}| {desc} {elapsed}")
        elif self.verbose:
            self._lines = True

    def _shown(self, trainer: Trainer, logs: Mapping[str, Any], keys: tuple[str, ...]) -> list[tuple[str, str]]:
        name = trainer.history.metric_name
        out = []
        for k in keys:
            v = logs.get(k)
            if v is not None:
                out.append((k.replace("metric", name), format_value(float(v))))
        return out

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Mapping[str, Any]) -> None:
        if self._bar is not None:
            # The validation numbers when there are some, else the training metric: three numbers at most, so the
            # postfix (at most ~46 characters) leaves the bar room in 80 columns.
            keys = ("loss", "val_loss", "val_metric") if logs.get("val_loss") is not None else ("loss", "metric")
            # Shown as the bar's description placed after it (tqdm's postfix would add a comma).
            self._bar.set_description_str(" ".join(f"{k} {v}" for k, v in self._shown(trainer, logs, keys)),
                                          refresh=False)
            self._bar.update(1)
        if self._lines:
            now = float(logs.get("time") or 0.0)
            took, self._last_time = now - self._last_time, now
            total = self._total
            width = len(str(total))
            parts = [f"epoch {epoch + 1:>{width}}/{total}"]
            parts += [f"{k} {v}" for k, v in self._shown(trainer, logs, ("loss", "metric", "val_loss", "val_metric"))]
            if logs.get("lr") is not None:
                parts.append(f"lr {float(logs['lr']):.4g}")
            parts.append(f"{took:.2f} s")
            line = " - ".join(parts)
            self._seen += 1
            if self._seen == 1 or (epoch + 1) % self.log_every == 0:
                self._write(line)
                self._pending = None
            else:
                self._pending = line  # the last epoch is always shown, even between log_every marks

    def _write(self, line: str) -> None:
        stream = self.line_stream if self.line_stream is not None else sys.stdout
        if stream is not None:
            print(line, file=stream, flush=True)

    def on_train_end(self, trainer: Trainer) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._pending is not None:
            self._write(self._pending)
            self._pending = None

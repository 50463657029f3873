"""The training loop: :class:`Trainer` runs epochs of mini-batches through the engine's seams.

One epoch, for a network of ``L`` layers and ``m`` training examples::

    order = permutation(m) from xpnet's seeded "shuffle" stream      (the same on every backend)
    for each mini-batch (X_t, Y_t) of the batch source, in that order (the last, partial one kept):
        masks = dropout masks from the seeded "dropout" stream       (the same on every backend)
        step: grads, cost = fused_gradients(X_t, Y_t, masks, weights)
              grads = gradient_hook(grads); dW += (lambd/b) W
              parameters = optimizer.update(parameters, grads, schedule(epoch))
    logs = train loss/metric (running over the batches), validation loss/metric, lr, time
    callbacks.on_epoch_end(trainer, epoch, logs)                      (early stopping, checkpoint, progress)

Everything inside the loop stays on the device: the batch costs and correct counts are summed as 0-d device
arrays and read back once per epoch (DESIGN principle 4). The seams live in modules of their own: where
batches come from (:mod:`xpnet.engine.batches`: data stays sample-major, ``(m, n_x)``, and a batch is a block
of rows whose transposed view is the lecture's ``(n_x, b)``), which step runs (:mod:`xpnet.engine.steps`,
chosen in one place), and what happens between backward and update (:mod:`xpnet.engine.hooks`). Callbacks,
the history, dropout masks, metrics and checkpoint files are modules of their own too.

The train loss and metric of an epoch are running values over its mini-batches, computed with dropout
active and including the L2 penalty (what the optimizer minimised); the validation loss and metric are
computed after the epoch on the whole validation set without dropout, the L2 penalty included in the loss
so both curves measure the same objective.

Numerical faults are caught where the loss is read back anyway, once per epoch: a NaN or infinite training
loss (or validation loss, or parameters), or a training loss that ran away (:func:`runaway_limit`), stops
training with a :class:`~xpnet.errors.DivergenceError` that names the epoch and the first mini-batch whose loss
was not finite, and the network goes back to the parameters (and optimizer state and random streams) it had at
the end of the previous epoch. Checking per epoch rather than per step is what keeps the loop free of host
syncs; the batch costs of the epoch are kept as device arrays and read back only when the epoch diverged, to
name the step.

Checkpoints (``Trainer.fit(..., checkpoint=path, checkpoint_every=N, resume=True)``) hold the whole training
state: parameters, optimizer state and update count, the epoch, the shuffle and dropout generators' states,
the history and the early-stopping state. A resumed run therefore reproduces the uninterrupted one exactly
on the same backend (bit for bit on NumPy). They are written atomically with :mod:`xpnet.files`, so a kill at
any moment leaves either the previous checkpoint or the new one, never half a file.
"""

from __future__ import annotations

import json
import math
import numbers
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..device import xp as _xp
from ..device.random import check_seed, host_generator
from ..errors import ConfigError, DeviceMemoryError, DivergenceError, ShapeError
from ..lecture.network import forward_output, l2_penalty
from . import parallel
from .batches import ArrayBatches, BatchSource, CheckedSource, check_batch_size, check_owned
from .callbacks import Callback, ProgressBar, check_nonnegative
from .checkpoint import (
    check_checkpoint_path,
    read_checkpoint,
    remove_stale_temporaries,
    restore_callback_states,
    restore_checkpoint,
    run_config,
    write_checkpoint,
)
from .divergence import RUNAWAY_FACTOR, divergence_error, runaway_limit
from .dropout import check_dropout, mask_chunks
from .history import History
from .hooks import IDENTITY, GradientHook
from .metrics import finish_metric, metric_name, metric_terms, target_spread
from .optimizers import Optimizer, Schedule, get_optimizer, get_schedule
from .steps import choose_step

__all__ = ["RUNAWAY_FACTOR", "Trainer", "runaway_limit"]


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
    verbose : 0 silent; 1 a bar on a terminal, else a line per epoch; 2 lines always (:class:`ProgressBar`)
    model : the object a :class:`ModelCheckpoint` saves (default: the network)
    gradient_hook : a :class:`~xpnet.engine.hooks.GradientHook` run between every step's backward pass and its
        update (default: the identity; a cross-process sum for data-parallel training)
    communicator : an :mod:`xpnet.distributed` communicator (``world()`` under ``mpiexec``): data-parallel training
        (:mod:`xpnet.engine.parallel`) on each rank's shard of every global batch; rank 0 alone writes files
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
                 epsilon: float | None = None, gradient_hook: GradientHook = IDENTITY, communicator: Any = None
                 ) -> None:
        self.network = network
        self.model = network if model is None else model
        self.optimizer = get_optimizer(optimizer, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon)
        self.schedule = get_schedule(schedule, learning_rate, decay_rate=decay_rate, decay_steps=decay_steps,
                                     min_lr=min_lr)
        check_batch_size(batch_size, 1)
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.l2 = check_nonnegative("l2 (alpha)", l2)
        self.keep = check_dropout(dropout, network.num_layers - 1)
        self.seed = network.seed if seed is None else check_seed(seed)
        self.communicator, gradient_hook = parallel.data_parallel(communicator, network, gradient_hook)
        if not isinstance(gradient_hook, GradientHook):
            raise ConfigError(f"gradient_hook must be an xpnet.engine.GradientHook, got {gradient_hook!r}: subclass "
                              "GradientHook and define __call__(self, xp, grads, batch_size) -> grads")
        self.gradient_hook = gradient_hook
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
        self.history = History(metric_name(network.output.name), bk.spec, str(bk.device),
                               _xp.dtype_name(bk.xp, network.dtype))
        self._totals: dict[int, Any] = {}
        self._run_start = 0  # the history index of this fit call's first epoch (0 when it resumed a checkpoint)
        self._shuffle_rng = host_generator(self.seed, "shuffle")
        self._dropout_rng = host_generator(self.seed, "dropout")
        self._impl: Any = None  # the step (xpnet.engine.steps) once chosen, for the settings in _impl_key
        # The parameter and state dicts the in-place step may write into, and the arrays in them that it owns.
        self._owned: tuple[Any, Any, dict[str, Any], dict[str, Any]] | None = None
        self._impl_key: Any = None
        self.divergence: DivergenceError | None = None  # set when the last fit stopped on a non-finite loss
        self.resumed_epoch: int | None = None  # the checkpoint's epoch when the last fit resumed from one

    def __getstate__(self) -> dict[str, Any]:
        # The in-place step holds a module and buffers: a pickled trainer (inside a fitted estimator) drops it
        # and builds it again on its next step.
        state = self.__dict__.copy()
        state["_impl"], state["_owned"], state["_impl_key"] = None, None, None
        return parallel.one_process(state)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Attributes a pickle may lack (they are rebuilt on the next step); pickles are not promised to move
        # between xpnet versions, as scikit-learn does not promise it for its estimators.
        for key, default in (("gradient_hook", IDENTITY), ("communicator", None), ("_impl", None),
                             ("_impl_key", None), ("_owned", None), ("_run_start", 0)):
            state.setdefault(key, default)
        self.__dict__.update(state)

    # ------------------------------------------------------------------------------------ one step
    def _current_step(self) -> Any:
        """The step (:func:`xpnet.engine.steps.choose_step`) for the trainer's current settings. Chosen on the first
        step (``XPNET_FAST`` is read then) and again whenever ``l2``, the dropout rates, the optimizer object or
        the gradient hook change, so a step never runs with settings it was not built for."""
        key = (self.l2, tuple(sorted(self.keep.items())), id(self.optimizer), id(self.gradient_hook))
        if self._impl is None or self._impl_key != key:
            self._impl = choose_step(self.network, self.optimizer, self.l2, self.keep, self.gradient_hook)
            self._impl_key = key
        return self._impl

    def _choose_step(self) -> Any:
        """The in-place step in use (:class:`~xpnet.engine.steps.inplace.InplaceStep`), or False when the
        generic step runs (the benchmark's profiler instruments the in-place one)."""
        impl = self._current_step()
        return impl if impl.writes_in_place else False

    @property
    def _fast(self) -> Any:
        """The in-place step when one is in use, False when the generic one is, None before the first step."""
        return None if self._impl is None else (self._impl if self._impl.writes_in_place else False)

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
        net.parameters = {k: v if mine.get(k) is v else _xp.copy_array(v) for k, v in net.parameters.items()}
        opt.state = {k: v if mine_state.get(k) is v else _xp.copy_array(v) for k, v in opt.state.items()}
        self._owned = (net.parameters, opt.state, dict(net.parameters), dict(opt.state))

    def _note_new_state(self) -> None:
        # The in-place step allocated optimizer state on its first update: that array is its own.
        if self._owned is not None and len(self._owned[3]) != len(self.optimizer.state):
            self._owned[3].update(self.optimizer.state)

    def snapshot_parameters(self) -> dict[str, Any]:
        """The current parameters as arrays no later step writes into (copies when the in-place step runs)."""
        params = self.network.parameters
        if self._impl is not None and self._impl.writes_in_place:
            return {k: _xp.copy_array(v) for k, v in params.items()}
        # The generic updates build new arrays and never write into old ones: the dict is a snapshot.
        return dict(params)

    @property
    def writes_files(self) -> bool:
        """Whether this process writes checkpoints, model files and progress: rank 0 of a data-parallel run."""
        return self.communicator is None or self.communicator.rank == 0

    def _step(self, xp: Any, Xb: Any, Yb: Any, lr: float, masks: Any, wb: Any) -> tuple[Any, Any]:
        """Forward, cost, backward, hook and update on one batch; returns ``(cost, AL)`` (0-d and (n_L, b) arrays).

        ``AL`` may live in a buffer the next step overwrites: use it before then."""
        if Xb.shape[1] == 0:  # an empty shard of a data-parallel batch: it joins the sum and the update
            return parallel.empty_step(self, xp, Yb, lr)
        impl = self._current_step()
        penalty = parallel.local_penalty(self, xp, Xb.shape[1])  # counted by rank 0 only
        if not impl.writes_in_place:  # the generic step counts the update itself
            out = impl(self.network, self.optimizer, Xb, Yb, lr, masks, wb)
        else:
            self._adopt()
            self.optimizer.t += 1
            out = impl(self.network, self.optimizer, Xb, Yb, lr, masks, wb)
            self._note_new_state()
        return out if penalty is None else (out[0] - penalty, out[1])

    def _in_dtype(self, xp: Any, X: Any, Y: Any, w: Any) -> tuple[Any, Any, Any]:
        # Data in another dtype (NumPy's default float64 for a float32 network) is cast once here: the generic
        # step would otherwise promote the parameters silently, and the two paths would differ.
        dt = self.network.dtype
        return tuple(a if a is None or a.dtype == dt else xp.astype(a, dt) for a in (X, Y, w))

    def _array_source(self, xp: Any, X: Any, Y: Any, w: Any) -> ArrayBatches:
        """The batch source of lecture-layout arrays handed to :meth:`fit`, checked and cast to the network's
        dtype."""
        net = self.network
        for name, A in (("X", X), ("Y", Y)):
            if not hasattr(A, "ndim") or A.ndim != 2:
                raise ShapeError(f"Trainer.fit takes the lecture's layout: {name} must be a 2-D array (features or "
                                 f"outputs, m), got {getattr(A, 'shape', type(A).__name__)}, or X an "
                                 "xpnet.engine.BatchSource with Y=None; DNN.train and the estimators accept other "
                                 "forms")
        n_x, n_out = net.layer_dims[0], net.layer_dims[-1]
        if X.shape[0] != n_x or Y.shape[0] != n_out or Y.shape[1] != X.shape[1] or X.shape[1] == 0:
            hint = " (rows are examples here: pass X.T and Y.T)" if X.shape[1:] == (n_x,) else ""
            raise ShapeError(f"Trainer.fit takes X ({n_x}, m) and Y ({n_out}, m) with the same m > 0 examples as "
                             f"columns, got X {tuple(X.shape)} and Y {tuple(Y.shape)}{hint}")
        for name, A in (("X", X), ("Y", Y), ("sample_weight", w)):
            if A is not None:
                check_owned(net.backend, name, A)
        X, Y, w = self._in_dtype(xp, X, Y, w)
        return ArrayBatches.from_columns(net.backend, X, Y, w)

    def step(self, X: Any, Y: Any, sample_weight: Any = None) -> Any:
        """One optimization step on one mini-batch: forward, fused cost, backward, optimizer update.

        ``X`` is ``(n_x, b)`` and ``Y`` ``(n_L, b)`` on the network's backend (cast to its dtype, as :meth:`fit`
        does); ``sample_weight`` is ``(1, b)`` or None. On NumPy, CuPy and torch the step updates the parameters in
        place: an array read from ``network.parameters`` between two steps changes with the next one. The
        learning rate is the schedule's at the current epoch and dropout masks come from the trainer's stream,
        so a loop of ``step`` calls over an epoch's batches trains like :meth:`fit`. Returns the batch cost
        ``(1/b) sum_j w_j loss_j + (lambd/(2b)) sum_l ||W[l]||_F^2`` as a 0-d device array (no host sync).
        """
        if getattr(X, "ndim", None) != 2 or getattr(Y, "ndim", None) != 2 or X.shape[1] != Y.shape[1]:
            raise ShapeError(f"Trainer.step takes X (n_x, b) and Y (n_L, b) with the same b, got "
                             f"{getattr(X, 'shape', type(X).__name__)} and {getattr(Y, 'shape', type(Y).__name__)}")
        xp = self.network.backend.xp
        with self.network.backend.activate():  # CuPy allocates and launches on the current device: the network's
            X, Y, sample_weight = self._in_dtype(xp, X, Y, sample_weight)
            masks = next(self._mask_chunks(X.shape[1], X.shape[1])) if self.keep else None
            return self._step(xp, X, Y, self.schedule(self.epoch), masks, sample_weight)[0]

    # ------------------------------------------------------------------------------------ one epoch
    def _batch_order(self, m: int, source: Any = None) -> Any:
        """This epoch's order of the examples: a permutation from the seeded "shuffle" stream (the same on every
        backend; a source's own ``epoch_order(rng)`` where it has one, e.g. a file's chunked shuffle), or None
        (stored order) without shuffling."""
        if not self.shuffle:
            return None
        draw = getattr(source, "epoch_order", None)
        return self._shuffle_rng.permutation(m) if draw is None else draw(self._shuffle_rng)

    def _spread(self, xp: Any, key: Any, targets: Any) -> Any:
        """The targets' spread (R^2's denominator) on the host: it does not change between epochs (nor under
        shuffling), so it is read back once per fit for each target set (``key`` keeps it alive). ``targets()``
        gives the ``(n_L, m)`` targets; it is called only then."""
        cached = self._totals.get(id(key))
        if cached is None or cached[0] is not key:
            cached = self._totals[id(key)] = (key, self.network.backend.to_numpy(target_spread(xp, targets())))
        return cached[1]

    def _readback(self, xp: Any, loss: Any, metric: Any) -> tuple[float, Any]:
        # One transfer for the loss and the metric terms together.
        host = self.network.backend.to_numpy(xp.concat([xp.reshape(loss, (1,)), xp.astype(metric, loss.dtype)]))
        if self.communicator is not None:  # the epoch's sums over every rank's shards
            host = self.communicator.allreduce_host(host.astype("float64"))
        return float(host[0]), host[1:]

    def _mask_chunks(self, m: int, bs: int) -> Any:
        """The dropout masks of an epoch's batches, in order (:func:`xpnet.engine.dropout.mask_chunks`); a rank of a
        data-parallel run draws the global batch's (the same stream whatever the number of ranks), uses its columns."""
        net = self.network
        masks = mask_chunks(self._dropout_rng, net.backend, net.layer_dims, self.keep, net.dtype, m, bs)
        return masks if self.communicator is None else parallel.shard_masks(masks, self.communicator)

    def _run_epoch(self, xp: Any, source: BatchSource) -> tuple[float, float]:
        net = self.network
        out = net.output.name
        m = source.m
        bs = check_batch_size(self.batch_size, m)
        lr = self.schedule(self.epoch)
        masks = self._mask_chunks(m, bs) if self.keep else None
        loss_sum = metric_sum = None
        costs = []  # each batch's 0-d cost, on the device: read back only if the epoch diverged
        for Xb, Yb, wb in source.batches(self._batch_order(m, source), bs):
            cost, AL = self._step(xp, Xb, Yb, lr, next(masks) if masks else None, wb)
            costs.append(cost)
            # Terms are summed on the device; the host reads them once, after the epoch.
            batch_loss = cost * Xb.shape[1]
            batch_metric = metric_terms(xp, out, AL, Yb, getattr(source, "batch_labels", None))
            loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
            metric_sum = batch_metric if metric_sum is None else metric_sum + batch_metric
        n_batches = len(costs)
        # Each batch's cost carries lambd/(2 m_b) sum||W||^2, so the epoch's running loss carries
        # n_batches * lambd / (2m) sum||W||^2: the validation loss gets the same penalty (see evaluate).
        self._penalty_scale = n_batches / m
        # The last update of an epoch can make the parameters non-finite while every batch's loss (computed
        # before it) was finite. A probe rides along in the same transfer: the sum of all parameters, one
        # reduction per array without temporaries, is finite unless an entry is not (or the sum overflows: then
        # the entries are counted exactly, a second read-back on that rare path only).
        probe = sum(xp.sum(p) for p in net.parameters.values())
        loss, numerators = self._readback(xp, loss_sum, xp.concat([xp.astype(metric_sum, loss_sum.dtype),
                                                                   xp.reshape(xp.astype(probe, loss_sum.dtype),
                                                                              (1,))]))
        finite_parameters = math.isfinite(numerators[-1]) or not self._count_non_finite(xp)
        if not math.isfinite(loss) or not finite_parameters:
            raise self._diverged(xp, costs, loss / m, lr, parameters_finite=finite_parameters)
        # A runaway: finite, but grown far beyond where the run started (float64 can hold a loss of 1e300).
        # The reference is the first accepted epoch of this fit call (of the original run, after a resume: it is
        # in the checkpoint's history), so a resumed run stops where the uninterrupted one would, and a
        # partial_fit call (one epoch) on data of another scale is not measured against an earlier call's.
        losses = self.history["loss"]
        if len(losses) > self._run_start and loss / m > runaway_limit(losses[self._run_start]):
            raise self._diverged(xp, costs, loss / m, lr, runaway=losses[self._run_start])
        spread = self._spread(xp, source, source.targets) if out == "linear" else None
        return loss / m, finish_metric(out, numerators[:-1], m, spread)

    def _count_non_finite(self, xp: Any) -> int:
        """How many parameter entries are NaN or infinite (one read-back)."""
        bad = sum(xp.sum(xp.astype(xp.logical_not(xp.isfinite(p)), p.dtype)) for p in self.network.parameters.values())
        return int(self.network.backend.to_numpy(bad))

    def _diverged(self, xp: Any, costs: list[Any], loss: float, lr: float, **kwargs: Any) -> DivergenceError:
        """The :class:`DivergenceError` of the current epoch (:func:`xpnet.engine.divergence.divergence_error`)."""
        return divergence_error(self, xp, costs, loss, lr, **kwargs)

    def evaluate(self, X: Any, Y: Any, w: Any = None) -> tuple[float, float]:
        """Loss and metric of the current parameters on ``(X, Y)``, without dropout.

        The loss includes the L2 penalty at the scale the training loss carries it (``lambd/(2 b) sum||W||^2``
        for batches of ``b``), so the train and validation curves measure the same objective.
        """
        with self.network.backend.activate():
            return self._evaluate(X, Y, w)

    def _evaluate(self, X: Any, Y: Any, w: Any) -> tuple[float, float]:
        if self.communicator is not None:
            return parallel.evaluate_sharded(self, X, Y, w)
        net = self.network
        xp = net.backend.xp
        # Forward only: the validation set needs the cost and the outputs, not a backward pass.
        ZL, AL = forward_output(xp, net.parameters, X, net.hidden, net.output)
        cost = net.loss.fused_cost(xp, ZL, Y, w)
        if self.l2:
            scale = getattr(self, "_penalty_scale", 1.0 / check_batch_size(self.batch_size, X.shape[1]))
            cost = cost + (0.5 * self.l2 * scale) * l2_penalty(xp, net.parameters)
        out = net.output.name
        loss, numerators = self._readback(xp, cost, metric_terms(xp, out, AL, Y))
        spread = self._spread(xp, Y, lambda: Y) if out == "linear" else None
        return loss, finish_metric(out, numerators, Y.shape[1], spread)

    # ----------------------------------------------------------------------------------------- fit
    def fit(self, X: Any, Y: Any = None, *, epochs: int, validation_data: tuple[Any, Any] | None = None,
            sample_weight: Any = None, callbacks: Iterable[Callback] = (), checkpoint: Any = None,
            checkpoint_every: int = 1, resume: bool = False) -> History:
        """Train for ``epochs`` more epochs (fewer if a callback stops it) and return the history.

        Parameters
        ----------
        X : (n_x, m) array on the network's backend (cast to its dtype), or a
            :class:`~xpnet.engine.batches.BatchSource` (then ``Y`` and ``sample_weight`` are None: the source
            holds them). An array is served by :class:`~xpnet.engine.batches.ArrayBatches`: each mini-batch is a
            block of rows of ``X^T`` (the sample-major data the estimators hand in), gathered into a buffer that
            the whole run reuses, and the lecture's layout is its transposed view.
        Y : (n_L, m) float targets (:func:`xpnet.lecture.losses.as_targets`)
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
            The epoch's training loss, its validation loss or the parameters after it are NaN or infinite, or the
            training loss ran away: more than 1e6 times the first epoch loss of this call (of the original run
            after a resume; floor 1), so a ``partial_fit`` call of one epoch is never measured this way. The
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
        xp = self.network.backend.xp
        if isinstance(X, BatchSource):
            if Y is not None or sample_weight is not None:
                raise ConfigError("Trainer.fit takes a BatchSource alone: its targets and weights come from it "
                                  "(pass Y=None and sample_weight=None)")
            source = X if isinstance(X, ArrayBatches) else CheckedSource(X, self.network)
        else:
            with self.network.backend.activate():  # CuPy allocates on the current device: the network's
                source = self._array_source(xp, X, Y, sample_weight)
        if isinstance(source, ArrayBatches) and self.network.output.name == "softmax":
            source.keep_labels()  # the classes once per run, not an argmax over the targets at every step
        if self.communicator is not None:
            source = parallel.ShardedBatches(source, self.communicator, self.gradient_hook)
        active = self.callbacks + list(callbacks)
        for cb in active:
            if not isinstance(cb, Callback):
                raise ConfigError(f"callbacks must be xpnet.training.Callback objects, got {cb!r}")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, numbers.Integral) \
                or checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be a positive integer (epochs), got {checkpoint_every!r}")
        if resume and checkpoint is None:
            raise ConfigError("resume=True needs checkpoint=PATH, the file to resume from")
        if validation_data is not None:  # cast before the checkpoint's fingerprint is taken of it
            with self.network.backend.activate():
                validation_data = self._in_dtype(xp, *validation_data, None)[:2]
        config = None
        loaded = None
        if checkpoint is not None:
            checkpoint = check_checkpoint_path(checkpoint) if self.writes_files else parallel.read_path(checkpoint)
            config = run_config(self, source, validation_data)
            if resume and checkpoint.exists():
                loaded = read_checkpoint(self, checkpoint, config, active)
        saving = checkpoint is not None and self.writes_files  # rank 0 alone writes in a data-parallel run
        if saving:
            remove_stale_temporaries(checkpoint)
        self._owned = None  # the in-place step copies the parameters once per call (arrays read meanwhile stay)
        self.stop_training = False
        self.divergence = None
        self.resumed_epoch = None
        self._run_start = len(self.history)
        # Out-of-memory errors of any backend become DeviceMemoryError naming the batch size (for DNN.train,
        # the estimators and the command alike).
        oom = _xp.translating_oom("training", check_batch_size(self.batch_size, source.m), how="batch_size={n}")
        try:
            with self.network.backend.activate(), oom:
                if loaded is not None:
                    restore_checkpoint(self, *loaded)
                    self._run_start = 0
                n_epochs = max(0, int(epochs) - self.epoch) if resume else int(epochs)
                self.planned_epochs = n_epochs
                start = time.perf_counter() - (self.history["time"][-1] if len(self.history) else 0.0)
                written = self.epoch if loaded is not None else None  # the epoch the file on disk holds
                for cb in active:
                    cb.on_train_begin(self)
                try:
                    if loaded is not None:
                        restore_callback_states(self, *loaded, active)
                    for _ in range(n_epochs):
                        if self.stop_training:  # resumed from a run a callback had stopped
                            break
                        for cb in active:
                            cb.on_epoch_begin(self, self.epoch)
                        lr = self.schedule(self.epoch)
                        before = self._epoch_snapshot()
                        try:
                            loss, metric = self._run_epoch(xp, source)
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
                        if saving and (self.epoch % checkpoint_every == 0 or self.stop_training):
                            write_checkpoint(self, checkpoint, config, active)
                            written = self.epoch
                        if self.stop_training:
                            break
                    if saving and written != self.epoch and len(self.history):
                        write_checkpoint(self, checkpoint, config, active)
                finally:
                    self._totals.clear()  # it holds the targets alive
                    # A fitted model holds its parameters and optimizer state, not the run's batch and step buffers.
                    source.release()
                    if self._impl is not None:
                        self._impl.release()
                    for cb in active:
                        cb.on_train_end(self)
        except DeviceMemoryError:
            # This frame stays in the error's traceback: the epoch's snapshot (a copy of the parameters and the
            # optimizer state) must not stay allocated for the retry the message suggests.
            before = None
            raise
        return self.history

    # ------------------------------------------------------------------------ divergence snapshots
    def _epoch_snapshot(self) -> tuple[Any, ...]:
        """What the trainer goes back to when an epoch diverges: parameters, optimizer state and count, the
        generators' states. Copies only where the in-place step would write into the arrays."""
        opt = self.optimizer
        in_place = self._impl is not None and self._impl.writes_in_place
        state = {k: _xp.copy_array(v) for k, v in opt.state.items()} if in_place else dict(opt.state)
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

"""The L-layer network, trained by full-batch gradient descent (the lecture's ``L_layer_model``).

Training takes the fused path (:func:`fused_gradients`) rather than the lecture's literal chain:

* the output activation is fused with its loss, so ``dZL = AL - Y`` and the cost comes from the logits
  ``ZL`` (``logaddexp`` / max-shifted log-sum-exp): no NaN when a sigmoid saturates;
* the backward pass stops at ``dW1, db1``: the gradient with respect to the input features (``dA0``) is
  not needed to train the weights;
* the namespace is resolved once per call, not once per layer;
* the cost stays a 0-d device array and is read back to the host only on iterations where it is recorded.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from .device import xp as _xp
from .device.auto import resolve_for_problem
from .device.backend import Backend, get_backend
from .engine import EarlyStopping, Trainer, split_indices
from .engine.divergence import RUNAWAY_FACTOR, runaway_limit
from .engine.optimizers import default_decay_steps
from .errors import (
    ConfigError,
    DeviceMemoryError,
    DeviceMismatchError,
    DivergenceError,
    InputTypeError,
    InvalidValueError,
    ModelFileError,
    NamespaceMismatchError,
    ShapeError,
    XpnetError,
)
from .lecture.activations import Activation, get_activation
from .lecture.functional import _check_layer_dims, _check_learning_rate, initialize_parameters, labels_from_output
from .lecture.losses import as_targets
from .lecture.network import forward_output, fused_gradients, l2_penalty, training_loss

__all__ = ["DNN", "forward_output", "fused_gradients", "l2_penalty", "training_loss"]


def _on_device(method: Any) -> Any:
    """Run a DNN method with the network's device current (CuPy launches kernels on the current device, so
    a network on cupy:1 needs device 1 current for everything it computes, not only the training loop)."""

    @functools.wraps(method)
    def wrapper(self: DNN, *args: Any, **kwargs: Any) -> Any:
        with self.backend.activate():
            return method(self, *args, **kwargs)

    return wrapper


# Inference runs in chunks of columns whose activations take at most about this many bytes (see
# predict_chunk_size): predicting a large X needs bounded device memory beyond X and the output.
_PREDICT_CHUNK_BYTES = 256 * 2**20
# Arrays of a chunk's width alive at once in a forward pass: A[l-1], Z[l], A[l] and an activation's temporaries
# (the sigmoid makes a few).
_LIVE_ARRAYS = 6


def predict_chunk_size(layer_dims: Sequence[int], itemsize: int) -> int:
    """Columns per forward pass at inference: ``c = _PREDICT_CHUNK_BYTES // (_LIVE_ARRAYS * n_max * itemsize)``,
    at least 1, where ``n_max = max(layer_dims)`` is the widest layer and ``itemsize`` the bytes of one value
    (4 for float32): the (n_l, c) activations of a chunk then take at most about ``_PREDICT_CHUNK_BYTES``."""
    return max(1, _PREDICT_CHUNK_BYTES // (_LIVE_ARRAYS * max(layer_dims) * itemsize))


def _check_outputs_finite(xp: Any, AL: Any, backend: Any) -> None:
    """The outputs of finite inputs must be finite: one read-back per prediction call; on the error path the
    examples are named (a model with huge finite weights, forged or diverged, overflows here)."""
    if _xp.all_finite(xp, AL):
        return
    bad = backend.to_numpy(xp.logical_not(xp.all(xp.isfinite(AL), axis=0)))
    rows = [int(i) for i in bad.nonzero()[0]]
    shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
    raise InvalidValueError(f"the network's output is not finite (NaN or infinity) for {len(rows)} of {AL.shape[1]} "
                            f"examples (rows {shown}) although the inputs are: its parameters are too large or not "
                            "finite for these inputs; retrain the model or check where its file came from")


def _check_predict_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer (columns per forward pass) or None for "
                          f"automatic, got {batch_size!r}")
    return int(batch_size)


class DNN:
    """An L-layer dense network in the lecture's layout (columns are examples).

    ``[LINEAR -> hidden] x (L-1) -> LINEAR -> output``, trained by full-batch gradient descent on the loss
    that pairs with ``output`` (sigmoid: binary cross-entropy, softmax: categorical cross-entropy,
    linear: mse).

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_x, n_1, ..., n_L]``.
    hidden, output : activation names (see :mod:`xpnet.activations`)
    init : "he", "xavier" (the course's sqrt(1/n_prev), LeCun's scale), "glorot" (what PyTorch and Keras call
        Xavier) or "scaled_normal"
    seed : int; the same seed gives the same initial weights on every backend
    dtype : "float32" (default) or "float64"
    backend : spec string, Backend, or None for the current default (:func:`xpnet.get_backend`)

    Inputs may be NumPy arrays (moved to the backend and converted to the network's dtype) or arrays of the
    network's own backend and device; outputs come back in the namespace of the input. Integer and boolean
    ``X`` is cast to the network's dtype. An array of another library or device is an error
    (:class:`~xpnet.errors.NamespaceMismatchError`, :class:`~xpnet.errors.DeviceMismatchError`), and so is
    NaN or infinity in ``X`` or ``Y`` (:class:`~xpnet.errors.InvalidValueError`, checked once per call).

    Attributes
    ----------
    parameters : dict of backend arrays ``W1, b1, ..., WL, bL``
    costs : list of float, the recorded costs
    cost_iterations : list of int, the iteration of each recorded cost
    n_iter_ : int, iterations trained so far
    """

    def __init__(
        self,
        layer_dims: Sequence[int],
        *,
        hidden: str | Activation = "relu",
        output: str | Activation = "sigmoid",
        init: str = "he",
        seed: int | None = 0,
        dtype: Any = "float32",
        backend: str | Backend | None = None,
    ) -> None:
        self.layer_dims = _check_layer_dims(layer_dims)
        self.hidden = get_activation(hidden)
        self.output = get_activation(output)
        self.loss = training_loss(self.output)
        if self.output.name == "softmax" and self.layer_dims[-1] < 2:
            raise ConfigError(f"a softmax output needs at least 2 units (one per class), got layer_dims "
                              f"{self.layer_dims}; for two classes use 2 units, or 1 unit with output='sigmoid'")
        # "auto" chooses by the network's size (xpnet.device.auto); backend_choice says what it chose and why.
        self.backend, self.backend_choice = resolve_for_problem(backend, self.layer_dims)
        self.dtype = self.backend.float_dtype(dtype)
        self.init = init
        self.seed = seed
        self.parameters = initialize_parameters(
            self.layer_dims, init=init, seed=seed, dtype=self.dtype, backend=self.backend
        )
        self.costs: list[float] = []
        self.cost_iterations: list[int] = []
        self.n_iter_ = 0
        self.history: Any = None

    def __repr__(self) -> str:
        return (f"DNN({self.layer_dims}, hidden={self.hidden.name!r}, output={self.output.name!r}, "
                f"dtype={_xp.dtype_name(self.backend.xp, self.dtype)!r}, backend={self.backend.spec!r})")

    @property
    def num_layers(self) -> int:
        """``L``, the number of layers with weights (``len(layer_dims) - 1``)."""
        return len(self.layer_dims) - 1

    # ------------------------------------------------------------------------------ input boundary
    def _to_backend(self, X: Any, name: str, *, check_values: bool = True) -> tuple[Any, bool]:
        """Move ``X`` onto the network's backend; returns ``(array, give_back_numpy)``: outputs go back to NumPy
        unless the input was already an array of this backend. With ``check_values``, NaN or infinity is an
        :class:`~xpnet.errors.InvalidValueError` (one boolean read back per call, at this boundary only)."""
        bk = self.backend
        owned = bk.owns(X)
        if owned or not _xp.is_array(X) or _xp.is_numpy_array(X):
            # asarray checks the data is numeric, detaches torch tensors and casts X to the network's dtype
            # (integer X included: the documented cast).
            try:
                arr = bk.asarray(X, dtype=self.dtype if name == "X" else None)
            except InputTypeError as exc:
                raise InputTypeError(f"{name}: {exc}") from None
            if check_values:
                _xp.check_finite(bk.xp, arr, name)
            return arr, not owned
        ns = _xp.namespace_of(X)
        if ns is bk.xp:
            raise DeviceMismatchError(
                f"{name} is on device {_xp.device_of(X)!r} but this network lives on {bk.device!r}; "
                f"move it with network.backend.asarray({name})"
            )
        raise NamespaceMismatchError(
            f"{name} is a {type(X).__module__}.{type(X).__name__} but this network computes on {bk.spec}; "
            f"pass a NumPy array or an array of {bk.spec} (xpnet.to_numpy({name}) converts)"
        )

    def _check_X(self, X: Any) -> tuple[Any, bool]:
        """``X`` on the backend in the network's dtype (integer and bool ``X`` cast), shape ``(n_x, m > 0)``,
        finite (one boolean read back per public call)."""
        X, from_numpy = self._to_backend(X, "X", check_values=False)
        n_x = self.layer_dims[0]
        if X.ndim != 2 or X.shape[0] != n_x:
            raise ShapeError(f"X has shape {tuple(X.shape)} but this network takes ({n_x}, m): "
                             "rows are features, columns are examples (transpose scikit-learn-style data)")
        if X.shape[1] == 0:
            raise ShapeError(f"X has shape {tuple(X.shape)}: no examples (0 columns); pass at least one example")
        _xp.check_finite(self.backend.xp, X, "X")
        return X, from_numpy

    def _out(self, x: Any, to_numpy: bool) -> Any:
        return self.backend.to_numpy(x) if to_numpy else x

    # ------------------------------------------------------------------------------------- training
    @_on_device
    def fit(
        self,
        X: Any,
        Y: Any,
        learning_rate: float = 0.0075,
        num_iterations: int = 3000,
        *,
        print_every: int | None = None,
        record_every: int = 100,
    ) -> DNN:
        """Train by full-batch gradient descent, continuing from the current parameters.

        Each iteration: forward, fused backward (``dZL = AL - Y``), then ``W = W - learning_rate * dW``,
        ``b = b - learning_rate * db`` for every layer.

        Parameters
        ----------
        X : (n_x, m) array
        Y : (n_L, m) labels; also ``(m,)`` for one output, or integer class labels for softmax
        learning_rate : positive float
        num_iterations : int >= 0
        print_every : print ``Cost after iteration i: c`` every this many iterations (None: silent)
        record_every : append the cost to ``costs`` every this many iterations (and at the last one)

        Returns
        -------
        self

        Raises
        ------
        DivergenceError
            A recorded cost is NaN or infinite or ran away (more than 1e6 times this call's first recorded cost,
            floor 1), or the last update made the parameters non-finite. The check happens
            where the cost is read back anyway (every ``record_every`` iterations, plus one read-back at the
            end), so the network goes back to the parameters of the last *recorded* iteration whose cost was
            finite, and ``n_iter_`` to that iteration (a copy of the parameters per recorded iteration where
            the step updates in place).

        Training runs through the engine (:class:`xpnet.engine.Trainer`'s step: the in-place step on NumPy and
        CuPy, which updates the parameter arrays of ``parameters`` in place, the generic step elsewhere). Arrays
        passed in or read from ``parameters`` before the call are never written into; arrays read during a call
        are live (an interrupted call may leave its last step half applied: layers ``L`` down to ``l`` updated).
        """
        lr = _check_learning_rate(learning_rate)
        for name, value, low in (("num_iterations", num_iterations, 0), ("record_every", record_every, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if print_every is not None and (not isinstance(print_every, numbers.Integral) or print_every < 1):
            raise ConfigError(f"print_every must be a positive integer or None, got {print_every!r}")
        X, _ = self._check_X(X)
        Yb, _ = self._to_backend(Y, "Y")
        xp = self.backend.xp
        Y = as_targets(xp, Yb, self.layer_dims[-1], X.shape[1], self.dtype, self.loss, device=self.backend.device)
        try:
            with _xp.translating_oom("training by full-batch gradient descent", X.shape[1],
                                     how="DNN.train(X, Y, batch_size={n}), which trains on mini-batches"):
                self._train(xp, X, Y, lr, int(num_iterations), print_every, record_every)
        except DeviceMemoryError:
            # This frame stays in the error's traceback: it must not keep the device copies of the data alive
            # for the retry the message suggests.
            X = Y = Yb = None
            raise
        return self

    @_on_device
    def train(
        self,
        X: Any,
        Y: Any,
        *,
        epochs: int = 100,
        batch_size: int | str = 64,
        shuffle: bool = True,
        optimizer: str | Any = "adam",
        learning_rate: float = 0.001,
        schedule: str | Any = None,
        l2: float = 0.0,
        dropout: float | Sequence[float] = 0.0,
        validation_data: tuple[Any, Any] | None = None,
        validation_fraction: float | None = None,
        early_stopping: bool | int | Any = False,
        callbacks: Sequence[Any] = (),
        verbose: int = 0,
        seed: int | None = None,
        checkpoint: Any = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        **options: Any,
    ) -> Any:
        """Train with mini-batches, an optimizer, L2 and dropout (see :class:`xpnet.training.Trainer`).

        Each epoch shuffles the ``m`` columns (xpnet's seeded generator), then for every mini-batch of
        ``batch_size`` columns runs the fused forward/backward pass (inverted dropout on the hidden layers,
        ``+ (lambd/m) W`` in ``dW``) and one optimizer update.

        Parameters
        ----------
        X : (n_x, m) array; Y : labels in any form :meth:`fit` takes
        epochs : passes over the data
        batch_size : int, ``"full"`` (full-batch, the lecture's) or ``"auto"`` (``min(200, m)``)
        shuffle : reshuffle the columns every epoch (False: batches in the given order)
        optimizer : ``"gd"``, ``"momentum"``, ``"rmsprop"`` or ``"adam"``
        learning_rate, schedule : the initial rate and its schedule (see :mod:`xpnet.optimizers`)
        l2 : L2 strength ``lambd``; dropout : rate(s) for the hidden layers
        validation_data : ``(X_val, Y_val)``, evaluated after every epoch
        validation_fraction : or split this fraction off ``X`` (stratified for sigmoid/softmax outputs)
        early_stopping : ``True`` (patience 10 on ``val_loss``, or ``loss`` without validation), an int
            patience, or an :class:`~xpnet.training.EarlyStopping`
        callbacks : more :class:`~xpnet.training.Callback` objects; verbose : 1 for a progress bar (one line per
            epoch off a terminal, as in a notebook), 2 for lines always
        seed : seeds shuffling, dropout and the split (default: the network's seed)
        checkpoint, checkpoint_every, resume : save the training state to the file ``checkpoint`` every
            ``checkpoint_every`` epochs and, with ``resume``, go on from it: ``epochs`` is then the run's total
            (see :meth:`xpnet.training.Trainer.fit`)
        options : ``beta``, ``beta1``, ``beta2``, ``epsilon``, ``decay_rate``, ``decay_steps`` (default: the
            whole run for ``cosine``, a quarter of it for ``step``, 1 epoch otherwise), ``min_lr``, and
            ``communicator`` (data-parallel training under ``mpiexec``: ``xpnet.distributed.world()``)

        Returns
        -------
        :class:`~xpnet.training.History`, also kept as ``self.history``.

        Raises
        ------
        DivergenceError
            The loss became NaN or infinite or ran away; the network keeps the parameters of the last epoch whose loss
            was finite (see :meth:`xpnet.training.Trainer.fit`).
        """
        allowed = ("beta", "beta1", "beta2", "epsilon", "decay_rate", "decay_steps", "min_lr", "communicator")
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ConfigError(f"DNN.train got unknown option(s) {', '.join(unknown)}; besides its named parameters "
                              f"it takes {', '.join(allowed)}")

        X, _ = self._check_X(X)
        Yb, _ = self._to_backend(Y, "Y")
        xp, bk = self.backend.xp, self.backend
        T = as_targets(xp, Yb, self.layer_dims[-1], X.shape[1], self.dtype, self.loss, device=bk.device)
        validation = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ConfigError("validation_data must be a pair (X_val, Y_val)")
            Xv, _ = self._check_X(validation_data[0])
            Yv, _ = self._to_backend(validation_data[1], "Y_val")
            validation = (Xv, as_targets(xp, Yv, self.layer_dims[-1], Xv.shape[1], self.dtype, self.loss,
                                         device=bk.device))
        elif validation_fraction is not None:
            labels = None
            if self.output.name in ("sigmoid", "softmax"):
                host = bk.to_numpy(T)
                labels = host.argmax(axis=0) if host.shape[0] > 1 else host[0] > 0.5
            train_idx, val_idx = split_indices(X.shape[1], validation_fraction,
                                               self.seed if seed is None else seed, labels)
            ti, vi = bk.asarray(train_idx), bk.asarray(val_idx)
            # Rows of the sample-major view: each part comes out row-major, as the engine's batch source keeps it
            # (a column gather would give C-ordered (n_x, m) parts, copied back to rows once more).
            validation = (xp.take(X.T, vi, axis=0).T, xp.take(T, vi, axis=1))
            X, T = xp.take(X.T, ti, axis=0).T, xp.take(T, ti, axis=1)
        cbs = list(callbacks)
        if early_stopping is not False and early_stopping is not None:
            if isinstance(early_stopping, EarlyStopping):
                cbs.insert(0, early_stopping)
            else:
                patience = 10 if early_stopping is True else early_stopping
                cbs.insert(0, EarlyStopping("val_loss" if validation else "loss", patience=patience))
        if "decay_steps" not in options:
            options["decay_steps"] = default_decay_steps(schedule, epochs)
        trainer = Trainer(self, optimizer=optimizer, learning_rate=learning_rate, schedule=schedule,
                          batch_size=batch_size, shuffle=shuffle, l2=l2, dropout=dropout, seed=seed, callbacks=cbs,
                          verbose=verbose, **options)
        try:  # Trainer.fit translates out-of-memory errors (DeviceMemoryError with a batch size to try)
            trainer.fit(X, T, epochs=epochs, validation_data=validation, checkpoint=checkpoint,
                        checkpoint_every=checkpoint_every, resume=resume)
        finally:
            self.history = trainer.history  # the finite epochs, also when training diverged
        return self.history

    def _train(self, xp: Any, X: Any, Y: Any, lr: float, num_iterations: int, print_every: int | None,
               record_every: int) -> None:
        # One engine for every way of training: the trainer's step seam picks the in-place step on NumPy and CuPy
        # (the same bits as the generic one) and the generic step elsewhere. Full batch, no shuffling, plain
        # gradient descent: W = W - learning_rate * dW, b = b - learning_rate * db.
        trainer = Trainer(self, optimizer="gd", learning_rate=lr, batch_size="full", shuffle=False)
        # Divergence is checked where the cost is read back anyway (recorded iterations), against the
        # parameters that cost was computed from: a snapshot taken before that step (a copy only where the step
        # updates in place, once per recorded iteration).
        last_good = (self.parameters, self.n_iter_)
        reference = None  # the first recorded cost of this call, for the runaway rule
        for i in range(num_iterations):
            last = i == num_iterations - 1
            show = print_every is not None and (i % print_every == 0 or last)
            record = i % record_every == 0 or last or show
            before = trainer.snapshot_parameters() if record else None
            cost, _ = trainer._step(xp, X, Y, lr, None, None)
            if record:
                value = float(cost)  # the only host sync of an iteration, and only when recorded
                if not math.isfinite(value):
                    raise self._diverged(f"the cost became {value!r} at iteration {self.n_iter_}", value,
                                         self.n_iter_, last_good, lr, record_every, i == 0)
                if reference is None:
                    reference = value
                elif value > runaway_limit(reference):
                    raise self._diverged(f"the cost ran away to {value:.3g} at iteration {self.n_iter_}, more than "
                                         f"{RUNAWAY_FACTOR:.0e} times this call's first recorded cost {reference:.3g} "
                                         "(finite, but growing without bound)", value, self.n_iter_, last_good, lr,
                                         record_every, False)
                last_good = (before, self.n_iter_)
                self.costs.append(value)
                self.cost_iterations.append(self.n_iter_)
                if show:
                    print(f"Cost after iteration {self.n_iter_}: {value:.6f}")
            self.n_iter_ += 1
        # The last update comes after the last recorded cost: one read-back per call checks what it made.
        if num_iterations and not bool(xp.all(xp.stack([xp.all(xp.isfinite(p)) for p in self.parameters.values()]))):
            raise self._diverged(f"the parameters became non-finite at the last update (iteration "
                                 f"{self.n_iter_ - 1})", math.nan, self.n_iter_ - 1, last_good, lr, record_every,
                                 False)

    def _diverged(self, what: str, value: float, iteration: int, last_good: tuple[Any, int], lr: float,
                  record_every: int, at_start: bool) -> Exception:
        """The :class:`~xpnet.errors.DivergenceError` of :meth:`fit`, after putting back the parameters of the
        last recorded iteration whose cost was finite (``last_good``)."""
        self.parameters, self.n_iter_ = last_good
        kept = ("the parameters fit started from (their cost is already not finite: check them and the data)"
                if at_start else f"the parameters of iteration {self.n_iter_}, the last recorded one whose cost "
                "was finite")
        err = DivergenceError(f"training diverged: {what} (checked every record_every={record_every} iterations, "
                              f"where the cost is read back), at learning rate {lr:g}. Try a lower learning rate, "
                              f"e.g. {lr / 10:g}. The network keeps {kept}")
        err.epoch, err.step, err.global_step, err.loss, err.learning_rate = None, iteration, iteration, value, lr
        return err

    # ------------------------------------------------------------------------------------ inference
    def _forward(self, X: Any, batch_size: int | None = None, prepare: Any = None) -> Any:
        """``AL`` (n_L, m) for ``X`` (n_x, m) on the backend, ``batch_size`` columns at a time (None:
        :func:`predict_chunk_size`'s, which bounds the memory one chunk's activations take), the chunks' outputs
        concatenated on the device. Each column's forward pass involves that column alone, so the result is one
        pass's, up to the last bits a BLAS matmul may round differently for another number of columns.
        ``prepare`` (a function of one (n_x, c) chunk) is applied to each chunk first (the estimators'
        standardization). Running out of device memory is a :class:`~xpnet.errors.DeviceMemoryError` naming the
        chunk size tried and a smaller one."""
        xp = self.backend.xp
        m = X.shape[1]
        chunk = _check_predict_batch_size(batch_size)
        if chunk is None:
            chunk = predict_chunk_size(self.layer_dims, xp.finfo(self.dtype).bits // 8)
        chunk = min(chunk, m)
        with _xp.translating_oom("predicting", chunk, how="predict(X, batch_size={n}) or predict_proba"):
            parts = []
            for start in range(0, m, chunk):
                Xc = X if chunk == m else X[:, start:min(start + chunk, m)]
                if prepare is not None:
                    Xc = prepare(Xc)
                parts.append(forward_output(xp, self.parameters, Xc, self.hidden, self.output)[1])
            AL = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)
        _check_outputs_finite(xp, AL, self.backend)
        return AL

    @_on_device
    def predict_proba(self, X: Any, *, batch_size: int | None = None) -> Any:
        """The output activations ``AL`` (n_L, m) for ``X`` (n_x, m): probabilities for sigmoid/softmax outputs.

        ``batch_size``: columns per forward pass (None: as many as keep the activations of one pass within
        ``_PREDICT_CHUNK_BYTES``, 256 MiB); it changes the memory taken, not the result (beyond the last bits)."""
        X, from_numpy = self._check_X(X)
        return self._out(self._forward(X, batch_size), from_numpy)

    @_on_device
    def predict(self, X: Any, threshold: float = 0.5, *, batch_size: int | None = None) -> Any:
        """Labels for ``X`` (n_x, m): sigmoid ``AL > threshold`` (n_L, m), softmax argmax (1, m), linear ``AL``.

        ``batch_size`` as in :meth:`predict_proba`."""
        X, from_numpy = self._check_X(X)
        return self._out(labels_from_output(self._forward(X, batch_size), self.output, threshold), from_numpy)

    @_on_device
    def score(self, X: Any, Y: Any) -> float:
        """Accuracy for sigmoid/softmax outputs (fraction of the m examples whose labels all match); for other
        outputs R^2 = 1 - sum((Y - AL)^2) / sum((Y - mean_m(Y))^2) per output row, averaged over the rows.

        ``X`` is (n_x, m); ``Y`` takes the same forms as in :meth:`fit` ((n_L, m), (m,) for one output,
        one-hot (C, m) or class labels (m,) for softmax).
        """
        Xb, _ = self._check_X(X)
        Yb, _ = self._to_backend(Y, "Y")
        xp = self.backend.xp
        m = Xb.shape[1]
        T = as_targets(xp, Yb, self.layer_dims[-1], m, self.dtype, self.loss, device=self.backend.device)
        AL = self._forward(Xb)
        if self.output.name == "sigmoid":
            correct = xp.all((AL > 0.5) == (T > 0.5), axis=0)
        elif self.output.name == "softmax":
            correct = xp.argmax(AL, axis=0) == xp.argmax(T, axis=0)
        else:
            # R^2 per output, averaged uniformly (scikit-learn's r2_score default); one read-back.
            sums = self.backend.to_numpy(xp.stack([xp.sum((T - AL) ** 2, axis=1),
                                                   xp.sum((T - xp.mean(T, axis=1, keepdims=True)) ** 2, axis=1)]))
            scores = [(1.0 - r / t) if t > 0 else (1.0 if r == 0 else 0.0)
                      for r, t in zip(sums[0].tolist(), sums[1].tolist(), strict=True)]
            return sum(scores) / len(scores)
        # Counted exactly in integers: a float32 mean would print 0.9325000047 for 373/400.
        return int(xp.sum(xp.astype(correct, _xp.index_dtype(xp, self.backend.device)))) / m

    def get_parameters(self) -> dict[str, Any]:
        """The parameters as NumPy arrays (host copies): ``W{l}`` (n_l, n_{l-1}) and ``b{l}`` (n_l, 1)."""
        # to_numpy hands back NumPy (and CPU torch) memory as is; training updates it in place on NumPy, so
        # the copies are explicit.
        return {k: self.backend.to_numpy(v).copy() for k, v in self.parameters.items()}

    # ---------------------------------------------------------------------------------- model files
    def _xpnet_export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Host tensors ``W1, b1, ...`` and the JSON-able architecture, for :func:`xpnet.io.save`."""
        tensors = self.get_parameters()
        meta: dict[str, Any] = {
            "kind": "DNN",
            "network": {
                "layer_dims": list(self.layer_dims),
                "hidden": self.hidden.name,
                "output": self.output.name,
                "init": self.init,
                "seed": self.seed,
                "dtype": _xp.dtype_name(self.backend.xp, self.dtype),
                "n_iter": self.n_iter_,
            },
            "trained_on": self.backend.spec,
            "history": self.history.summary() if self.history is not None else None,
            "costs": list(self.costs),
        }
        return tensors, meta

    @classmethod
    def _xpnet_import(cls, tensors: Mapping[str, Any], meta: Mapping[str, Any], backend: Any) -> DNN:
        """Rebuild a network from :meth:`_xpnet_export`'s output on ``backend`` (None: the default backend).

        Raises :class:`~xpnet.errors.ModelFileError` when the architecture is malformed or a tensor's shape
        does not fit it.
        """
        arch = meta.get("network")
        if not isinstance(arch, Mapping):
            raise ModelFileError("the file has no 'network' architecture in its metadata")
        resolved = get_backend(backend)  # outside the try: a backend that cannot be used is the caller's error
        try:
            dtype = arch["dtype"]
            if dtype == "float64" and not resolved.supports_float64:
                # Train on a float64 device, use it anywhere: the documented fallback, said out loud.
                import warnings

                warnings.warn(f"this model was saved in float64, which {resolved.spec} does not have; it is loaded "
                              "in float32 (predictions may differ in the last digits)", UserWarning, stacklevel=3)
                dtype = "float32"
            net = cls(arch["layer_dims"], hidden=arch["hidden"], output=arch["output"], init=arch.get("init", "he"),
                      seed=0, dtype=dtype, backend=resolved)
        except KeyError as exc:
            raise ModelFileError(f"the file's architecture lacks {exc}") from None
        except XpnetError as exc:
            raise ModelFileError(f"the file's architecture is invalid: {exc}") from None
        expected = {f"W{l}": (net.layer_dims[l], net.layer_dims[l - 1]) for l in range(1, net.num_layers + 1)}
        expected.update({f"b{l}": (net.layer_dims[l], 1) for l in range(1, net.num_layers + 1)})
        missing = sorted(set(expected) - set(tensors))
        if missing:
            raise ModelFileError(f"the file lacks tensors {missing} for layer_dims {net.layer_dims}")
        params = {}
        for key, shape in expected.items():
            t = tensors[key]
            if tuple(t.shape) != shape:
                raise ModelFileError(f"tensor {key} has shape {tuple(t.shape)} but layer_dims {net.layer_dims} "
                                     f"needs {shape}")
            if t.dtype.kind != "f":
                raise ModelFileError(f"tensor {key} has dtype {t.dtype}; parameters must be floating point")
            params[key] = net.backend.asarray(t, dtype=net.dtype)
        net.parameters = params
        net.seed = arch.get("seed")
        net.n_iter_ = int(arch.get("n_iter") or 0)
        costs = meta.get("costs")
        net.costs = [float(c) for c in costs] if isinstance(costs, list) else []
        return net


class _TrainingCheckpointFile:
    """What :func:`xpnet.load` makes of a training checkpoint (:mod:`xpnet.engine.checkpoint`): the
    :class:`DNN` it holds."""

    @classmethod
    def _xpnet_import(cls, tensors: Mapping[str, Any], meta: Mapping[str, Any], backend: Any) -> Any:
        params = {k[6:]: v for k, v in tensors.items() if k.startswith("param/")}
        return DNN._xpnet_import(params, meta, backend)


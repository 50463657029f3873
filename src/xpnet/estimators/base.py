"""What the estimators share: :class:`_DNNEstimator` (parameters, input validation, ``fit``, the forward pass)
and the :class:`~xpnet.engine.Trainer` it trains with."""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.callback import CallbackSupportMixin, with_callbacks
from sklearn.utils.validation import validate_data

from ..device import xp as _xp
from ..device.auto import resolve_for_data
from ..device.backend import Backend, backend_of
from ..dnn import DNN
from ..engine import Trainer, split_indices
from ..engine.callbacks import check_nonnegative
from ..engine.optimizers import SklearnAdam, SklearnSGD, default_decay_steps
from ..errors import (
    ConfigError,
    DeviceMismatchError,
    DivergenceError,
    InvalidValueError,
    LabelError,
    NamespaceMismatchError,
    ShapeError,
    XpnetError,
)
from ..lecture.network import training_loss
from .attributes import _SKLEARN_RATES, _AttributesMixin
from .checks import (
    _check_fitted,
    _check_int,
    _check_same_architecture,
    _check_y_values,
    _column,
    _input_error,
    _jsonable,
    _normalized_weights,
    _num_rows,
    _seed_from,
)
from .lbfgs import fit_lbfgs
from .model_files import _ModelFileMixin
from .sklearn_callbacks import fit_task
from .sklearn_rules import (
    exp_output,
    initial_parameters,
    sklearn_loss,
    validation_scorer,
)
from .sparse import CHUNK_ROWS, SparseBatches, SparseRows

_SOLVERS = ("adam", "sgd", "lbfgs", "momentum", "rmsprop", "gd", "lecture_adam")
_ACTIVATION_NAMES = {"logistic": "sigmoid", "identity": "linear"}
_HIDDEN = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")


class _EstimatorTrainer(Trainer):
    """A :class:`~xpnet.training.Trainer` whose checkpoints also record the estimator's own settings (the
    network never sees them: standardization, class weights, the stopping rule and its validation split), so a
    resume with other values is refused like one with another learning rate."""

    def _settings(self) -> dict[str, Any]:
        settings = super()._settings()
        # One key each, so a refused resume names the setting that differs.
        settings.update({f"estimator_{k}": v for k, v in self.model._checkpoint_settings().items()})
        return settings


class _DNNEstimator(_ModelFileMixin, _AttributesMixin, CallbackSupportMixin, BaseEstimator):
    """Shared machinery; use :class:`DNNClassifier` or :class:`DNNRegressor`."""

    _output_kind = "regression"

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] | int = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: int = 0,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        backend: str | Backend | None = None,
        dtype: str | None = None,
        dropout: float | Sequence[float] = 0.0,
        init: Any = "glorot_uniform",
        standardize: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype
        self.dropout = dropout
        self.init = init
        self.standardize = standardize

    # --------------------------------------------------------------------------------- parameters
    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            raise ConfigError(f"hidden_layer_sizes must be a sequence of positive ints, got {sizes!r}") from None
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                raise ConfigError(f"hidden_layer_sizes must hold positive ints (units per hidden layer), got "
                                  f"{self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _hidden_activation(self) -> str:
        name = self.activation.strip().lower() if isinstance(self.activation, str) else self.activation
        name = _ACTIVATION_NAMES.get(name, name)
        if name not in _HIDDEN:
            raise ConfigError(f"unknown hidden activation {self.activation!r}; valid: relu, leaky_relu, tanh, "
                              "logistic (sigmoid), identity (linear)")
        return name

    def _solver(self) -> str:
        solver = self.solver.strip().lower() if isinstance(self.solver, str) else self.solver
        if solver not in _SOLVERS:
            raise ConfigError(f"unknown solver {self.solver!r}; valid solvers: {', '.join(_SOLVERS)}")
        return solver

    def _optimizer_options(self) -> dict[str, Any]:
        """The trainer's optimizer: scikit-learn's Adam and SGD (``adam``, ``sgd``: classical momentum, Nesterov's
        with ``nesterovs_momentum``), or the lecture's (``momentum``, ``rmsprop``, ``gd``, ``lecture_adam``)."""
        solver = self._solver()
        if solver == "adam":
            return {"optimizer": SklearnAdam(beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon)}
        if solver == "sgd":
            return {"optimizer": SklearnSGD(momentum=self.momentum, nesterov=bool(self.nesterovs_momentum))}
        if solver == "lecture_adam":  # eps after the bias correction; its state carries over warm starts
            return {"optimizer": "adam", "beta1": self.beta_1, "beta2": self.beta_2, "epsilon": self.epsilon}
        options: dict[str, Any] = {"optimizer": solver}
        if solver in ("momentum", "rmsprop"):
            options["beta"] = self.momentum if solver == "momentum" else self.beta_2
        if solver == "rmsprop":
            options["epsilon"] = self.epsilon
        return options

    def _resolve_backend(self, X: Any) -> Backend:
        if self.backend is None and _xp.is_array(X) and not _xp.is_numpy_array(X):
            self.backend_choice_ = None
            return backend_of(X)  # follow the data (DESIGN principle 3)
        try:  # "auto" chooses by the problem's size (xpnet.device.auto), and says why in backend_choice_
            sizes = self._hidden_sizes()
        except XpnetError:
            sizes = None  # the fit reports it
        backend, self.backend_choice_ = resolve_for_data(self.backend, X, sizes, self.batch_size)
        return backend

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR/CSC X, densified one mini-batch at a time
        return tags

    # ------------------------------------------------------------------------------------- inputs
    def _validate_X(self, X: Any, *, reset: bool, y: Any = None) -> tuple[Any, bool, Any]:
        """Return ``(X_backend (m, n), give_back_numpy, y)``: ``X`` checked and moved to the backend, in the
        dtype this fit resolves (``reset``) or the fitted network's; ``y``, when given for NumPy-side input, as
        scikit-learn's validation returns it (else as given)."""
        bk = self._backend_ if not reset else self._resolve_backend(X)
        if _xp.is_array(X) and not _xp.is_numpy_array(X):
            if not bk.owns(X):
                if _xp.namespace_of(X) is bk.xp:
                    raise DeviceMismatchError(
                        f"X is on device {_xp.device_of(X)!r} but this estimator computes on {bk.spec} (device "
                        f"{bk.device!r}): move X there first (xpnet.get_backend({bk.spec!r}).asarray(X)), or pass "
                        "a NumPy array; the estimator never copies between devices silently")
                raise NamespaceMismatchError(
                    f"X is an array of {backend_of(X).spec} but this estimator computes on {bk.spec}: pass NumPy "
                    f"arrays or arrays of {bk.spec} (xpnet.to_numpy(X) converts; the estimator never copies "
                    "between libraries or devices silently)")
            # An array of the estimator's backend: validate on the device, never a round trip to the host.
            if bk.xp.isdtype(X.dtype, "complex floating"):
                raise InvalidValueError(f"Complex data not supported: X has dtype {X.dtype}; xpnet needs real "
                                        "numbers (take the real part or split it into two features)")
            if X.ndim != 2:
                raise ShapeError(f"X must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}")
            if X.shape[0] < 1:
                raise ShapeError(f"X has shape {tuple(X.shape)}: 0 samples; at least 1 is required")
            if not reset and X.shape[1] != self.n_features_in_:
                raise ShapeError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input")
            if reset:
                self.n_features_in_ = int(X.shape[1])
            xp = bk.xp
            dtype = self._dtype_for(bk, X.dtype if xp.isdtype(X.dtype, "real floating") else None, fresh=reset)
            Xb = bk.asarray(X, dtype=dtype)  # integer X is cast to the compute dtype (documented)
            # One boolean read back per public call (fit, predict, ...), after the cast: a float64 value beyond
            # float32's range becomes infinity there and is caught too.
            _xp.check_finite(xp, Xb, "X")
            return Xb, False, y
        # NumPy-side input (lists, pandas, ...): scikit-learn's validation, its errors as xpnet's. Finiteness of
        # X is checked here instead, on the host, after the cast to the compute dtype.
        if isinstance(X, np.ndarray) and X.dtype.kind == "c":
            raise InvalidValueError(f"Complex data not supported: X has dtype {X.dtype}; xpnet needs real numbers "
                                    "(take the real part or split it into two features)")
        n_X, n_y = _num_rows(X), _num_rows(y)
        if n_X is not None and n_y is not None and n_X != n_y and getattr(X, "ndim", 2) == 2:
            raise ShapeError(f"y has {n_y} samples but X has {n_X}: pass one label or target per row of X")
        try:
            if y is not None:
                _check_y_values(y)
                kwargs = dict(multi_output=True,  # the classifier takes a label-indicator y too
                              y_numeric=self._output_kind == "regression")
                Xh, y = validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32),
                                      ensure_all_finite=False, accept_sparse=("csr", "csc"), **kwargs)
            else:
                Xh = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32), ensure_all_finite=False,
                                   accept_sparse=("csr", "csc"))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, XpnetError):
                raise
            raise _input_error(exc) from exc
        dtype = self._dtype_for(bk, Xh.dtype, fresh=reset)
        if sp.issparse(Xh):  # kept sparse on the host: densified a mini-batch at a time (xpnet.estimators.sparse)
            csr = Xh.tocsr().astype(_xp.dtype_name(bk.xp, dtype))
            _xp.check_finite(np, csr.data, "X")
            return SparseRows(csr, bk, dtype), True, y
        _xp.check_finite(_xp.namespace_of(Xh), Xh, "X")
        with np.errstate(over="ignore"):  # an overflow becomes infinity, refused just below
            cast = Xh.astype(_xp.dtype_name(bk.xp, dtype), copy=False)
        if cast is not Xh and not np.all(np.isfinite(cast)):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(cast))[0])
            raise InvalidValueError(
                f"X holds values beyond the range of {cast.dtype} (largest {np.finfo(cast.dtype).max:.3g}), which "
                f"this estimator computes in: X[{', '.join(map(str, where))}] = {float(Xh[where]):g}; rescale X or use "
                "dtype='float64'")
        return bk.asarray(cast, dtype=dtype), True, y

    def _dtype_for(self, bk: Backend, input_dtype: Any, *, fresh: bool) -> Any:
        """The compute dtype: the fitted network's, unless this fit starts afresh; then ``dtype``, or (None)
        float32 for float32 input and float64 where the device has it otherwise."""
        if not fresh:
            return self.network_.dtype
        if self.dtype is not None:
            return bk.float_dtype(self.dtype)
        if input_dtype is not None and _xp.dtype_name(bk.xp, input_dtype) == "float32":
            return bk.float_dtype("float32")
        return bk.default_float_dtype

    # ---------------------------------------------------------------------------------------- fit
    @with_callbacks
    def fit(self, X: Any, y: Any, sample_weight: Any = None, validation_data: tuple[Any, Any] | None = None,
            callbacks: Sequence[Any] = (), *, checkpoint: Any = None, checkpoint_every: int = 1,
            resume: bool = False, communicator: Any = None) -> Any:
        """Train on ``X`` (n_samples, n_features) and ``y`` for up to ``max_iter`` epochs.

        ``sample_weight`` (n_samples,), non-negative: each sample's loss is weighted as scikit-learn's MLP weighs
        it, ``sum_j w_j loss_j / sum_j w_j`` with the L2 term ``alpha/(2 sum_j w_j) ||W||^2`` (exactly so for a full
        batch; per mini-batch xpnet normalizes by the weights' overall mean, scikit-learn by each batch's sum).
        It combines with the classifier's ``class_weight`` by multiplication. With ``early_stopping`` the held-out
        part's ``sample_weight`` weighs its score (accuracy or R^2), as in scikit-learn (``class_weight`` does not).

        Each epoch shuffles the samples, runs mini-batches of ``batch_size`` (forward, fused backward, one
        optimizer step each) and stops early as scikit-learn's MLP does: when the training loss (or, with
        ``early_stopping``, the validation score) has not improved by ``tol`` for ``n_iter_no_change``
        epochs. ``validation_data=(X_val, y_val)`` gives a validation set of your own (scored every epoch,
        used by ``early_stopping`` instead of a split). ``callbacks`` (:class:`xpnet.training.Callback`) run
        after the built-in stopping rule, for this call only: e.g. an ``EarlyStopping("val_loss")`` of your own
        with ``n_iter_no_change`` set above ``max_iter``. With ``warm_start`` a second ``fit`` continues from
        the current weights and optimizer state.

        ``checkpoint=PATH`` saves the training state every ``checkpoint_every`` epochs (see
        :meth:`xpnet.training.Trainer.fit`); ``resume=True`` goes on from that file when it exists, training to
        ``max_iter`` epochs in total, and reproduces the uninterrupted fit exactly when given the same data and
        parameters: what the estimator learns from the data itself (``classes_``, the standardization) is
        learned again from it, and the rest (weights, optimizer, epoch, random streams, history, the stopping
        rule's state) comes from the checkpoint. A resume with other training parameters (the trainer's, and
        ``standardize``, ``class_weight``, ``tol``, ``n_iter_no_change``, ``early_stopping``,
        ``validation_fraction``) raises :class:`~xpnet.errors.ConfigError` naming them.

        ``communicator`` (e.g. ``xpnet.distributed.world()`` under ``mpiexec -n N``) trains data-parallel: every
        rank fits on the same data, takes its shard of each global batch, and ends with the same model; only rank
        0 writes files (see :mod:`xpnet.distributed`). It is not kept: the fitted estimator is one process's.

        Returns
        -------
        self

        Raises
        ------
        DivergenceError
            The loss became NaN or infinite or ran away (the message says at which epoch and step; try a lower
            ``learning_rate_init``). ``fit`` never returns a broken model: a fit that starts afresh leaves the
            estimator as it was before the call (unfitted, or with its previous fit); a continuing one
            (``warm_start``, ``partial_fit``) keeps the parameters of the last epoch whose loss was finite
            (for ``partial_fit``, exactly the state before the call), with its attributes describing those
            epochs.
        """
        self._communicator = communicator
        try:
            return self._fit(X, y, epochs=_check_int("max_iter", self.max_iter, 1), validation_data=validation_data,
                             incremental=False, callbacks=callbacks, sample_weight=sample_weight,
                             checkpoint=dict(checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume))
        finally:
            del self._communicator

    def _fit(self, X: Any, y: Any, *, epochs: int, validation_data: Any, incremental: bool,
             callbacks: Sequence[Any] = (), classes: Any = None, checkpoint: dict[str, Any] | None = None,
             sample_weight: Any = None) -> Any:
        """Shared by ``fit`` (``incremental=False``) and ``partial_fit`` (one epoch, the same run going on).

        A fit that does not continue (no network yet, or neither ``warm_start`` nor ``partial_fit``) resolves
        the backend and dtype, reads the classes (``classes`` given, else those of ``y``) and builds a new
        network.
        """
        if y is None:
            raise LabelError(f"{type(self).__name__} requires y to be passed, but the target y is None: pass the "
                             "labels (or regression targets) y, one per row of X")
        if incremental and self.early_stopping:  # scikit-learn's MLP refuses it too (a ValueError)
            raise ConfigError("partial_fit does not support early_stopping=True: one epoch over the given batch has "
                              "no held-out part to score; set_params(early_stopping=False), or score batches of "
                              "your own between the calls")
        continuing = hasattr(self, "network_") and (incremental or self.warm_start)
        # A fresh fit that fails for any reason (divergence, a bad setting found late, out of memory, Ctrl-C)
        # puts this back: never an untrained network that looks fitted.
        before_fit = None if continuing else dict(self.__dict__)
        try:
            # The fit's device current throughout (CuPy allocates and launches on the current device).
            with (self._backend_ if continuing else self._resolve_backend(X)).activate():
                return self._fit_body(X, y, epochs=epochs, validation_data=validation_data,
                                      incremental=incremental, callbacks=callbacks, classes=classes,
                                      checkpoint=checkpoint, continuing=continuing, sample_weight=sample_weight)
        except BaseException as exc:
            if before_fit is not None:
                # scikit-learn's callback bookkeeping stays: its teardown runs after this (with_callbacks)
                keep = {k: v for k, v in self.__dict__.items() if k in ("_callback_fit_ctx",
                                                                        "_skl_callbacks_to_teardown")}
                self.__dict__.clear()
                self.__dict__.update(before_fit)
                self.__dict__.update(keep)
                if isinstance(exc, DivergenceError):
                    exc.args = (f"{exc}; the estimator is left as it was before this fit",)
            raise

    def _fit_body(self, X: Any, y: Any, *, epochs: int, validation_data: Any, incremental: bool,
                  callbacks: Sequence[Any], classes: Any, checkpoint: dict[str, Any] | None, continuing: bool,
                  sample_weight: Any = None) -> Any:
        Xb, _, y = self._validate_X(X, reset=not continuing, y=y)
        if not continuing:
            self._backend_ = self._resolve_backend(X)
        T, labels_host, m = self._targets(y, Xb, first=not continuing, classes=classes)
        bk = self._backend_
        xp = bk.xp
        if not continuing:
            self.network_ = self._new_network(Xb, T.shape[0])
            self.mean_ = self.scale_ = None
            self._rule = None
        else:
            _check_same_architecture(self)
        net = self.network_
        # scikit-learn's solvers report scikit-learn's loss, the lecture's the lecture's (both on the in-place step)
        net.loss = sklearn_loss(net.output.name) if self._solver() in ("adam", "sgd", "lbfgs") \
            or net.output.name == "exp" else training_loss(net.output)
        sparse = isinstance(Xb, SparseRows)
        if sparse and self.standardize:
            raise ConfigError("standardize=True would center sparse X, making it dense: scale it beforehand "
                              "(StandardScaler(with_mean=False) or MaxAbsScaler in a Pipeline) and set "
                              "standardize=False")
        XT = Xb if sparse else Xb.T  # the lecture's layout, as a view
        weights = self._sample_weights(labels_host, T)
        # sample_weight scaled to mean 1 (its sum, S, is m), the L2 strength by m/S: scikit-learn's objective
        sw, alpha = _normalized_weights(sample_weight, m, float(self.alpha))
        sw_host, val_weights = sw, None  # val_weights: the held-out part's, which weigh scikit-learn's score
        if sw is not None:
            sw = bk.asarray(sw.reshape(1, -1), dtype=net.dtype)
            weights = sw if weights is None else weights * sw
        validation = None
        if validation_data is not None:
            Xv, yv = validation_data
            Xvb, _, _ = self._validate_X(Xv, reset=False)
            Tv, _, _ = self._targets(yv, Xvb, first=False)
            validation = ((Xvb.dense() if isinstance(Xvb, SparseRows) else Xvb).T, Tv)
        elif self.early_stopping and not incremental:
            split_labels = labels_host if self._output_kind == "classification" else None
            train_idx, val_idx = split_indices(m, self.validation_fraction, net.seed, split_labels)
            ti, vi = bk.asarray(train_idx), bk.asarray(val_idx)
            # Rows of the sample-major data, so each part stays row-major (the engine's batches gather rows).
            if sparse:  # the validation part densified (a fraction of X), the training part kept sparse
                validation = (Xb.rows(val_idx).dense().T, xp.take(T, vi, axis=1))
                XT, T = Xb.rows(train_idx), xp.take(T, ti, axis=1)
            else:
                validation = (xp.take(Xb, vi, axis=0).T, xp.take(T, vi, axis=1))
                XT, T = xp.take(Xb, ti, axis=0).T, xp.take(T, ti, axis=1)
            if weights is not None:
                weights = xp.take(weights, ti, axis=1)
            if sw_host is not None:
                val_weights = sw_host[val_idx]
        if self.standardize and not continuing:
            # Fitted on the training part only: the validation part must not leak into it. Computed in float64
            # where the device has it; a feature whose spread is only rounding noise counts as constant (scale
            # 1), else a float32 std of ~1e-7 would blow any change in it up millions of times at predict time.
            f64 = bk.float_dtype("float64") if bk.supports_float64 else net.dtype
            X64 = xp.astype(XT, f64)
            # Each feature divided by its largest magnitude first: the squares of values beyond ~1e154 overflow
            # float64 (a std of inf would make every such feature 0); the statistics are scaled back after.
            peak = xp.max(xp.abs(X64), axis=1)
            peak = xp.where(peak > 0, peak, xp.ones_like(peak))
            unit = X64 / xp.reshape(peak, (-1, 1))
            mean = xp.mean(unit, axis=1) * peak
            std = xp.std(unit, axis=1) * peak
            eps = 1e-12 if bk.supports_float64 else 1e-6
            tiny = std <= eps * xp.maximum(xp.abs(mean), xp.ones_like(mean))
            scale = xp.where(tiny, xp.ones_like(std), std)
            self._mean_b, self._scale_b = xp.astype(mean, net.dtype), xp.astype(scale, net.dtype)
            self.mean_, self.scale_ = bk.to_numpy(mean), bk.to_numpy(scale)
        if self.mean_ is not None:
            XT = (XT - _column(xp, self._mean_b)) / _column(xp, self._scale_b)
            if validation is not None:
                validation = ((validation[0] - _column(xp, self._mean_b)) / _column(xp, self._scale_b),
                              validation[1])
        if self._solver() == "lbfgs":
            if incremental:
                raise ConfigError("partial_fit is only available for stochastic solvers (adam, sgd, ...); "
                                  "solver='lbfgs' optimizes over the whole data in fit")
            if not continuing:  # scikit-learn's lbfgs has no per-epoch attributes
                for name in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_", "history_",
                             "trainer_"):
                    self.__dict__.pop(name, None)
            _, finish = fit_task(self, X, y, sample_weight, 0)
            self.n_iter_, self.loss_ = fit_lbfgs(self, net, XT, T, weights, alpha)
            finish()
            self.t_ = getattr(self, "t_", 0) if continuing else 0
            self._collect_shape()
            return self
        new_trainer = not (incremental and hasattr(self, "trainer_"))
        if not new_trainer:
            trainer = self.trainer_  # partial_fit: the same run goes on, hyper-parameters included
        else:
            # fit builds a trainer from the current parameters (set_params between warm-started fits counts);
            # with warm_start it takes over the previous run's epoch count, history, streams and optimizer state.
            trainer = self._make_trainer()
            if continuing and hasattr(self, "trainer_"):
                trainer.continue_from(self.trainer_)
                if self._solver() in ("adam", "sgd"):
                    trainer.optimizer.reset()  # scikit-learn's fit builds its optimizer anew, warm start or not
        self.trainer_ = trainer
        trainer.l2 = check_nonnegative("alpha", alpha)
        rule = self._epoch_rule(validation is not None and self.early_stopping and not incremental,
                                T.shape[1])  # training samples per epoch
        rule.score_validation = validation_scorer(net, validation, val_weights) if rule.early_stopping and (
            net.output.name == "exp" or val_weights is not None) else None
        if new_trainer:
            rule.start_fit(trainer, float(self.learning_rate_init))
        epochs_before = rule.epochs
        try:
            data = (SparseBatches(XT, T, weights), None, None) if sparse else (XT, T, weights)
            tasks, finish = fit_task(self, X, y, sample_weight, epochs)  # scikit-learn's callbacks, if any
            trainer.fit(data[0], data[1], epochs=epochs, validation_data=validation, sample_weight=data[2],
                        callbacks=[rule, *tasks, *callbacks], **(checkpoint or {}))
            finish()
        except DivergenceError:
            if incremental:
                rule.epochs = epochs_before  # partial_fit keeps exactly the state before the call
            if continuing:
                # The trainer put back the last finite epoch; describe what is kept (a fresh fit is undone by
                # _fit).
                self._collect(True, epochs)
            raise
        finally:
            rule.score_validation = None  # it holds the validation set
        self._collect(incremental, epochs)
        return self

    def _new_network(self, Xb: Any, n_out: int) -> DNN:
        """The network of a fresh fit: ``[n_features, *hidden_layer_sizes, n_out]`` in ``Xb``'s dtype, its
        parameters from ``init``: scikit-learn's Glorot-uniform weights and biases (``"glorot_uniform"``), one of
        the lecture's initializers (zero biases), or given arrays ``(coefs, intercepts)`` in scikit-learn's
        orientation (``coefs[i]`` ``(n_in, n_out)``, ``intercepts[i]`` ``(n_out,)``)."""
        bk = self._backend_
        dims = [int(Xb.shape[1]), *self._hidden_sizes(), int(n_out)]
        activation = self._hidden_activation()
        init = self.init
        named = isinstance(init, str)
        key = init.strip().lower() if named else None
        net = DNN(dims, hidden=activation, output=self._output_activation(),
                  init="glorot" if not named or key == "glorot_uniform" else init, seed=_seed_from(self.random_state),
                  dtype=Xb.dtype, backend=bk)  # Xb is already in the dtype this fit resolved
        if not named or key == "glorot_uniform":
            params = initial_parameters(init, dims, activation, net.seed, _xp.dtype_name(bk.xp, Xb.dtype))
            net.parameters = {k: bk.asarray(v, dtype=net.dtype) for k, v in params.items()}
        if self._poisson():
            net.output = exp_output()  # scikit-learn's log link: A = e^Z
        return net

    def _poisson(self) -> bool:
        """Whether this is ``DNNRegressor(loss="poisson")`` (the regressor checks ``loss``)."""
        return False

    def _checkpoint_settings(self) -> dict[str, Any]:
        """What a resumed fit must share with the fit that wrote the checkpoint beyond the trainer's own
        settings, JSON-normalized (the trainer compares it with the checkpoint's)."""
        cw = getattr(self, "class_weight", None)
        if isinstance(cw, dict):  # order-free, and JSON-able for any class label
            cw = sorted(([_jsonable(k), _jsonable(v)] for k, v in cw.items()), key=repr)
        settings = {"standardize": self.standardize, "class_weight": cw, "tol": self.tol,
                    "n_iter_no_change": self.n_iter_no_change, "early_stopping": self.early_stopping,
                    "validation_fraction": self.validation_fraction}
        return json.loads(json.dumps({k: _jsonable(v) for k, v in settings.items()}, sort_keys=True, default=repr))

    def _make_trainer(self) -> Trainer:
        lr = self.learning_rate_init
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (0 < lr < float("inf")):
            raise ConfigError(f"learning_rate_init must be a positive finite number (e.g. 0.001), got {lr!r}")
        rate = self.learning_rate
        if isinstance(rate, str) and rate.strip().lower() in _SKLEARN_RATES:
            rate = "constant"  # scikit-learn's: the per-epoch rule (SklearnEpochRule) sets the rate
        return _EstimatorTrainer(self.network_, model=self, batch_size=self.batch_size, shuffle=self.shuffle,
                       l2=self.alpha, dropout=self.dropout, learning_rate=self.learning_rate_init,
                       # verbose prints scikit-learn's lines (sklearn_rules), not the engine's progress as well
                       schedule=rate, verbose=0,
                       communicator=getattr(self, "_communicator", None),
                       # cosine anneals over the whole run and step decays 4 times in it, not every epoch
                       decay_steps=default_decay_steps(self.learning_rate, self.max_iter),
                       **self._optimizer_options())

    # --------------------------------------------------------------------------------- prediction
    def _forward(self, X: Any, batch_size: int | None = None) -> tuple[Any, bool]:
        """``(AL^T (n_samples, n_L), give_back_numpy)``: the network's outputs for ``X``, computed in chunks of
        ``batch_size`` samples (None: automatic, bounded memory; see :meth:`xpnet.DNN.predict_proba`), each
        chunk standardized on its own when ``standardize``."""
        _check_fitted(self, "predict")
        with self._backend_.activate():
            Xb, give_numpy, _ = self._validate_X(X, reset=False)
            xp = self._backend_.xp
            prepare = None
            if self.mean_ is not None:
                mean, scale = _column(xp, self._mean_b), _column(xp, self._scale_b)

                def prepare(chunk: Any) -> Any:
                    return (chunk - mean) / scale

            if isinstance(Xb, SparseRows):  # a chunk of rows densified at a time
                parts = [self.network_._forward(xp.permute_dims(Xc, (1, 0)), batch_size, prepare)
                         for _, Xc in Xb.chunks(batch_size or CHUNK_ROWS)]
                AL = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)
            else:
                AL = self.network_._forward(Xb.T, batch_size, prepare)
            return xp.permute_dims(AL, (1, 0)), give_numpy

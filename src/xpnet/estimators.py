"""scikit-learn compatible estimators: :class:`DNNClassifier` and :class:`DNNRegressor`.

They follow scikit-learn's conventions (rows are samples, ``fit``/``predict``/``score``, constructor
parameters named as in ``MLPClassifier``/``MLPRegressor`` where the concept is the same) and compute on any
xpnet backend. Inside, the data is transposed once, as a view, into the lecture's layout and trained by
:class:`xpnet.training.Trainer`.

Input and output namespaces: NumPy (or lists, pandas, anything array-like) in gives NumPy out, whatever
backend computes. An array of another library (a torch tensor, a CuPy array) in gives that library's array
out; with ``backend=None`` the estimator then computes on that array's own library and device.

Input checks (the README's error table): integer and boolean ``X`` is cast to the compute dtype. NaN or
infinity in ``X`` or ``y`` and complex ``X`` are an :class:`~xpnet.errors.InvalidValueError` (a ``ValueError``,
with scikit-learn's wording), strings and objects an :class:`~xpnet.errors.InputTypeError`, wrong
dimensions or sample counts a :class:`~xpnet.errors.ShapeError`, one class or labels the model never saw a
:class:`~xpnet.errors.LabelError`; an array of another library or device than the estimator's backend is a
:class:`~xpnet.errors.NamespaceMismatchError` / :class:`~xpnet.errors.DeviceMismatchError`. ``X`` is
checked once per call (on the host for NumPy input, one boolean read back for device arrays).

Differences from scikit-learn's MLP, by design:

* ``solver`` adds ``"momentum"``, ``"rmsprop"`` and ``"gd"``; ``"sgd"`` is gradient descent with the
  lecture's momentum (``v = beta v + (1 - beta) dW``, see :mod:`xpnet.optimizers`); no ``"lbfgs"``.
* ``learning_rate`` names xpnet's schedules (``constant``, ``inverse_time`` (alias ``invscaling``),
  ``step``, ``exponential``, ``cosine``), applied per epoch; no ``"adaptive"``.
* ``alpha`` is the lecture's ``lambd``: cost ``+ alpha/(2m) sum ||W||^2`` over a batch of ``m`` samples
  (the same scaling scikit-learn uses).
* xpnet's own: ``backend``, ``dtype``, ``dropout``, ``init``, ``class_weight`` (classifier),
  ``standardize`` (learn per-feature mean/std on the training data, applied before every prediction) and
  ``validation_data`` in :meth:`fit`.
* ``dtype=None`` follows scikit-learn: float32 input is computed in float32, everything else in float64
  where the device has it (else float32). Ask for ``dtype="float32"`` for speed on a GPU.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import _xp
from .backend import Backend, backend_of, get_backend
from .errors import (
    ConfigError,
    DeviceMismatchError,
    DivergenceError,
    InputTypeError,
    InvalidValueError,
    LabelError,
    ModelFileError,
    NamespaceMismatchError,
    ShapeError,
    XpnetError,
)
from .network import DNN
from .optimizers import Schedule, default_decay_steps
from .random import check_seed
from .training import EarlyStopping, History, Trainer, split_indices

__all__ = ["DNNClassifier", "DNNRegressor"]

_SOLVERS = ("adam", "sgd", "momentum", "rmsprop", "gd")
_ACTIVATION_NAMES = {"logistic": "sigmoid", "identity": "linear"}
_HIDDEN = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _input_error(exc: Exception) -> Exception:
    """scikit-learn's input validation error as the matching xpnet error, its message kept word for word
    (scikit-learn's own estimator checks match on it): values that are not numbers -> InputTypeError, NaN,
    infinity or complex numbers -> InvalidValueError, anything else (dimensions, sample or feature counts,
    feature names) -> ShapeError."""
    text = str(exc)
    if not re.search(r"\b[Xy]\b", text):  # scikit-learn's "Found array with 0 sample(s)" is about X
        text = f"X: {text}"
    if isinstance(exc, TypeError) or "convert" in text or "string" in text or "bytes" in text:
        return InputTypeError(f"{text} (xpnet needs real numbers: bool, integer or float; encode or convert "
                              "non-numeric columns first)")
    if "NaN" in text or "infinity" in text or "Complex" in text:
        # The first line: scikit-learn appends the whole array to "Complex data not supported".
        return InvalidValueError(f"{text.splitlines()[0]} (xpnet needs finite real numbers: drop, impute or convert "
                                 "those values first)")
    return ShapeError(text)


def _num_rows(a: Any) -> int | None:
    """The number of rows of an array or a list, or None (None, scalars, anything else)."""
    shape = getattr(a, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) >= 1 else None
    return len(a) if isinstance(a, (list, tuple)) else None


def _check_y_values(y: Any) -> None:
    """NaN or infinity in float labels or targets (a NumPy array: ``y`` is read on the host anyway) is an
    InvalidValueError naming ``y``, the count and the first bad value."""
    if isinstance(y, np.ndarray) and y.dtype.kind == "f" and y.size and not np.all(np.isfinite(y)):
        _xp.check_finite(_xp.namespace_of(y), y, "y")


def _seed_from(random_state: Any) -> int | None:
    """scikit-learn's ``random_state`` (None, int or RandomState) -> xpnet's seed (an int, or None for
    fresh entropy). An int is used as is, so ``random_state=3`` gives the same weights on every backend."""
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    return check_seed(random_state)


class _EstimatorTrainer(Trainer):
    """A :class:`~xpnet.training.Trainer` whose checkpoints also record the estimator's own settings (the
    network never sees them: standardization, class weights, the stopping rule and its validation split), so a
    resume with other values is refused like one with another learning rate."""

    def _settings(self) -> dict[str, Any]:
        settings = super()._settings()
        # One key each, so a refused resume names the setting that differs.
        settings.update({f"estimator_{k}": v for k, v in self.model._checkpoint_settings().items()})
        return settings


class _DNNEstimator(BaseEstimator):
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
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: int = 0,
        warm_start: bool = False,
        momentum: float = 0.9,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        backend: str | Backend | None = None,
        dtype: str | None = None,
        dropout: float | Sequence[float] = 0.0,
        init: str = "he",
        standardize: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
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

    def _optimizer_options(self) -> dict[str, Any]:
        solver = self.solver.strip().lower() if isinstance(self.solver, str) else self.solver
        if solver not in _SOLVERS:
            raise ConfigError(f"unknown solver {self.solver!r}; valid solvers: {', '.join(_SOLVERS)} "
                              "(xpnet has no lbfgs)")
        if solver == "sgd":
            solver = "momentum" if self.momentum else "gd"
        options: dict[str, Any] = {"optimizer": solver}
        if solver in ("momentum", "rmsprop"):
            options["beta"] = self.momentum if self.solver == "sgd" or solver == "momentum" else self.beta_2
        if solver == "rmsprop":
            options["epsilon"] = self.epsilon
        if solver == "adam":
            options.update(beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon)
        return options

    def _resolve_backend(self, X: Any) -> Backend:
        if self.backend is None and _xp.is_array(X) and not _xp.is_numpy_array(X):
            return backend_of(X)  # follow the data (DESIGN principle 3)
        return get_backend(self.backend)

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
                kwargs = dict(multi_output=self._output_kind == "regression",
                              y_numeric=self._output_kind == "regression")
                Xh, y = validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32),
                                      ensure_all_finite=False, **kwargs)
            else:
                Xh = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32), ensure_all_finite=False)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, XpnetError):
                raise
            raise _input_error(exc) from exc
        dtype = self._dtype_for(bk, Xh.dtype, fresh=reset)
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
    def fit(self, X: Any, y: Any, validation_data: tuple[Any, Any] | None = None,
            callbacks: Sequence[Any] = (), *, checkpoint: Any = None, checkpoint_every: int = 1,
            resume: bool = False) -> Any:
        """Train on ``X`` (n_samples, n_features) and ``y`` for up to ``max_iter`` epochs.

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

        Returns
        -------
        self

        Raises
        ------
        DivergenceError
            The loss became NaN or infinite (the message says at which epoch and step; try a lower
            ``learning_rate_init``). ``fit`` never returns a broken model: a fit that starts afresh leaves the
            estimator as it was before the call (unfitted, or with its previous fit); a continuing one
            (``warm_start``, ``partial_fit``) keeps the parameters of the last epoch whose loss was finite
            (for ``partial_fit``, exactly the state before the call), with its attributes describing those
            epochs.
        """
        return self._fit(X, y, epochs=_check_int("max_iter", self.max_iter, 1), validation_data=validation_data,
                         incremental=False, callbacks=callbacks,
                         checkpoint=dict(checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume))

    def _fit(self, X: Any, y: Any, *, epochs: int, validation_data: Any, incremental: bool,
             callbacks: Sequence[Any] = (), classes: Any = None, checkpoint: dict[str, Any] | None = None) -> Any:
        """Shared by ``fit`` (``incremental=False``) and ``partial_fit`` (one epoch, the same run going on).

        A fit that does not continue (no network yet, or neither ``warm_start`` nor ``partial_fit``) resolves
        the backend and dtype, reads the classes (``classes`` given, else those of ``y``) and builds a new
        network.
        """
        if y is None:
            raise LabelError(f"{type(self).__name__} requires y to be passed, but the target y is None: pass the "
                             "labels (or regression targets) y, one per row of X")
        continuing = hasattr(self, "network_") and (incremental or self.warm_start)
        # A fresh fit that fails for any reason (divergence, a bad setting found late, out of memory, Ctrl-C)
        # puts this back: never an untrained network that looks fitted.
        before_fit = None if continuing else dict(self.__dict__)
        try:
            return self._fit_body(X, y, epochs=epochs, validation_data=validation_data, incremental=incremental,
                                  callbacks=callbacks, classes=classes, checkpoint=checkpoint,
                                  continuing=continuing)
        except BaseException as exc:
            if before_fit is not None:
                self.__dict__.clear()
                self.__dict__.update(before_fit)
                if isinstance(exc, DivergenceError):
                    exc.args = (f"{exc}; the estimator is left as it was before this fit",)
            raise

    def _fit_body(self, X: Any, y: Any, *, epochs: int, validation_data: Any, incremental: bool,
                  callbacks: Sequence[Any], classes: Any, checkpoint: dict[str, Any] | None, continuing: bool) -> Any:
        Xb, _, y = self._validate_X(X, reset=not continuing, y=y)
        if not continuing:
            self._backend_ = self._resolve_backend(X)
        T, labels_host, m = self._targets(y, Xb, first=not continuing, classes=classes)
        bk = self._backend_
        xp = bk.xp
        if not continuing:
            sizes = self._hidden_sizes()
            n_out = T.shape[0]
            activation = self._hidden_activation()
            self.network_ = DNN([Xb.shape[1], *sizes, n_out], hidden=activation, output=self._output_activation(),
                                init=self.init, seed=_seed_from(self.random_state),
                                dtype=Xb.dtype, backend=bk)  # Xb is already in the dtype this fit resolved
            self.mean_ = self.scale_ = None
        net = self.network_
        XT = Xb.T  # the lecture's layout, as a view
        weights = self._sample_weights(labels_host, T)
        validation = None
        if validation_data is not None:
            Xv, yv = validation_data
            Xvb, _, _ = self._validate_X(Xv, reset=False)
            Tv, _, _ = self._targets(yv, Xvb, first=False)
            validation = (Xvb.T, Tv)
        elif self.early_stopping and not incremental:
            split_labels = labels_host if self._output_kind == "classification" else None
            train_idx, val_idx = split_indices(m, self.validation_fraction, net.seed, split_labels)
            ti, vi = bk.asarray(train_idx), bk.asarray(val_idx)
            validation = (xp.take(XT, vi, axis=1), xp.take(T, vi, axis=1))
            XT, T = xp.take(XT, ti, axis=1), xp.take(T, ti, axis=1)
            if weights is not None:
                weights = xp.take(weights, ti, axis=1)
        if self.standardize and not continuing:
            # Fitted on the training part only: the validation part must not leak into it. Computed in float64
            # where the device has it; a feature whose spread is only rounding noise counts as constant (scale
            # 1), else a float32 std of ~1e-7 would blow any change in it up millions of times at predict time.
            f64 = bk.float_dtype("float64") if bk.supports_float64 else net.dtype
            X64 = xp.astype(XT, f64)
            mean = xp.mean(X64, axis=1)
            std = xp.std(X64, axis=1)
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
        if incremental and hasattr(self, "trainer_"):
            trainer = self.trainer_  # partial_fit: the same run goes on, hyper-parameters included
        else:
            # fit builds a trainer from the current parameters (set_params between warm-started fits counts);
            # with warm_start it takes over the previous run's epoch count, history, streams and optimizer state.
            trainer = self._make_trainer()
            if continuing and hasattr(self, "trainer_"):
                trainer.continue_from(self.trainer_)
        self.trainer_ = trainer
        stopper = None if incremental else self._make_stopper(validation is not None)
        self._stopper = stopper
        before = len(trainer.history)
        try:
            trainer.fit(XT, T, epochs=epochs, validation_data=validation, sample_weight=weights,
                        callbacks=([stopper] if stopper is not None else []) + list(callbacks), **(checkpoint or {}))
        except DivergenceError:
            if continuing:
                # The trainer put back the last finite epoch; describe what is kept (a fresh fit is undone by
                # _fit).
                self.t_ = getattr(self, "t_", 0) + XT.shape[1] * (len(trainer.history) - before)
                self._collect(True, epochs)
            raise
        # scikit-learn's t_: training samples seen over the estimator's life (one per sample per epoch).
        self.t_ = (self.t_ if continuing and hasattr(self, "t_") else 0) + \
            XT.shape[1] * (len(trainer.history) - before)
        self._collect(incremental, epochs)
        return self

    def _make_stopper(self, has_validation: bool) -> EarlyStopping:
        """scikit-learn's stopping rule for one fit: an epoch counts as no improvement unless it beats the best
        by more than ``tol``; more than ``n_iter_no_change`` such epochs in a row stop training."""
        patience = _check_int("n_iter_no_change", self.n_iter_no_change, 1) + 1
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (0 <= tol < float("inf")):
            raise ConfigError(f"tol must be a finite number >= 0, got {tol!r}")
        if has_validation and self.early_stopping:
            return EarlyStopping("val_metric", patience=patience, min_delta=tol, restore_best_weights=True)
        return EarlyStopping("loss", patience=patience, min_delta=tol, restore_best_weights=False)

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
        return _EstimatorTrainer(self.network_, model=self, batch_size=self.batch_size, shuffle=self.shuffle,
                       l2=self.alpha, dropout=self.dropout, learning_rate=self.learning_rate_init,
                       schedule=self.learning_rate, verbose=self.verbose,
                       # cosine anneals over the whole run and step decays 4 times in it, not every epoch
                       decay_steps=default_decay_steps(self.learning_rate, self.max_iter),
                       **self._optimizer_options())

    def _collect(self, incremental: bool, epochs: int) -> None:
        h = self.trainer_.history
        self.history_ = h
        self.loss_curve_ = list(h["loss"])
        vals = [v for v in h["val_metric"] if v is not None]
        self.validation_scores_ = vals if vals else None
        self.best_validation_score_ = max(vals) if vals else None
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None
        self.n_iter_ = len(h)
        self.n_layers_ = self.network_.num_layers + 1
        self.n_outputs_ = self.network_.layer_dims[-1]
        self.out_activation_ = {"sigmoid": "logistic", "softmax": "softmax", "linear": "identity"}[
            self.network_.output.name]
        # Warn when the epochs ran out, not when the stopping rule (or a callback of the caller's) ended the run.
        if not incremental and not self.trainer_.stop_training and epochs > 0:
            warnings.warn(f"{type(self).__name__}: stochastic optimizer reached max_iter={self.max_iter} epochs "
                          "and the optimization has not converged yet; raise max_iter or the learning rate",
                          ConvergenceWarning, stacklevel=3)

    # --------------------------------------------------------------------------------- prediction
    def _forward(self, X: Any, batch_size: int | None = None) -> tuple[Any, bool]:
        """``(AL^T (n_samples, n_L), give_back_numpy)``: the network's outputs for ``X``, computed in chunks of
        ``batch_size`` samples (None: automatic, bounded memory; see :meth:`xpnet.DNN.predict_proba`), each
        chunk standardized on its own when ``standardize``."""
        check_is_fitted(self, "network_")
        Xb, give_numpy, _ = self._validate_X(X, reset=False)
        with self._backend_.activate():
            xp = self._backend_.xp
            prepare = None
            if self.mean_ is not None:
                mean, scale = _column(xp, self._mean_b), _column(xp, self._scale_b)

                def prepare(chunk: Any) -> Any:
                    return (chunk - mean) / scale

            AL = self.network_._forward(Xb.T, batch_size, prepare)
            return xp.permute_dims(AL, (1, 0)), give_numpy

    @property
    def coefs_(self) -> list[Any]:
        """Weights as NumPy arrays in scikit-learn's orientation: ``coefs_[i]`` is ``W[i+1].T``,
        ``(n_units_in, n_units_out)``."""
        check_is_fitted(self, "network_")
        p = self.network_.get_parameters()
        return [p[f"W{l}"].T.copy() for l in range(1, self.network_.num_layers + 1)]

    @property
    def intercepts_(self) -> list[Any]:
        """Biases as NumPy arrays, ``intercepts_[i]`` of shape ``(n_units_out,)`` (``b[i+1]`` flattened)."""
        check_is_fitted(self, "network_")
        p = self.network_.get_parameters()
        return [p[f"b{l}"].reshape(-1) for l in range(1, self.network_.num_layers + 1)]

    # --------------------------------------------------------------------------------- model files
    def _xpnet_export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        check_is_fitted(self, "network_")
        tensors, meta = self.network_._xpnet_export()
        if self.mean_ is not None:
            tensors["mean"], tensors["scale"] = np.asarray(self.mean_), np.asarray(self.scale_)
        if getattr(self, "y_mean_", None) is not None:
            tensors["y_mean"], tensors["y_scale"] = np.asarray(self.y_mean_), np.asarray(self.y_scale_)
        params = {k: v for k, v in self.get_params().items() if k != "backend"}
        params["hidden_layer_sizes"] = self._hidden_sizes()
        if isinstance(params.get("dropout"), (list, tuple)):
            params["dropout"] = [float(d) for d in params["dropout"]]
        if isinstance(params.get("learning_rate"), Schedule):
            params["learning_rate"] = {"schedule": params["learning_rate"].describe()}
        if not isinstance(params.get("random_state"), (int, type(None))):
            params["random_state"] = None
        if params.get("class_weight") is not None and isinstance(params["class_weight"], dict):
            params["class_weight"] = [[_jsonable(k), float(v)] for k, v in params["class_weight"].items()]
        meta.update(kind=type(self).__name__, params=params, n_features_in=int(self.n_features_in_),
                    network=meta.get("network"), history=self.history_.summary() if hasattr(self, "history_")
                    else None, loss_curve=[float(v) for v in getattr(self, "loss_curve_", [])],
                    normalization="standard" if self.mean_ is not None else None)
        history = getattr(self, "history_", None)
        meta["history_full"] = history.as_dict() if history is not None else None
        names = getattr(self, "feature_names_in_", None)
        meta["fitted"] = {
            "validation_scores": getattr(self, "validation_scores_", None),
            "best_validation_score": getattr(self, "best_validation_score_", None),
            "best_loss": getattr(self, "best_loss_", None),
            "t": int(getattr(self, "t_", 0)),
            "feature_names_in": None if names is None else [str(n) for n in names],
        }
        # Where the model came from, when `xpnet train` made it (evaluate --split test re-creates the split).
        meta["data"] = getattr(self, "xpnet_data_", None)
        if hasattr(self, "classes_"):
            meta["classes"] = [_jsonable(c) for c in self.classes_]
            meta["classes_dtype"] = str(np.asarray(self.classes_).dtype.kind)
        return tensors, meta

    @classmethod
    def _xpnet_import(cls, tensors: dict[str, Any], meta: dict[str, Any], backend: Any) -> Any:
        params = dict(meta.get("params") or {})
        if isinstance(params.get("class_weight"), list):
            params["class_weight"] = {(k if not isinstance(k, list) else tuple(k)): v
                                      for k, v in params["class_weight"]}
        if isinstance(params.get("learning_rate"), dict):
            try:
                params["learning_rate"] = Schedule(**params["learning_rate"]["schedule"])
            except (KeyError, TypeError):
                raise ModelFileError("the file's learning-rate schedule is malformed") from None
        for key in ("dropout", "hidden_layer_sizes"):
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])  # JSON has no tuples; get_params() should read as it did
        try:
            est = cls(**params)
        except TypeError as exc:
            raise ModelFileError(f"the file's estimator parameters do not fit {cls.__name__}: {exc}") from None
        est.backend = backend
        extra = ("mean", "scale", "y_mean", "y_scale")
        network = DNN._xpnet_import({k: v for k, v in tensors.items() if k not in extra}, meta, backend)
        est.network_ = network
        est._backend_ = network.backend
        n_in = meta.get("n_features_in")
        if n_in != network.layer_dims[0]:
            raise ModelFileError(f"n_features_in {n_in!r} does not match the network's input size "
                                 f"{network.layer_dims[0]}")
        est.n_features_in_ = int(n_in)
        est.mean_ = est.scale_ = None
        if "mean" in tensors or "scale" in tensors:
            mean, scale = tensors.get("mean"), tensors.get("scale")
            if mean is None or scale is None or mean.shape != (n_in,) or scale.shape != (n_in,):
                raise ModelFileError(f"normalization tensors must be 'mean' and 'scale' of shape ({n_in},)")
            est.mean_, est.scale_ = mean, scale
            est._mean_b = network.backend.asarray(mean, dtype=network.dtype)
            est._scale_b = network.backend.asarray(scale, dtype=network.dtype)
        est.y_mean_ = est.y_scale_ = None
        if "y_mean" in tensors or "y_scale" in tensors:
            y_mean, y_scale = tensors.get("y_mean"), tensors.get("y_scale")
            n_out = (network.layer_dims[-1],)
            if y_mean is None or y_scale is None or y_mean.shape != n_out or y_scale.shape != n_out:
                raise ModelFileError(f"target normalization tensors must be 'y_mean' and 'y_scale' of shape {n_out}")
            est.y_mean_, est.y_scale_ = y_mean, y_scale
            est._y_mean_b = network.backend.asarray(y_mean.reshape(1, -1), dtype=network.dtype)
            est._y_scale_b = network.backend.asarray(y_scale.reshape(1, -1), dtype=network.dtype)
        est.loss_curve_ = list(meta.get("loss_curve") or [])
        est.n_iter_ = len(est.loss_curve_)
        fitted = meta.get("fitted") if isinstance(meta.get("fitted"), dict) else {}
        est.validation_scores_ = fitted.get("validation_scores")
        est.best_validation_score_ = fitted.get("best_validation_score")
        est.best_loss_ = fitted.get("best_loss")
        est.t_ = int(fitted.get("t") or 0)
        if fitted.get("feature_names_in") is not None:
            est.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
        if isinstance(meta.get("data"), dict):
            est.xpnet_data_ = meta["data"]
        full = meta.get("history_full")
        if isinstance(full, dict):
            try:
                history = History(full["metric_name"], full["backend"], full["device"], full["dtype"],
                                  {k: list(full[k]) for k in History.KEYS})
            except (KeyError, TypeError):
                raise ModelFileError("the file's training history is malformed") from None
            est.history_ = history
        est.n_layers_ = network.num_layers + 1
        est.n_outputs_ = network.layer_dims[-1]
        est.out_activation_ = {"sigmoid": "logistic", "softmax": "softmax", "linear": "identity"}[
            network.output.name]
        est._import_extra(meta)
        return est

    def _import_extra(self, meta: dict[str, Any]) -> None:
        """Subclass hook: restore what only that estimator has (``classes_``)."""


def _refuse_partial_standardize(est: Any) -> None:
    if est.standardize:
        raise ConfigError("standardize=True learns the feature mean and scale in fit, from all of the training "
                          "data; partial_fit sees one batch at a time: standardize with a StandardScaler fitted "
                          "beforehand (in a Pipeline) and set standardize=False")


def _column(xp: Any, v: Any) -> Any:
    """A (n,) vector as a (n, 1) column, to broadcast over the columns of a lecture-layout X."""
    return xp.reshape(v, (-1, 1))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


class DNNClassifier(ClassifierMixin, _DNNEstimator):
    """A dense network classifier with scikit-learn's API, on any xpnet backend.

    Two classes train one sigmoid output with binary cross-entropy; more train a softmax output with
    categorical cross-entropy; both through the fused, stable gradient ``dZL = AL - Y``.

    Parameters
    ----------
    hidden_layer_sizes : units per hidden layer, e.g. ``(64, 32)``
    activation : hidden activation: ``relu``, ``leaky_relu``, ``tanh``, ``sigmoid``/``logistic``,
        ``linear``/``identity``
    solver : ``adam`` (default), ``sgd`` (with ``momentum``), ``momentum``, ``rmsprop``, ``gd``
    alpha : L2 strength; batch_size : int, ``"auto"`` (``min(200, n)``) or ``"full"``
    learning_rate : schedule name (``constant``, ``inverse_time``/``invscaling``, ``step``, ``exponential``,
        ``cosine``; decaying per epoch, see :func:`xpnet.optimizers.default_decay_steps`) or an
        :class:`xpnet.optimizers.Schedule`, which carries its own initial rate
    learning_rate_init : the starting value of a named schedule
    max_iter : epochs; shuffle, random_state, tol, verbose, warm_start, momentum, early_stopping,
        validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change : as in scikit-learn's MLP
    backend : xpnet backend spec (``"auto"``, ``"cupy"``, ``"torch:cuda:0"``, ...); None follows the data
    dtype : ``"float32"``, ``"float64"`` or None (follow the input, see the module docstring)
    dropout : dropout rate for every hidden layer, or one per hidden layer
    init : ``he``, ``xavier``/``glorot``, ``scaled_normal``
    class_weight : None, ``"balanced"`` or ``{class: weight}``: each sample's loss is scaled by its class's
        weight (``"balanced"``: ``n_samples / (n_classes * count(class))``)
    standardize : learn per-feature mean and standard deviation on the training data and apply them
        before every prediction (:class:`DNNRegressor` standardizes its targets too and scales predictions
        back: ``y_mean_``, ``y_scale_``)

    Attributes
    ----------
    classes_, n_features_in_, n_iter_, loss_curve_, validation_scores_, best_loss_, coefs_, intercepts_,
    n_layers_, n_outputs_, out_activation_, history_ (:class:`xpnet.training.History`), network_ (the
    trained :class:`xpnet.DNN`).
    """

    _output_kind = "classification"

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
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: int = 0,
        warm_start: bool = False,
        momentum: float = 0.9,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        backend: str | Backend | None = None,
        dtype: str | None = None,
        dropout: float | Sequence[float] = 0.0,
        init: str = "he",
        class_weight: dict[Any, float] | str | None = None,
        standardize: bool = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start,
            momentum=momentum, early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, backend=backend,
            dtype=dtype, dropout=dropout, init=init, standardize=standardize,
        )
        self.class_weight = class_weight

    def _output_activation(self) -> str:
        return "sigmoid" if len(self.classes_) == 2 else "softmax"

    def _targets(self, y: Any, Xb: Any, *, first: bool, classes: Any = None) -> tuple[Any, Any, int]:
        """``y`` -> float targets on the backend in ``Xb``'s dtype (``(1, m)`` 0/1 for two classes, one-hot
        ``(C, m)`` for more), the class index of each sample (host) and ``m``. ``first`` sets ``classes_``."""
        bk = self._backend_
        m = Xb.shape[0]
        try:
            y_host = column_or_1d(np.asarray(_xp.to_numpy(y) if _xp.is_array(y) else y), warn=True)
        except ValueError as exc:
            raise ShapeError(f"y must be a 1-D array of class labels (n_samples,): {exc}") from None
        if y_host.shape[0] != m:
            raise ShapeError(f"y has {y_host.shape[0]} labels but X has {m} samples")
        _check_y_values(y_host)
        try:
            check_classification_targets(y_host)
        except ValueError as exc:
            raise LabelError(f"{exc} (y must hold class labels; for continuous targets use DNNRegressor)") from None
        if first:
            declared = classes is not None
            classes = np.unique(column_or_1d(np.asarray(classes)) if declared else y_host)
            if len(classes) < 2:
                shown = classes.tolist()
                raise LabelError(f"classes must hold at least 2 labels, got {shown!r}" if declared else
                                 f"a classifier needs at least 2 classes, but y holds only one class "
                                 f"({shown[0]!r}); add samples of another class")
            self.classes_ = classes
        index = np.searchsorted(self.classes_, y_host)
        index = np.clip(index, 0, len(self.classes_) - 1)
        unseen = self.classes_[index] != y_host
        if unseen.any():
            shown = self.classes_.tolist()
            raise LabelError(f"y holds labels the model was not fitted with: {np.unique(y_host[unseen])[:5].tolist()}; "
                             f"known classes: {shown[:20]}{' ...' if len(shown) > 20 else ''}")
        dtype = Xb.dtype  # already the dtype this fit computes in
        if len(self.classes_) == 2:
            T = bk.asarray(index.reshape(1, -1).astype(np.float64), dtype=dtype)
        else:
            onehot = (index[None, :] == np.arange(len(self.classes_))[:, None]).astype(np.float64)
            T = bk.asarray(onehot, dtype=dtype)
        return T, index, m

    def _sample_weights(self, index: Any, T: Any) -> Any:
        if self.class_weight is None:
            return None
        from sklearn.utils.class_weight import compute_class_weight

        cw = self.class_weight
        if isinstance(cw, str) and cw != "balanced":
            raise ConfigError(f"class_weight must be None, 'balanced' or a dict {{class: weight}}, got {cw!r}")
        if isinstance(cw, dict):
            unknown = [k for k in cw if k not in set(self.classes_.tolist())]
            if unknown:
                raise ConfigError(f"class_weight names classes that are not in y: {unknown!r}; "
                                  f"classes: {self.classes_.tolist()!r}")
            for k, v in cw.items():
                # NaN/inf would surface as a divergence ("lower the learning rate"), a negative weight would
                # train the network away from that class, and a string would fail inside scikit-learn.
                number = isinstance(v, numbers.Real) and not isinstance(v, bool)
                if not number or not math.isfinite(float(v)) or float(v) < 0:
                    raise ConfigError(f"class_weight for class {k!r} must be a finite number >= 0, got "
                                      f"{float(v) if number else v!r}")
        elif not isinstance(cw, str):
            raise ConfigError(f"class_weight must be None, 'balanced' or a dict {{class: weight}}, got {cw!r}")
        y = self.classes_[index]
        per_class = compute_class_weight(cw, classes=self.classes_, y=y)
        w = per_class[index].reshape(1, -1)
        return self._backend_.asarray(w, dtype=self.network_.dtype)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> DNNClassifier:
        """One epoch over ``(X, y)``, continuing from the current state (the first call must pass
        ``classes``, every label that will ever appear). ``early_stopping`` does not apply, and
        ``standardize`` is learned by ``fit`` only."""
        if self.class_weight == "balanced":
            raise ConfigError("class_weight='balanced' needs the class counts of all the data, which partial_fit "
                              "never sees at once: pass a dict {class: weight} (e.g. computed with "
                              "sklearn.utils.class_weight.compute_class_weight on your labels)")
        if not hasattr(self, "network_"):
            _refuse_partial_standardize(self)
            if classes is None:
                raise ConfigError("the first call to partial_fit must pass classes=[...] (all labels that "
                                  "will appear); later calls may omit it")
        elif classes is not None:
            given = np.unique(np.asarray(classes))
            if given.shape != self.classes_.shape or not np.array_equal(given, self.classes_):
                # scikit-learn refuses this too: the output layer was built for the first call's classes.
                raise LabelError(f"classes={given.tolist()} differs from the classes of the first partial_fit "
                                 f"call, {self.classes_.tolist()}; pass the same classes (or omit them), or fit "
                                 "a new estimator")
        return self._fit(X, y, epochs=1, validation_data=None, incremental=True, classes=classes)

    def predict_proba(self, X: Any, *, batch_size: int | None = None) -> Any:
        """Class probabilities, shape ``(n_samples, n_classes)`` in the order of ``classes_``.

        ``batch_size``: samples per forward pass (None: automatic, bounded device memory); it changes only the
        memory taken, not the result (beyond the last bits of rounding)."""
        P, give_numpy = self._forward(X, batch_size)
        xp = self._backend_.xp
        if len(self.classes_) == 2:
            P = xp.concat([1.0 - P, P], axis=1)
        return self._backend_.to_numpy(P) if give_numpy else P

    def predict_log_proba(self, X: Any, *, batch_size: int | None = None) -> Any:
        """``log(predict_proba(X))``, shape ``(n_samples, n_classes)``."""
        P = self.predict_proba(X, batch_size=batch_size)
        if isinstance(P, np.ndarray):
            with np.errstate(divide="ignore"):
                return np.log(P)
        return self._backend_.xp.log(P)

    def predict(self, X: Any, *, batch_size: int | None = None) -> Any:
        """Predicted class labels, shape ``(n_samples,)`` (values from ``classes_``); ``batch_size`` as in
        :meth:`predict_proba`."""
        P, give_numpy = self._forward(X, batch_size)
        xp = self._backend_.xp
        bk = self._backend_
        index = xp.reshape(P > 0.5, (-1,)) if len(self.classes_) == 2 else xp.argmax(P, axis=1)
        index = xp.astype(index, _xp.index_dtype(xp, bk.device))
        if give_numpy or self.classes_.dtype.kind not in "biuf":
            return self.classes_[bk.to_numpy(index)]
        return xp.take(bk.asarray(self.classes_), index, axis=0)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y``."""
        from sklearn.metrics import accuracy_score

        y_true = _xp.to_numpy(y) if _xp.is_array(y) else y
        _check_y_values(y_true)
        return float(accuracy_score(y_true, _xp.to_numpy(self.predict(X)), sample_weight=sample_weight))

    def _import_extra(self, meta: dict[str, Any]) -> None:
        classes = meta.get("classes")
        if not isinstance(classes, list) or len(classes) < 2:
            raise ModelFileError("a classifier file must list at least 2 classes")
        arr = np.asarray(classes)
        if meta.get("classes_dtype") in ("U", "S", "O"):
            arr = arr.astype(str)
        self.classes_ = arr
        expected = 1 if len(arr) == 2 else len(arr)
        if self.network_.layer_dims[-1] != expected:
            raise ModelFileError(f"{len(arr)} classes need {expected} output units, the network has "
                                 f"{self.network_.layer_dims[-1]}")


class DNNRegressor(RegressorMixin, _DNNEstimator):
    """A dense network regressor with scikit-learn's API, on any xpnet backend.

    A linear output trained on the mean squared error (``1/(2m) sum (AL - Y)^2``, so ``dZL = AL - Y``);
    ``y`` may be ``(n_samples,)`` or ``(n_samples, n_targets)``. Parameters, attributes and conventions
    are those of :class:`DNNClassifier` without ``class_weight``/``classes_``; ``score`` is R^2.
    """

    def _output_activation(self) -> str:
        return "linear"

    def _targets(self, y: Any, Xb: Any, *, first: bool, classes: Any = None) -> tuple[Any, Any, int]:
        """``y`` -> float targets ``(n_targets, m)`` on the backend in ``Xb``'s dtype (standardized when
        ``standardize``; ``first`` learns that scaling), no class index, and ``m``."""
        bk = self._backend_
        m = Xb.shape[0]
        try:
            y_host = np.asarray(_xp.to_numpy(y) if _xp.is_array(y) else y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"y must hold real numbers (regression targets): {exc}") from None
        _check_y_values(y_host)
        given = y_host.shape
        if y_host.ndim == 1:
            y_host = y_host.reshape(-1, 1)
        if y_host.ndim != 2 or y_host.shape[0] != m:
            raise ShapeError(f"y has shape {given} but X has {m} samples: y must be (n_samples,) or "
                             "(n_samples, n_targets)")
        if not first and hasattr(self, "network_") and y_host.shape[1] != self.network_.layer_dims[-1]:
            raise ShapeError(f"y has {y_host.shape[1]} targets but the model was fitted with "
                             f"{self.network_.layer_dims[-1]}")
        dtype = Xb.dtype  # already the dtype this fit computes in
        if first:
            self.y_mean_ = self.y_scale_ = None
            if self.standardize:
                # Targets too: a linear output starting near 0 would need thousands of steps to reach y ~ 50.
                # Learned from all of fit's y (the validation split, a part of it, included).
                mean, std = y_host.mean(axis=0), y_host.std(axis=0)
                self.y_mean_ = mean
                self.y_scale_ = np.where(std <= 1e-12 * np.maximum(np.abs(mean), 1.0), 1.0, std)
                self._y_mean_b = bk.asarray(self.y_mean_.reshape(1, -1), dtype=dtype)
                self._y_scale_b = bk.asarray(self.y_scale_.reshape(1, -1), dtype=dtype)
        if getattr(self, "y_mean_", None) is not None:
            y_host = (y_host - self.y_mean_) / self.y_scale_
        return bk.asarray(np.ascontiguousarray(y_host.T), dtype=dtype), None, m

    def _sample_weights(self, index: Any, T: Any) -> Any:
        return None

    def partial_fit(self, X: Any, y: Any) -> DNNRegressor:
        """One epoch over ``(X, y)``, continuing from the current state (``early_stopping`` does not apply,
        and ``standardize`` is learned by ``fit`` only)."""
        if not hasattr(self, "network_"):
            _refuse_partial_standardize(self)
        return self._fit(X, y, epochs=1, validation_data=None, incremental=True)

    def predict(self, X: Any, *, batch_size: int | None = None) -> Any:
        """Predictions, shape ``(n_samples,)`` for one target (as scikit-learn's MLPRegressor, also when fitted
        on a ``(n_samples, 1)`` y), else ``(n_samples, n_targets)``. ``batch_size``: samples per forward pass
        (None: automatic, bounded device memory); it changes only the memory taken, not the result (beyond the
        last bits of rounding)."""
        P, give_numpy = self._forward(X, batch_size)
        if getattr(self, "y_mean_", None) is not None:
            P = P * self._y_scale_b + self._y_mean_b
        if P.shape[1] == 1:
            P = self._backend_.xp.reshape(P, (-1,))
        return self._backend_.to_numpy(P) if give_numpy else P

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2 of ``predict(X)`` against ``y``."""
        from sklearn.metrics import r2_score

        y_true = _xp.to_numpy(y) if _xp.is_array(y) else y
        _check_y_values(y_true)
        return float(r2_score(y_true, _xp.to_numpy(self.predict(X)), sample_weight=sample_weight))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

"""The classifier, :class:`DNNClassifier`. The conventions it shares with :class:`~xpnet.estimators.DNNRegressor`
(input namespaces, ``dtype``, input checks, the differences from scikit-learn's MLP) are in the docstring of
:mod:`xpnet.estimators`."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.callback import with_callbacks
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from ..device import xp as _xp
from ..device.backend import Backend
from ..errors import ConfigError, LabelError, ModelFileError, ShapeError
from .base import _DNNEstimator
from .checks import (
    _check_score_lengths,
    _check_y_values,
    _on_device,
    _refuse_partial_standardize,
    _StochasticOnly,
)


class DNNClassifier(ClassifierMixin, _DNNEstimator):
    """A dense network classifier with scikit-learn's API, on any xpnet backend.

    Two classes train one sigmoid output with binary cross-entropy; more train a softmax output with
    categorical cross-entropy; both through the fused, stable gradient ``dZL = AL - Y``.

    Parameters
    ----------
    hidden_layer_sizes : units per hidden layer, e.g. ``(64, 32)``
    activation : hidden activation: ``relu``, ``leaky_relu``, ``tanh``, ``sigmoid``/``logistic``,
        ``linear``/``identity``
    solver : scikit-learn's ``adam`` (default), ``sgd`` (momentum ``v = momentum v - lr g``, Nesterov's with
        ``nesterovs_momentum``) and ``lbfgs`` (``max_fun``); the lecture's ``momentum``, ``rmsprop``, ``gd``,
        ``lecture_adam``
    alpha : L2 strength; batch_size : int, ``"auto"`` (``min(200, n)``) or ``"full"``
    learning_rate : scikit-learn's ``constant``, ``invscaling`` (``power_t``), ``adaptive`` (for every solver but
        ``adam``, as scikit-learn), or one of xpnet's schedules (``inverse_time``, ``step``, ``exponential``,
        ``cosine``; decaying per epoch, see :func:`xpnet.optimizers.default_decay_steps`) or an
        :class:`xpnet.optimizers.Schedule`, which carries its own initial rate
    learning_rate_init : the starting value of the rate
    max_iter : epochs (lbfgs: iterations); power_t, shuffle, random_state, tol, verbose (scikit-learn's
        ``Iteration 1, loss = ...`` lines on stdout), warm_start, momentum, nesterovs_momentum, early_stopping,
        validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun : as in scikit-learn's MLP
    backend : xpnet backend spec (``"auto"``, ``"cupy"``, ``"torch:cuda:0"``, ...); None follows the data
    dtype : ``"float32"``, ``"float64"`` or None (follow the input, see the module docstring)
    dropout : dropout rate for every hidden layer, or one per hidden layer
    init : ``glorot_uniform`` (scikit-learn's scheme, the default), the lecture's ``he``, ``xavier`` (the course's
        ``sqrt(1/n_prev)``, LeCun's scale), ``glorot`` (PyTorch's and Keras's "Xavier": ``sqrt(2/(n_prev + n))``),
        ``scaled_normal`` (zero biases), or starting weights ``(coefs, intercepts)`` as ``coefs_``/``intercepts_``
    class_weight : None, ``"balanced"`` or ``{class: weight}``: each sample's loss is scaled by its class's
        weight (``"balanced"``: ``n_samples / (n_classes * count(class))``)
    standardize : learn per-feature mean and standard deviation on the training data and apply them
        before every prediction (:class:`DNNRegressor` standardizes its targets too and scales predictions
        back: ``y_mean_``, ``y_scale_``)

    Attributes
    ----------
    classes_, n_features_in_, n_iter_ (this call's epochs), t_, loss_, loss_curve_, validation_scores_,
    best_validation_score_, best_loss_ (None under early stopping), coefs_, intercepts_ (both settable),
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
        class_weight: dict[Any, float] | str | None = None,
        standardize: bool = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start,
            momentum=momentum, nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, backend=backend,
            dtype=dtype, dropout=dropout, init=init, standardize=standardize,
        )
        self.class_weight = class_weight

    def _output_activation(self) -> str:
        return "sigmoid" if len(self.classes_) == 2 or self._multilabel() else "softmax"

    def _multilabel(self) -> bool:
        """Whether the classifier was fitted on a label-indicator ``y`` (n_samples, n_labels): one independent
        sigmoid output per label, as scikit-learn's MLPClassifier."""
        return bool(getattr(self, "multilabel_", False))

    def _targets(self, y: Any, Xb: Any, *, first: bool, classes: Any = None) -> tuple[Any, Any, int]:
        """``y`` -> float targets on the backend in ``Xb``'s dtype (``(1, m)`` 0/1 for two classes, one-hot
        ``(C, m)`` for more), the class index of each sample (host) and ``m``. ``first`` sets ``classes_``."""
        bk = self._backend_
        m = Xb.shape[0]
        indicator = self._indicator_targets(y, m, first=first)
        if indicator is not None:
            return bk.asarray(indicator, dtype=Xb.dtype), None, m
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

    def _indicator_targets(self, y: Any, m: int, *, first: bool) -> Any:
        """A multilabel indicator ``y`` (n_samples, n_labels) of 0/1 as ``(n_labels, m)`` float targets (``first``
        sets ``classes_ = arange(n_labels)`` and ``multilabel_``), or None for ordinary labels."""
        y_host = np.asarray(_xp.to_numpy(y) if _xp.is_array(y) else y)
        if y_host.ndim != 2 or y_host.shape[1] < 2 or type_of_target(y_host) != "multilabel-indicator":
            if first:
                self.multilabel_ = False
            elif self._multilabel():
                raise ShapeError(f"the classifier was fitted on a label-indicator y of {len(self.classes_)} "
                                 "labels: pass y as (n_samples, n_labels) of 0/1")
            return None
        if y_host.shape[0] != m:
            raise ShapeError(f"y has {y_host.shape[0]} rows but X has {m} samples")
        if first:
            self.classes_ = np.arange(y_host.shape[1])
            self.multilabel_ = True
        elif not self._multilabel() or y_host.shape[1] != len(self.classes_):
            raise ShapeError(f"y is a label indicator of {y_host.shape[1]} labels, but the classifier was fitted on "
                             f"{'an indicator of ' if self._multilabel() else ''}{len(self.classes_)} "
                             f"{'labels' if self._multilabel() else 'classes'}")
        if self.class_weight is not None:
            raise ConfigError("class_weight applies to single-label classification; a multilabel y takes "
                              "sample_weight")
        return np.ascontiguousarray(y_host.T.astype(np.float64))

    def _sample_weights(self, index: Any, T: Any) -> Any:
        if self.class_weight is None or index is None:
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

    @_StochasticOnly  # scikit-learn's MLP hides it for solver='lbfgs' (available_if)
    @with_callbacks
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> DNNClassifier:
        """One epoch over ``(X, y)``, continuing from the current state (the first call must pass
        ``classes``, every label that will ever appear). ``early_stopping=True`` is refused, as scikit-learn
        refuses it, and ``standardize`` is learned by ``fit`` only."""
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
        return self._fit(X, y, epochs=1, validation_data=None, incremental=True, classes=classes,
                         sample_weight=sample_weight)

    @_on_device
    def predict_proba(self, X: Any, *, batch_size: int | None = None) -> Any:
        """Class probabilities, shape ``(n_samples, n_classes)`` in the order of ``classes_``.

        ``batch_size``: samples per forward pass (None: automatic, bounded device memory); it changes only the
        memory taken, not the result (beyond the last bits of rounding)."""
        P, give_numpy = self._forward(X, batch_size)
        xp = self._backend_.xp
        if len(self.classes_) == 2 and not self._multilabel():
            P = xp.concat([1.0 - P, P], axis=1)
        return self._backend_.to_numpy(P) if give_numpy else P

    @_on_device
    def predict_log_proba(self, X: Any, *, batch_size: int | None = None) -> Any:
        """``log(predict_proba(X))``, shape ``(n_samples, n_classes)``."""
        P = self.predict_proba(X, batch_size=batch_size)
        if isinstance(P, np.ndarray):
            with np.errstate(divide="ignore"):
                return np.log(P)
        return self._backend_.xp.log(P)

    @_on_device
    def predict(self, X: Any, *, batch_size: int | None = None) -> Any:
        """Predicted class labels, shape ``(n_samples,)`` (values from ``classes_``); ``batch_size`` as in
        :meth:`predict_proba`."""
        P, give_numpy = self._forward(X, batch_size)
        xp = self._backend_.xp
        bk = self._backend_
        if self._multilabel():  # the label indicator (n_samples, n_labels): each sigmoid above 1/2
            Y = xp.astype(P > 0.5, xp.int64)
            return bk.to_numpy(Y) if give_numpy else Y
        index = xp.reshape(P > 0.5, (-1,)) if len(self.classes_) == 2 else xp.argmax(P, axis=1)
        index = xp.astype(index, _xp.index_dtype(xp, bk.device))
        if give_numpy or self.classes_.dtype.kind not in "biuf":
            return self.classes_[bk.to_numpy(index)]
        return xp.take(bk.asarray(self.classes_), index, axis=0)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y``."""
        from sklearn.metrics import accuracy_score

        _check_score_lengths(X, y, sample_weight)
        y_true = _xp.to_numpy(y) if _xp.is_array(y) else y
        _check_y_values(y_true)
        predicted = _xp.to_numpy(self.predict(X))
        try:
            return float(accuracy_score(y_true, predicted, sample_weight=sample_weight))
        except ValueError as exc:  # labels of another type than the classes ("Mix of label input types")
            raise LabelError(f"score: y does not hold labels of the model's kind ({exc}); the model's classes are "
                             f"{self.classes_[:10].tolist()}") from None

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True  # a label-indicator y trains one sigmoid per label
        return tags

    def _import_extra(self, meta: dict[str, Any]) -> None:
        classes = meta.get("classes")
        if not isinstance(classes, list) or len(classes) < 2:
            raise ModelFileError("a classifier file must list at least 2 classes")
        arr = np.asarray(classes)
        if meta.get("classes_dtype") in ("U", "S", "O"):
            arr = arr.astype(str)
        elif meta.get("classes_dtype") in ("i", "u") and all(isinstance(c, int) for c in classes):
            # Whole-number classes stay integers: NumPy makes [0, 2**64 - 1] float64, which predicts 1.8e19.
            arr = np.asarray(classes, dtype=np.uint64 if max(classes) > np.iinfo(np.int64).max else np.int64)
        self.classes_ = arr
        self.multilabel_ = bool(meta.get("multilabel", False))
        expected = 1 if len(arr) == 2 and not self.multilabel_ else len(arr)
        if self.network_.layer_dims[-1] != expected:
            raise ModelFileError(f"{len(arr)} classes need {expected} output units, the network has "
                                 f"{self.network_.layer_dims[-1]}")

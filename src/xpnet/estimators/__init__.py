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

As scikit-learn's MLP (:mod:`~xpnet.estimators.sklearn_rules`): its initialization (Glorot-uniform weights and
biases, drawn by xpnet's seeded generator), ``solver`` ``"adam"``, ``"sgd"`` (classical or Nesterov's momentum)
and ``"lbfgs"``, ``learning_rate`` ``"constant"``, ``"invscaling"`` and ``"adaptive"``, its reported losses and
its stopping rule: from the same weights (``init=(coefs, intercepts)``) and batch order its ``loss_curve_`` is
reproduced. ``alpha`` is the lecture's ``lambd``: cost ``+ alpha/(2m) sum ||W||^2`` over a batch of ``m``.

Extras:

* ``solver`` adds the lecture's ``"momentum"`` (``v = beta v + (1 - beta) dW``), ``"rmsprop"``, ``"gd"`` and
  ``"lecture_adam"``; ``init`` the lecture's ``"he"``, ``"xavier"``, ``"glorot"``, ``"scaled_normal"``.
* ``learning_rate`` also names xpnet's schedules (``inverse_time``, ``step``, ``exponential``, ``cosine``),
  applied per epoch to any solver.
* xpnet's own: ``backend``, ``dtype``, ``dropout``, ``init``, ``class_weight`` (classifier),
  ``standardize`` (learn per-feature mean/std on the training data, applied before every prediction) and
  ``validation_data`` in :meth:`fit`.
* ``dtype=None`` follows scikit-learn: float32 input is computed in float32, everything else in float64
  where the device has it (else float32). Ask for ``dtype="float32"`` for speed on a GPU.

The package's modules: :mod:`~xpnet.estimators.classifier`, :mod:`~xpnet.estimators.regressor`,
:mod:`~xpnet.estimators.base` (what they share), :mod:`~xpnet.estimators.model_files` (their model files) and
:mod:`~xpnet.estimators.checks` (argument and input checks).
"""

from __future__ import annotations

from .checks import NotFittedError
from .classifier import DNNClassifier
from .regressor import DNNRegressor

__all__ = ["DNNClassifier", "DNNRegressor", "NotFittedError"]

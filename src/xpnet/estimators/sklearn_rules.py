"""scikit-learn's MLP rules, for the estimators: its initialization, its reported losses and its per-epoch rule
(stopping, learning-rate updates, ``verbose`` lines), so that a ``DNNClassifier``/``DNNRegressor`` started
from the same weights with the same batch order reproduces ``MLPClassifier``/``MLPRegressor``'s ``loss_curve_``.

* **Initialization** (:func:`glorot_uniform_parameters`): every ``W[l]`` and ``b[l]`` drawn uniformly from
  ``[-r, r]`` with ``r = sqrt(6 / (n_{l-1} + n_l))`` (``sqrt(2 / ...)`` when the hidden activation is
  logistic), scikit-learn's ``_init_coef``, from xpnet's seeded generator (the same bits on every backend;
  not scikit-learn's random stream).
* **Reported losses** (:func:`sklearn_loss`): the gradient stays the fused ``dZL = A[L] - Y``; the cost of a
  batch is scikit-learn's: the squared error averaged over the outputs too (``1/(2 b k) sum (A - Y)^2``), the
  log-loss with probabilities clipped to ``[eps, 1 - eps]`` (``eps`` the dtype's machine epsilon), each term
  computed from the logits: ``-log p`` clipped to ``[-log(1 - eps), -log(eps)]``.
* **The per-epoch rule** (:class:`SklearnEpochRule`): after every epoch, as ``_fit_stochastic`` does: count
  an epoch without improvement when the training loss is above ``best_loss - tol`` (with ``early_stopping``:
  the validation score below ``best + tol``); update the learning rate of ``invscaling``
  (``alpha0 / (t + 1)^power_t``, ``t`` the samples seen); when the count exceeds ``n_iter_no_change``, stop,
  or, for ``adaptive``, divide the rate by 5 (stopping once it is <= 1e-6) and count again from zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..device import xp as _xp
from ..device.random import host_generator
from ..engine.callbacks import Callback
from ..engine.optimizers import Schedule
from ..errors import ConfigError, InvalidValueError, ShapeError
from ..lecture.activations import Activation
from ..lecture.losses import LOSSES, Loss

__all__ = ["SklearnEpochRule", "exp_output", "glorot_uniform_parameters", "initial_parameters", "sklearn_loss",
           "validation_scorer"]


def glorot_uniform_parameters(layer_dims: list[int], *, logistic: bool, seed: int | None,
                              dtype_name: str) -> dict[str, np.ndarray]:
    """scikit-learn's initial parameters for ``layer_dims = [n_0, ..., n_L]``: host NumPy arrays
    ``W{l}`` ``(n_l, n_{l-1})`` and ``b{l}`` ``(n_l, 1)``, each entry uniform in ``[-r, r]``,
    ``r = sqrt(f / (n_{l-1} + n_l))`` with ``f = 2`` for a logistic hidden activation, else 6. Drawn in float64
    from xpnet's ``"init_uniform"`` stream of ``seed`` (layer by layer, ``W`` in scikit-learn's
    ``(fan_in, fan_out)`` order, then ``b``) and rounded once to ``dtype_name``."""
    rng = host_generator(seed, "init_uniform")
    factor = 2.0 if logistic else 6.0
    params: dict[str, np.ndarray] = {}
    for l in range(1, len(layer_dims)):
        fan_in, fan_out = layer_dims[l - 1], layer_dims[l]
        bound = math.sqrt(factor / (fan_in + fan_out))
        W = rng.uniform(-bound, bound, (fan_in, fan_out)).T
        b = rng.uniform(-bound, bound, fan_out).reshape(-1, 1)
        params[f"W{l}"] = np.ascontiguousarray(W, dtype=np.dtype(dtype_name))
        params[f"b{l}"] = b.astype(np.dtype(dtype_name))
    return params


def initial_parameters(init: Any, layer_dims: list[int], activation: str, seed: int | None,
                       dtype_name: str) -> dict[str, np.ndarray]:
    """The estimators' starting parameters (host arrays): scikit-learn's scheme for ``init="glorot_uniform"``
    (:func:`glorot_uniform_parameters`), else the given ``(coefs, intercepts)`` (:func:`_given_parameters`)."""
    if isinstance(init, str):
        return glorot_uniform_parameters(layer_dims, logistic=activation == "sigmoid", seed=seed,
                                         dtype_name=dtype_name)
    return _given_parameters(init, layer_dims, dtype_name)


def _given_parameters(init: Any, layer_dims: list[int], dtype_name: str) -> dict[str, np.ndarray]:
    """Starting parameters given as ``(coefs, intercepts)`` in scikit-learn's orientation (``coefs[i]``
    ``(n_i, n_{i+1})``, ``intercepts[i]`` ``(n_{i+1},)``, as ``MLPClassifier.coefs_``/``intercepts_``) ->
    ``W{l}``, ``b{l}`` host arrays in the lecture's orientation; shapes checked against ``layer_dims``."""
    try:
        coefs, intercepts = init
        coefs, intercepts = list(coefs), list(intercepts)
    except (TypeError, ValueError):
        raise ConfigError("init must be 'glorot_uniform', one of the lecture's initializers ('he', 'xavier', "
                          "'glorot', 'scaled_normal') or a pair (coefs, intercepts) of lists of arrays, got "
                          f"{type(init).__name__}") from None
    L = len(layer_dims) - 1
    if len(coefs) != L or len(intercepts) != L:
        raise ShapeError(f"init=(coefs, intercepts) needs {L} arrays each for layers {layer_dims}, got "
                         f"{len(coefs)} and {len(intercepts)}")
    params: dict[str, np.ndarray] = {}
    for l in range(1, L + 1):
        W = np.asarray(coefs[l - 1], dtype=np.float64)
        b = np.asarray(intercepts[l - 1], dtype=np.float64)
        want = (layer_dims[l - 1], layer_dims[l])
        if W.shape != want or b.shape != (want[1],):
            raise ShapeError(f"layer {l}: coefs[{l - 1}] must be {want} and intercepts[{l - 1}] ({want[1]},) for "
                             f"layers {layer_dims}, got {W.shape} and {b.shape}")
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise InvalidValueError(f"layer {l}: the given coefs/intercepts hold NaN or infinity")
        params[f"W{l}"] = np.ascontiguousarray(W.T, dtype=np.dtype(dtype_name))
        params[f"b{l}"] = b.reshape(-1, 1).astype(np.dtype(dtype_name))
    return params


def _weighted_mean(xp: Any, terms: Any, weights: Any) -> Any:
    m = terms.shape[1]
    if weights is not None:
        terms = terms * weights
    return (1.0 / m) * xp.sum(terms)


def _clip_bounds(xp: Any, dtype: Any) -> tuple[float, float]:
    eps = float(xp.finfo(dtype).eps)
    return -math.log1p(-eps), -math.log(eps)


def _clipped(xp: Any, nll: Any, lo: float, hi: float) -> Any:
    return xp.minimum(xp.maximum(nll, _xp.scalar_operand(xp, lo, nll)), _xp.scalar_operand(xp, hi, nll))


def _log_loss_sigmoid(xp: Any, ZL: Any, Y: Any, weights: Any = None) -> Any:
    # -log s(z) = log(1 + e^-z) and -log(1 - s(z)) = log(1 + e^z), each clipped as scikit-learn clips p; summed
    # over the outputs (binary and multilabel: scikit-learn's binary_log_loss).
    lo, hi = _clip_bounds(xp, ZL.dtype)
    zero = _xp.scalar_operand(xp, 0.0, ZL)
    terms = Y * _clipped(xp, xp.logaddexp(-ZL, zero), lo, hi) + (1.0 - Y) * _clipped(xp, xp.logaddexp(ZL, zero), lo, hi)
    return _weighted_mean(xp, terms, weights)


def _log_loss_softmax(xp: Any, ZL: Any, Y: Any, weights: Any = None) -> Any:
    lo, hi = _clip_bounds(xp, ZL.dtype)
    shifted = ZL - xp.max(ZL, axis=0, keepdims=True)
    lse = xp.log(xp.sum(xp.exp(shifted), axis=0, keepdims=True))
    return _weighted_mean(xp, Y * _clipped(xp, lse - shifted, lo, hi), weights)


def _squared_error_mean(xp: Any, ZL: Any, Y: Any, weights: Any = None) -> Any:
    D = ZL - Y
    return (0.5 / ZL.shape[0]) * _weighted_mean(xp, D * D, weights)


def _poisson(xp: Any, ZL: Any, Y: Any, weights: Any = None) -> Any:
    # scikit-learn's half Poisson deviance with the log link, p = e^z: y log(y/p) - y + p = e^z - y z + y log y - y
    # (y log y = 0 at y = 0), averaged over the samples and summed over the outputs.
    ylogy = Y * xp.log(xp.where(Y > 0, Y, xp.ones_like(Y)))
    return _weighted_mean(xp, xp.exp(ZL) - Y * ZL + ylogy - Y, weights)


class _ExpOutput(Activation):
    """The Poisson regressor's output ``A = e^Z`` (scikit-learn's ``exp``), fused with :func:`_poisson` so that
    ``dZL = A - Y``; pickled as the estimators' own."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (exp_output, ())


_EXP = _ExpOutput("exp", lambda xp, Z: xp.exp(Z), lambda xp, Z: xp.exp(Z), lambda xp, dA, Z: dA * xp.exp(Z))


def exp_output() -> Activation:
    """The output activation of ``DNNRegressor(loss="poisson")``: ``A = e^Z``."""
    return _EXP


class _SklearnLoss(Loss):
    """A built-in loss whose ``fused_cost`` is scikit-learn's reported loss (the gradient is unchanged)."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (sklearn_loss, (self.output,))


def _make(base: str, cost: Any) -> _SklearnLoss:
    ref = LOSSES[base]
    return _SklearnLoss(ref.name, ref.output, ref.cost, ref.gradient, cost)


_SKLEARN_LOSSES = {"sigmoid": _make("binary_cross_entropy", _log_loss_sigmoid),
                   "softmax": _make("categorical_cross_entropy", _log_loss_softmax),
                   "linear": _make("mse", _squared_error_mean),
                   "exp": _SklearnLoss("poisson", "exp", LOSSES["mse"].cost, LOSSES["mse"].gradient, _poisson)}


def sklearn_loss(output: str) -> Loss:
    """The training loss of an estimator whose output activation is ``output`` (``sigmoid``, ``softmax`` or
    ``linear``): the built-in one with scikit-learn's reported cost (see the module docstring); for ``exp`` (the
    Poisson regressor) scikit-learn's half Poisson deviance (the lecture-form ``cost``/``gradient`` are not
    defined for it: training uses the fused cost only)."""
    return _SKLEARN_LOSSES[output]


def validation_scorer(net: Any, validation: tuple[Any, Any], weights: Any = None) -> Any:
    """A callable giving scikit-learn's early-stopping score of ``net`` on ``validation = (X_v (n_x, m), Y_v
    (n_L, m))``, weighted by ``weights`` (host (m,) or None) as scikit-learn weighs it by the held-out part's
    ``sample_weight``: ``sum_i w_i [pred_i == y_i] / sum_i w_i`` for a classifier (argmax for softmax; a sigmoid
    output thresholded at 0.5, every label right for a multilabel one), R^2 (``r2_score``, uniform over the outputs,
    ``1 - sum_i w_i (y_i - p_i)^2 / sum_i w_i (y_i - ybar_w)^2``) otherwise. Used where the trainer's unweighted
    ``val_metric`` is not that score: sample weights, or the Poisson regressor's ``exp`` output."""
    from sklearn.metrics import accuracy_score, r2_score

    from ..lecture.network import forward_output

    def score() -> float:
        bk = net.backend
        _, AL = forward_output(bk.xp, net.parameters, validation[0], net.hidden, net.output)
        Y, P = bk.to_numpy(validation[1]).T, bk.to_numpy(AL).T  # (m, n_L)
        if net.output.name == "softmax":
            return float(accuracy_score(Y.argmax(axis=1), P.argmax(axis=1), sample_weight=weights))
        if net.output.name == "sigmoid":
            Y, P = Y > 0.5, P > 0.5
            if Y.shape[1] == 1:
                Y, P = Y[:, 0], P[:, 0]
            return float(accuracy_score(Y, P, sample_weight=weights))
        return float(r2_score(Y, P, sample_weight=weights))

    return score


class SklearnEpochRule(Callback):
    """scikit-learn's end-of-epoch rule for one estimator (``_update_no_improvement_count``,
    ``iteration_ends`` and ``trigger_stopping`` of ``MLPClassifier``), as a trainer callback.

    Parameters
    ----------
    est : the estimator (its ``tol``, ``n_iter_no_change``, ``learning_rate``, ``power_t``, ``verbose``)
    n_samples : training samples per epoch (``t_`` grows by it)
    early_stopping : whether the validation score (the epoch's ``val_metric``) decides instead of the loss
    schedule_lr : whether this solver's rate follows ``learning_rate`` (``sgd``; ``adam`` keeps its own)

    The counters (``best_loss``, ``no_improvement``) live on the rule, which the estimator keeps from one fit to
    the next as scikit-learn keeps them (``warm_start``, ``partial_fit``); ``lr`` is the rate the next epoch
    uses, set on the trainer's schedule. With ``early_stopping`` the best epoch's parameters come back at the
    end (``restore``).
    """

    def __init__(self, est: Any, n_samples: int, *, early_stopping: bool, schedule_lr: bool) -> None:
        self.est = est
        self.n_samples = int(n_samples)  # the estimator sets it again for each fit call
        self.early_stopping = bool(early_stopping)
        self.schedule_lr = bool(schedule_lr)
        self.best_loss = math.inf
        self.best_score = -math.inf
        self.no_improvement = 0
        self.validation_scores: list[float] = []
        self.best_parameters: dict[str, Any] | None = None
        self.score_validation: Any = None  # a callable for the validation score where val_metric is not R^2
        self.epochs = 0  # of the current fit call (scikit-learn's n_iter_)
        self.t = 0  # training samples seen over the estimator's life (scikit-learn's t_)
        self.stopped = False

    def on_train_begin(self, trainer: Any) -> None:
        self.epochs = 0
        self.stopped = False

    def start_fit(self, trainer: Any, lr0: float) -> None:
        """A new ``fit`` call: scikit-learn builds a new optimizer, whose rate starts at ``learning_rate_init``."""
        if self.schedule_lr:
            trainer.schedule = Schedule("constant", lr0)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Mapping[str, Any]) -> None:
        est = self.est
        self.epochs += 1
        self.t += self.n_samples
        loss = float(logs["loss"])
        if est.verbose:
            print(f"Iteration {self.epochs}, loss = {loss:.8f}", flush=True)
        tol = float(est.tol)
        if self.early_stopping:
            score = logs.get("val_metric") if self.score_validation is None else self.score_validation()
            score = math.nan if score is None else float(score)
            self.validation_scores.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}", flush=True)
            self.no_improvement = self.no_improvement + 1 if not score >= self.best_score + tol else 0
            if score > self.best_score:
                self.best_score = score
                self.best_parameters = trainer.snapshot_parameters()
        else:
            self.no_improvement = self.no_improvement + 1 if loss > self.best_loss - tol else 0
            if loss < self.best_loss:
                self.best_loss = loss
        lr = trainer.schedule(trainer.epoch)
        if self.schedule_lr and est.learning_rate == "invscaling":
            lr = float(est.learning_rate_init) / (self.t + 1) ** float(est.power_t)
        if self.no_improvement > est.n_iter_no_change:
            what = "Validation score" if self.early_stopping else "Training loss"
            msg = f"{what} did not improve more than tol={tol:f} for {est.n_iter_no_change} consecutive epochs."
            if self.schedule_lr and est.learning_rate == "adaptive":
                if lr <= 1e-6:
                    self._stop(trainer, msg + " Learning rate too small. Stopping.")
                else:
                    lr /= 5.0
                    self.no_improvement = 0
                    if est.verbose:
                        print(msg + f" Setting learning rate to {lr:f}", flush=True)
            else:
                self._stop(trainer, msg + " Stopping.")
        if self.schedule_lr:
            trainer.schedule = Schedule("constant", lr)

    def _stop(self, trainer: Any, msg: str) -> None:
        if self.est.verbose:
            print(msg, flush=True)
        self.stopped = True
        trainer.stop_training = True

    def on_train_end(self, trainer: Any) -> None:
        if self.early_stopping and self.best_parameters is not None and getattr(trainer, "divergence", None) is None:
            trainer.network.parameters = self.best_parameters

    def _checkpoint_state(self, trainer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        state = {"best_loss": None if math.isinf(self.best_loss) else self.best_loss,
                 "best_score": None if math.isinf(self.best_score) else self.best_score,
                 "no_improvement": self.no_improvement, "validation_scores": list(self.validation_scores),
                 "epochs": self.epochs, "t": self.t, "lr": trainer.schedule(trainer.epoch)}
        return state, dict(self.best_parameters or {})

    def _restore_checkpoint_state(self, trainer: Any, state: Mapping[str, Any], arrays: Mapping[str, Any]) -> None:
        self.best_loss = math.inf if state.get("best_loss") is None else float(state["best_loss"])
        self.best_score = -math.inf if state.get("best_score") is None else float(state["best_score"])
        self.no_improvement = int(state.get("no_improvement", 0))
        self.validation_scores = list(state.get("validation_scores") or [])
        self.epochs = int(state.get("epochs", 0))
        self.t = int(state.get("t", 0))
        self.best_parameters = dict(arrays) if arrays else None
        if self.schedule_lr and state.get("lr"):
            trainer.schedule = Schedule("constant", float(state["lr"]))

"""The estimators' scikit-learn attributes: what a fit call leaves (``loss_curve_``, ``loss_``, ``n_iter_``,
``t_``, ``best_loss_``, the validation scores, the layer counts), the per-epoch rule that decides them, and
``coefs_``/``intercepts_`` (read and set in scikit-learn's orientation)."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

from sklearn.exceptions import ConvergenceWarning

from ..device import xp as _xp
from ..errors import ConfigError
from .checks import _check_fitted, _check_int
from .sklearn_rules import SklearnEpochRule, _given_parameters

# scikit-learn's learning_rate values: its own per-epoch rule (SklearnEpochRule), for every solver but adam.
_SKLEARN_RATES = ("constant", "invscaling", "adaptive")


class _AttributesMixin:
    """Part of :class:`~xpnet.estimators.base._DNNEstimator`: its fitted attributes and their rule."""

    def _epoch_rule(self, early_stopping: bool, n_samples: int) -> SklearnEpochRule:
        """scikit-learn's per-epoch rule, kept from one fit call to the next (its counters and ``t_``)."""
        _check_int("n_iter_no_change", self.n_iter_no_change, 1)
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (0 <= tol < float("inf")):
            raise ConfigError(f"tol must be a finite number >= 0, got {tol!r}")
        pt = self.power_t
        if isinstance(pt, bool) or not isinstance(pt, numbers.Real) or not math.isfinite(pt):
            raise ConfigError(f"power_t must be a finite number, got {pt!r}")
        rule = getattr(self, "_rule", None)
        schedule_lr = self._solver() != "adam" and self.learning_rate in _SKLEARN_RATES
        if rule is None:
            rule = self._rule = SklearnEpochRule(self, n_samples, early_stopping=early_stopping,
                                                 schedule_lr=schedule_lr)
        rule.n_samples, rule.early_stopping, rule.schedule_lr = n_samples, early_stopping, schedule_lr
        return rule

    def _collect(self, incremental: bool, epochs: int) -> None:
        """scikit-learn's fitted attributes after a fit call: ``loss_curve_`` (every epoch since the network was
        built), ``loss_`` (the last), ``n_iter_`` (epochs of this call), ``t_`` (samples seen), ``best_loss_``
        (None under early stopping), ``validation_scores_`` and ``best_validation_score_`` (early stopping)."""
        h = self.trainer_.history
        rule = self._rule
        self.history_ = h
        self.loss_curve_ = list(h["loss"])
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        if rule.early_stopping:
            self.validation_scores_ = list(rule.validation_scores)
            self.best_validation_score_ = rule.best_score
            self.best_loss_ = None
        else:
            # validation_data of the caller's (an xpnet extra) is scored every epoch without deciding anything.
            vals = [v for v in h["val_metric"] if v is not None]
            self.validation_scores_ = vals if vals else None
            self.best_validation_score_ = max(vals) if vals else None
            self.best_loss_ = rule.best_loss if math.isfinite(rule.best_loss) else None
        self.n_iter_ = rule.epochs
        self.t_ = rule.t
        self._collect_shape()
        # Warn when the epochs ran out, not when the stopping rule (or a callback of the caller's) ended the run.
        if not incremental and not self.trainer_.stop_training and epochs > 0:
            warnings.warn(f"{type(self).__name__}: stochastic optimizer reached max_iter={self.max_iter} epochs "
                          "and the optimization has not converged yet; raise max_iter or the learning rate",
                          ConvergenceWarning, stacklevel=3)

    def _collect_shape(self) -> None:
        self.n_layers_ = self.network_.num_layers + 1
        self.n_outputs_ = self.network_.layer_dims[-1]
        self.out_activation_ = {"sigmoid": "logistic", "softmax": "softmax", "linear": "identity", "exp": "exp"}[
            self.network_.output.name]

    @property
    def coefs_(self) -> list[Any]:
        """Weights as NumPy arrays in scikit-learn's orientation: ``coefs_[i]`` is ``W[i+1].T``,
        ``(n_units_in, n_units_out)``. Settable on a fitted estimator (same shapes): the next ``warm_start`` fit
        or ``partial_fit`` starts from them."""
        _check_fitted(self, "give coefs_")
        p = self.network_.get_parameters()
        return [p[f"W{l}"].T.copy() for l in range(1, self.network_.num_layers + 1)]

    @coefs_.setter
    def coefs_(self, coefs: Sequence[Any]) -> None:
        self._set_parameters(coefs, None)

    @property
    def intercepts_(self) -> list[Any]:
        """Biases as NumPy arrays, ``intercepts_[i]`` of shape ``(n_units_out,)`` (``b[i+1]`` flattened); settable
        as :attr:`coefs_`."""
        _check_fitted(self, "give intercepts_")
        p = self.network_.get_parameters()
        return [p[f"b{l}"].reshape(-1) for l in range(1, self.network_.num_layers + 1)]

    @intercepts_.setter
    def intercepts_(self, intercepts: Sequence[Any]) -> None:
        self._set_parameters(None, intercepts)

    def _set_parameters(self, coefs: Any, intercepts: Any) -> None:
        _check_fitted(self, "take coefs_ or intercepts_ (give starting weights to an unfitted estimator with "
                            "init=(coefs, intercepts))")
        net = self.network_
        old = self.coefs_ if coefs is None else coefs, self.intercepts_ if intercepts is None else intercepts
        params = _given_parameters(old, list(net.layer_dims), _xp.dtype_name(net.backend.xp, net.dtype))
        net.parameters = {k: net.backend.asarray(v, dtype=net.dtype) for k, v in params.items()}

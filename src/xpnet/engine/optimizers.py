"""Optimizers and learning-rate schedules, in the lecture's notation.

Each optimizer turns the gradients ``dW[l], db[l]`` of one mini-batch into new parameters. ``t`` counts the
updates made so far (1 for the first), ``alpha`` is the learning rate of the current epoch:

* gd:       ``W = W - alpha dW``
* momentum: ``v = beta v + (1 - beta) dW``; ``W = W - alpha v``
* rmsprop:  ``s = beta s + (1 - beta) dW^2``; ``W = W - alpha dW / (sqrt(s) + eps)``
* adam:     ``v = b1 v + (1 - b1) dW``; ``s = b2 s + (1 - b2) dW^2``;
  ``W = W - alpha v_hat / (sqrt(s_hat) + eps)`` with ``v_hat = v / (1 - b1^t)``, ``s_hat = s / (1 - b2^t)``

The moving averages ``v``, ``s`` start at zero.

scikit-learn's two solvers, for the estimators (``MLPClassifier``/``MLPRegressor`` step for step):

* sklearn_sgd:  ``v = mu v - alpha dW``; ``W = W + v`` (classical momentum), or with Nesterov's momentum
  ``W = W + mu v - alpha dW`` (with the new ``v``)
* sklearn_adam: ``v``, ``s`` as adam; ``alpha_t = alpha sqrt(1 - b2^t) / (1 - b1^t)``;
  ``W = W - alpha_t v / (sqrt(s) + eps)`` (``eps`` added to the uncorrected ``sqrt(s)``)

Momentum is the lecture's exponentially weighted average (``(1 - beta) dW``), not the "heavy ball"
``v = beta v - alpha dW`` of scikit-learn's ``sgd``: for the same ``momentum`` the step is ``(1 - beta)``
times smaller, so it wants a learning rate ``1 / (1 - beta)`` times larger.

Optimizers work on any Array API namespace: the state lives on the parameters' device and every update
returns new arrays (the old ones are left untouched, so an interrupted step never leaves a half-updated
network). Schedules are plain functions of the epoch number (0-based) evaluated on the host.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..lecture.registry import lookup

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Adam",
    "GradientDescent",
    "Momentum",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "SklearnAdam",
    "SklearnSGD",
    "default_decay_steps",
    "get_optimizer",
    "get_schedule",
]


def _check_fraction(name: str, value: Any, *, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 <= value < 1):
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    if not allow_zero and value == 0:
        raise ConfigError(f"{name} must be in (0, 1), got 0")
    return float(value)


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 < value < math.inf):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


@dataclass
class Optimizer:
    """Base class: ``update(xp, params, grads, lr)`` returns the new parameter dict.

    ``state`` maps names (``"v_W1"``, ``"s_b2"``, ...) to arrays on the parameters' device; ``t`` counts
    updates. Both are created on the first update and carried over between ``fit`` calls (``warm_start``,
    ``partial_fit``); :meth:`reset` forgets them.
    """

    name: str = field(default="optimizer", init=False)
    state: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    t: int = field(default=0, init=False)

    def reset(self) -> None:
        """Forget the moving averages and the update count."""
        self.state = {}
        self.t = 0

    def update(self, xp: Any, params: Mapping[str, Any], grads: Mapping[str, Any], lr: float) -> dict[str, Any]:
        """One step: ``params`` (``W1, b1, ...``) and ``grads`` (``dW1, db1, ...``) -> new params."""
        self.t += 1
        return {k: self._step(xp, k, p, grads[f"d{k}"], lr) for k, p in params.items()}

    def _step(self, xp: Any, key: str, p: Any, g: Any, lr: float) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, float]:
        """The optimizer's settings, for model files and reports."""
        return {}


@dataclass
class GradientDescent(Optimizer):
    """Plain (mini-batch) gradient descent: ``W = W - alpha dW``."""

    def __post_init__(self) -> None:
        self.name = "gd"

    def _step(self, xp: Any, key: str, p: Any, g: Any, lr: float) -> Any:
        return p - lr * g


@dataclass
class Momentum(Optimizer):
    """Gradient descent with momentum: ``v = beta v + (1 - beta) dW``, ``W = W - alpha v``."""

    beta: float = 0.9

    def __post_init__(self) -> None:
        self.name = "momentum"
        self.beta = _check_fraction("momentum beta", self.beta)

    def _step(self, xp: Any, key: str, p: Any, g: Any, lr: float) -> Any:
        v = self.state.get(f"v_{key}")
        v = (1.0 - self.beta) * g if v is None else self.beta * v + (1.0 - self.beta) * g
        self.state[f"v_{key}"] = v
        return p - lr * v

    def hyperparameters(self) -> dict[str, float]:
        return {"beta": self.beta}


@dataclass
class RMSprop(Optimizer):
    """RMSprop: ``s = beta s + (1 - beta) dW^2``, ``W = W - alpha dW / (sqrt(s) + eps)``."""

    beta: float = 0.9
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        self.name = "rmsprop"
        self.beta = _check_fraction("rmsprop beta", self.beta)
        self.epsilon = _check_positive("epsilon", self.epsilon)

    def _step(self, xp: Any, key: str, p: Any, g: Any, lr: float) -> Any:
        s = self.state.get(f"s_{key}")
        s = (1.0 - self.beta) * (g * g) if s is None else self.beta * s + (1.0 - self.beta) * (g * g)
        self.state[f"s_{key}"] = s
        return p - lr * (g / (xp.sqrt(s) + self.epsilon))

    def hyperparameters(self) -> dict[str, float]:
        return {"beta": self.beta, "epsilon": self.epsilon}


@dataclass
class Adam(Optimizer):
    """Adam with bias correction (the lecture's ``beta1 = 0.9, beta2 = 0.999, eps = 1e-8``).

    ``v = b1 v + (1 - b1) dW``, ``s = b2 s + (1 - b2) dW^2``, ``W = W - alpha v_hat / (sqrt(s_hat) + eps)``
    with ``v_hat = v / (1 - b1^t)``, ``s_hat = s / (1 - b2^t)``. The two corrections are host scalars folded
    into the update (``sqrt(s_hat) = sqrt(s) / sqrt(1 - b2^t)``), which saves two passes over each array.
    """

    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        self.name = "adam"
        self.beta1 = _check_fraction("beta1 (beta_1)", self.beta1)
        self.beta2 = _check_fraction("beta2 (beta_2)", self.beta2)
        self.epsilon = _check_positive("epsilon", self.epsilon)

    def update(self, xp: Any, params: Mapping[str, Any], grads: Mapping[str, Any], lr: float) -> dict[str, Any]:
        t = self.t + 1
        self._c1 = 1.0 / (1.0 - self.beta1**t)
        self._c2 = 1.0 / math.sqrt(1.0 - self.beta2**t)
        return super().update(xp, params, grads, lr)

    def _moments(self, key: str, g: Any) -> tuple[Any, Any]:
        """The moving averages ``v = b1 v + (1 - b1) dW`` and ``s = b2 s + (1 - b2) dW^2`` (both Adams share
        them; they start as the first step's ``(1 - b) dW`` terms), stored and returned."""
        b1, b2 = self.beta1, self.beta2
        v, s = self.state.get(f"v_{key}"), self.state.get(f"s_{key}")
        v = (1.0 - b1) * g if v is None else b1 * v + (1.0 - b1) * g
        s = (1.0 - b2) * (g * g) if s is None else b2 * s + (1.0 - b2) * (g * g)
        self.state[f"v_{key}"], self.state[f"s_{key}"] = v, s
        return v, s

    def _step(self, xp: Any, key: str, p: Any, g: Any, lr: float) -> Any:
        v, s = self._moments(key, g)
        return p - (lr * self._c1) * (v / (xp.sqrt(s) * self._c2 + self.epsilon))

    def hyperparameters(self) -> dict[str, float]:
        return {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon}


@dataclass
class SklearnSGD(Optimizer):
    """scikit-learn's ``solver="sgd"``: classical ("heavy ball") momentum ``v = mu v - alpha dW``, ``W = W + v``;
    with ``nesterov`` (scikit-learn's default) ``W = W + (mu v - alpha dW)`` using the new ``v``. ``v`` starts at
    zero; ``momentum=0`` is plain gradient descent. Unlike the lecture's :class:`Momentum` the step is not
    damped by ``(1 - mu)``: the same learning rate moves ``1 / (1 - mu)`` times further."""

    momentum: float = 0.9
    nesterov: bool = True

    def __post_init__(self) -> None:
        self.name = "sklearn_sgd"
        self.momentum = _check_fraction("momentum", self.momentum)
        self.nesterov = bool(self.nesterov)

    def _step(self, xp: Any, key: str, p: Any, g: Any, lr: float) -> Any:
        v = self.state.get(f"v_{key}")
        v = -lr * g if v is None else self.momentum * v - lr * g
        self.state[f"v_{key}"] = v
        return p + (self.momentum * v - lr * g if self.nesterov else v)

    def hyperparameters(self) -> dict[str, float]:
        return {"momentum": self.momentum, "nesterov": float(self.nesterov)}


@dataclass
class SklearnAdam(Adam):
    """scikit-learn's ``solver="adam"``: the moving averages of :class:`Adam`, the bias corrections folded into
    the rate, ``alpha_t = alpha sqrt(1 - b2^t) / (1 - b1^t)``, and ``W = W - alpha_t v / (sqrt(s) + eps)``:
    ``eps`` meets the uncorrected ``sqrt(s)`` (the lecture's Adam adds it after the correction, a step that
    differs where ``sqrt(s_hat)`` is near ``eps``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.name = "sklearn_adam"

    def update(self, xp: Any, params: Mapping[str, Any], grads: Mapping[str, Any], lr: float) -> dict[str, Any]:
        t = self.t + 1
        self._lr_t = lr * math.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        return Optimizer.update(self, xp, params, grads, lr)

    def _step(self, xp: Any, key: str, p: Any, g: Any, lr: float) -> Any:
        v, s = self._moments(key, g)
        return p + (-self._lr_t * v) / (xp.sqrt(s) + self.epsilon)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "gd": GradientDescent,
    "momentum": Momentum,
    "rmsprop": RMSprop,
    "adam": Adam,
    "sklearn_sgd": SklearnSGD,
    "sklearn_adam": SklearnAdam,
}
# No "sgd" alias: in the estimators (as in scikit-learn) solver="sgd" means descent *with* momentum, so here
# the name is refused rather than given a second meaning.
_OPTIMIZER_ALIASES = {"gradient_descent": "gd"}


def get_optimizer(optimizer: str | Optimizer, **hyperparameters: Any) -> Optimizer:
    """An optimizer by name (``gd``, ``momentum``, ``rmsprop``, ``adam``, ``sklearn_sgd``, ``sklearn_adam``) with
    its hyper-parameters (``beta`` for momentum/rmsprop, ``beta1``/``beta2``/``epsilon`` for the adams,
    ``momentum``/``nesterov`` for sklearn_sgd; others are ignored), or an
    :class:`Optimizer` instance as is. An unknown name raises :class:`ConfigError` listing the valid ones."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.strip().lower() == "sgd":
        raise ConfigError("optimizer 'sgd' is ambiguous here: say 'gd' for plain (mini-batch) gradient descent or "
                          "'momentum' for descent with momentum (the estimators' solver='sgd' is the latter)")
    factory = lookup(optimizer, OPTIMIZERS, kind="optimizer", plural="optimizers", aliases=_OPTIMIZER_ALIASES)
    accepted = {"gd": (), "momentum": ("beta",), "rmsprop": ("beta", "epsilon"),
                "adam": ("beta1", "beta2", "epsilon"), "sklearn_adam": ("beta1", "beta2", "epsilon"),
                "sklearn_sgd": ("momentum", "nesterov")}[factory().name]
    return factory(**{k: v for k, v in hyperparameters.items() if k in accepted and v is not None})


# ----------------------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule: ``schedule(epoch) -> alpha`` for epoch = 0, 1, 2, ...

    * constant:     ``alpha0``
    * inverse_time: ``alpha0 / (1 + decay_rate * floor(epoch / decay_steps))``, the lecture's
      ``schedule_lr_decay`` (``decay_steps=1`` is its ``update_lr``)
    * step:         ``alpha0 * decay_rate ** floor(epoch / decay_steps)``
    * exponential:  ``alpha0 * decay_rate ** epoch``
    * cosine:       ``min_lr + (alpha0 - min_lr) (1 + cos(pi min(epoch, T) / T)) / 2`` with ``T = decay_steps``
    """

    name: str
    initial: float
    decay_rate: float = 0.0
    decay_steps: int = 1
    min_lr: float = 0.0

    def __call__(self, epoch: int) -> float:
        a0, r, k = self.initial, self.decay_rate, self.decay_steps
        if self.name == "constant":
            return a0
        if self.name == "inverse_time":
            return a0 / (1.0 + r * (epoch // k))
        if self.name == "step":
            return a0 * r ** (epoch // k)
        if self.name == "exponential":
            return a0 * r**epoch
        # cosine
        return self.min_lr + (a0 - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(epoch, k) / k))

    def describe(self) -> dict[str, Any]:
        """The schedule's settings, for model files and reports."""
        return {"name": self.name, "initial": self.initial, "decay_rate": self.decay_rate,
                "decay_steps": self.decay_steps, "min_lr": self.min_lr}


SCHEDULES = ("constant", "inverse_time", "step", "exponential", "cosine")
_DEFAULT_DECAY = {"constant": 0.0, "inverse_time": 1.0, "step": 0.5, "exponential": 0.95, "cosine": 0.0}


def get_schedule(schedule: str | Schedule | None, learning_rate: float, *, decay_rate: float | None = None,
                 decay_steps: int = 1, min_lr: float = 0.0) -> Schedule:
    """Build a :class:`Schedule` named ``schedule`` (None: constant) starting at ``learning_rate``.

    ``decay_rate`` defaults per schedule (inverse_time 1.0, step 0.5, exponential 0.95); for ``step`` and
    ``exponential`` it must lie in (0, 1], for ``inverse_time`` be >= 0. ``decay_steps`` is in epochs (for
    ``cosine``, the epoch at which ``min_lr`` is reached).
    """
    lr = _check_positive("learning rate", learning_rate)
    if isinstance(schedule, Schedule):
        return schedule
    name = lookup("constant" if schedule is None else schedule, {n: n for n in SCHEDULES},
                  kind="learning-rate schedule", plural="schedules",
                  aliases={"invscaling": "inverse_time", "exp": "exponential"})
    rate = _DEFAULT_DECAY[name] if decay_rate is None else decay_rate
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(rate) or rate < 0:
        raise ConfigError(f"decay_rate must be a finite number >= 0, got {rate!r}")
    if name in ("step", "exponential") and not (0 < rate <= 1):
        raise ConfigError(f"the {name} schedule multiplies the rate by decay_rate, which must be in (0, 1]; "
                          f"got {rate!r}")
    if isinstance(decay_steps, bool) or not isinstance(decay_steps, numbers.Integral) or decay_steps < 1:
        raise ConfigError(f"decay_steps must be a positive integer (epochs), got {decay_steps!r}")
    if isinstance(min_lr, bool) or not isinstance(min_lr, numbers.Real) or not (0 <= min_lr <= lr):
        raise ConfigError(f"min_lr must be a number in [0, learning rate {lr}], got {min_lr!r}")
    return Schedule(name, lr, float(rate), int(decay_steps), float(min_lr))


def default_decay_steps(schedule: Any, epochs: int) -> int:
    """``decay_steps`` for a run of ``epochs`` when the user gives none: ``cosine`` anneals over the whole run
    (``epochs``), ``step`` decays four times over it (``epochs // 4``), the others decay every epoch (the
    lecture's ``update_lr``). A :class:`Schedule` object keeps its own."""
    name = schedule.name if isinstance(schedule, Schedule) else str(schedule or "constant").strip().lower()
    if name == "cosine":
        return max(1, int(epochs))
    if name == "step":
        return max(1, int(epochs) // 4)
    return 1

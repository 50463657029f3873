"""Optimizers and learning-rate schedules against a NumPy float64 reference of the module's formulas, on every
entry of the backend matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet
from xpnet.engine.optimizers import (
    OPTIMIZERS,
    SCHEDULES,
    Adam,
    GradientDescent,
    Momentum,
    RMSprop,
    Schedule,
    get_optimizer,
    get_schedule,
)

SHAPES = {"W1": (3, 4), "b1": (3, 1), "W2": (2, 3), "b2": (2, 1)}
LR = 0.05


# ------------------------------------------------------------------------------ NumPy float64 reference
class ReferenceOptimizer:
    """The module docstring's update rules, written out once in NumPy float64, one parameter at a time."""

    def __init__(self, name: str, beta: float = 0.9, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        self.name, self.beta, self.beta1, self.beta2, self.eps = name, beta, beta1, beta2, eps
        self.v: dict[str, np.ndarray] = {}
        self.s: dict[str, np.ndarray] = {}
        self.t = 0

    def step(self, params: dict, grads: dict, lr: float) -> dict:
        self.t += 1
        out = {}
        for k, W in params.items():
            dW = grads[f"d{k}"]
            v = self.v.get(k, np.zeros_like(W))
            s = self.s.get(k, np.zeros_like(W))
            if self.name == "gd":
                out[k] = W - lr * dW
            elif self.name == "momentum":
                v = self.beta * v + (1 - self.beta) * dW
                out[k] = W - lr * v
            elif self.name == "rmsprop":
                s = self.beta * s + (1 - self.beta) * dW**2
                out[k] = W - lr * dW / (np.sqrt(s) + self.eps)
            elif self.name == "adam":
                v = self.beta1 * v + (1 - self.beta1) * dW
                s = self.beta2 * s + (1 - self.beta2) * dW**2
                v_hat = v / (1 - self.beta1**self.t)
                s_hat = s / (1 - self.beta2**self.t)
                out[k] = W - lr * v_hat / (np.sqrt(s_hat) + self.eps)
            else:
                raise KeyError(self.name)
            self.v[k], self.s[k] = v, s
        return out


def _random_problem(rng: np.random.Generator, steps: int) -> tuple[dict, list[dict]]:
    params = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    # Gradients kept away from zero so float32's relative rounding stays comparable to float64's.
    grads = [{f"d{k}": rng.choice([-1.0, 1.0], s) * rng.uniform(0.1, 2.0, s) for k, s in SHAPES.items()}
             for _ in range(steps)]
    return params, grads


# ---------------------------------------------------------------------------------------- the updates
@pytest.mark.parametrize("name", ["gd", "momentum", "rmsprop", "adam"])
def test_three_steps_match_the_numpy_reference(xpb, rng, name):
    params_np, grads_np = _random_problem(rng, 3)
    params_np = {k: xpb.rounded(v) for k, v in params_np.items()}
    grads_np = [{k: xpb.rounded(v) for k, v in g.items()} for g in grads_np]
    opt = get_optimizer(name, beta=0.8, beta1=0.85, beta2=0.99, epsilon=1e-7)
    ref = ReferenceOptimizer(name, beta=0.8, beta1=0.85, beta2=0.99, eps=1e-7)

    params = {k: xpb.asarray(v) for k, v in params_np.items()}
    expected = params_np
    # float32 accumulates a few roundings per step (and adam/rmsprop divide by a square root).
    tol = xpb.tol if xpb.dtype_name == "float64" else dict(rtol=1e-4, atol=1e-5)
    for step, g_np in enumerate(grads_np, start=1):
        before = {k: xpb.np(v).copy() for k, v in params.items()}
        grads = {k: xpb.asarray(v) for k, v in g_np.items()}
        grads_before = {k: xpb.np(v).copy() for k, v in grads.items()}
        new = opt.update(xpb.xp, params, grads, LR)
        expected = ref.step(expected, g_np, LR)
        assert opt.t == step
        assert set(new) == set(SHAPES)
        for k in SHAPES:
            xpb.check(new[k], shape=SHAPES[k])
            xpb.assert_close(new[k], expected[k], **tol)
            # The inputs are left untouched: every update builds new arrays.
            np.testing.assert_array_equal(xpb.np(params[k]), before[k], err_msg=f"{name} wrote into {k}")
            np.testing.assert_array_equal(xpb.np(grads[f"d{k}"]), grads_before[f"d{k}"])
        for key, state in opt.state.items():  # the moving averages live on the parameters' device
            xpb.check(state)
            assert key.split("_", 1)[0] in ("v", "s")
        params = new
    if name == "gd":
        assert opt.state == {}


def test_adam_first_step_is_bias_corrected(xpb, rng):
    """With v_hat = g and s_hat = g^2 after one step, Adam moves every weight by lr * g / (|g| + eps): about
    lr in the direction of -g whatever the gradient's size (no shrinkage from the zero-initialized averages)."""
    g_np = xpb.rounded(rng.choice([-1.0, 1.0], (4, 5)) * 10.0 ** rng.uniform(-3, 2, (4, 5)))
    W_np = xpb.rounded(rng.standard_normal((4, 5)))
    opt = Adam()
    new = opt.update(xpb.xp, {"W1": xpb.asarray(W_np)}, {"dW1": xpb.asarray(g_np)}, 0.01)
    step = W_np - xpb.np(new["W1"]).astype(np.float64)
    np.testing.assert_allclose(step, 0.01 * g_np / (np.abs(g_np) + 1e-8), rtol=1e-4, atol=1e-7)
    # Without the correction the step would be (1 - b1) / sqrt(1 - b2) ~ 3.16 times larger.
    assert np.all(np.abs(step) < 0.0101)


def test_optimizer_state_carries_over_and_reset_forgets_it(rng):
    xp = xpnet.get_backend("numpy").xp
    params, grads = _random_problem(rng, 2)
    opt = Momentum(beta=0.5)
    p1 = opt.update(xp, params, grads[0], LR)
    opt.update(xp, p1, grads[1], LR)
    assert opt.t == 2 and set(opt.state) == {f"v_{k}" for k in SHAPES}
    opt.reset()
    assert opt.t == 0 and opt.state == {}
    again = opt.update(xp, params, grads[0], LR)  # a fresh start gives the first step again
    for k in SHAPES:
        np.testing.assert_array_equal(again[k], p1[k])


# ---------------------------------------------------------------------------------------- get_optimizer
@pytest.mark.parametrize(("name", "cls"), [("gd", GradientDescent), ("gradient_descent", GradientDescent),
                                           ("momentum", Momentum), ("rmsprop", RMSprop), ("adam", Adam),
                                           (" ADAM ", Adam), ("GD", GradientDescent)])
def test_get_optimizer_names_and_aliases(name, cls):
    opt = get_optimizer(name)
    assert type(opt) is cls
    assert opt.name == {GradientDescent: "gd", Momentum: "momentum", RMSprop: "rmsprop", Adam: "adam"}[cls]
    assert opt.t == 0 and opt.state == {}


def test_get_optimizer_passes_its_own_hyperparameters_and_ignores_others():
    assert get_optimizer("momentum", beta=0.5, beta1=0.1).hyperparameters() == {"beta": 0.5}
    assert get_optimizer("rmsprop", beta=0.7, epsilon=1e-6).hyperparameters() == {"beta": 0.7, "epsilon": 1e-6}
    adam = get_optimizer("adam", beta1=0.8, beta2=0.95, epsilon=1e-5, beta=0.3)
    assert adam.hyperparameters() == {"beta1": 0.8, "beta2": 0.95, "epsilon": 1e-5}
    assert get_optimizer("adam", beta1=None).beta1 == 0.9  # None means the default
    assert get_optimizer("gd", beta=0.5).hyperparameters() == {}
    mine = RMSprop(beta=0.5)
    assert get_optimizer(mine) is mine


@pytest.mark.parametrize("name", ["sgd", "SGD"])
def test_sgd_is_refused_as_ambiguous(name):
    # The estimators' solver="sgd" is descent with momentum (scikit-learn's); one name, one meaning.
    with pytest.raises(xpnet.ConfigError, match=r"'gd'.*'momentum'"):
        get_optimizer(name)


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(xpnet.ConfigError) as info:
        get_optimizer("lbfgs")
    message = str(info.value)
    assert "lbfgs" in message
    for valid in OPTIMIZERS:
        assert valid in message
    assert "gradient_descent" in message  # the aliases are listed too
    with pytest.raises(xpnet.ConfigError):
        get_optimizer(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "kwargs", "match"), [
    ("adam", dict(beta1=1.0), "beta1"),
    ("adam", dict(beta1=-0.1), "beta1"),
    ("adam", dict(beta2=1.5), "beta2"),
    ("adam", dict(beta2=True), "beta2"),
    ("adam", dict(epsilon=0.0), "epsilon"),
    ("adam", dict(epsilon=-1e-8), "epsilon"),
    ("adam", dict(epsilon=math.inf), "epsilon"),
    ("adam", dict(beta1="0.9"), "beta1"),
    ("momentum", dict(beta=1.0), "beta"),
    ("momentum", dict(beta=math.nan), "beta"),
    ("rmsprop", dict(beta=-0.5), "beta"),
    ("rmsprop", dict(epsilon=0), "epsilon"),
])
def test_bad_hyperparameters_raise_config_error(name, kwargs, match):
    with pytest.raises(xpnet.ConfigError, match=match):
        get_optimizer(name, **kwargs)


# ------------------------------------------------------------------------------------------- schedules
def _expected_lr(name: str, a0: float, rate: float, k: int, min_lr: float, epoch: int) -> float:
    """The schedule formulas of the module docstring, written out independently."""
    if name == "constant":
        return a0
    if name == "inverse_time":
        return a0 / (1 + rate * math.floor(epoch / k))
    if name == "step":
        return a0 * rate ** math.floor(epoch / k)
    if name == "exponential":
        return a0 * math.exp(epoch * math.log(rate))
    if name == "cosine":
        progress = min(epoch, k) / k
        return min_lr + (a0 - min_lr) * (1 + math.cos(math.pi * progress)) / 2
    raise KeyError(name)


EPOCHS = [0, 1, 2, 3, 4, 7, 10, 25]


@pytest.mark.parametrize(("name", "rate", "k", "min_lr"), [
    ("constant", None, 1, 0.0),
    ("inverse_time", 0.5, 1, 0.0),
    ("inverse_time", 2.0, 3, 0.0),
    ("step", 0.5, 3, 0.0),
    ("step", 0.1, 1, 0.0),
    ("exponential", 0.9, 1, 0.0),
    ("cosine", None, 10, 0.001),
    ("cosine", None, 4, 0.0),
])
def test_schedule_values_follow_the_formulas(name, rate, k, min_lr):
    a0 = 0.2
    sched = get_schedule(name, a0, decay_rate=rate, decay_steps=k, min_lr=min_lr)
    assert isinstance(sched, Schedule) and sched.name == name
    for epoch in EPOCHS:
        want = _expected_lr(name, a0, 0.0 if rate is None else rate, k, min_lr, epoch)
        assert sched(epoch) == pytest.approx(want, rel=1e-12, abs=1e-15), f"{name} at epoch {epoch}"


def test_schedule_hand_worked_values():
    """A few values worked out by hand, independent of any formula code."""
    assert [get_schedule("step", 1.0, decay_rate=0.5, decay_steps=2)(e) for e in range(6)] == \
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert [get_schedule("inverse_time", 1.0)(e) for e in range(4)] == pytest.approx([1.0, 1 / 2, 1 / 3, 1 / 4])
    cosine = get_schedule("cosine", 1.0, decay_steps=4, min_lr=0.2)
    assert [cosine(e) for e in (0, 2, 4, 9)] == pytest.approx([1.0, 0.6, 0.2, 0.2])
    assert get_schedule("exponential", 2.0, decay_rate=0.5)(3) == pytest.approx(0.25)


@pytest.mark.parametrize(("name", "rate"), [("inverse_time", 1.0), ("step", 0.5), ("exponential", 0.95),
                                            ("cosine", 0.0), ("constant", 0.0)])
def test_schedule_default_decay_rates(name, rate):
    assert get_schedule(name, 0.1).decay_rate == rate


def test_schedule_aliases_and_defaults():
    inv = get_schedule("invscaling", 0.3, decay_rate=0.5)
    assert inv.name == "inverse_time"
    assert inv(2) == pytest.approx(0.3 / 2.0)
    assert get_schedule("exp", 0.3).name == "exponential"
    assert get_schedule(" Cosine ", 0.3).name == "cosine"
    constant = get_schedule(None, 0.3)
    assert constant.name == "constant" and constant(100) == 0.3
    mine = Schedule("step", 1.0, 0.5, 2, 0.0)
    assert get_schedule(mine, 0.1) is mine
    assert set(SCHEDULES) == {"constant", "inverse_time", "step", "exponential", "cosine"}
    assert inv.describe() == {"name": "inverse_time", "initial": 0.3, "decay_rate": 0.5, "decay_steps": 1,
                              "min_lr": 0.0}


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    (("adaptive", 0.1), {}, "unknown learning-rate schedule 'adaptive'.*constant, inverse_time, step, "
                            "exponential, cosine"),
    (("constant", 0.0), {}, "learning rate"),
    (("constant", -0.1), {}, "learning rate"),
    (("constant", math.inf), {}, "learning rate"),
    (("constant", True), {}, "learning rate"),
    (("inverse_time", 0.1), dict(decay_rate=-1.0), "decay_rate"),
    (("inverse_time", 0.1), dict(decay_rate=math.nan), "decay_rate"),
    (("inverse_time", 0.1), dict(decay_rate=math.inf), "decay_rate"),
    (("step", 0.1), dict(decay_rate=0.0), r"\(0, 1\]"),
    (("step", 0.1), dict(decay_rate=1.5), r"\(0, 1\]"),
    (("exponential", 0.1), dict(decay_rate=2.0), r"\(0, 1\]"),
    (("step", 0.1), dict(decay_steps=0), "decay_steps"),
    (("step", 0.1), dict(decay_steps=1.5), "decay_steps"),
    (("step", 0.1), dict(decay_steps=True), "decay_steps"),
    (("cosine", 0.1), dict(min_lr=0.2), "min_lr"),
    (("cosine", 0.1), dict(min_lr=-0.01), "min_lr"),
])
def test_get_schedule_validation(args, kwargs, match):
    with pytest.raises(xpnet.ConfigError, match=match):
        get_schedule(*args, **kwargs)

"""Saturation: logits and pre-activations up to |z| = 1e4, in float32 and float64, on every backend.

What training computes (the activations and their derivatives, the fused costs ``Loss.fused_cost`` and the
fused gradients of :func:`xpnet.network.fused_gradients`) must be finite *and right*: it is compared with a
NumPy float64 oracle written here with ``np.logaddexp``, so that the binary cross-entropy of ``z = 1e4``
with ``y = 0`` is ``1e4`` (not inf, not ``-log(eps)``) and with ``y = 1`` is ``0``. The lecture's
``compute_cost`` on outputs that saturated to exactly 0 or 1 gives the exact cost where it is finite and
otherwise a clear error pointing at the fused form, never NaN.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import xpnet
from xpnet.lecture.activations import get_activation
from xpnet.lecture.functional import compute_cost
from xpnet.lecture.losses import get_loss
from xpnet.lecture.network import fused_gradients

LOGITS = [1e4, -1e4, 1e3, -1e3, 100.0, -100.0, 30.0, -30.0, 0.0]


# --------------------------------------------------------------------------------- float64 oracle
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))  # s(z) = 1 / (1 + e^-z), in logs: never overflows


def _sigmoid_prime(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z) - np.logaddexp(0.0, z))  # s(z) s(-z)


def _g(name: str, z: np.ndarray) -> np.ndarray:
    return {"sigmoid": _sigmoid, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0),
            "leaky_relu": lambda v: np.where(v > 0, v, 0.01 * v), "linear": lambda v: v}[name](z)


def _g_prime(name: str, z: np.ndarray) -> np.ndarray:
    return {"sigmoid": _sigmoid_prime, "tanh": lambda v: 1.0 - np.tanh(v) ** 2,
            "relu": lambda v: (v > 0).astype(float), "leaky_relu": lambda v: np.where(v > 0, 1.0, 0.01),
            "linear": np.ones_like}[name](z)


def _lse(Z: np.ndarray) -> np.ndarray:
    return np.logaddexp.reduce(Z, axis=0, keepdims=True)


def _softmax(Z: np.ndarray) -> np.ndarray:
    return np.exp(Z - _lse(Z))


def _bce_per_example(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z) - y * z  # -[y log s(z) + (1-y) log(1 - s(z))]


def _cce_per_example(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    return np.sum(Y * (_lse(Z) - Z), axis=0, keepdims=True)  # -sum_i y_i log softmax(z)_i


def _fused_oracle(params: dict, X: np.ndarray, Y: np.ndarray, hidden: str, output: str) -> tuple[dict, float, Any]:
    """The training path in float64: forward, cost from the logits, dZL = AL - Y, backward to dW1."""
    L = len(params) // 2
    As, Zs = [X], []
    for l in range(1, L + 1):
        Zs.append(params[f"W{l}"] @ As[-1] + params[f"b{l}"])
        if l < L:
            As.append(_g(hidden, Zs[-1]))
    ZL, m = Zs[-1], X.shape[1]
    if output == "sigmoid":
        AL, cost = _sigmoid(ZL), float(np.mean(np.sum(_bce_per_example(ZL, Y), axis=0)))
    else:
        AL, cost = _softmax(ZL), float(np.mean(_cce_per_example(ZL, Y)))
    grads, dZ = {}, AL - Y
    for l in range(L, 0, -1):
        grads[f"dW{l}"] = dZ @ As[l - 1].T / m
        grads[f"db{l}"] = dZ.sum(axis=1, keepdims=True) / m
        if l > 1:
            dZ = (params[f"W{l}"].T @ dZ) * _g_prime(hidden, Zs[l - 2])
    return grads, cost, AL


def _assert_matches(xpb, out, expected: np.ndarray, what: str) -> None:
    """Finite, in the backend's namespace/device/dtype, and within the dtype's tolerance of the oracle, the
    absolute part scaled by the array's magnitude (a float32 sum of terms of size 1e4 is only that exact)."""
    xpb.check(out)
    got = xpb.np(out).astype(np.float64)
    assert np.all(np.isfinite(got)), f"{what}: not finite: {got}"
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(got, expected, rtol=xpb.tol["rtol"], atol=xpb.tol["atol"] * scale, err_msg=what)


# --------------------------------------------------------------------------------- activations
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "linear"])
def test_activation_and_derivative_match_the_oracle_when_saturated(xpb, name):
    Z = xpb.rounded(np.array([LOGITS, LOGITS[::-1]]))
    act = get_activation(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A = act.forward(xpb.xp, xpb.asarray(Z))
        dG = act.derivative(xpb.xp, xpb.asarray(Z))
        dZ = act.backward(xpb.xp, xpb.asarray(np.ones_like(Z)), xpb.asarray(Z))
    _assert_matches(xpb, A, _g(name, Z), f"{name} forward")
    _assert_matches(xpb, dG, _g_prime(name, Z), f"{name} derivative")
    _assert_matches(xpb, dZ, _g_prime(name, Z), f"{name} backward")


def test_sigmoid_is_exactly_0_half_and_1_at_the_extremes(xpb):
    A = xpb.np(get_activation("sigmoid").forward(xpb.xp, xpb.asarray(np.array([[-1e4, 0.0, 1e4]]))))
    np.testing.assert_array_equal(A, [[0.0, 0.5, 1.0]])


SOFTMAX_COLUMNS = np.array([
    [1e4, -1e4, 0.0],  # one class wins by 1e4
    [1e4, 9999.0, -1e4],  # two huge, close logits: the loss of the first is log(1 + e^-1), not 0 or 1e-3 off
    [-1e4, -1e4, -1e4],  # all hugely negative: uniform, lse = -1e4 + log 3
    [1e3, 1e3, -1e3],  # a tie at the top
    [100.0, 30.0, -30.0],
    [0.0, 0.0, 0.0],
    [-1e3, 30.0, 1e4],
]).T  # (3 classes, 7 examples)


def test_softmax_and_its_backward_match_the_oracle_when_saturated(xpb, rng):
    Z = xpb.rounded(SOFTMAX_COLUMNS)
    dA = xpb.rounded(rng.standard_normal(Z.shape))
    softmax = get_activation("softmax")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A = softmax.forward(xpb.xp, xpb.asarray(Z))
        dZ = softmax.backward(xpb.xp, xpb.asarray(dA), xpb.asarray(Z))
    S = _softmax(Z)
    _assert_matches(xpb, A, S, "softmax forward")
    _assert_matches(xpb, dZ, S * (dA - np.sum(dA * S, axis=0, keepdims=True)), "softmax backward")


# --------------------------------------------------------------------------------- fused costs
def _per_example_costs(xpb, loss: str, Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The fused cost of each column alone (the cost of one example), as float64 on the host."""
    fused = get_loss(loss).fused_cost
    out = []
    for j in range(Z.shape[1]):
        c = fused(xpb.xp, xpb.asarray(Z[:, j:j + 1]), xpb.asarray(Y[:, j:j + 1]))
        xpb.check(c, shape=())
        out.append(float(c))
    return np.array([out])


@pytest.mark.parametrize("y", [1.0, 0.0, 0.25])
def test_binary_cross_entropy_of_saturated_logits_is_exact(xpb, y):
    z = xpb.rounded(np.array([LOGITS]))
    Y = np.full_like(z, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        per_example = _per_example_costs(xpb, "binary_cross_entropy", z, Y)
        mean = get_loss("bce").fused_cost(xpb.xp, xpb.asarray(z), xpb.asarray(Y))
    expected = _bce_per_example(z, Y)
    np.testing.assert_allclose(per_example, expected, rtol=xpb.tol["rtol"], atol=xpb.tol["atol"])
    if y == 0.0:  # confidently wrong by 1e4: the cost is 1e4, not inf and not -log(eps)
        assert per_example[0, 0] == 1e4
    if y == 1.0:  # confidently right: ~0 (e^-1e4 underflows), never negative
        assert per_example[0, 0] == 0.0
        assert np.all(per_example >= 0.0)
    _assert_matches(xpb, mean, np.array(expected.mean()), "mean cost")


def test_binary_cross_entropy_with_mixed_agreement_and_weights(xpb):
    z = xpb.rounded(np.array([LOGITS + LOGITS]))
    Y = (np.arange(z.shape[1]) % 2 == 0).astype(float)[None, :]  # agrees with some signs, not others
    w = xpb.rounded(np.linspace(0.5, 2.0, z.shape[1])[None, :])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost = get_loss("bce").fused_cost(xpb.xp, xpb.asarray(z), xpb.asarray(Y), xpb.asarray(w))
    _assert_matches(xpb, cost, np.array(np.mean(w * _bce_per_example(z, Y))), "weighted mean cost")


@pytest.mark.parametrize("label", [0, 1, 2])
def test_categorical_cross_entropy_of_saturated_logits_is_exact(xpb, label):
    Z = xpb.rounded(SOFTMAX_COLUMNS)
    Y = np.zeros_like(Z)
    Y[label] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        per_example = _per_example_costs(xpb, "categorical_cross_entropy", Z, Y)
        mean = get_loss("cce").fused_cost(xpb.xp, xpb.asarray(Z), xpb.asarray(Y))
    expected = _cce_per_example(Z, Y)
    np.testing.assert_allclose(per_example, expected, rtol=xpb.tol["rtol"], atol=xpb.tol["atol"])
    assert np.all(per_example >= 0.0)
    _assert_matches(xpb, mean, np.array(expected.mean()), "mean cost")


def test_categorical_cross_entropy_with_soft_labels(xpb):
    Z = xpb.rounded(SOFTMAX_COLUMNS)
    Y = xpb.rounded(np.tile(np.array([[0.7], [0.2], [0.1]]), (1, Z.shape[1])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost = get_loss("cce").fused_cost(xpb.xp, xpb.asarray(Z), xpb.asarray(Y))
    _assert_matches(xpb, cost, np.array(_cce_per_example(Z, Y).mean()), "soft-label cost")


# --------------------------------------------------------------------------------- fused gradients
def _saturating_net(hidden: str, output: str) -> tuple[dict, np.ndarray]:
    """A [1, 2, n_L] net and inputs whose hidden pre-activations are +-1e4 .. 0 and whose output logits
    reach 1e4: W1 = [[1e4], [-1e4]] on x in [-1, 1]; W2 scaled so that saturated hidden units (tanh,
    sigmoid: +-1 or 0/1) still give logits of 1e4."""
    x = np.array([LOGITS]) / 1e4
    X = np.concatenate([x, x], axis=1)  # two copies: the labels agree with one and disagree with the other
    c = 1.0 if hidden in ("relu", "leaky_relu", "linear") else 1e4
    W2 = c * np.array([[1.0, -1.0]]) if output == "sigmoid" else c * np.array([[1.0, -1.0], [-1.0, 1.0], [0.5, 0.5]])
    params = {"W1": np.array([[1e4], [-1e4]]), "b1": np.zeros((2, 1)), "W2": W2, "b2": np.zeros((W2.shape[0], 1))}
    return params, X


def _saturating_logits(params: dict, X: np.ndarray, hidden: str) -> np.ndarray:
    return params["W2"] @ _g(hidden, params["W1"] @ X + params["b1"]) + params["b2"]


@pytest.mark.parametrize("hidden", ["relu", "tanh", "leaky_relu", "sigmoid"])
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_fused_gradients_match_the_oracle_when_saturated(xpb, hidden, output):
    params, X = _saturating_net(hidden, output)
    params = {k: xpb.rounded(v) for k, v in params.items()}
    X = xpb.rounded(X)
    ZL = _saturating_logits(params, X, hidden)
    assert np.max(np.abs(ZL)) >= 1e4  # the test really saturates the output
    half = X.shape[1] // 2
    if output == "sigmoid":
        sign = (np.array([LOGITS]) > 0).astype(float)
        Y = np.concatenate([sign, 1.0 - sign], axis=1)  # agreeing with the logit's sign, then disagreeing
    else:
        first = np.argmax(ZL[:, :half], axis=0)  # the winning class, then another one
        Y = np.eye(3)[:, np.concatenate([first, (first + 1) % 3])]
    hidden_act, output_act = get_activation(hidden), get_activation(output)
    loss = xpnet.lecture.network.training_loss(output_act)
    backend_params = {k: xpb.asarray(v) for k, v in params.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grads, cost, AL = fused_gradients(xpb.xp, backend_params, xpb.asarray(X), xpb.asarray(Y), hidden_act,
                                          output_act, loss)
    want_grads, want_cost, want_AL = _fused_oracle(params, X, Y, hidden, output)
    _assert_matches(xpb, cost, np.array(want_cost), "cost")
    _assert_matches(xpb, AL, want_AL, "AL")
    for key, want in want_grads.items():
        _assert_matches(xpb, grads[key], want, key)


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_a_training_step_on_saturated_logits_stays_finite(xpb, output):
    params, X = _saturating_net("relu", output)
    net = xpnet.DNN([1, 2, params["W2"].shape[0]], output=output, dtype=xpb.dtype_name, backend=xpb.backend)
    net.parameters = {k: xpb.asarray(v) for k, v in params.items()}
    n_out = params["W2"].shape[0]
    labels = np.arange(X.shape[1]) % 2 if n_out == 1 else np.arange(X.shape[1]) % n_out
    Y = labels[None, :] if output == "sigmoid" else np.eye(n_out)[:, labels]
    net.fit(X, Y, learning_rate=1e-3, num_iterations=2, record_every=1)
    _, first_cost, _ = _fused_oracle({k: xpb.rounded(v) for k, v in params.items()}, xpb.rounded(X), Y, "relu", output)
    assert first_cost > 100  # wrong by margins up to 1e4 on some examples
    assert net.costs[0] == pytest.approx(first_cost, rel=xpb.tol["rtol"] * 10)
    assert all(np.isfinite(c) for c in net.costs)
    assert all(np.all(np.isfinite(v)) for v in net.get_parameters().values())


# --------------------------------------------------------------------------------- the lecture's cost
@pytest.mark.parametrize(("loss", "AL", "Y"), [
    ("binary_cross_entropy", [[1.0, 0.0, 1.0, 0.0]], [[1, 0, 1, 0]]),
    ("categorical_cross_entropy", [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], [0, 1]),
])
def test_lecture_cost_of_right_saturated_outputs_is_exactly_zero(xpb, loss, AL, Y):
    """0 log 0 is 0 (its limit): outputs saturated to exactly the label cost nothing, as the fused form says,
    instead of the NaN of 0 * log(0)."""
    Yb = xpb.asarray(np.array(Y), dtype="int32" if loss.startswith("cat") else None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost = compute_cost(xpb.asarray(np.array(AL)), Yb, loss=loss)
    assert cost == 0.0


def test_lecture_cost_keeps_its_value_for_outputs_that_did_not_saturate(xpb, rng):
    AL = xpb.rounded(np.concatenate([rng.uniform(0.05, 0.95, (1, 6)), [[1.0, 0.0]]], axis=1))
    Y = np.array([[1, 0, 0, 1, 1, 0, 1, 0]])
    right = np.where(Y == 1, AL, 1.0 - AL)  # the probability given to the label
    expected = float(np.mean(-np.log(right)))
    assert compute_cost(xpb.asarray(AL), xpb.asarray(Y)) == pytest.approx(expected, rel=xpb.tol["rtol"] * 10)


@pytest.mark.parametrize(("loss", "AL", "Y"), [
    ("binary_cross_entropy", [[1.0, 0.3]], [[0, 1]]),  # AL = 1 for a label 0: log(1 - AL) = log 0
    ("binary_cross_entropy", [[0.0, 0.3]], [[1, 1]]),  # AL = 0 for a label 1
    ("categorical_cross_entropy", [[1.0, 0.5], [0.0, 0.5]], [1, 0]),
])
def test_lecture_cost_of_wrong_saturated_outputs_is_an_error_that_points_at_the_fused_form(xpb, loss, AL, Y):
    """Saturated the wrong way, the lecture's formula is infinite even though the logits' cost is finite: an
    xpnet error says so and names the fused form, never inf or NaN passed on silently."""
    Yb = xpb.asarray(np.array(Y), dtype="int32" if loss.startswith("cat") else None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(xpnet.XpnetError, match=r"saturated.*fused_cost"):
            compute_cost(xpb.asarray(np.array(AL)), Yb, loss=loss)


# --------------------------------------------------------------------------------- the lecture's dAL
def _formula_dAL(loss: str, AL: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The lecture's dAL taken literally, in float64 (NaN at 0/0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if loss == "binary_cross_entropy":
            return -(Y / AL - (1.0 - Y) / (1.0 - AL))
        return -(Y / AL)


@pytest.mark.parametrize(("loss", "AL", "Y", "expected"), [
    # AL == 1 for Y == 1 and AL == 0 for Y == 0: the formula gives 0/0 = NaN in the other term.
    ("binary_cross_entropy", [[1.0, 0.0, 1.0, 0.0]], [[1.0, 0.0, 1.0, 0.0]], [[-1.0, 1.0, -1.0, 1.0]]),
    ("categorical_cross_entropy", [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]],
     [[-1.0, 0.0], [0.0, -1.0], [0.0, 0.0]]),
])
def test_lecture_gradient_of_right_saturated_outputs_is_finite(xpb, loss, AL, Y, expected):
    AL, Y = np.array(AL), np.array(Y)
    assert np.isnan(_formula_dAL(loss, AL, Y)).any()  # what the formula alone gives
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero or invalid-value warning either
        dAL = get_loss(loss).gradient(xpb.xp, xpb.asarray(AL), xpb.asarray(Y))
    xpb.check(dAL, shape=AL.shape)
    np.testing.assert_array_equal(xpb.np(dAL).astype(np.float64), expected)


def test_lecture_gradient_is_the_formula_elsewhere(xpb, rng):
    """Away from exact saturation (and for soft labels) it is the lecture's formula, to the last bit."""
    AL = xpb.rounded(np.concatenate([rng.uniform(1e-6, 1 - 1e-6, (1, 8)), [[0.5, 0.25]]], axis=1))
    Y = np.concatenate([rng.integers(0, 2, (1, 8)).astype(float), [[0.25, 0.75]]], axis=1)
    for loss, A, T in [("binary_cross_entropy", AL, Y),
                       ("categorical_cross_entropy", np.concatenate([AL, 1.0 - AL]), np.concatenate([Y, 1.0 - Y]))]:
        xp = xpb.xp
        Ab, Tb = xpb.asarray(A), xpb.asarray(T)
        formula = (-(Tb / Ab - (1.0 - Tb) / (1.0 - Ab)) if loss == "binary_cross_entropy" else -(Tb / Ab))
        dAL = get_loss(loss).gradient(xp, Ab, Tb)
        xpb.check(dAL, shape=A.shape)
        np.testing.assert_array_equal(xpb.np(dAL), xpb.np(formula), err_msg=loss)
        assert np.isfinite(xpb.np(dAL)).all()


@pytest.mark.parametrize(("loss", "AL", "Y", "bad"), [
    ("binary_cross_entropy", [[0.0, 0.5]], [[1.0, 1.0]], (0, 0)),  # AL = 0 for a label 1: -1/0
    ("binary_cross_entropy", [[0.5, 1.0]], [[0.0, 0.0]], (0, 1)),  # AL = 1 for a label 0: 1/0
    ("categorical_cross_entropy", [[0.0, 0.5], [1.0, 0.5]], [[1.0, 0.0], [0.0, 1.0]], (0, 0)),
])
def test_lecture_gradient_of_wrong_saturated_outputs_stays_infinite(xpb, loss, AL, Y, bad):
    """Saturated the wrong way the formula is infinite, and so is dAL (never NaN): compute_cost refuses it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's divide-by-zero
        dAL = xpb.np(get_loss(loss).gradient(xpb.xp, xpb.asarray(np.array(AL)), xpb.asarray(np.array(Y))))
    assert np.isinf(dAL[bad]) and not np.isnan(dAL).any()
    assert np.isfinite(np.delete(dAL.ravel(), np.ravel_multi_index(bad, dAL.shape))).all()


@pytest.mark.parametrize(("loss", "AL", "Y"), [
    ("binary_cross_entropy", [[np.nan, 0.3]], [[0, 1]]),
    ("binary_cross_entropy", [[0.5, 1.5]], [[0, 1]]),  # AL > 1 on a label 1: log(1.5) would be a negative cost
    ("binary_cross_entropy", [[-0.25, 0.3]], [[0, 1]]),
    ("categorical_cross_entropy", [[np.nan, 0.5], [1.0, 0.5]], [1, 0]),  # NaN on a label-0 row log ignores
    ("categorical_cross_entropy", [[2.0, 0.5], [-1.0, 0.5]], [0, 0]),  # logits passed as AL
])
def test_lecture_cost_of_nan_or_out_of_range_AL_says_so(xpb, loss, AL, Y):
    Yb = xpb.asarray(np.array(Y), dtype="int32" if loss.startswith("cat") else None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(xpnet.InvalidValueError) as info:
            compute_cost(xpb.asarray(np.array(AL)), Yb, loss=loss)
    message = str(info.value)
    assert message.startswith(f"{loss}: AL holds NaN / values outside [0, 1]"), message
    assert "saturated" not in message and f"get_loss({loss!r}).fused_cost(xp, ZL, Y)" in message, message

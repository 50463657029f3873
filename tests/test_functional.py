"""The lecture's building blocks against the NumPy float64 oracle, on every backend of the matrix."""

from __future__ import annotations

import numpy as np
import pytest

import oracle
import xpnet
from xpnet import functional as F

ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "linear"]
PAIRS = [(h, o) for h in ["relu", "leaky_relu", "tanh", "sigmoid"] for o in ["sigmoid", "softmax", "linear"]]


def _layer(xpb, rng, n_prev=4, n=3, m=6):
    """Random A_prev (n_prev, m), W (n, n_prev), b (n, 1), rounded to the entry's dtype."""
    return (xpb.rounded(rng.standard_normal((n_prev, m))), xpb.rounded(rng.standard_normal((n, n_prev))),
            xpb.rounded(rng.standard_normal((n, 1))))


def _params(xpb, rng, dims):
    ref = {k: xpb.rounded(v) for k, v in oracle.random_params(rng, dims).items()}
    return ref, {k: xpb.asarray(v) for k, v in ref.items()}


# ------------------------------------------------------------------------------------- hand-worked cases
def test_linear_forward_hand_worked(xpb):
    A_prev = xpb.asarray([[1.0, 2.0], [3.0, 4.0]])
    W = xpb.asarray([[2.0, -1.0]])
    b = xpb.asarray([[0.5]])
    Z, cache = F.linear_forward(A_prev, W, b)
    # Z = [2*1 - 1*3 + 0.5, 2*2 - 1*4 + 0.5]
    xpb.assert_close(Z, [[-0.5, 0.5]], rtol=0, atol=0)
    assert cache[0] is A_prev and cache[1] is W and cache[2] is b


def test_linear_backward_hand_worked(xpb):
    A_prev = xpb.asarray([[1.0, 2.0], [3.0, 4.0]])
    W = xpb.asarray([[2.0, -1.0]])
    b = xpb.asarray([[0.5]])
    dZ = xpb.asarray([[1.0, 3.0]])
    dA_prev, dW, db = F.linear_backward(dZ, (A_prev, W, b))
    # m = 2: dW = 1/2 [1*1 + 3*2, 1*3 + 3*4], db = 1/2 (1 + 3), dA_prev = W^T dZ
    xpb.assert_close(dW, [[3.5, 7.5]], rtol=0, atol=0)
    xpb.assert_close(db, [[2.0]], rtol=0, atol=0)
    xpb.assert_close(dA_prev, [[2.0, 6.0], [-1.0, -3.0]], rtol=0, atol=0)


def test_compute_cost_hand_worked(xpb):
    AL = xpb.asarray([[0.8, 0.9, 0.4]])
    Y = xpb.asarray([[1, 1, 0]], dtype="int32")  # integer labels are cast
    cost = F.compute_cost(AL, Y)
    expected = -(np.log(0.8) + np.log(0.9) + np.log(0.6)) / 3  # 0.2797765635793422
    assert isinstance(cost, float)
    assert cost == pytest.approx(expected, rel=1e-6)


# --------------------------------------------------------------------------------- against the oracle
def test_linear_forward_matches_oracle(xpb, rng):
    A, W, b = _layer(xpb, rng, n_prev=5, m=7)
    Z, cache = F.linear_forward(xpb.asarray(A), xpb.asarray(W), xpb.asarray(b))
    xpb.assert_close(Z, W @ A + b)
    assert len(cache) == 3


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_linear_activation_forward_matches_oracle(xpb, rng, activation):
    A, W, b = _layer(xpb, rng)
    out, (linear_cache, Z) = F.linear_activation_forward(xpb.asarray(A), xpb.asarray(W), xpb.asarray(b), activation)
    xpb.assert_close(Z, W @ A + b)
    xpb.assert_close(out, oracle.g(activation, W @ A + b))
    assert len(linear_cache) == 3


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_linear_activation_backward_matches_oracle(xpb, rng, activation):
    A, W, b = _layer(xpb, rng)
    dA = xpb.rounded(rng.standard_normal((3, 6)))
    _, cache = F.linear_activation_forward(xpb.asarray(A), xpb.asarray(W), xpb.asarray(b), activation)
    dA_prev, dW, db = F.linear_activation_backward(xpb.asarray(dA), cache, activation)
    dZ = oracle.dZ_from_dA(activation, dA, W @ A + b)
    xpb.assert_close(dW, dZ @ A.T / 6)
    xpb.assert_close(db, dZ.sum(axis=1, keepdims=True) / 6)
    xpb.assert_close(dA_prev, W.T @ dZ)


@pytest.mark.parametrize(("hidden", "output"), PAIRS)
def test_model_forward_and_backward_match_oracle(xpb, rng, hidden, output):
    dims = [5, 4, 3, 3 if output == "softmax" else 1]
    ref, params = _params(xpb, rng, dims)
    X = xpb.rounded(rng.standard_normal((5, 8)))
    Y = oracle.labels_for(output, rng, dims[-1], 8)
    AL, caches = F.model_forward(xpb.asarray(X), params, hidden=hidden, output=output)
    AL_ref, caches_ref = oracle.forward(X, ref, hidden, output)
    xpb.assert_close(AL, AL_ref)
    assert len(caches) == 3

    loss = oracle.LOSS_FOR[output]
    cost = F.compute_cost(AL, xpb.asarray(Y), loss=loss)
    assert cost == pytest.approx(oracle.cost(loss, AL_ref, Y), rel=xpb.tol["rtol"] * 10, abs=xpb.tol["atol"])

    grads = F.model_backward(AL, xpb.asarray(Y), caches, hidden=hidden, output=output)
    grads_ref = oracle.backward(AL_ref, Y, caches_ref, hidden, output, loss)
    assert set(grads) == {f"d{p}{l}" for l in (1, 2, 3) for p in ("W", "b")} | {"dA0", "dA1", "dA2"}
    scale = 50 if xpb.dtype_name == "float32" else 1  # float32 error compounds over three layers and 1/AL
    for key, value in grads_ref.items():
        xpb.assert_close(grads[key], value, rtol=xpb.tol["rtol"] * scale, atol=xpb.tol["atol"] * scale)


def test_model_backward_sigmoid_bce_starts_from_the_lecture_dAL(xpb64, rng):
    """One layer, sigmoid/BCE: dZ must equal dAL * s'(Z) with dAL = -(Y/AL - (1-Y)/(1-AL)), i.e. AL - Y."""
    ref, params = _params(xpb64, rng, [3, 1])
    X = rng.standard_normal((3, 5))
    Y = (rng.random((1, 5)) > 0.5).astype(float)
    AL, caches = F.model_forward(xpb64.asarray(X), params, output="sigmoid")
    grads = F.model_backward(AL, xpb64.asarray(Y), caches, output="sigmoid")
    AL_ref = oracle.g("sigmoid", ref["W1"] @ X + ref["b1"])
    xpb64.assert_close(grads["db1"], (AL_ref - Y).mean(axis=1, keepdims=True), rtol=1e-9)


def test_compute_cost_categorical_accepts_class_labels(xpb, rng):
    AL_ref = oracle.g("softmax", rng.standard_normal((4, 9)))
    labels = rng.integers(0, 4, 9)
    AL = xpb.asarray(AL_ref)
    one_hot = F.compute_cost(AL, xpb.asarray(np.eye(4)[:, labels]), loss="categorical_cross_entropy")
    from_labels = F.compute_cost(AL, xpb.asarray(labels, dtype="int32"), loss="categorical_cross_entropy")
    assert from_labels == pytest.approx(one_hot, rel=1e-12)
    assert one_hot == pytest.approx(oracle.cost("categorical_cross_entropy", xpb.rounded(AL_ref),
                                                np.eye(4)[:, labels]), rel=1e-5)


def test_compute_cost_mse(xpb, rng):
    AL, Y = xpb.rounded(rng.standard_normal((2, 6))), xpb.rounded(rng.standard_normal((2, 6)))
    cost = F.compute_cost(xpb.asarray(AL), xpb.asarray(Y), loss="mse")
    assert cost == pytest.approx(oracle.cost("mse", AL, Y), rel=1e-5)


def test_update_parameters_returns_new_arrays_and_leaves_inputs_alone(xpb, rng):
    ref, params = _params(xpb, rng, [3, 2, 1])
    grads_ref = {f"d{k}": xpb.rounded(rng.standard_normal(v.shape)) for k, v in ref.items()}
    grads = {k: xpb.asarray(v) for k, v in grads_ref.items()}
    before = {k: xpb.np(v).copy() for k, v in params.items()}
    new = F.update_parameters(params, grads, 0.1)
    assert new is not params
    for k in params:
        np.testing.assert_array_equal(xpb.np(params[k]), before[k])  # the caller's arrays never change
        assert new[k] is not params[k]
        xpb.assert_close(new[k], ref[k] - 0.1 * grads_ref[f"d{k}"])


def test_predict_sigmoid_and_softmax_labels(xpb, rng):
    X = xpb.rounded(rng.standard_normal((3, 10)))
    ref, params = _params(xpb, rng, [3, 4, 1])
    labels = F.predict(xpb.asarray(X), params)
    assert xpb.xp.isdtype(labels.dtype, "integral") and tuple(labels.shape) == (1, 10)
    AL_ref, _ = oracle.forward(X, ref, "relu", "sigmoid")
    np.testing.assert_array_equal(xpb.np(labels), (AL_ref > 0.5).astype(int))

    ref, params = _params(xpb, rng, [3, 4, 5])
    labels = F.predict(xpb.asarray(X), params, output="softmax")
    AL_ref, _ = oracle.forward(X, ref, "relu", "softmax")
    np.testing.assert_array_equal(xpb.np(labels), AL_ref.argmax(axis=0)[None, :])
    assert xpb.backend.owns(labels)


def test_model_forward_casts_integer_X(xpb, rng):
    ref, params = _params(xpb, rng, [2, 3, 1])
    X_int = rng.integers(-3, 4, (2, 5))
    AL, _ = F.model_forward(xpb.backend.asarray(X_int, dtype="int32"), params)
    xpb.assert_close(AL, oracle.forward(X_int.astype(float), ref, "relu", "sigmoid")[0])


# ------------------------------------------------------------------------------------------ initializers
def test_initialize_parameters_shapes_zero_biases_and_dtype(xpb):
    params = F.initialize_parameters([5, 4, 3, 1], seed=3, dtype=xpb.dtype_name, backend=xpb.backend)
    assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    for l, (n, n_prev) in enumerate([(4, 5), (3, 4), (1, 3)], start=1):
        xpb.check(params[f"W{l}"], shape=(n, n_prev))
        xpb.check(params[f"b{l}"], shape=(n, 1))
        assert not np.any(xpb.np(params[f"b{l}"]))


def test_same_seed_gives_bit_identical_weights_on_every_backend(xpb):
    """DESIGN principle 5: the bits are fixed on the host, so every backend sees the same values."""
    reference = F.initialize_parameters([7, 5, 2], init="xavier", seed=11, dtype=xpb.dtype_name, backend="numpy")
    params = F.initialize_parameters([7, 5, 2], init="xavier", seed=11, dtype=xpb.dtype_name, backend=xpb.backend)
    for k in reference:
        np.testing.assert_array_equal(xpb.np(params[k]), xpnet.to_numpy(reference[k]), err_msg=k)
    other = F.initialize_parameters([7, 5, 2], init="xavier", seed=12, dtype=xpb.dtype_name, backend=xpb.backend)
    assert not np.array_equal(xpb.np(other["W1"]), xpb.np(params["W1"]))


@pytest.mark.parametrize(("init", "std"), [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(1 / 400)),
                                           ("glorot", np.sqrt(2 / 600)), ("scaled_normal", 0.01)])
def test_initializer_scales(init, std):
    W = xpnet.to_numpy(F.initialize_parameters([400, 200], init=init, seed=0, backend="numpy")["W1"])
    assert W.std() == pytest.approx(std, rel=0.03)
    assert abs(W.mean()) < 0.05 * std


def test_default_dtype_is_float64_where_the_device_has_it():
    assert xpnet.to_numpy(F.initialize_parameters([2, 1], backend="numpy")["W1"]).dtype == np.float64
    pytest.importorskip("array_api_strict")
    params = F.initialize_parameters([2, 1], backend="array_api_strict:no_float64")
    assert str(params["W1"].dtype).endswith("float32")


# ----------------------------------------------------------------------------------------------- errors
def test_shape_mismatch_names_both_shapes_and_the_layer(xpb, rng):
    _, params = _params(xpb, rng, [3, 4, 1])
    X = xpb.asarray(rng.standard_normal((5, 2)))
    with pytest.raises(xpnet.ShapeError, match=r"layer 1: W1 has shape \(4, 3\) and A_prev has shape \(5, 2\)"):
        F.model_forward(X, params)
    bad = dict(params, W2=xpb.asarray(rng.standard_normal((1, 7))))
    with pytest.raises(xpnet.ShapeError, match=r"layer 2: W2 has shape \(1, 7\) and A_prev has shape \(4, 2\)"):
        F.model_forward(xpb.asarray(rng.standard_normal((3, 2))), bad)
    with pytest.raises(xpnet.ShapeError, match=r"b1 must be \(4, 1\)"):
        F.linear_forward(xpb.asarray(np.ones((3, 2))), params["W1"], xpb.asarray(np.ones((4, 2))), layer=1)


def test_unknown_activation_lists_the_valid_ones(xpb):
    A = xpb.asarray(np.ones((2, 2)))
    with pytest.raises(xpnet.ConfigError, match="valid activations: relu, leaky_relu, sigmoid, tanh, linear, softmax"):
        F.linear_activation_forward(A, A, xpb.asarray(np.ones((2, 1))), "swish")
    with pytest.raises(ValueError):  # the built-in base works too
        F.linear_activation_forward(A, A, xpb.asarray(np.ones((2, 1))), "swish")


def test_unknown_loss_and_init_list_the_valid_ones():
    with pytest.raises(xpnet.ConfigError, match="valid losses: binary_cross_entropy"):
        F.compute_cost(np.ones((1, 2)) * 0.5, np.ones((1, 2)), loss="hinge")
    with pytest.raises(xpnet.ConfigError, match="valid initializers: he, xavier"):
        F.initialize_parameters([2, 1], init="orthogonal", backend="numpy")


def test_mixed_float_dtypes_are_refused_not_promoted(rng):
    W = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(xpnet.DTypeError, match="float32 but A_prev is float64"):
        F.linear_forward(np.ones((3, 4)), W, np.zeros((2, 1), dtype=np.float32))


def test_mixed_namespaces_are_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(xpnet.NamespaceMismatchError, match="different libraries"):
        F.linear_forward(np.ones((3, 4)), torch.ones((2, 3), dtype=torch.float64), np.zeros((2, 1)))


def test_mixed_devices_are_refused():
    pytest.importorskip("array_api_strict")
    cpu, dev1 = xpnet.get_backend("array_api_strict"), xpnet.get_backend("array_api_strict:device1")
    with pytest.raises(xpnet.DeviceMismatchError, match="device1"):
        F.linear_forward(cpu.asarray(np.ones((3, 4))), dev1.asarray(np.ones((2, 3))), dev1.asarray(np.zeros((2, 1))))


def test_non_array_inputs_and_bad_hyper_parameters():
    with pytest.raises(xpnet.InputTypeError, match="expected an array"):
        F.linear_forward([[1.0]], np.ones((1, 1)), np.zeros((1, 1)))
    params = F.initialize_parameters([2, 1], backend="numpy")
    grads = {"dW1": np.ones((1, 2)), "db1": np.ones((1, 1))}
    for lr in (0, -0.1, float("nan"), "0.1", None):
        with pytest.raises(xpnet.ConfigError, match="learning_rate"):
            F.update_parameters(params, grads, lr)
    with pytest.raises(xpnet.ConfigError, match="missing 'b1'"):
        F.model_forward(np.ones((2, 3)), {"W1": params["W1"]})
    with pytest.raises(xpnet.ConfigError, match="grads is missing 'db1'"):
        F.update_parameters(params, {"dW1": grads["dW1"]}, 0.1)
    for dims in ([3], [3, 0], "3,1", [2.5, 1]):
        with pytest.raises(xpnet.ConfigError):
            F.initialize_parameters(dims, backend="numpy")
    with pytest.raises(xpnet.ConfigError, match="seed"):
        F.initialize_parameters([2, 1], seed=-1, backend="numpy")


def test_label_errors():
    AL = np.full((3, 4), 1 / 3)
    with pytest.raises(xpnet.LabelError, match=r"0\.\.2"):
        F.compute_cost(AL, np.array([0, 1, 3, 0]), loss="categorical_cross_entropy")
    with pytest.raises(xpnet.ShapeError, match=r"Y has shape \(1, 5\) but the output is \(1, 4\)"):
        F.compute_cost(np.full((1, 4), 0.5), np.ones((1, 5)))


def test_narrow_integer_class_labels_are_one_hot_encoded_correctly():
    """uint8 labels with 300 classes: comparing in uint8 would wrap arange(300) around."""
    AL = np.full((300, 2), 1 / 300)
    Y = np.zeros((300, 2))
    Y[[1, 2], [0, 1]] = 1.0
    from_labels = F.compute_cost(AL, np.array([1, 2], dtype=np.uint8), loss="categorical_cross_entropy")
    assert from_labels == pytest.approx(F.compute_cost(AL, Y, loss="categorical_cross_entropy"), rel=1e-12)


def test_building_blocks_compute_the_formula_for_any_finite_real_labels(xpb):
    """Issue 13: the building blocks are the lecture's formulas, defined for any finite real Y (the course's
    own test of two_layer_model feeds Y = randn); they used to refuse labels outside [0, 1]. Training keeps
    refusing them (tests/test_network.py::test_labels_outside_0_1)."""
    AL_host = np.array([[0.3, 0.5, 0.8]])
    AL = xpb.asarray(AL_host)
    for labels in ([[0.0, 2.0, 1.0]], [[-1.0, 1.0, 1.3]]):
        Y = np.array(labels)
        want = -np.mean(Y * np.log(AL_host) + (1 - Y) * np.log(1 - AL_host))
        assert F.compute_cost(AL, xpb.asarray(Y)) == pytest.approx(want, rel=1e-5)
        dAL = F.model_backward(AL, xpb.asarray(Y), [((xpb.asarray(np.ones((2, 3))), xpb.asarray(np.ones((1, 2))),
                                                      xpb.asarray(np.zeros((1, 1)))), AL)], output="linear",
                               loss="binary_cross_entropy")["dW1"]
        dZ = -(Y / AL_host - (1 - Y) / (1 - AL_host))
        xpb.assert_close(dAL, dZ @ np.ones((3, 2)) / 3)


def test_functional_refuses_what_would_crash_deep_inside(xpb):
    AL = xpb.asarray(np.full((1, 3), 0.5))
    with pytest.raises(xpnet.ShapeError, match="no examples"):
        F.compute_cost(xpb.asarray(np.zeros((1, 0))), xpb.asarray(np.zeros((1, 0))))
    with pytest.raises(xpnet.DTypeError, match="AL has dtype"):
        F.compute_cost(xpb.backend.asarray(np.ones((1, 3)), dtype="int32"), AL)
    _, cache = F.linear_activation_forward(AL, xpb.asarray(np.ones((2, 1))), xpb.asarray(np.zeros((2, 1))), "relu")
    with pytest.raises(xpnet.DTypeError, match="dA has dtype"):
        F.linear_activation_backward(xpb.backend.asarray(np.ones((2, 3)), dtype="int32"), cache, "relu")
    params = F.initialize_parameters([1, 1], dtype=xpb.dtype_name, backend=xpb.backend)
    for threshold in (None, "a", float("nan")):
        with pytest.raises(xpnet.ConfigError, match="threshold"):
            F.predict(AL, params, threshold=threshold)
    assert tuple(F.predict(AL, params, threshold=np.float64(0.3)).shape) == (1, 3)  # a NumPy scalar is fine


def test_update_parameters_refuses_mixed_dtypes_and_libraries():
    params = F.initialize_parameters([2, 1], dtype="float32", backend="numpy")
    grads = {"dW1": np.ones((1, 2)), "db1": np.ones((1, 1))}  # float64
    with pytest.raises(xpnet.DTypeError, match="W1 is float32 but dW1 is float64"):
        F.update_parameters(params, grads, 0.1)
    torch = pytest.importorskip("torch")
    tparams = F.initialize_parameters([2, 1], dtype="float64", backend="torch:cpu")
    with pytest.raises(xpnet.NamespaceMismatchError):
        F.update_parameters(tparams, grads, 0.1)
    del torch


def test_a_copy_of_a_diverged_al_is_not_taken_for_another_networks():
    """AL with NaN where the forward pass made NaN (a diverged weight) is that pass's output: a copy of it gives
    what AL itself gives, not "the caches of another network"; another network's AL is still refused."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 5)), np.ones((1, 5))
    p = F.initialize_parameters([3, 4, 1], seed=1)
    p["W2"][0, 0] = np.nan
    AL, caches = F.model_forward(X, p)
    from_copy, from_al = F.model_backward(AL.copy(), Y, caches), F.model_backward(AL, Y, caches)
    for key, value in from_al.items():
        np.testing.assert_array_equal(from_copy[key], value)  # NaN where AL's gradients hold NaN
    AL_other, _ = F.model_forward(X, F.initialize_parameters([3, 4, 1], seed=2))
    with pytest.raises(xpnet.ConfigError, match="not the output of the forward pass"):
        F.model_backward(AL_other, Y, caches)

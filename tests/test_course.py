"""xpnet.course, Course 1 week 4: the course's published test values, on every backend of the matrix.

Inputs the course draws with ``np.random.seed(k); np.random.randn(...)`` are regenerated here with NumPy's
legacy ``RandomState(k)`` (the course's input data, bit for bit); the expected outputs are the numbers the
course's tests check (printed to 8 decimals). Values the course draws *inside* a function from NumPy's
global generator (initial weights) are xpnet's own seeded draws instead: those tests check shapes, scales,
dtypes and that the draw is the same on every backend, and the models are checked against a NumPy oracle
run from the same initial parameters.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet import course
from xpnet.course import (
    L_layer_model,
    L_model_backward,
    L_model_forward,
    compute_cost,
    initialize_parameters,
    initialize_parameters_deep,
    linear_activation_backward,
    linear_activation_forward,
    linear_backward,
    linear_forward,
    predict,
    predict_dec,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    two_layer_model,
    update_parameters,
)

# Published values carry 8 decimals; float32 entries compute from inputs rounded to float32.
PUBLISHED = {"float64": dict(rtol=1e-7, atol=1e-8), "float32": dict(rtol=1e-4, atol=2e-5)}


def close(case, out, expected) -> None:
    """``out`` stays on the case's backend and dtype and matches the published ``expected``."""
    case.check(out, shape=np.shape(expected))
    np.testing.assert_allclose(case.np(out).astype(np.float64), expected, **PUBLISHED[case.dtype_name])


def randn(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rs = np.random.RandomState(seed)
    return [rs.randn(*shape) for shape in shapes]


def labels(case, Y) -> object:
    """Integer labels as the course passes them (np.array([[1, 0]])), on the case's backend."""
    return case.backend.asarray(np.asarray(Y))


def test_star_import_gives_the_course_names():
    namespace: dict = {}
    exec("from xpnet.course import *", namespace)
    for name in ("initialize_parameters", "initialize_parameters_deep", "linear_forward", "linear_activation_forward",
                 "L_model_forward", "compute_cost", "linear_backward", "linear_activation_backward",
                 "L_model_backward", "update_parameters", "predict", "two_layer_model", "L_layer_model", "sigmoid",
                 "relu", "sigmoid_backward", "relu_backward", "predict_dec"):
        assert callable(namespace[name]), name
    assert set(course.__all__) <= set(namespace)


# ------------------------------------------------------------------------------------------ initialization
def test_initialize_parameters_shapes_scale_and_same_draw_everywhere(xpb):
    """The course's values come from np.random.seed(1) (not reproduced: xpnet's own generator); what the
    course's test also checks (keys, shapes, types, zero biases, the 0.01 scale) is checked here."""
    params = initialize_parameters(3, 2, 1, dtype=xpb.dtype_name, backend=xpb.backend)
    assert sorted(params) == ["W1", "W2", "b1", "b2"]
    shapes = {"W1": (2, 3), "b1": (2, 1), "W2": (1, 2), "b2": (1, 1)}
    reference = initialize_parameters(3, 2, 1, dtype=xpb.dtype_name, backend="numpy")
    for key, shape in shapes.items():
        xpb.check(params[key], shape=shape)
        np.testing.assert_array_equal(xpb.np(params[key]), reference[key])  # the same bits on every backend
    assert not np.any(xpb.np(params["b1"])) and not np.any(xpb.np(params["b2"]))
    assert 0 < np.abs(xpb.np(params["W1"])).max() < 0.05  # 0.01 * randn


def test_initialize_parameters_deep_scales(xpb):
    params = initialize_parameters_deep([5, 4, 3], dtype=xpb.dtype_name, backend=xpb.backend)
    assert sorted(params) == ["W1", "W2", "b1", "b2"]
    xpb.check(params["W1"], shape=(4, 5))
    xpb.check(params["W2"], shape=(3, 4))
    xpb.check(params["b2"], shape=(3, 1))
    assert np.abs(xpb.np(params["W1"])).max() < 0.05
    wide = initialize_parameters_deep([400, 300], init="xavier", backend="numpy")["W1"]
    assert np.std(wide) == pytest.approx(np.sqrt(1 / 400), rel=0.02)  # the application's randn / sqrt(n_prev)


def test_the_default_backend_is_numpy_unless_the_session_chose_one(monkeypatch):
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    assert isinstance(initialize_parameters(2, 2, 1)["W1"], np.ndarray)
    pytest.importorskip("torch")
    with xpnet.use_backend("torch:cpu"):
        assert type(initialize_parameters(2, 2, 1)["W1"]).__module__.startswith("torch")
    monkeypatch.setenv("XPNET_BACKEND", "torch:cpu")
    assert type(initialize_parameters_deep([2, 1])["W1"]).__module__.startswith("torch")


# ------------------------------------------------------------------------------------------------ forward
def test_linear_forward(xpb):
    A, W, b = (xpb.asarray(a) for a in randn(1, (3, 2), (1, 3), (1, 1)))
    Z, cache = linear_forward(A, W, b)
    close(xpb, Z, [[3.26295337, -1.23429987]])
    assert type(cache) is tuple and len(cache) == 3
    assert cache[0] is A and cache[1] is W and cache[2] is b


def test_linear_activation_forward(xpb):
    A_prev, W, b = (xpb.asarray(a) for a in randn(2, (3, 2), (1, 3), (1, 1)))
    for activation, expected in (("sigmoid", [[0.96890023, 0.11013289]]), ("relu", [[3.43896131, 0.0]])):
        A, cache = linear_activation_forward(A_prev, W, b, activation)
        close(xpb, A, expected)
        assert type(cache) is tuple and type(cache[0]) is tuple
        (A_c, W_c, b_c), Z = cache
        assert A_c is A_prev and W_c is W and b_c is b
        close(xpb, Z, [[3.43896131, -2.08938436]])


L_FORWARD_Z = [
    [[-5.23825714, 3.18040136, 0.4074501, -1.88612721], [-2.77358234, -0.56177316, 3.18141623, -0.99209432],
     [4.18500916, -1.78006909, -0.14502619, 2.72141638], [5.05850802, -1.25674082, -3.54566654, 3.82321852]],
    [[2.2644603, 1.09971298, -2.90298027, 1.54036335], [6.33722569, -2.38116246, -4.11228806, 4.48582383],
     [10.37508342, -0.66591468, 1.63635185, 8.17870169]],
    [[-3.19864676, 0.87117055, -1.40297864, -3.00319435]],
]


def six_parameters(case):
    X, W1, b1, W2, b2, W3, b3 = (case.asarray(a) for a in
                                 randn(6, (5, 4), (4, 5), (4, 1), (3, 4), (3, 1), (1, 3), (1, 1)))
    return X, {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}


def test_L_model_forward(xpb):
    X, parameters = six_parameters(xpb)
    AL, caches = L_model_forward(X, parameters)
    close(xpb, AL, [[0.03921668, 0.70498921, 0.19734387, 0.04728177]])
    assert isinstance(caches, list) and len(caches) == 3
    for l, ((_A_prev, W, b), Z) in enumerate(caches, start=1):
        close(xpb, Z, L_FORWARD_Z[l - 1])
        assert W is parameters[f"W{l}"] and b is parameters[f"b{l}"]
    assert caches[0][0][0] is X
    close(xpb, caches[1][0][0], np.maximum(L_FORWARD_Z[0], 0))  # A1 = relu(Z1)


def test_L_model_forward_casts_X_of_another_float_dtype():
    """NumPy's default float64 data with float32 parameters (a DNN's): cast once to the parameters' dtype."""
    X, parameters = six_parameters(type("C", (), {"asarray": staticmethod(np.asarray)}))
    params32 = {k: v.astype(np.float32) for k, v in parameters.items()}
    AL, _ = L_model_forward(X, params32)
    assert AL.dtype == np.float32
    np.testing.assert_allclose(AL, [[0.03921668, 0.70498921, 0.19734387, 0.04728177]], rtol=1e-5)


# --------------------------------------------------------------------------------------------------- cost
def test_compute_cost_is_a_0d_array(xpb):
    AL = xpb.asarray(np.array([[0.8, 0.9, 0.4]]))
    cost = compute_cost(AL, labels(xpb, [[1, 1, 0]]))
    close(xpb, cost, np.array(0.27977656))
    assert cost.shape == ()


def test_compute_cost_takes_real_valued_labels(xpb):
    """The course's test of two_layer_model feeds Y = randn: the formula is computed as written."""
    AL_host, Y_host = np.array([[0.3, 0.6, 0.9]]), np.array([[1.7, -0.4, 0.2]])
    expected = -np.mean(Y_host * np.log(AL_host) + (1 - Y_host) * np.log(1 - AL_host))
    xpb.assert_close(compute_cost(xpb.asarray(AL_host), xpb.asarray(Y_host)), expected)


# ----------------------------------------------------------------------------------------------- backward
def test_linear_backward(xpb):
    dZ, A, W, b = (xpb.asarray(a) for a in randn(1, (3, 4), (5, 4), (3, 5), (3, 1)))
    dA_prev, dW, db = linear_backward(dZ, (A, W, b))
    close(xpb, dA_prev, [[-1.15171336, 0.06718465, -0.3204696, 2.09812712],
                         [0.60345879, -3.72508701, 5.81700741, -3.84326836],
                         [-0.4319552, -1.30987417, 1.72354705, 0.05070578],
                         [-0.38981415, 0.60811244, -1.25938424, 1.47191593],
                         [-2.52214926, 2.67882552, -0.67947465, 1.48119548]])
    close(xpb, dW, [[0.07313866, -0.0976715, -0.87585828, 0.73763362, 0.00785716],
                    [0.85508818, 0.37530413, -0.59912655, 0.71278189, -0.58931808],
                    [0.97913304, -0.24376494, -0.08839671, 0.55151192, -0.10290907]])
    close(xpb, db, [[-0.14713786], [-0.11313155], [-0.13209101]])


def test_linear_activation_backward(xpb):
    dA, A, W, b, Z = (xpb.asarray(a) for a in randn(2, (1, 2), (3, 2), (1, 3), (1, 1), (1, 2)))
    cache = ((A, W, b), Z)
    dA_prev, dW, db = linear_activation_backward(dA, cache, "sigmoid")
    close(xpb, dA_prev, [[0.11017994, 0.01105339], [0.09466817, 0.00949723], [-0.05743092, -0.00576154]])
    close(xpb, dW, [[0.10266786, 0.09778551, -0.01968084]])
    close(xpb, db, [[-0.05729622]])
    dA_prev, dW, db = linear_activation_backward(dA, cache, "relu")
    close(xpb, dA_prev, [[0.44090989, 0.0], [0.37883606, 0.0], [-0.2298228, 0.0]])
    close(xpb, dW, [[0.44513824, 0.37371418, -0.10478989]])
    close(xpb, db, [[-0.20837892]])


def test_L_model_backward(xpb):
    AL, A1, W1, b1, Z1, A2, W2, b2, Z2 = (xpb.asarray(a) for a in randn(
        3, (1, 2), (4, 2), (3, 4), (3, 1), (3, 2), (3, 2), (1, 3), (1, 1), (1, 2)))
    caches = (((A1, W1, b1), Z1), ((A2, W2, b2), Z2))  # a tuple, as the course's test passes it
    grads = L_model_backward(AL, labels(xpb, [[1, 0]]), caches)
    assert sorted(grads) == ["dA0", "dA1", "dW1", "dW2", "db1", "db2"]
    close(xpb, grads["dA1"], [[0.12913162, -0.44014127], [-0.14175655, 0.48317296], [0.01663708, -0.05670698]])
    close(xpb, grads["dW2"], [[-0.39202432, -0.13325855, -0.04601089]])
    close(xpb, grads["db2"], [[0.15187861]])
    close(xpb, grads["dA0"], [[0.0, 0.52257901], [0.0, -0.3269206], [0.0, -0.32070404], [0.0, -0.74079187]])
    close(xpb, grads["dW1"], [[0.41010002, 0.07807203, 0.13798444, 0.10502167], [0.0, 0.0, 0.0, 0.0],
                              [0.05283652, 0.01005865, 0.01777766, 0.0135308]])
    close(xpb, grads["db1"], [[-0.22007063], [0.0], [-0.02835349]])


def test_update_parameters(xpb):
    W1, b1, W2, b2 = (xpb.asarray(a) for a in randn(2, (3, 4), (3, 1), (1, 3), (1, 1)))
    dW1, db1, dW2, db2 = (xpb.asarray(a) for a in randn(3, (3, 4), (3, 1), (1, 3), (1, 1)))
    parameters = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    before = {k: xpb.np(v).copy() for k, v in parameters.items()}
    new = update_parameters(parameters, {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}, 0.1)
    close(xpb, new["W1"], [[-0.59562069, -0.09991781, -2.14584584, 1.82662008],
                           [-1.76569676, -0.80627147, 0.51115557, -1.18258802],
                           [-1.0535704, -0.86128581, 0.68284052, 2.20374577]])
    close(xpb, new["b1"], [[-0.04659241], [-1.28888275], [0.53405496]])
    close(xpb, new["W2"], [[-0.55569196, 0.0354055, 1.32964895]])
    close(xpb, new["b2"], [[-0.84610769]])
    for k, v in parameters.items():  # the caller's arrays are not changed
        np.testing.assert_array_equal(xpb.np(v), before[k])


def test_activation_helpers(xpb):
    Z_host = np.array([[-2.0, 0.0, 3.0]])
    Z = xpb.asarray(Z_host)
    A, cache = sigmoid(Z)
    xpb.assert_close(A, 1 / (1 + np.exp(-Z_host)))
    assert cache is Z
    A, cache = relu(Z)
    xpb.assert_close(A, np.maximum(Z_host, 0))
    dA_host = np.array([[0.5, -1.0, 2.0]])
    s = 1 / (1 + np.exp(-Z_host))
    xpb.assert_close(sigmoid_backward(xpb.asarray(dA_host), Z), dA_host * s * (1 - s))
    xpb.assert_close(relu_backward(xpb.asarray(dA_host), Z), np.where(Z_host > 0, dA_host, 0.0))


# ------------------------------------------------------------------------------------------------- models
def numpy_two_layer(X, Y, params, learning_rate, iterations):
    """The course's loop in plain NumPy: the oracle for two_layer_model from the same initial parameters."""
    W1, b1, W2, b2 = (params[k].astype(np.float64) for k in ("W1", "b1", "W2", "b2"))
    m, costs = X.shape[1], []
    for i in range(iterations):
        Z1 = W1 @ X + b1
        A1 = np.maximum(Z1, 0)
        A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
        if i % 100 == 0:
            costs.append(-np.mean(Y * np.log(A2) + (1 - Y) * np.log(1 - A2)))
        dZ2 = -(Y / A2 - (1 - Y) / (1 - A2)) * A2 * (1 - A2)
        dW2, db2 = dZ2 @ A1.T / m, dZ2.sum(axis=1, keepdims=True) / m
        dZ1 = (W2.T @ dZ2) * (Z1 > 0)
        dW1, db1 = dZ1 @ X.T / m, dZ1.sum(axis=1, keepdims=True) / m
        W1, b1, W2, b2 = W1 - learning_rate * dW1, b1 - learning_rate * db1, W2 - learning_rate * dW2, \
            b2 - learning_rate * db2
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, costs


def test_two_layer_model_with_the_course_test_data(xpb, capsys):
    """The course's test: X = randn(10, 4)-like data and real-valued labels Y = randn(1, m); the costs are 0-d
    arrays, every 100th iteration; the run equals the course's loop from the same initial parameters."""
    X_host, Y_host = randn(1, (10, 4), (1, 4))
    params, costs = two_layer_model(xpb.asarray(X_host), xpb.asarray(Y_host), (10, 7, 1), 0.0075, 102,
                                    print_cost=True)
    assert len(costs) == 2 and all(c.shape == () for c in costs)
    for c in costs:
        xpb.check(c)
    start = initialize_parameters(10, 7, 1, dtype="float64", backend="numpy")
    want, want_costs = numpy_two_layer(xpb.rounded(X_host), xpb.rounded(Y_host), start, 0.0075, 102)
    tol = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=2e-3, atol=1e-5)}[xpb.dtype_name]
    np.testing.assert_allclose([float(c) for c in costs], want_costs, **tol)
    for key in want:
        np.testing.assert_allclose(xpb.np(params[key]), want[key], **tol)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("Cost after iteration 0: ")
    assert printed[-1].startswith("Cost after iteration 101:")  # the last iteration is printed, not recorded


def test_predict_dec_takes_a_numpy_grid_to_the_parameters_backend(xpb):
    # plot_decision_boundary(lambda x: predict_dec(parameters, x.T), X, Y) hands in a NumPy grid, whatever
    # backend the parameters live on (a GPU notebook): it must be moved there, not refused as mixed libraries.
    X_host, parameters = np.random.RandomState(6).randn(5, 4), {}
    for l, (rows, cols) in enumerate([(4, 5), (3, 4), (1, 3)], start=1):
        parameters[f"W{l}"] = xpb.asarray(np.random.RandomState(l).randn(rows, cols))
        parameters[f"b{l}"] = xpb.asarray(np.random.RandomState(10 + l).randn(rows, 1))
    AL, _ = L_model_forward(xpb.asarray(X_host), parameters)
    for X in (X_host, xpb.asarray(X_host)):
        decided = predict_dec(parameters, X)
        assert xpb.backend.owns(decided) and tuple(decided.shape) == (1, 4)
        np.testing.assert_array_equal(xpb.np(decided), xpb.np(AL) > 0.5)
    from xpnet.course import initialization, regularization
    assert initialization.predict_dec is regularization.predict_dec is predict_dec


def test_L_layer_model_and_predict(xpb, capsys):
    rs = np.random.RandomState(2)
    X_host = rs.randn(4, 60)
    Y_host = (X_host[0:1] * X_host[1:2] > 0).astype(np.int64)
    params, costs = L_layer_model(xpb.asarray(X_host), labels(xpb, Y_host), [4, 6, 3, 1], 0.3, 101)
    assert len(costs) == 2 and all(c.shape == () for c in costs)
    for c in costs:
        xpb.check(c)
    assert float(costs[-1]) < float(costs[0])
    AL, _ = L_model_forward(xpb.asarray(X_host), params)
    p = predict(xpb.asarray(X_host), labels(xpb, Y_host), params)
    xpb.check(p, shape=(1, 60))
    np.testing.assert_array_equal(xpb.np(p), (xpb.np(AL) > 0.5).astype(float))
    accuracy = float(np.mean(xpb.np(p) == Y_host))
    assert capsys.readouterr().out.strip().endswith(f"Accuracy: {accuracy}")
    # a learner's NumPy test set with parameters on another backend: moved to the parameters' backend
    p_numpy = predict(X_host, Y_host, params, print_accuracy=False)
    xpb.check(p_numpy)
    np.testing.assert_array_equal(xpb.np(predict(X_host, None, params)), xpb.np(p))  # new data, no labels
    assert capsys.readouterr().out == ""


def test_models_train_on_the_backend_asked_for_numpy_data_in(monkeypatch):
    pytest.importorskip("torch")
    X_host, Y_host = randn(1, (3, 8), (1, 8))
    params, costs = L_layer_model(X_host, (Y_host > 0).astype(int), [3, 2, 1], num_iterations=2, backend="torch:cpu")
    assert type(params["W1"]).__module__.startswith("torch") and type(costs[0]).__module__.startswith("torch")
    monkeypatch.setenv("XPNET_BACKEND", "torch:cpu")  # the notebook's one-line switch, as an environment variable
    params, _ = two_layer_model(X_host, Y_host, (3, 2, 1), num_iterations=1)
    assert type(params["W1"]).__module__.startswith("torch")
    monkeypatch.delenv("XPNET_BACKEND")
    params, _ = two_layer_model(X_host, Y_host, (3, 2, 1), num_iterations=1)
    assert isinstance(params["W1"], np.ndarray)


def test_dnn_parameters_and_numpy_float64_data_work_together():
    """Issue 13: a DNN keeps float32 parameters; NumPy's default float64 X is cast once, not refused."""
    X, y = xpnet.datasets.make_flower(60, seed=0)
    net = xpnet.DNN([2, 4, 1], seed=0, backend="numpy")
    net.fit(X.T, y.reshape(1, -1), num_iterations=3)
    parameters = net.get_parameters()
    assert parameters["W1"].dtype == np.float32 and X.dtype == np.float64
    labels_ = xpnet.predict(X.T, parameters)
    np.testing.assert_array_equal(labels_, net.predict(X.T))
    AL, _ = L_model_forward(X.T, parameters)
    assert AL.dtype == np.float32
    with pytest.raises(xpnet.InvalidValueError, match="beyond the range of float32"):
        xpnet.predict(np.full((2, 3), 1e300), parameters)


def test_every_seeded_course_function_says_whose_generator_it_uses():
    """Where the course seeds NumPy's global generator, xpnet draws from its own: each such docstring says so."""
    import inspect

    from xpnet.course import gradient_checking, initialization, optimization, regularization

    seeded = []
    for module in (course, initialization, regularization, gradient_checking, optimization):
        for name in module.__all__:
            function = getattr(module, name)
            if "seed" in inspect.signature(function).parameters:
                seeded.append(f"{module.__name__}.{name}")
                doc = " ".join(function.__doc__.split())
                assert "own seeded generator" in doc or "xpnet uses its own" in doc, f"{module.__name__}.{name}"
    assert len(seeded) >= 10, seeded

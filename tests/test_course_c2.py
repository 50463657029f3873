"""xpnet.course's Course 2 submodules: the course's published test values on every backend of the matrix.

As in tests/test_course.py, the course's seeded inputs are regenerated with NumPy's legacy ``RandomState``;
what the course draws inside a function from NumPy's global generator (initial weights, dropout masks, the
mini-batch permutation) is xpnet's own seeded draw instead, checked by structure and by the formula applied to
the draw the function returned.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from test_course import PUBLISHED, close, labels, randn
from xpnet.course import gradient_checking as gc
from xpnet.course import initialization as init
from xpnet.course import optimization as opt
from xpnet.course import regularization as reg


def as_case(case, arrays: dict) -> dict:
    return {k: case.asarray(v) for k, v in arrays.items()}


# ------------------------------------------------------------------------------------------ initialization
def test_initializers(xpb):
    zeros = init.initialize_parameters_zeros([3, 2, 1], dtype=xpb.dtype_name, backend=xpb.backend)
    for key, shape in {"W1": (2, 3), "b1": (2, 1), "W2": (1, 2), "b2": (1, 1)}.items():
        close(xpb, zeros[key], np.zeros(shape))  # the course's expected output
    random = init.initialize_parameters_random([3, 2, 1], dtype=xpb.dtype_name, backend=xpb.backend)
    he = init.initialize_parameters_he([2, 4, 1], dtype=xpb.dtype_name, backend=xpb.backend)
    xpb.check(random["W1"], shape=(2, 3))
    xpb.check(he["W1"], shape=(4, 2))
    xpb.check(he["b2"], shape=(1, 1))
    # The same draw on every backend, scaled as the formulas say (the course's values use np.random.seed(3)).
    np.testing.assert_array_equal(xpb.np(random["W1"]), init.initialize_parameters_random(
        [3, 2, 1], dtype=xpb.dtype_name, backend="numpy")["W1"])
    wide = init.initialize_parameters_he([500, 400], backend="numpy")["W1"]
    assert np.std(wide) == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    assert np.std(init.initialize_parameters_random([500, 400], backend="numpy")["W1"]) == pytest.approx(10, rel=0.02)


def test_initialization_model_prints_the_course_costs(capsys):
    """Zeros: every output is sigmoid(0) = 0.5, so the course's first cost, 0.6931471805599453, is
    reproduced to the last digit; random x10 saturates and prints inf, as in the course."""
    X, Y = randn(1, (2, 300), (1, 300))  # 300 examples, as the course's data set: the same rounding of the mean
    init.model(X, (Y > 0).astype(int), num_iterations=1, initialization="zeros")
    assert capsys.readouterr().out.strip() == "Cost after iteration 0: 0.6931471805599453"
    with np.errstate(divide="ignore"):
        init.model(100 * X, (Y > 0).astype(int), num_iterations=1, initialization="random")
    assert capsys.readouterr().out.strip() == "Cost after iteration 0: inf"
    params = init.model(X, (Y > 0).astype(int), num_iterations=3, print_cost=False)
    assert sorted(params) == ["W1", "W2", "W3", "b1", "b2", "b3"] and params["W2"].shape == (5, 10)
    with pytest.raises(xpnet.ConfigError, match="initialization must be one of"):
        init.model(X, Y, initialization="xavier")


# ------------------------------------------------------------------------------------------ regularization
def reg_parameters(case, seed=1, x=False):
    arrays = randn(seed, *([(3, 5)] if x else []), (2, 3), (2, 1), (3, 2), (3, 1), (1, 3), (1, 1))
    X = case.asarray(arrays.pop(0)) if x else None
    params = as_case(case, dict(zip(("W1", "b1", "W2", "b2", "W3", "b3"), arrays, strict=True)))
    return X, params


Y_REG = [[1, 1, 0, 1, 0]]
A3_REG = [[0.40682402, 0.01629284, 0.16722898, 0.10118111, 0.40682402]]


def test_compute_cost_with_regularization(xpb):
    _, params = reg_parameters(xpb)
    cost = reg.compute_cost_with_regularization(xpb.asarray(A3_REG), labels(xpb, Y_REG), params, 0.1)
    close(xpb, cost, np.array(1.7864859451590758))


# The course's cache for backward_propagation_with_regularization: (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3).
REG_CACHE = [
    [[-1.52855314, 3.32524635, 2.13994541, 2.60700654, -0.75942115],
     [-1.98043538, 4.1600994, 0.79051021, 1.46493512, -0.45506242]],
    [[0.0, 3.32524635, 2.13994541, 2.60700654, 0.0], [0.0, 4.1600994, 0.79051021, 1.46493512, 0.0]],
    [[-1.09989127, -0.17242821, -0.87785842], [0.04221375, 0.58281521, -1.10061918]],
    [[1.14472371], [0.90159072]],
    [[0.53035547, 5.94892323, 2.31780174, 3.16005701, 0.53035547],
     [-0.69166075, -3.47645987, -2.25194702, -2.65416996, -0.69166075],
     [-0.39675353, -4.62285846, -2.61101729, -3.22874921, -0.39675353]],
    [[0.53035547, 5.94892323, 2.31780174, 3.16005701, 0.53035547], [0.0] * 5, [0.0] * 5],
    [[0.50249434, 0.90085595], [-0.68372786, -0.12289023], [-0.93576943, -0.26788808]],
    [[0.53035547], [-0.69166075], [-0.39675353]],
    [[-0.3771104, -4.10060224, -1.60539468, -2.18416951, -0.3771104]],
    A3_REG,
    [[-0.6871727, -0.84520564, -0.67124613]],
    [[-0.0126646]],
]


def test_backward_propagation_with_regularization(xpb):
    X = xpb.asarray(randn(1, (3, 5))[0])
    cache = tuple(xpb.asarray(np.array(a)) for a in REG_CACHE)
    grads = reg.backward_propagation_with_regularization(X, labels(xpb, Y_REG), cache, 0.7)
    assert list(grads) == ["dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1"]
    close(xpb, grads["dZ3"], [[-0.59317598, -0.98370716, 0.16722898, -0.89881889, 0.40682402]])
    close(xpb, grads["dW3"], [[-1.77691347, -0.11832879, -0.09397446]])
    close(xpb, grads["db3"], [[-0.38032981]])
    close(xpb, grads["dA2"], [[0.40761434, 0.67597671, -0.11491519, 0.6176438, -0.27955836],
                              [0.50135568, 0.83143484, -0.14134288, 0.7596868, -0.34384996],
                              [0.39816708, 0.66030962, -0.11225181, 0.6033287, -0.27307905]])
    close(xpb, grads["dZ2"], [[0.40761434, 0.67597671, -0.11491519, 0.6176438, -0.27955836], [0.0] * 5, [0.0] * 5])
    close(xpb, grads["dW2"], [[0.79276486, 0.85133918], [-0.0957219, -0.01720463], [-0.13100772, -0.03750433]])
    close(xpb, grads["db2"], [[0.26135226], [0.0], [0.0]])
    close(xpb, grads["dA1"], [[0.2048239, 0.33967447, -0.05774423, 0.31036252, -0.14047649],
                              [0.3672018, 0.60895764, -0.10352203, 0.5564081, -0.25184181]])
    close(xpb, grads["dZ1"], [[0.0, 0.33967447, -0.05774423, 0.31036252, 0.0],
                              [0.0, 0.60895764, -0.10352203, 0.5564081, 0.0]])
    close(xpb, grads["dW1"], [[-0.25604646, 0.12298827, -0.28297129], [-0.17706303, 0.34536094, -0.4410571]])
    close(xpb, grads["db1"], [[0.11845855], [0.21236874]])


def test_forward_propagation_with_dropout(xpb):
    """The masks are xpnet's draw (the course's come from np.random.seed(1)): the outputs are checked against
    the course's formula applied to the masks the function returned."""
    X, params = reg_parameters(xpb, x=True)
    A3, cache = reg.forward_propagation_with_dropout(X, params, 0.7)
    assert len(cache) == 14
    D1, A1, W1, D2, A3_c, b3 = cache[1], cache[2], cache[3], cache[6], cache[11], cache[13]
    assert A3_c is A3 and W1 is params["W1"] and b3 is params["b3"]
    assert D1.shape == (2, 5) and D2.shape == (3, 5) and xpb.xp.isdtype(D1.dtype, "bool")
    Xh, P = xpb.rounded(xpb.np(X)), {k: xpb.np(v).astype(np.float64) for k, v in params.items()}
    d1, d2 = xpb.np(D1), xpb.np(D2)
    a1 = np.maximum(P["W1"] @ Xh + P["b1"], 0) * d1 / 0.7
    a2 = np.maximum(P["W2"] @ a1 + P["b2"], 0) * d2 / 0.7
    rtol = 1e-4 if xpb.dtype_name == "float32" else 1e-10
    xpb.assert_close(A1, a1, rtol=rtol)
    xpb.assert_close(A3, 1 / (1 + np.exp(-(P["W3"] @ a2 + P["b3"]))), rtol=rtol)
    # keep_prob = 1 keeps every unit: the plain forward pass, and the course's first layer Z1
    _, cache_all = reg.forward_propagation_with_dropout(X, params, 1.0)
    assert xpb.np(cache_all[1]).all()
    close(xpb, cache_all[0], REG_CACHE[0])
    same_masks = reg.forward_propagation_with_dropout(X, params, 0.7)[1][1]
    np.testing.assert_array_equal(xpb.np(same_masks), d1)  # seeded: the same masks on every call and backend


DROPOUT_CACHE = [
    REG_CACHE[0],
    [[True, False, True, True, True], [True, True, True, True, False]],
    [[0.0, 0.0, 4.27989081, 5.21401307, 0.0], [0.0, 8.32019881, 1.58102041, 2.92987024, 0.0]],
    REG_CACHE[2], REG_CACHE[3],
    [[0.53035547, 8.02565606, 4.10524802, 5.78975856, 0.53035547],
     [-0.69166075, -1.71413186, -3.81223329, -4.61667916, -0.69166075],
     [-0.39675353, -2.62563561, -4.82528105, -6.0607449, -0.39675353]],
    [[True, False, True, False, True], [False, True, False, True, True], [False, False, True, False, False]],
    [[1.06071093, 0.0, 8.21049603, 0.0, 1.06071093], [0.0] * 5, [0.0] * 5],
    REG_CACHE[6], REG_CACHE[7],
    [[-0.7415562, -0.0126646, -5.65469333, -0.0126646, -0.7415562]],
    [[0.32266394, 0.49683389, 0.00348883, 0.49683389, 0.32266394]],
    REG_CACHE[10], REG_CACHE[11],
]


def test_backward_propagation_with_dropout(xpb):
    X = xpb.asarray(randn(1, (3, 5))[0])
    cache = tuple(xpb.backend.asarray(np.array(a)) if isinstance(a[0][0], bool) else xpb.asarray(np.array(a))
                  for a in DROPOUT_CACHE)
    grads = reg.backward_propagation_with_dropout(X, labels(xpb, Y_REG), cache, 0.8)
    close(xpb, grads["dZ3"], [[-0.67733606, -0.50316611, 0.00348883, -0.50316611, 0.32266394]])
    close(xpb, grads["dW3"], [[-0.06951191, 0.0, 0.0]])
    close(xpb, grads["db3"], [[-0.2715031]])
    close(xpb, grads["dA2"], [[0.58180856, 0.0, -0.00299679, 0.0, -0.27715731],
                              [0.0, 0.53159854, 0.0, 0.53159854, -0.34089673], [0.0, 0.0, -0.00292733, 0.0, 0.0]])
    close(xpb, grads["dZ2"], [[0.58180856, 0.0, -0.00299679, 0.0, -0.27715731], [0.0] * 5, [0.0] * 5])
    close(xpb, grads["dW2"], [[-0.00256518, -0.0009476], [0.0, 0.0], [0.0, 0.0]])
    close(xpb, grads["db2"], [[0.06033089], [0.0], [0.0]])
    close(xpb, grads["dA1"], [[0.36544439, 0.0, -0.00188233, 0.0, -0.17408748],
                              [0.65515713, 0.0, -0.00337459, 0.0, 0.0]])
    close(xpb, grads["dZ1"], [[0.0, 0.0, -0.00188233, 0.0, 0.0], [0.0, 0.0, -0.00337459, 0.0, 0.0]])
    close(xpb, grads["dW1"], [[0.00019884, 0.00028657, 0.00012138], [0.00035647, 0.00051375, 0.00021761]])
    close(xpb, grads["db1"], [[-0.00037647], [-0.00067492]])


def test_regularization_model():
    X, Y = randn(3, (2, 40), (1, 40))
    Y = (Y > 0).astype(int)
    for kwargs in ({}, {"lambd": 0.7}, {"keep_prob": 0.86}):
        params = reg.model(X, Y, num_iterations=3, print_cost=False, **kwargs)
        assert params["W1"].shape == (20, 2) and params["W3"].shape == (1, 3)
    with pytest.raises(xpnet.ConfigError, match="not both"):
        reg.model(X, Y, lambd=0.1, keep_prob=0.5)
    with pytest.raises(xpnet.ConfigError, match="keep_prob"):
        reg.forward_propagation_with_dropout(X, params, 0)


# ----------------------------------------------------------------------------------------- gradient check
def test_one_dimensional_gradient_check(capsys):
    assert gc.forward_propagation(2, 4) == 8
    assert gc.backward_propagation(2, 4) == 2
    assert gc.gradient_check(2, 4, print_msg=True) == pytest.approx(2.919335883291695e-10, rel=1e-6)
    assert "works perfectly fine" in capsys.readouterr().out


def gradient_case(case):
    x, W1, b1, W2, b2, W3, b3 = randn(1, (4, 3), (5, 4), (5, 1), (3, 5), (3, 1), (1, 3), (1, 1))
    params = as_case(case, {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3})
    return case.asarray(x), labels(case, [1, 1, 0]), params


def test_gradient_check_n(xpb64, capsys):
    """The course's two published differences: 1.1890913024229996e-07 for the correct backward pass and
    0.2850931567761623 for the course's planted mistakes (dW2 twice, db1 four times too large). Float64 only:
    eps = 1e-7 is below float32's resolution."""
    X, Y, params = gradient_case(xpb64)
    cost, cache = gc.forward_propagation_n(X, Y, params)
    xpb64.check(cost, shape=())
    grads = gc.backward_propagation_n(X, Y, cache)
    difference = gc.gradient_check_n(params, grads, X, Y, 1e-7, True)
    xpb64.check(difference, shape=())
    exact = xpb64.id == "numpy-f64"  # the course's own arithmetic; other libraries round their sums differently
    assert float(difference) == pytest.approx(1.1890913024229996e-07, rel=1e-9 if exact else 2e-2)
    assert "works perfectly fine" in capsys.readouterr().out
    wrong = dict(grads, dW2=2 * grads["dW2"], db1=4 * grads["db1"])
    assert float(gc.gradient_check_n(params, wrong, X, Y, 1e-7, True)) == pytest.approx(0.2850931567761623, rel=1e-6)
    assert "There is a mistake in the backward propagation" in capsys.readouterr().out


def test_vectors_and_dictionaries(xpb):
    _, _, params = gradient_case(xpb)
    theta, keys = gc.dictionary_to_vector(params)
    xpb.check(theta, shape=(47, 1))
    assert keys[:20] == ["W1"] * 20 and keys[20:25] == ["b1"] * 5 and keys[-1] == "b3"
    back = gc.vector_to_dictionary(theta)  # the course's shapes by default
    for key, value in params.items():
        np.testing.assert_array_equal(xpb.np(back[key]), xpb.np(value))
    grads = {f"d{k}": v for k, v in params.items()}
    np.testing.assert_array_equal(xpb.np(gc.gradients_to_vector(grads)), xpb.np(theta))
    with pytest.raises(xpnet.ConfigError, match="layer_dims"):
        gc.vector_to_dictionary(theta, [4, 5, 1])


# ------------------------------------------------------------------------------------------- optimization
def opt_case(case):
    W1, b1, W2, b2, dW1, db1, dW2, db2 = randn(1, (2, 3), (2, 1), (3, 3), (3, 1), (2, 3), (2, 1), (3, 3), (3, 1))
    return (as_case(case, {"W1": W1, "b1": b1, "W2": W2, "b2": b2}),
            as_case(case, {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}))


def test_update_parameters_with_gd(xpb):
    params, grads = opt_case(xpb)
    new = opt.update_parameters_with_gd(params, grads, 0.01)
    close(xpb, new["W1"], [[1.63535156, -0.62320365, -0.53718766], [-1.07799357, 0.85639907, -2.29470142]])
    close(xpb, new["b1"], [[1.74604067], [-0.75184921]])
    close(xpb, new["W2"], [[0.32171798, -0.25467393, 1.46902454], [-2.05617317, -0.31554548, -0.3756023],
                           [1.1404819, -1.09976462, -0.1612551]])
    close(xpb, new["b2"], [[-0.88020257], [0.02561572], [0.57539477]])


def test_momentum(xpb):
    params, grads = opt_case(xpb)
    v = opt.initialize_velocity(params)
    assert sorted(v) == ["dW1", "dW2", "db1", "db2"]
    close(xpb, v["dW2"], np.zeros((3, 3)))
    new, v = opt.update_parameters_with_momentum(params, grads, v, 0.9, 0.01)
    close(xpb, new["W1"], [[1.62544598, -0.61290114, -0.52907334], [-1.07347112, 0.86450677, -2.30085497]])
    close(xpb, new["b1"], [[1.74493465], [-0.76027113]])
    close(xpb, new["W2"], [[0.31930698, -0.24990073, 1.4627996], [-2.05974396, -0.32173003, -0.38320915],
                           [1.13444069, -1.0998786, -0.1713109]])
    close(xpb, new["b2"], [[-0.87809283], [0.04055394], [0.58207317]])
    close(xpb, v["dW1"], [[-0.11006192, 0.11447237, 0.09015907], [0.05024943, 0.09008559, -0.06837279]])
    close(xpb, v["dW2"], [[-0.02678881, 0.05303555, -0.06916608], [-0.03967535, -0.06871727, -0.08452056],
                          [-0.06712461, -0.00126646, -0.11173103]])
    close(xpb, v["db1"], [[-0.01228902], [-0.09357694]])
    close(xpb, v["db2"], [[0.02344157], [0.16598022], [0.07420442]])


def test_adam(xpb):
    """The course's test: t = 2, learning_rate = 0.02, beta1 = 0.8, beta2 = 0.888, epsilon = 1e-2; it checks
    the first row of each array, and the corrected moments against v / (1 - beta1^t), s / (1 - beta2^t)."""
    params, grads = opt_case(xpb)
    v, s = opt.initialize_adam(params)
    close(xpb, s["db2"], np.zeros((3, 1)))
    new, v, s, v_c, s_c = opt.update_parameters_with_adam(params, grads, v, s, 2, 0.02, 0.8, 0.888, 1e-2)
    expected_v = {"dW1": [-0.22012384, 0.22894474, 0.18031814], "dW2": [-0.05357762, 0.10607109, -0.13833215],
                  "db1": [-0.02457805], "db2": [0.04688314]}
    expected_s = {"dW1": [0.13567261, 0.14676395, 0.09104097], "dW2": [8.03757060e-03, 3.15030152e-02, 5.35801947e-02],
                  "db1": [0.00169142], "db2": [0.00615448]}
    expected_p = {"W1": [1.63942428, -0.6268425, -0.54320974], "W2": [0.33356139, -0.26425199, 1.47707772],
                  "b1": [1.75854357], "b2": [-0.89228024]}
    allclose = dict(rtol=1e-5, atol=1e-8)  # the course's np.allclose: s is published to 6 significant digits
    for key in expected_v:
        close(xpb, v[key][0, :], expected_v[key])
        close(xpb, s[key][0, :], expected_s[key])
        xpb.check(v_c[key], shape=v[key].shape)
        np.testing.assert_allclose(xpb.np(v_c[key])[0], np.array(expected_v[key]) / (1 - 0.8 ** 2),
                                   **(allclose if xpb.dtype_name == "float64" else PUBLISHED["float32"]))
        np.testing.assert_allclose(xpb.np(s_c[key])[0], np.array(expected_s[key]) / (1 - 0.888 ** 2),
                                   **(allclose if xpb.dtype_name == "float64" else PUBLISHED["float32"]))
    for key, value in expected_p.items():
        close(xpb, new[key][0, :], value)
        assert new[key].shape == params[key].shape
    with pytest.raises(xpnet.ConfigError, match="counting from 1"):
        opt.update_parameters_with_adam(params, grads, v, s, 0)


def test_learning_rate_decay():
    assert opt.update_lr(0.5, 2, 1) == pytest.approx(0.16666666666666666)
    assert opt.schedule_lr_decay(0.5, 100, 1, 100) == pytest.approx(0.25)
    assert opt.schedule_lr_decay(0.5, 10, 1, 100) == pytest.approx(0.5)
    assert opt.schedule_lr_decay(0.3, 1000, 0.25, 100) == pytest.approx(0.085714285)
    assert opt.schedule_lr_decay(0.3, 100, 0.25, 100) == pytest.approx(0.24)


def test_random_mini_batches(xpb):
    """The course's test data (X = randn(5, 7), boolean Y, batches of 2): the shapes it checks, (5, 2) x 3 and
    (5, 1); the permutation is xpnet's seeded draw, so each batch is checked to hold whole columns of (X, Y)."""
    X_host, Y_host = randn(1, (5, 7), (1, 7))
    Y_host = Y_host < 0.5
    batches = opt.random_mini_batches(xpb.asarray(X_host), xpb.backend.asarray(Y_host), 2)
    assert [tuple(bx.shape) for bx, _ in batches] == [(5, 2), (5, 2), (5, 2), (5, 1)]
    assert [tuple(by.shape) for _, by in batches] == [(1, 2), (1, 2), (1, 2), (1, 1)]
    seen = []
    for bx, by in batches:
        xpb.check(bx)
        assert xpb.xp.isdtype(by.dtype, "bool")
        for j in range(bx.shape[1]):
            column = np.flatnonzero((xpb.rounded(X_host) == xpb.np(bx)[:, j:j + 1]).all(axis=0))
            assert len(column) == 1 and Y_host[0, column[0]] == xpb.np(by)[0, j]
            seen.append(int(column[0]))
    assert sorted(seen) == list(range(7)) and seen != list(range(7))


def test_optimization_model(capsys):
    X, Y = randn(2, (2, 50), (1, 50))
    Y = (X[0:1] > 0).astype(int)
    for optimizer in ("gd", "momentum", "adam"):
        params = opt.model(X, Y, [2, 5, 2, 1], optimizer, num_epochs=2, mini_batch_size=16, decay=opt.update_lr)
        assert params["W2"].shape == (2, 5)
    out = capsys.readouterr().out
    assert "Cost after epoch 0: " in out and "learning rate after epoch 0: 0.000700" in out  # 0.0007 / (1 + 0)
    decayed = []
    opt.model(X, Y, [2, 3, 1], "gd", learning_rate=0.5, num_epochs=3, print_cost=False,
              decay=lambda lr0, epoch, rate: decayed.append((lr0, epoch, rate)) or opt.update_lr(lr0, epoch, rate))
    assert decayed == [(0.5, 0, 1), (0.5, 1, 1), (0.5, 2, 1)]  # from the initial rate, after each epoch
    with pytest.raises(xpnet.ConfigError, match="optimizer must be"):
        opt.model(X, Y, [2, 1], "rmsprop")

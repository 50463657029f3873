"""The learner's functions (``xpnet.course``, ``xpnet.functional``) run on their arrays' device, ``cupy:1`` too.

CuPy allocates and launches on the *current* device; these run against :mod:`fake_cupy` (two simulated devices,
every allocation and kernel logged with the device current then) and fail on any event off device 1, as
``tests/test_device_context.py`` does for the engine and the estimators.
"""

from __future__ import annotations

import numpy as np
import pytest

import fake_cupy
import xpnet
from xpnet.course import deep_network as dn
from xpnet.course import gradient_checking as gc
from xpnet.course import initialization as ini
from xpnet.course import optimization as opt
from xpnet.course import regularization as reg


def _on_device_1(what: str) -> None:
    bad = fake_cupy.strays(fake_cupy.EVENTS, 1)
    assert fake_cupy.EVENTS, f"{what}: nothing was logged (the fake is not in use)"
    assert not bad, f"{what}: {len(bad)} allocations/kernels off device 1: {[str(e) for e in bad[:5]]}"
    fake_cupy.EVENTS.clear()


def _data() -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(0)
    return rs.randn(3, 40), (rs.rand(1, 40) > 0.5).astype(np.float64)


def test_the_building_blocks_run_on_their_arrays_device(cupy1):
    X, Y = (cupy1.asarray(a) for a in _data())
    F = xpnet.functional
    p = F.initialize_parameters([3, 4, 1], seed=1, backend=cupy1)
    fake_cupy.EVENTS.clear()
    AL, caches = F.model_forward(X, p)
    grads = F.model_backward(AL, Y, caches)
    F.update_parameters(p, grads, 0.1)
    F.compute_cost(AL, Y)
    F.predict(X, p)
    _on_device_1("xpnet.functional")


@pytest.mark.parametrize("train", [
    lambda X, Y: dn.L_layer_model(X, Y, [3, 4, 1], num_iterations=2, backend="cupy:1"),
    lambda X, Y: dn.two_layer_model(X, Y, (3, 4, 1), num_iterations=2, backend="cupy:1"),
    lambda X, Y: ini.model(X, Y, num_iterations=2, print_cost=False, backend="cupy:1"),
    lambda X, Y: reg.model(X, Y, num_iterations=2, print_cost=False, keep_prob=0.8, backend="cupy:1"),
    lambda X, Y: opt.model(X, Y, [3, 4, 1], "adam", num_epochs=1, mini_batch_size=16, print_cost=False,
                           backend="cupy:1"),
], ids=["L_layer_model", "two_layer_model", "initialization", "regularization", "optimization"])
def test_course_models_train_on_the_device_from_numpy_data(cupy1, train):
    params = train(*_data())
    params = params[0] if isinstance(params, tuple) else params  # (parameters, costs) of the Course 1 models
    assert all(a.device.id == 1 for a in params.values())
    _on_device_1("the model")


def test_course_functions_on_device_arrays(cupy1, capsys):
    X, Y = (cupy1.asarray(a) for a in _data())
    p = ini.initialize_parameters_he([3, 4, 3, 1], backend=cupy1)
    _on_device_1("initialize_parameters_he")
    AL, caches = dn.L_model_forward(X, p)
    grads = dn.L_model_backward(AL, Y, caches)
    dn.compute_cost(AL, Y)
    dn.predict(X, Y, p)
    dn.predict_dec(p, np.zeros((3, 4)))  # the NumPy grid of a plot, moved to the parameters' device
    v, s = opt.initialize_adam(p)
    opt.update_parameters_with_adam(p, grads, v, s, 1)
    opt.update_parameters_with_momentum(p, grads, opt.initialize_velocity(p), 0.9, 0.1)
    opt.random_mini_batches(X, Y, 16)
    A3, cache = reg.forward_propagation_with_dropout(X, p, 0.8)
    reg.backward_propagation_with_dropout(X, Y, cache, 0.8)
    reg.compute_cost_with_regularization(A3, Y, p, 0.1)
    theta, _ = gc.dictionary_to_vector(p)
    gc.vector_to_dictionary(theta, [3, 4, 3, 1])
    _on_device_1("the course's functions")

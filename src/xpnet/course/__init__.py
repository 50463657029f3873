"""The course's own functions under the course's names: a learner's notebook runs after
``from xpnet.course import *``, on NumPy, CuPy, PyTorch, JAX or array_api_strict arrays.

``xpnet.course`` itself holds Course 1, week 4 (:mod:`~xpnet.course.deep_network`: ``initialize_parameters``,
``L_model_forward``, ``compute_cost``, ``L_model_backward``, ``update_parameters``, ``predict``,
``predict_dec``, ``two_layer_model``, ``L_layer_model``, ...). The Course 2 assignments reuse some of those names
with other meanings, so they live in submodules: :mod:`~xpnet.course.initialization`,
:mod:`~xpnet.course.regularization`, :mod:`~xpnet.course.gradient_checking`, :mod:`~xpnet.course.optimization`.

Every function is written on xpnet's building blocks (:mod:`xpnet.lecture`), keeps the course's positional
signature and return values, and returns arrays in its inputs' namespace, device and dtype. Where the course
seeds NumPy's global generator, xpnet uses its own seeded generator (the same values on every device).
Functions that create arrays from sizes (the initializers, the models) use the ``backend=`` given, else the
session's (:func:`xpnet.use_backend`, ``XPNET_BACKEND``), else NumPy: that one setting moves a notebook to the
GPU.
"""

from __future__ import annotations

from .deep_network import (
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

__all__ = [
    "L_layer_model",
    "L_model_backward",
    "L_model_forward",
    "compute_cost",
    "initialize_parameters",
    "initialize_parameters_deep",
    "linear_activation_backward",
    "linear_activation_forward",
    "linear_backward",
    "linear_forward",
    "predict",
    "predict_dec",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "two_layer_model",
    "update_parameters",
]

"""xpnet: the deep-learning lecture's L-layer networks, written once against the Python Array API.

The same code trains on NumPy (CPU), CuPy (CUDA GPU), PyTorch, JAX and array_api_strict arrays.
Importing xpnet imports no array library; backends are loaded when first asked for.
"""

from __future__ import annotations

import sys

from . import datasets
from . import dnn as network
from . import engine as training
from . import files as io
from ._version import __version__
from .device import backend as _backend
from .device import random as _random
from .device import xp as _xp
from .device.backend import (
    Backend,
    backends_report,
    clear_backend_cache,
    format_backends_report,
    get_backend,
    use_backend,
)
from .device.xp import to_numpy
from .dnn import DNN
from .engine import Callback, EarlyStopping, History, ModelCheckpoint, Trainer, optimizers
from .engine.steps import inplace as _inplace
from .errors import (
    BackendSpecError,
    BackendUnavailableError,
    ConfigError,
    DatasetError,
    DeviceMemoryError,
    DeviceMismatchError,
    DivergenceError,
    DTypeError,
    GradientCheckError,
    InputTypeError,
    InvalidValueError,
    LabelError,
    ModelFileError,
    NamespaceMismatchError,
    ShapeError,
    XpnetError,
)
from .files import load, save
from .lecture import activations, functional, gradcheck, initializers, losses
from .lecture import registry as _registry
from .lecture.functional import (
    compute_cost,
    initialize_parameters,
    linear_activation_backward,
    linear_activation_forward,
    linear_backward,
    linear_forward,
    model_backward,
    model_forward,
    predict,
    update_parameters,
)
from .lecture.gradcheck import GradCheckResult, gradient_check

# The module paths of xpnet before its layers became subpackages keep working (``import xpnet.functional``,
# ``from xpnet.training import Trainer``): each old name is the module that now holds its contents.
_OLD_PATHS = {
    "activations": activations, "losses": losses, "initializers": initializers, "functional": functional,
    "gradcheck": gradcheck, "optimizers": optimizers, "training": training, "network": network, "io": io,
    "backend": _backend, "random": _random, "_xp": _xp, "_fast": _inplace, "_registry": _registry,
}
for _name, _module in _OLD_PATHS.items():
    sys.modules.setdefault(f"{__name__}.{_name}", _module)
    globals()[_name] = _module
del _name, _module


def __getattr__(name: str) -> object:
    # The estimators import scikit-learn (and with it NumPy and SciPy): loaded on first use, so that
    # ``import xpnet`` stays free of array libraries.
    if name in ("DNNClassifier", "DNNRegressor", "NotFittedError", "estimators"):
        import importlib

        module = importlib.import_module(".estimators", __name__)
        return module if name == "estimators" else getattr(module, name)
    if name in ("course", "plot"):  # the course's names and the pictures (matplotlib): loaded on first use
        import importlib

        return importlib.import_module(f".{name}", __name__)
    if name in ("to_onnx", "register_skl2onnx"):  # ONNX export: loaded on first use, with the estimators
        import importlib

        return getattr(importlib.import_module(".export", __name__), name)
    raise AttributeError(f"module 'xpnet' has no attribute {name!r}")


__all__ = [
    "DNN",
    "Backend",
    "BackendSpecError",
    "BackendUnavailableError",
    "Callback",
    "ConfigError",
    "DNNClassifier",
    "DNNRegressor",
    "DTypeError",
    "DatasetError",
    "DeviceMemoryError",
    "DeviceMismatchError",
    "DivergenceError",
    "EarlyStopping",
    "GradCheckResult",
    "GradientCheckError",
    "History",
    "InputTypeError",
    "InvalidValueError",
    "LabelError",
    "ModelCheckpoint",
    "ModelFileError",
    "NamespaceMismatchError",
    "NotFittedError",
    "ShapeError",
    "Trainer",
    "XpnetError",
    "__version__",
    "activations",
    "backends_report",
    "clear_backend_cache",
    "compute_cost",
    "course",
    "datasets",
    "errors",
    "estimators",
    "format_backends_report",
    "functional",
    "get_backend",
    "gradient_check",
    "initialize_parameters",
    "initializers",
    "io",
    "linear_activation_backward",
    "linear_activation_forward",
    "linear_backward",
    "linear_forward",
    "load",
    "losses",
    "model_backward",
    "model_forward",
    "optimizers",
    "plot",
    "predict",
    "register_skl2onnx",
    "save",
    "to_numpy",
    "to_onnx",
    "training",
    "update_parameters",
    "use_backend",
]

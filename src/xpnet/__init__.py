"""xpnet: the deep-learning lecture's L-layer networks, written once against the Python Array API.

The same code trains on NumPy (CPU), CuPy (CUDA GPU), PyTorch, JAX and array_api_strict arrays.
Importing xpnet imports no array library; backends are loaded when first asked for.
"""

from __future__ import annotations

from . import activations, datasets, errors, functional, initializers, losses, optimizers, training
from ._xp import to_numpy
from .backend import (
    Backend,
    backends_report,
    clear_backend_cache,
    format_backends_report,
    get_backend,
    use_backend,
)
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
from .functional import (
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
from .gradcheck import GradCheckResult, gradient_check
from .io import load, save
from .network import DNN
from .training import Callback, EarlyStopping, History, ModelCheckpoint, Trainer


def __getattr__(name: str) -> object:
    # The estimators import scikit-learn (and with it NumPy and SciPy): loaded on first use, so that
    # ``import xpnet`` stays free of array libraries.
    if name in ("DNNClassifier", "DNNRegressor", "estimators"):
        import importlib

        module = importlib.import_module(".estimators", __name__)
        return module if name == "estimators" else getattr(module, name)
    raise AttributeError(f"module 'xpnet' has no attribute {name!r}")


try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("xpnet")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

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
    "ShapeError",
    "Trainer",
    "XpnetError",
    "__version__",
    "activations",
    "backends_report",
    "clear_backend_cache",
    "compute_cost",
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
    "predict",
    "save",
    "to_numpy",
    "training",
    "update_parameters",
    "use_backend",
]

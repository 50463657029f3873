"""xpnet: the deep-learning lecture's L-layer networks, written once against the Python Array API.

The same code trains on NumPy (CPU), CuPy (CUDA GPU), PyTorch, JAX and array_api_strict arrays.
Importing xpnet imports no array library; backends are loaded when first asked for.
"""

from __future__ import annotations

from . import activations, datasets, errors, functional, initializers, losses
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
    DeviceMismatchError,
    DTypeError,
    GradientCheckError,
    InputTypeError,
    LabelError,
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
from .network import DNN

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
    "ConfigError",
    "DTypeError",
    "DeviceMismatchError",
    "GradCheckResult",
    "GradientCheckError",
    "InputTypeError",
    "LabelError",
    "NamespaceMismatchError",
    "ShapeError",
    "XpnetError",
    "__version__",
    "activations",
    "backends_report",
    "clear_backend_cache",
    "compute_cost",
    "datasets",
    "errors",
    "format_backends_report",
    "functional",
    "get_backend",
    "gradient_check",
    "initialize_parameters",
    "initializers",
    "linear_activation_backward",
    "linear_activation_forward",
    "linear_backward",
    "linear_forward",
    "losses",
    "model_backward",
    "model_forward",
    "predict",
    "to_numpy",
    "update_parameters",
    "use_backend",
]

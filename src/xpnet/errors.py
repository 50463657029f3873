"""Every exception xpnet raises, in one place.

Each type derives from :class:`XpnetError` *and* from the built-in exception a caller would
naturally catch (``ValueError``, ``TypeError``, ``RuntimeError``), so both
``except xpnet.XpnetError`` and ``except ValueError`` work.

A message always names the problem, what was expected, what was given and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BackendSpecError",
    "BackendUnavailableError",
    "ConfigError",
    "DTypeError",
    "DatasetError",
    "DeviceMemoryError",
    "DeviceMismatchError",
    "DivergenceError",
    "GradientCheckError",
    "InputTypeError",
    "InvalidValueError",
    "LabelError",
    "ModelFileError",
    "NamespaceMismatchError",
    "ShapeError",
    "XpnetError",
]


class XpnetError(Exception):
    """Base class of every error xpnet raises on purpose."""


class BackendUnavailableError(XpnetError, RuntimeError):
    """A backend was asked for but cannot be used here.

    The message says why (not installed, no CUDA device, the driver's error text) and what to do
    (for example ``pip install "xpnet[cuda12]"``).
    """


class BackendSpecError(XpnetError, ValueError):
    """A backend spec string is malformed or names no known backend; the message lists valid specs."""


class ShapeError(XpnetError, ValueError):
    """Array shapes do not fit together; the message names both shapes and the layer."""


class DTypeError(XpnetError, TypeError):
    """A dtype is unsupported, mixed, or not available on the device (e.g. float64 on a float32-only device)."""


class NamespaceMismatchError(XpnetError, TypeError):
    """Arrays from two array libraries (say NumPy and PyTorch) were mixed in one call."""


class DeviceMismatchError(XpnetError, ValueError):
    """Arrays on two devices were mixed in one call; xpnet never copies between devices silently."""


class InputTypeError(XpnetError, TypeError):
    """An argument is not an array (or not of an accepted type)."""


class InvalidValueError(XpnetError, ValueError):
    """The data holds values xpnet cannot compute with: NaN or infinity in ``X``, ``Y`` or ``y`` (the message
    names the argument, counts the bad values and gives the first one's position and value), or, in the
    scikit-learn estimators, complex numbers (scikit-learn's convention makes those a ``ValueError``).

    Checked once per public call where user data enters, never inside the training loop."""


class ConfigError(XpnetError, ValueError):
    """A hyper-parameter or name is invalid: unknown activation, loss or initializer (the valid ones are
    listed), a non-positive learning rate, a bad seed, ..."""


class LabelError(XpnetError, ValueError):
    """Labels cannot be used with the requested loss (class index out of range, wrong shape)."""


class GradientCheckError(XpnetError, RuntimeError):
    """Raised by :func:`xpnet.gradcheck.gradient_check` with ``raise_on_failure=True`` when the analytic and
    numerical gradients disagree."""


class DatasetError(XpnetError, ValueError):
    """A dataset cannot be loaded: unknown name (the valid ones are listed), missing or unreadable file,
    non-numeric features, a label column that does not exist."""


class ModelFileError(XpnetError, ValueError):
    """A model file cannot be read or written: missing, truncated, corrupt, not an xpnet file, written by a
    newer xpnet, or holding tensors that do not fit the architecture it declares."""



class DivergenceError(XpnetError, RuntimeError):
    """Training produced a NaN or infinite loss, or a finite one that ran away (more than 1e6 times the run's
    first epoch loss, see :data:`xpnet.engine.divergence.RUNAWAY_FACTOR`). The message names the epoch and step and
    suggests a lower learning rate; the network keeps the last parameters whose loss was finite."""


class DeviceMemoryError(XpnetError, MemoryError):
    """The device ran out of memory: CuPy's or PyTorch's out-of-memory error, JAX's RESOURCE_EXHAUSTED or
    NumPy's ``MemoryError``, translated (the original is the ``__cause__``). The message gives the batch size
    that was tried and a smaller one to try."""

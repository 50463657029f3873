"""The device layer: the backend selector (:mod:`~xpnet.device.backend`), the glue to array libraries
(:mod:`~xpnet.device.xp`: namespaces, devices, dtypes, host transfer, out-of-memory translation) and xpnet's
seeded generator (:mod:`~xpnet.device.random`). Nothing here knows about neural networks."""

from __future__ import annotations

from .backend import (
    Backend,
    backend_of,
    backends_report,
    clear_backend_cache,
    format_backends_report,
    get_backend,
    use_backend,
)
from .xp import to_numpy

__all__ = ["Backend", "backend_of", "backends_report", "clear_backend_cache", "format_backends_report",
           "get_backend", "to_numpy", "use_backend"]

"""xpnet's own seeded randomness (DESIGN principle 5).

Random numbers are drawn on the host from NumPy's ``Generator(Philox)`` and moved to the device once, so
the same seed gives bit-identical values on every backend and device: the bits are fixed before any
backend sees them, and casting float64 -> float32 happens here, on the host, with NumPy's rounding.

Each purpose (initial weights, shuffling, dropout, ...) gets its own stream derived from the seed, so
adding, say, dropout to a model does not change its initial weights.
"""

from __future__ import annotations

import numbers
import zlib
from typing import Any

from ..errors import ConfigError

__all__ = ["check_seed", "host_generator", "normal"]


def check_seed(seed: Any) -> int | None:
    """Validate a seed: a non-negative int, or ``None`` for fresh OS entropy (not reproducible)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def host_generator(seed: int | None, stream: str) -> Any:
    """A ``numpy.random.Generator(Philox)`` for ``(seed, stream)``.

    The stream name is hashed (CRC32, stable across runs and platforms) into the seed sequence, so
    streams are independent of each other and of their order of use.
    """
    import numpy as np

    seed = check_seed(seed)
    entropy = None if seed is None else [seed, zlib.crc32(stream.encode())]
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(entropy)))


def normal(rng: Any, shape: tuple[int, ...], scale: float, dtype_name: str) -> Any:
    """``scale * N(0, 1)`` of ``shape`` as a host NumPy array of ``dtype_name``.

    Drawn and scaled in float64, then rounded once to ``dtype_name`` on the host, so the values are
    bit-identical whichever backend they are moved to.
    """
    import numpy as np

    return (rng.standard_normal(shape) * float(scale)).astype(np.dtype(dtype_name), copy=False)

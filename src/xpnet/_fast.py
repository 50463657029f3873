"""Optional fast paths (DESIGN principle 8): work in progress."""

from __future__ import annotations

from typing import Any


def inplace_step(network: Any, optimizer: Any, lambd: float, keep: Any) -> Any:
    """The in-place training step for this network and optimizer, or None where none applies."""
    return None

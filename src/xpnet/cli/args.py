"""The option types and choices of the ``xpnet`` command's arguments (argparse ``type=`` functions)."""

from __future__ import annotations

import argparse
import math
from typing import Any

_ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")
# No "sgd": scikit-learn's name means descent with momentum; here each name says which.
_OPTIMIZERS = ("adam", "momentum", "rmsprop", "gd")
_SCHEDULES = ("constant", "inverse_time", "step", "exponential", "cosine")


def _layers(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid layer list {text!r}: expected comma-separated positive integers, e.g. 64,32") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"invalid layer list {text!r}: every layer needs at least 1 unit")
    return sizes


def _number(low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = True,
            kind: type = float) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") \
                from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if below or above:
            lo = "(" if low_open else "["
            hi = ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"{text} is outside {lo}{low:g}, {high:g}{hi}")
        return value

    return parse


_SEED = _number(0, 2**32 - 1, high_open=False, kind=int)


def _batch_size(text: str) -> int | str:
    if text.strip().lower() in ("full", "auto"):
        return text.strip().lower()
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer, 'full' or 'auto'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"batch size must be at least 1, got {value}")
    return value

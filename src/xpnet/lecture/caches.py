"""The records the forward building blocks keep for the backward ones, and the checks that they belong together.

A cache is still the tuple the lecture describes, unpacked exactly as before (``A_prev, W, b = linear_cache``;
``linear_cache, Z = cache``), but it also remembers what made it: the layer, the activation and the forward
pass (a token shared by the caches of one :func:`~xpnet.functional.model_forward` call, which also keeps that
call's output). :func:`check_backward_pieces` then refuses, with both sides named, what used to give silently
wrong gradients: another ``hidden=``/``output=`` than the forward's, caches of two forward passes, or an ``AL``
that is not the output of the forward pass that made the caches (the caches of another network).
"""

from __future__ import annotations

from typing import Any

from ..device import xp as _xp
from ..errors import ConfigError, ShapeError


class LinearCache(tuple):
    """``(A_prev, W, b)`` of one layer, remembering the layer number (None outside a network)."""

    layer: int | None

    def __new__(cls, items: tuple, *, layer: int | None = None) -> LinearCache:
        self = super().__new__(cls, items)
        self.layer = layer
        return self

    def __getnewargs_ex__(self) -> tuple[tuple, dict[str, Any]]:  # copy and pickle keep the record
        return (tuple(self),), {"layer": self.layer}


class LayerCache(tuple):
    """``(linear_cache, Z)`` of one layer, remembering the activation that made ``A = g(Z)``, the layer, and the
    forward pass it belongs to (``forward``: None for a single :func:`linear_activation_forward`)."""

    activation: str
    layer: int | None
    forward: ForwardPass | None

    def __new__(cls, items: tuple, *, activation: str, layer: int | None = None,
                forward: ForwardPass | None = None) -> LayerCache:
        self = super().__new__(cls, items)
        self.activation, self.layer, self.forward = activation, layer, forward
        return self

    def __getnewargs_ex__(self) -> tuple[tuple, dict[str, Any]]:
        return (tuple(self),), {"activation": self.activation, "layer": self.layer, "forward": self.forward}


class ForwardPass:
    """One :func:`~xpnet.functional.model_forward` call: its number of layers, activations and output ``AL``."""

    def __init__(self, n_layers: int, hidden: str, output: str) -> None:
        self.n_layers, self.hidden, self.output = n_layers, hidden, output
        self.AL: Any = None


def check_backward_pieces(AL: Any, caches: Any, hidden: str, output: str) -> None:
    """Refuse caches, activations and ``AL`` that do not come from one forward pass.

    Caches built by hand (plain tuples, as a learner may) carry no record and are checked for their shape only
    (by the backward functions). Raises :class:`~xpnet.errors.ConfigError` naming both sides.
    """
    L = len(caches)
    records = [c for c in caches if isinstance(c, LayerCache)]
    if not records:
        return
    passes = {id(c.forward) for c in records}
    if len(passes) > 1 or len(records) != L:
        raise ConfigError("the caches come from different forward passes (model_forward calls); pass the list one "
                          "model_forward call returned")
    forward = records[0].forward
    if forward is not None and forward.n_layers != L:
        raise ConfigError(f"caches holds {L} layers but the forward pass that made them had {forward.n_layers}: pass "
                          "the whole list model_forward returned")
    for l, cache in enumerate(caches, start=1):
        used = output if l == L else hidden
        role = "output" if l == L else "hidden"
        if cache.activation != used:
            raise ConfigError(f"layer {l}'s cache was made with {role}={cache.activation!r} (forward) but the "
                              f"backward pass was given {role}={used!r}: pass the same {role}= to model_forward and "
                              "model_backward")
        if cache.layer is not None and cache.layer != l:
            raise ConfigError(f"caches[{l - 1}] is the cache of layer {cache.layer}, not of layer {l}: pass the caches "
                              "in the order model_forward returned them")
    forward = records[0].forward
    if forward is not None:
        _check_output(AL, forward.AL)


def check_cache_activation(cache: Any, activation: str, layer: int | None) -> None:
    """:func:`~xpnet.functional.linear_activation_backward` with another activation than the cache was made with
    differentiates the wrong function: refused, naming both."""
    if isinstance(cache, LayerCache) and cache.activation != activation:
        where = "the cache" if layer is None else f"layer {layer}'s cache"
        raise ConfigError(f"{where} was made with activation {cache.activation!r} (linear_activation_forward) but "
                          f"the backward step was given {activation!r}: pass the same activation to both")


def check_loss_fits(loss: Any, AL: Any) -> None:
    """Categorical cross-entropy (also spelled ``cross_entropy``) over one output unit is not the binary one: say
    so rather than compute ``-(1/m) sum(Y log AL)``, which ignores every 0 label."""
    shape = tuple(getattr(AL, "shape", ()))
    if loss.name == "categorical_cross_entropy" and len(shape) == 2 and shape[0] == 1:
        raise ConfigError("loss is categorical cross-entropy ('cross_entropy' means that), but AL has 1 row: for a "
                          "1-unit sigmoid output use loss='binary_cross_entropy' (or leave loss=None)")


def _check_output(AL: Any, made: Any) -> None:
    """``AL`` must be the forward pass's output (or equal to it within rounding: a copy, a clipped copy)."""
    if made is None or AL is made:
        return
    if tuple(AL.shape) != tuple(made.shape):
        raise ShapeError(f"AL has shape {tuple(AL.shape)} but the forward pass that made the caches output "
                         f"{tuple(made.shape)}: pass the AL and caches of one model_forward call")
    xp = _xp.namespace_of(AL, made)
    # One read-back: AL of another network (or another X) differs far beyond the clipping a learner may apply.
    # Equal values (inf too) and NaN where the forward pass made NaN are the same output: a copy of a diverged
    # network's AL is reported by the checks that follow (NaN in AL), not as the caches of another network.
    same = (AL == made) | (xp.abs(AL - made) <= 1e-6 + 1e-6 * xp.abs(made)) | (xp.isnan(AL) & xp.isnan(made))
    if not bool(xp.all(same)):
        raise ConfigError("AL is not the output of the forward pass that made these caches (the caches of another "
                          "network, or of another X?): pass the AL and caches of one model_forward call")

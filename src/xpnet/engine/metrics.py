"""The training metric: accuracy for classifiers, R^2 for regression, summed on the device per batch and
finished on the host once per epoch (DESIGN principle 4)."""

from __future__ import annotations

from typing import Any

__all__ = ["finish_metric", "metric_name", "metric_terms", "target_spread"]


def metric_name(output: str) -> str:
    """``"r2"`` for a linear output, ``"accuracy"`` otherwise."""
    return "r2" if output == "linear" else "accuracy"


def metric_terms(xp: Any, output: str, AL: Any, Y: Any, labels: Any = None) -> Any:
    """A batch's numerators of the metric, a 1-D device array: the count of correct examples (one entry; a
    sigmoid output is correct when every unit is on the label's side of 0.5, a softmax output when its argmax
    is the label's, ``argmax(Y, axis=0)``, or ``labels`` (``(b,)``) when the batch source computed them once per
    run) or, for a linear output, the squared error of each output (``n_L`` entries). ``AL`` and ``Y`` are
    ``(n_L, b)``."""
    if output == "sigmoid":
        correct = xp.all((AL > 0.5) == (Y > 0.5), axis=0)
    elif output == "softmax":
        correct = xp.argmax(AL, axis=0) == (xp.argmax(Y, axis=0) if labels is None else labels)
    else:
        D = AL - Y
        return xp.sum(D * D, axis=1)
    return xp.reshape(xp.sum(xp.astype(correct, AL.dtype)), (1,))


def target_spread(xp: Any, Y: Any) -> Any:
    """``sum_j (Y[i, j] - mean_j Y[i, :])^2`` per output ``i``, the denominator of R^2, ``(n_L,)``."""
    return xp.sum((Y - xp.mean(Y, axis=1, keepdims=True)) ** 2, axis=1)


def finish_metric(output: str, numerators: Any, m: int, spread: Any = None) -> float:
    """Accuracy ``correct / m``, or R^2 ``1 - SSE_i / spread_i`` averaged uniformly over the outputs
    (scikit-learn's ``r2_score`` default; an output with constant targets scores 1 when predicted exactly, else
    0). ``numerators`` and ``spread`` are host arrays."""
    if output != "linear":
        return float(numerators[0]) / m
    scores = [(1.0 - sse / tot) if tot > 0 else (1.0 if sse == 0 else 0.0)
              for sse, tot in zip(numerators.tolist(), spread.tolist(), strict=True)]
    return sum(scores) / len(scores)

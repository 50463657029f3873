"""The pictures a learner expects, drawn with matplotlib (the ``[plot]`` extra).

* :func:`plot_costs`: the cost curve of a run (the course's ``costs``, 0-d arrays of any backend, or floats);
* :func:`plot_decision_boundary`: the regions a 2-D classifier assigns to each class, with the data on top
  (the planar flower, moons, circles);
* :func:`plot_history`: the train and validation curves of a :class:`~xpnet.engine.History` (loss and metric
  per epoch).

Each returns the matplotlib ``Axes`` (or ``Figure``) it drew on, so a notebook shows it; ``path=`` also writes
the picture (PNG, SVG or PDF by the suffix) through xpnet's safe writer: atomic, never over a special file.
matplotlib is imported on first use, not with xpnet.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .device import xp as _xp
from .errors import ConfigError, InputTypeError, ShapeError

__all__ = ["plot_costs", "plot_decision_boundary", "plot_history", "save_figure"]

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is in the test extra
        raise ConfigError("pictures need matplotlib: pip install 'xpnet[plot]'") from exc
    return plt


def _numbers(values: Any, what: str) -> list[float]:
    """Costs of any backend (0-d arrays, NumPy scalars, floats) as Python floats (``nan`` for ``None``)."""
    if _xp.is_array(values):
        values = list(_xp.to_numpy(values).reshape(-1))
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InputTypeError(f"{what} must be a list of numbers (the course's costs), got {type(values).__name__}")
    out = []
    for i, v in enumerate(values):
        try:
            if v is None:
                out.append(float("nan"))
            elif _xp.is_array(v):
                out.append(float(_xp.to_numpy(v).reshape(())))
            else:
                out.append(float(v))
        except (TypeError, ValueError):  # a string, a list, an array of more than one value
            raise InputTypeError(f"{what}[{i}] is {v!r}, not a number: {what} must be a list of numbers (the "
                                 "course's costs)") from None
    return out


def save_figure(figure: Any, path: str | os.PathLike[str], *, dpi: int = 100) -> None:
    """Write ``figure`` to ``path`` (``.png``, ``.svg`` or ``.pdf``) through xpnet's safe writer: rendered in
    memory, then written atomically; a destination that is a directory or a special file is refused with a
    :class:`~xpnet.errors.ConfigError`."""
    from .files.atomic import check_destination, write_file_atomically

    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in _FORMATS:
        raise ConfigError(f"cannot tell the picture format of {os.fspath(path)!r}: end the name with "
                          f"{', '.join(_FORMATS)}")

    def failed(where: Any, reason: str) -> ConfigError:
        return ConfigError(f"cannot write the picture {str(where)!r}: {reason}")

    check_destination(path, what="the picture", error=failed)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=_FORMATS[suffix], dpi=dpi)
    write_file_atomically(path, buffer.getvalue(), error=failed)


def _axes(ax: Any) -> Any:
    return ax if ax is not None else _pyplot().subplots(figsize=(5.0, 4.0))[1]


def _finish(ax: Any, path: Any) -> Any:
    if path is not None:
        save_figure(ax.figure, path)
    return ax


def plot_costs(costs: Any, learning_rate: float | None = None, *, every: int = 100, ax: Any = None,
               path: str | os.PathLike[str] | None = None) -> Any:
    """The cost curve of a run: ``costs[k]`` (recorded every ``every`` iterations, as the course's models do)
    against ``k``. ``costs`` may be the list a course model returns (0-d arrays of any backend), floats, or
    a :class:`~xpnet.engine.History` (its per-epoch ``loss``). The title shows ``learning_rate`` when given.
    Returns the ``Axes``."""
    if hasattr(costs, "columns") and "loss" in getattr(costs, "columns", {}):
        values, xlabel = _numbers(costs["loss"], "history['loss']"), "epoch"
    else:
        values = _numbers(costs, "costs")
        xlabel = "iterations (per hundreds)" if every == 100 else f"iterations (per {every})"
    if not values:  # an empty figure would pass for a plot of a run
        raise ConfigError("plot_costs got no costs to plot (an empty list or history): train first, or pass the "
                          "costs the training returned")
    ax = _axes(ax)
    ax.plot(values)
    ax.set_ylabel("cost")
    ax.set_xlabel(xlabel)
    if learning_rate is not None:
        ax.set_title(f"Learning rate = {learning_rate}")
    return _finish(ax, path)


def _as_columns(X: Any, what: str = "X") -> Any:
    """Two-feature data as a NumPy ``(2, m)`` array: the lecture's layout ``(2, m)`` as is, rows ``(m, 2)``
    transposed (a ``(2, 2)`` array is taken in the lecture's layout)."""
    import numpy as np

    data = np.asarray(_xp.to_numpy(X) if _xp.is_array(X) else X, dtype=np.float64)
    if data.ndim == 2 and data.shape[0] == 2:
        return data
    if data.ndim == 2 and data.shape[1] == 2:
        return data.T
    raise ShapeError(f"{what} has shape {data.shape}; a decision boundary is drawn for two features: "
                     "(2, m) in the lecture's layout or (m, 2) rows")


def _predictor(model: Any) -> Callable[[Any], Any]:
    """``model`` as a function of NumPy rows ``(k, 2)`` returning ``k`` labels."""
    from .lecture import functional as F

    if isinstance(model, Mapping):  # the course's parameters: relu hidden layers, a sigmoid output
        W1 = model["W1"]

        def from_parameters(rows: Any) -> Any:
            from .device.backend import backend_of

            grid = backend_of(W1).asarray(rows.T, dtype=W1.dtype) if _xp.is_array(W1) else rows.T
            return F.predict(grid, model)

        return from_parameters
    if hasattr(model, "predict") and hasattr(model, "layer_dims") and hasattr(model, "get_parameters"):
        return lambda rows: model.predict(rows.T)  # xpnet.DNN takes the lecture's layout
    if hasattr(model, "predict"):
        return model.predict  # scikit-learn estimators and xpnet's take rows
    if callable(model):
        return model  # the course's lambda x: predict_dec(parameters, x.T)
    raise InputTypeError(f"model must be a fitted estimator, an xpnet.DNN, the course's parameters dict or a "
                         f"function of (k, 2) rows, got {type(model).__name__}")


def plot_decision_boundary(model: Any, X: Any, y: Any, *, steps: int = 200, padding: float = 1.0, ax: Any = None,
                           path: str | os.PathLike[str] | None = None) -> Any:
    """The decision regions of a 2-D classifier with the data on top.

    A ``steps x steps`` grid spanning the data plus ``padding`` on each side is classified by ``model`` and
    filled by class; the points of ``X`` are drawn coloured by ``y``. ``model``: a fitted estimator (rows),
    an :class:`xpnet.DNN`, the course's ``parameters`` dict (relu hidden layers, sigmoid output) or a function
    of ``(k, 2)`` rows, as the course's ``lambda x: predict_dec(parameters, x.T)``. ``X``: ``(2, m)`` (the
    lecture's layout) or ``(m, 2)``; ``y``: ``m`` labels of any shape. Returns the ``Axes``."""
    import numpy as np

    cols = _as_columns(X)
    labels = np.asarray(_xp.to_numpy(y) if _xp.is_array(y) else y).reshape(-1)
    if labels.shape[0] != cols.shape[1]:
        raise ShapeError(f"y has {labels.shape[0]} labels but X has {cols.shape[1]} examples")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ConfigError(f"steps must be an integer >= 2 (grid points per axis), got {steps!r}")
    (x_min, y_min), (x_max, y_max) = cols.min(axis=1) - padding, cols.max(axis=1) + padding
    xx, yy = np.meshgrid(np.linspace(x_min, x_max, steps), np.linspace(y_min, y_max, steps))
    rows = np.c_[xx.ravel(), yy.ravel()]
    predicted = _predictor(model)(rows)
    Z = np.asarray(_xp.to_numpy(predicted) if _xp.is_array(predicted) else predicted)
    if Z.size != rows.shape[0]:
        raise ShapeError(f"the model returned {Z.size} predictions for {rows.shape[0]} grid points: it must "
                         "return one label per row")
    ax = _axes(ax)
    plt = _pyplot()
    ax.contourf(xx, yy, Z.reshape(xx.shape).astype(np.float64), cmap=plt.cm.Spectral, alpha=0.8)
    ax.scatter(cols[0], cols[1], c=labels, cmap=plt.cm.Spectral, s=20, edgecolors="k", linewidths=0.3)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    return _finish(ax, path)


def plot_history(history: Any, *, path: str | os.PathLike[str] | None = None) -> Any:
    """Train and validation curves per epoch: the loss on the left, the metric (accuracy or R^2) on the
    right, validation drawn where the run had a validation set. ``history``: a
    :class:`~xpnet.engine.History` (``DNN.fit``/``train`` return one; estimators keep it as ``history_``)
    or a mapping with ``loss`` (and optionally ``val_loss``, ``metric``, ``val_metric``) lists. Returns the
    ``Figure``."""
    if hasattr(history, "history_") and not isinstance(history, Mapping):
        history = history.history_
    columns = getattr(history, "columns", history)
    if not isinstance(columns, Mapping) or "loss" not in columns:
        raise InputTypeError(f"history must be an xpnet History or a mapping with a 'loss' list, got "
                             f"{type(history).__name__}")
    metric_name = getattr(history, "metric_name", "metric")
    panels = [("loss", "loss")]
    if any(v is not None for v in columns.get("metric", [])):
        panels.append(("metric", metric_name))
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 4.0), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        train = _numbers(columns[key], key)
        epochs = list(range(1, len(train) + 1))
        ax.plot(epochs, train, label="train")
        validation = columns.get(f"val_{key}") or []
        if any(v is not None for v in validation):
            ax.plot(epochs, _numbers(validation, f"val_{key}"), label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    figure.tight_layout()
    if path is not None:
        save_figure(figure, path)
    return figure

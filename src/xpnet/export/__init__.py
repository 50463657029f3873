"""ONNX export: :func:`to_onnx` (also ``xpnet.to_onnx`` and ``xpnet export MODEL OUT.onnx``) and
:func:`register_skl2onnx`, which lets ``skl2onnx.to_onnx`` convert scikit-learn pipelines holding xpnet
estimators.

The graphs are traced from the forward code ``predict`` runs (see :mod:`xpnet.export.graph`); they need the
optional packages of ``pip install "xpnet[onnx]"`` (ndonnx, onnx, onnxruntime, skl2onnx).
"""

from __future__ import annotations

import os
from typing import Any

from .graph import describe, onnx_graph

__all__ = ["register_skl2onnx", "to_onnx"]


def to_onnx(model: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """An ONNX model (``onnx.ModelProto``) that predicts as ``model`` does; written to ``path`` too when given.

    Parameters
    ----------
    model : a fitted :class:`~xpnet.DNNClassifier` or :class:`~xpnet.DNNRegressor`, an :class:`~xpnet.DNN`, or
        the path of a model file (``xpnet.save``, ``xpnet train --out``)
    path : where to write the ``.onnx`` file (through xpnet's safe writer: atomic, never over a special file),
        or None

    Returns
    -------
    onnx.ModelProto with one input ``X`` of shape ``(N, n_features)`` in the model's dtype (``N``, the batch,
    is symbolic) and the outputs

    * classifiers: ``label`` (N,), values of ``classes_`` (``predict``), and ``probabilities``
      (N, n_classes) (``predict_proba``);
    * regressors: ``predictions``, (N,) for one target, else (N, n_targets) (``predict``);
    * ``DNN``: ``label`` and ``probabilities`` for a sigmoid or softmax output, ``predictions`` for a linear
      one: the transposes of ``DNN.predict`` and ``DNN.predict_proba`` (the ONNX graph takes rows as samples).

    The estimators' standardization and the regressor's target rescaling are part of the graph. Raises
    :class:`~xpnet.errors.BackendUnavailableError` without ndonnx, ``NotFittedError`` for an estimator not
    fitted, :class:`~xpnet.errors.InputTypeError` for an object that is not an xpnet model and
    :class:`~xpnet.errors.ConfigError` for an output xpnet cannot export.
    """
    if path is not None:
        from ..files import check_destination

        check_destination(path, inputs=[model] if isinstance(model, (str, os.PathLike)) else (),
                          what="the ONNX model")
    proto = onnx_graph(describe(model))
    if path is not None:
        from ..files import write_file_atomically

        write_file_atomically(path, proto.SerializeToString())
    return proto


def register_skl2onnx() -> None:
    """Register converters for :class:`~xpnet.DNNClassifier` and :class:`~xpnet.DNNRegressor` with skl2onnx, so
    that ``skl2onnx.to_onnx(pipeline, X[:1])`` converts pipelines that hold them (e.g. ``StandardScaler`` then
    ``DNNClassifier``). Calling it again is harmless.

    Classifiers give ``label`` and ``probabilities`` as other skl2onnx classifiers (with skl2onnx's ZipMap unless
    ``options={id(clf): {"zipmap": False}}``); regressors give ``variable`` (N, n_targets). The graphs need ONNX
    opset 21 or later (skl2onnx's default target)."""
    from .skl2onnx_converters import register

    register()


"""ONNX graphs of xpnet models, traced from the same Array API forward code that ``predict`` runs.

The model's forward pass (:func:`xpnet.lecture.network.forward_output`, the function behind ``DNN.predict``
and the estimators' ``predict``) is called once with ``ndonnx`` arrays: a graph input ``X`` of shape
``(N, n_x)`` with a symbolic batch dimension ``N``, and the parameters as constants. ndonnx records every Array
API call as ONNX operators, so the graph is the network's math itself, not a re-implementation. What the
estimators do around the network is traced the same way, in the same order and dtype as ``predict``:

* the standardization ``(X - mean) / scale`` (``standardize=True``),
* the regressor's target rescaling ``AL * y_scale + y_mean``,
* the classifier's labels: ``AL > 0.5`` (two classes) or the argmax (more), taken from ``classes_``.

ONNX has no way to raise an error, so the graph does not refuse NaN or infinity in ``X`` as ``predict`` does.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._version import __version__
from ..device import xp as _xp
from ..dnn import DNN
from ..errors import BackendUnavailableError, ConfigError, InputTypeError
from ..estimators import DNNClassifier, DNNRegressor
from ..estimators.checks import _check_fitted
from ..lecture.activations import Activation
from ..lecture.functional import labels_from_output
from ..lecture.network import forward_output

__all__ = ["ExportedModel", "describe", "onnx_graph"]

INSTALL = 'pip install "xpnet[onnx]"'


def require_ndonnx() -> Any:
    """The ``ndonnx`` module, or a :class:`~xpnet.errors.BackendUnavailableError` saying how to install it."""
    try:
        import ndonnx
        import onnx  # noqa: F401  (ndonnx builds onnx.ModelProto objects)
    except ImportError as exc:
        raise BackendUnavailableError(f"ONNX export needs ndonnx and onnx, which are not installed ({exc}): "
                                      f"{INSTALL}") from None
    return ndonnx


@dataclass(frozen=True)
class ExportedModel:
    """What an ONNX graph of a model needs, as host (NumPy) arrays.

    kind : ``"DNN"``, ``"DNNClassifier"`` or ``"DNNRegressor"``
    parameters : ``W1 (n_1, n_x), b1 (n_1, 1), ..., WL, bL`` in ``dtype``
    hidden, output : the activations
    dtype : ``"float32"`` or ``"float64"``, the dtype the model computes in (and the graph's input dtype)
    mean, scale : ``(n_x,)`` standardization, or None
    y_mean, y_scale : ``(n_targets,)`` target rescaling of a regressor, or None
    classes : a classifier's ``classes_``, or None
    """

    kind: str
    parameters: dict[str, np.ndarray]
    hidden: Activation
    output: Activation
    dtype: str
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    y_mean: np.ndarray | None = None
    y_scale: np.ndarray | None = None
    classes: np.ndarray | None = None

    @property
    def layer_dims(self) -> list[int]:
        """``[n_x, n_1, ..., n_L]`` from the weights' shapes (``W{l}`` is ``(n_l, n_{l-1})``)."""
        L = sum(1 for k in self.parameters if k.startswith("W"))
        return [int(self.parameters["W1"].shape[1])] + [int(self.parameters[f"W{l}"].shape[0])
                                                         for l in range(1, L + 1)]


def describe(model: Any) -> ExportedModel:
    """The :class:`ExportedModel` of a :class:`~xpnet.DNN`, a fitted :class:`~xpnet.DNNClassifier` or
    :class:`~xpnet.DNNRegressor`, or a model file's path (loaded on NumPy, fully validated by :func:`xpnet.load`).

    Raises :class:`~xpnet.errors.InputTypeError` for anything else, ``NotFittedError`` for an estimator not
    fitted, and :class:`~xpnet.errors.ConfigError` for a model whose output xpnet cannot export."""
    if isinstance(model, (str, os.PathLike)):
        from ..files import load

        loaded = load(model, backend="numpy")
        if not isinstance(loaded, (DNN, DNNClassifier, DNNRegressor)):
            raise InputTypeError(f"'{os.fspath(model)}' holds a {type(loaded).__name__}, not a model: ONNX export "
                                 "takes a file written by xpnet.save or 'xpnet train --out' (a DNN, DNNClassifier "
                                 "or DNNRegressor)")
        model = loaded
    if isinstance(model, DNN):
        net, kind = model, "DNN"
    elif isinstance(model, (DNNClassifier, DNNRegressor)):
        _check_fitted(model, "be exported to ONNX")
        net, kind = model.network_, ("DNNClassifier" if isinstance(model, DNNClassifier) else "DNNRegressor")
    else:
        raise InputTypeError(f"cannot export a {type(model).__module__}.{type(model).__qualname__} to ONNX: pass an "
                             "xpnet.DNN, a fitted xpnet.DNNClassifier or DNNRegressor, or the path of a model file")
    dtype = _xp.dtype_name(net.backend.xp, net.dtype)
    params = {k: np.asarray(v, dtype=dtype) for k, v in net.get_parameters().items()}
    fields: dict[str, Any] = {}
    if kind != "DNN":
        if model.mean_ is not None:
            fields.update(mean=np.asarray(model.mean_, dtype=dtype), scale=np.asarray(model.scale_, dtype=dtype))
        _check_estimator_output(model, kind, net)
        if kind == "DNNClassifier":
            fields["classes"] = np.asarray(model.classes_)
        elif getattr(model, "y_mean_", None) is not None:
            fields.update(y_mean=np.asarray(model.y_mean_, dtype=dtype), y_scale=np.asarray(model.y_scale_,
                                                                                             dtype=dtype))
    return ExportedModel(kind, params, net.hidden, net.output, dtype, **fields)


def _check_estimator_output(model: Any, kind: str, net: DNN) -> None:
    """The outputs xpnet knows how to export: a classifier's one sigmoid unit (2 classes) or softmax (one unit per
    class), a regressor's linear output. Anything else (a kind added later) is refused rather than exported
    wrong."""
    out, n_out = net.output.name, net.layer_dims[-1]
    if kind == "DNNClassifier":
        n_classes = len(model.classes_)
        known = (out == "sigmoid" and n_out == 1 and n_classes == 2) or (out == "softmax" and n_out == n_classes)
        if getattr(model, "multilabel_", False) or np.asarray(model.classes_).ndim != 1 or not known:
            raise ConfigError(f"this DNNClassifier ({n_classes} classes, output {out!r} with {n_out} units) is not "
                              "a single-label classifier, the kind xpnet can export to ONNX: export its network "
                              "alone with xpnet.to_onnx(model.network_), which gives the output activations")
    elif out != "linear":
        raise ConfigError(f"this DNNRegressor's output is {out!r}; xpnet exports regressors with a linear output "
                          "only: export its network alone with xpnet.to_onnx(model.network_)")


def _label_values(classes: np.ndarray, *, for_skl2onnx: bool) -> np.ndarray:
    """``classes_`` as the values the graph's ``label`` output holds: integers as int64, text as strings, bool
    (int64 for skl2onnx, whose labels are int64 or strings) and floats as they are."""
    kind = classes.dtype.kind
    if kind in "iu":
        return classes.astype(np.int64)
    if kind in "USO":
        if kind == "O" and all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes):
            return classes.astype(np.int64)
        return classes.astype(str)
    if kind == "b":
        return classes.astype(np.int64) if for_skl2onnx else classes
    if for_skl2onnx:
        raise ConfigError(f"skl2onnx's classifier labels are integers or strings, but this classifier's classes are "
                          f"{classes.dtype} ({classes.tolist()[:5]}); fit it on integer or string labels (e.g. "
                          "sklearn.preprocessing.LabelEncoder), or export it alone with xpnet.to_onnx")
    return classes


def output_names(m: ExportedModel) -> list[str]:
    """The graph's outputs, in order: ``label, probabilities`` (classifiers, and DNNs with a sigmoid or softmax
    output) or ``predictions``."""
    if m.kind == "DNNClassifier" or (m.kind == "DNN" and m.output.name in ("sigmoid", "softmax")):
        return ["label", "probabilities"]
    return ["predictions"]


@contextlib.contextmanager
def _light_value_propagation() -> Iterator[None]:
    """Trace with onnx's reference evaluator for the values spox (ndonnx's graph builder) computes on the way
    (shapes: ndonnx's matrix product needs them for a symbolic batch). ndonnx sets onnxruntime for that, one new
    session per operator, which makes a small network's export take about 5 s instead of 0.4 s here. The values
    are the same and the graph too; the setting is spox's global, restored on the way out, also after an error."""
    try:
        import spox._value_prop as value_prop

        previous = value_prop._VALUE_PROP_BACKEND
        value_prop._VALUE_PROP_BACKEND = value_prop.ValuePropBackend.REFERENCE
    except (ImportError, AttributeError):  # another spox: trace as it does by default (slower, same graph)
        yield
        return
    try:
        yield
    finally:
        value_prop._VALUE_PROP_BACKEND = previous


def onnx_graph(m: ExportedModel, *, input_dtype: str | None = None, for_skl2onnx: bool = False) -> Any:
    """Trace ``m``'s prediction into an ``onnx.ModelProto`` with ndonnx (see :func:`_trace`)."""
    require_ndonnx()
    with _light_value_propagation():
        return _trace(m, input_dtype=input_dtype, for_skl2onnx=for_skl2onnx)


def _trace(m: ExportedModel, *, input_dtype: str | None, for_skl2onnx: bool) -> Any:
    """Trace ``m``'s prediction into an ``onnx.ModelProto`` with ndonnx.

    Input ``X``: ``(N, n_x)`` in ``input_dtype`` (default: the model's dtype; another float dtype is cast to the
    model's, and float outputs back to it). Outputs (see :func:`output_names`):

    * ``DNN``: ``probabilities`` ``AL^T`` (N, n_L) and ``label``, the transpose of ``DNN.predict``'s ((N, n_L) for
      sigmoid, (N, 1) for softmax), or ``predictions`` ``AL^T`` (N, n_L) for other outputs. Rows are samples,
      the transpose of the lecture's layout that ``DNN.predict`` takes.
    * ``DNNClassifier``: ``label`` (N,) from ``classes_`` and ``probabilities`` (N, n_classes), as ``predict``
      and ``predict_proba``.
    * ``DNNRegressor``: ``predictions``, (N,) for one target as ``predict`` (``for_skl2onnx``: (N, 1), the
      shape skl2onnx gives regressors), else (N, n_targets).
    """
    ndx = require_ndonnx()
    dtype = m.dtype
    X = ndx.argument(shape=("N", m.layer_dims[0]), dtype=getattr(ndx, input_dtype or dtype))
    xp = _xp.namespace_of(X)  # array_api_compat recognises ndonnx arrays: the namespace is ndonnx itself

    def const(a: np.ndarray) -> Any:
        return xp.asarray(np.ascontiguousarray(a))

    A = X if (input_dtype or dtype) == dtype else xp.astype(X, getattr(ndx, dtype))
    parameters = {k: const(v) for k, v in m.parameters.items()}
    XT = xp.permute_dims(A, (1, 0))  # the lecture's (n_x, N), as the estimators' X.T
    if m.mean is not None:
        XT = (XT - const(m.mean.reshape(-1, 1))) / const(m.scale.reshape(-1, 1))
    _, AL = forward_output(xp, parameters, XT, m.hidden, m.output)
    out = xp.permute_dims(AL, (1, 0))  # (N, n_L)

    def as_input_dtype(a: Any) -> Any:
        return a if input_dtype in (None, dtype) else xp.astype(a, getattr(ndx, input_dtype))

    outputs: dict[str, Any] = {}
    if m.kind == "DNN":
        if m.output.name in ("sigmoid", "softmax"):
            outputs["label"] = xp.permute_dims(labels_from_output(AL, m.output), (1, 0))
            outputs["probabilities"] = as_input_dtype(out)
        else:
            outputs["predictions"] = as_input_dtype(out)
    elif m.kind == "DNNClassifier":
        assert m.classes is not None
        if len(m.classes) == 2:  # predict: AL > 0.5; predict_proba: [1 - AL, AL]
            index, proba = xp.reshape(out > 0.5, (-1,)), xp.concat([1.0 - out, out], axis=1)
        else:
            index, proba = xp.argmax(out, axis=1), out
        labels = xp.asarray(_label_values(m.classes, for_skl2onnx=for_skl2onnx))
        outputs["label"] = xp.take(labels, xp.astype(index, xp.int64), axis=0)
        outputs["probabilities"] = as_input_dtype(proba)
    else:
        if m.y_mean is not None:  # predict: P * y_scale + y_mean, in the model's dtype
            out = out * const(m.y_scale.reshape(1, -1)) + const(m.y_mean.reshape(1, -1))
        if m.layer_dims[-1] == 1 and not for_skl2onnx:  # (ndonnx may not know the static size here)
            out = xp.reshape(out, (-1,))
        outputs["predictions"] = as_input_dtype(out)
    proto = ndx.build({"X": X}, outputs)
    _declare_output_shapes(proto, m, for_skl2onnx=for_skl2onnx)
    proto.producer_name, proto.producer_version = "xpnet", __version__
    dims = "-".join(str(d) for d in m.layer_dims)
    proto.graph.name = f"xpnet_{m.kind}"
    proto.doc_string = (f"xpnet {m.kind} {dims}, hidden {m.hidden.name}, output {m.output.name}, {dtype}"
                        f"{', standardized input' if m.mean is not None else ''}")
    return proto


def _declare_output_shapes(proto: Any, m: ExportedModel, *, for_skl2onnx: bool) -> None:
    """Write the outputs' shapes into the graph: ``N`` (the input's batch dimension) and the static sizes, which
    ndonnx's shape inference loses on the way through a matrix product with a symbolic dimension (a reader of
    the file, and a runtime allocating outputs, then sees ``(N, 3)`` rather than ``(?, ?)``)."""
    n_out = m.layer_dims[-1]
    if m.kind == "DNN":
        label = ("N", n_out) if m.output.name == "sigmoid" else ("N", 1)
        shapes = {"label": label, "probabilities": ("N", n_out), "predictions": ("N", n_out)}
    elif m.kind == "DNNClassifier":
        assert m.classes is not None
        shapes = {"label": ("N",), "probabilities": ("N", len(m.classes))}
    else:
        shapes = {"predictions": ("N",) if n_out == 1 and not for_skl2onnx else ("N", n_out)}
    for out in proto.graph.output:
        shape = out.type.tensor_type.shape
        shape.ClearField("dim")
        for size in shapes[out.name]:
            dim = shape.dim.add()
            if size == "N":
                dim.dim_param = "N"
            else:
                dim.dim_value = size

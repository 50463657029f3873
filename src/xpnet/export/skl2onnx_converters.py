"""skl2onnx converters for the xpnet estimators: ``skl2onnx.to_onnx(pipeline, ...)`` then converts pipelines
that hold a :class:`~xpnet.DNNClassifier` or :class:`~xpnet.DNNRegressor`.

A converter traces the estimator's graph with ndonnx (:func:`xpnet.export.graph.onnx_graph`, the same graph
``xpnet.to_onnx`` gives) for the input dtype skl2onnx hands it, and copies that graph's nodes into skl2onnx's
container: every name gets one prefix unique in the pipeline's graph (also inside the branches of ``If``
nodes, which refer to names of the graph around them), except the graph's input and outputs, which become
the operator's.
"""

from __future__ import annotations

from typing import Any

from ..errors import BackendUnavailableError, ConfigError, DTypeError
from ..estimators import DNNClassifier, DNNRegressor
from .graph import INSTALL, _label_values, describe, onnx_graph

__all__ = ["register"]


def _skl2onnx() -> Any:
    try:
        import skl2onnx
    except ImportError as exc:
        raise BackendUnavailableError(f"converting pipelines needs skl2onnx, which is not installed ({exc}): "
                                      f"{INSTALL}") from None
    return skl2onnx


def _input_dtype(operator: Any) -> str:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    t = operator.inputs[0].type
    if isinstance(t, FloatTensorType):
        return "float32"
    if isinstance(t, DoubleTensorType):
        return "float64"
    raise DTypeError(f"{type(operator.raw_operator).__name__} in an ONNX pipeline takes float or double tensors, "
                     f"got {type(t).__name__}: convert with float32 or float64 features (e.g. "
                     "skl2onnx.to_onnx(pipeline, X[:1].astype(numpy.float32)))")


def _classifier_shapes(operator: Any) -> None:
    """label (N,) int64 or string; probabilities (N, n_classes) in the input's float type."""
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    _input_dtype(operator)
    est = operator.raw_operator
    N = operator.inputs[0].get_first_dimension()
    labels = _label_values(describe(est).classes, for_skl2onnx=True)
    label_type = StringTensorType if labels.dtype.kind == "U" else Int64TensorType
    operator.outputs[0].type = label_type(shape=[N])
    operator.outputs[1].type = type(operator.inputs[0].type)(shape=[N, len(labels)])


def _regressor_shapes(operator: Any) -> None:
    """variable (N, n_targets) in the input's float type."""
    _input_dtype(operator)
    N = operator.inputs[0].get_first_dimension()
    n_out = describe(operator.raw_operator).layer_dims[-1]
    operator.outputs[0].type = type(operator.inputs[0].type)(shape=[N, n_out])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    """Add the estimator's traced graph to ``container``, reading ``operator.inputs[0]`` and writing
    ``operator.outputs``."""
    model = describe(operator.raw_operator)
    proto = onnx_graph(model, input_dtype=_input_dtype(operator), for_skl2onnx=True)
    opsets = {o.domain: o.version for o in proto.opset_import}
    target = container.target_opset_any_domain("")
    if target is not None and target < opsets.get("", 0):
        raise ConfigError(f"xpnet's ONNX graphs use opset {opsets['']}, but the conversion targets opset {target}: "
                          f"pass target_opset={opsets['']} or more to skl2onnx.to_onnx (or leave it out)")
    graph = proto.graph
    outer = {graph.input[0].name: operator.inputs[0].full_name}
    for out, var in zip(graph.output, operator.outputs, strict=True):
        outer[out.name] = var.full_name
    prefix = scope.get_unique_variable_name(f"xpnet_{model.kind}") + "_"

    def rename(name: str) -> str:
        return outer.get(name, prefix + name) if name else name

    _copy_nodes(graph, rename, container, opsets, prefix)


def _copy_nodes(graph: Any, rename: Any, container: Any, opsets: dict[str, int], prefix: str) -> None:
    from onnx import helper

    # ndonnx writes constants as Constant nodes, never initializers (which this copy would have to carry over).
    assert not graph.initializer, "ndonnx graph with initializers"
    for node in graph.node:
        attrs = {}
        for a in node.attribute:
            value = helper.get_attribute_value(a)
            if a.type == a.GRAPH:
                value = _renamed_graph(value, rename)
            elif a.type == a.GRAPHS:
                value = [_renamed_graph(g, rename) for g in value]
            attrs[a.name] = value
        container.add_node(node.op_type, [rename(n) for n in node.input], [rename(n) for n in node.output],
                           op_domain=node.domain, op_version=opsets.get(node.domain), name=prefix + node.name,
                           **attrs)


def _renamed_graph(graph: Any, rename: Any) -> Any:
    """A copy of the sub-graph ``graph`` with every name passed through ``rename`` (its own and the outer graph's
    that it refers to: all carry the same prefix)."""
    g = type(graph)()
    g.CopyFrom(graph)
    for node in g.node:
        node.name = rename(node.name)
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
        for a in node.attribute:
            if a.type == a.GRAPH:
                a.g.CopyFrom(_renamed_graph(a.g, rename))
            elif a.type == a.GRAPHS:
                for i, sub in enumerate(a.graphs):
                    a.graphs[i].CopyFrom(_renamed_graph(sub, rename))
    for collection in (g.input, g.output, g.value_info, g.initializer):
        for item in collection:
            item.name = rename(item.name)
    return g


_REGISTERED = False


def register() -> None:
    """Register both converters with skl2onnx (once)."""
    global _REGISTERED
    skl2onnx = _skl2onnx()
    if _REGISTERED:
        return
    skl2onnx.update_registered_converter(DNNClassifier, "XpnetDNNClassifier", _classifier_shapes, _convert,
                                         options={"zipmap": [True, False, "columns"], "nocl": [False]})
    skl2onnx.update_registered_converter(DNNRegressor, "XpnetDNNRegressor", _regressor_shapes, _convert)
    _REGISTERED = True

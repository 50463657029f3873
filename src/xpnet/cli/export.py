"""``xpnet export MODEL OUT.onnx``: a model file as an ONNX model (:func:`xpnet.to_onnx`), to run without xpnet
(onnxruntime, or any ONNX runtime)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import CommandError, _check_output_dir, _write_failed


def add_export_parser(sub: Any) -> None:
    """The ``export`` sub-command's parser, on ``sub`` (the command's sub-parsers)."""
    x = sub.add_parser("export", help="write a saved model as an ONNX model (needs xpnet[onnx])",
                       description="Write a model file as an ONNX model with one input X (N, n_features) and the "
                                   "outputs label and probabilities (classifiers) or predictions (regressors), "
                                   "the standardization included; run it with onnxruntime.")
    x.add_argument("model", help="a model file written by 'xpnet train --out' or xpnet.save")
    x.add_argument("out", help="the ONNX file to write (e.g. model.onnx)")
    x.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from ..export.graph import describe, onnx_graph, require_ndonnx
    from ..files import write_file_atomically

    _check_output_dir(args.out, "the ONNX model", inputs=[args.model], flag="OUT")
    if not str(args.out).lower().endswith(".onnx"):  # an ONNX model under another name is a file nobody finds
        raise CommandError(f"'xpnet export' writes an ONNX model: give OUT the .onnx extension (got {args.out!r})")
    require_ndonnx()
    model = describe(args.model)
    proto = onnx_graph(model)
    write_file_atomically(args.out, proto.SerializeToString(), error=_write_failed("the ONNX model"))
    outputs = ", ".join(f"{o.name} {_shape(o)} {_elem_type(o)}" for o in proto.graph.output)
    dims = "-".join(str(d) for d in model.layer_dims)
    print(f"wrote {args.out}: {model.kind} {dims} ({model.hidden.name}), input X (N, {model.layer_dims[0]}) "
          f"{model.dtype}; outputs {outputs}")
    return 0


def _shape(value_info: Any) -> str:
    dims = value_info.type.tensor_type.shape.dim
    return "(" + ", ".join(d.dim_param or (str(d.dim_value) if d.dim_value else "N") for d in dims) + \
        ("," if len(dims) == 1 else "") + ")"


def _elem_type(value_info: Any) -> str:
    from onnx import helper

    return str(helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type))

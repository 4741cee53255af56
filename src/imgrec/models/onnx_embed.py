"""Penultimate-layer embeddings from an ONNX classifier graph.

The classifier layer is found by walking back from the graph's output through the ops that
only reshape, scale or (de)quantize (Softmax, Flatten, Reshape, DequantizeLinear, a bias
Add, ...) to the first Gemm / MatMul / 1x1 Conv, or their quantized forms. Its data input is
the embedding; a quantized one is dequantized with that layer's own input scale, and the
result is flattened to ``(N, D)`` and exposed as the output ``imgrec_embedding``.

Example:
    >>> # proto = onnx.load("mobilenetv2-12-int8.onnx"); penultimate(proto)
    >>> # '472_quantized'
"""

from __future__ import annotations

from typing import Any

from imgrec.errors import ModelFileError

EMBEDDING_OUTPUT = "imgrec_embedding"
_LAYERS = {"Gemm", "MatMul", "Conv", "QLinearMatMul", "QLinearConv", "MatMulInteger", "QGemm", "ConvInteger"}
_QUANTIZED = {"QLinearMatMul": (1, 2), "QLinearConv": (1, 2), "QGemm": (1, 2)}  # op -> (scale, zero point) inputs
_PASS = {"Softmax", "LogSoftmax", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "DequantizeLinear",
         "QuantizeLinear", "Add", "QLinearAdd", "Mul", "Cast", "Transpose", "Sigmoid", "Dropout"}  # fmt: skip


def penultimate(proto: Any) -> str:
    """Name of the tensor that feeds the classifier layer (see the module docstring).

    Raises:
        ModelFileError: no classifier layer is reachable from the output through such ops.
    """
    node = _classifier_layer(proto)
    return str(node.input[0])


def _classifier_layer(proto: Any) -> Any:
    producers = {out: n for n in proto.graph.node for out in n.output}
    consts = {t.name for t in proto.graph.initializer}
    name = proto.graph.output[0].name
    for _ in range(64):
        node = producers.get(name)
        if node is None:
            break
        if node.op_type in _LAYERS:
            return node
        if node.op_type not in _PASS:
            break
        name = next((i for i in node.input if i in producers and i not in consts), "")
    raise ModelFileError(
        "Cannot find the classifier layer of this ONNX graph (a Gemm, MatMul or 1x1 Conv before its "
        "output); it cannot give penultimate-layer embeddings."
    )


def with_embedding_output(proto: Any, tensor: str) -> Any:
    """A copy of ``proto`` with ``tensor`` (dequantized, flattened) as the output ``imgrec_embedding``."""
    import onnx
    from onnx import helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    source = tensor
    layer = next((n for n in model.graph.node if n.op_type in _QUANTIZED and n.input[0] == tensor), None)
    if layer is not None:
        scale, zero = (layer.input[i] for i in _QUANTIZED[layer.op_type])
        source = f"{tensor}__imgrec_dequantized"
        model.graph.node.append(helper.make_node("DequantizeLinear", [tensor, scale, zero], [source]))
    model.graph.node.append(helper.make_node("Flatten", [source], [EMBEDDING_OUTPUT], axis=1))
    model.graph.output.append(helper.make_tensor_value_info(EMBEDDING_OUTPUT, onnx.TensorProto.FLOAT, None))
    return model

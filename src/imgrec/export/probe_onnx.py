"""A linear-probe run as one ONNX graph: the imported backbone, then its head, in the imgrec contract.

The graph takes the prepared uint8 batch ``image`` ``(N, S, S, 3)`` every imgrec ONNX file
takes, converts it to what the backbone file expects (channel order, dtype, mean/std, layout;
the same mapping :mod:`imgrec.models.external` applies in numpy), runs the backbone up to its
penultimate tensor, and ends in the head: ``StandardScaler`` (subtract, divide), the logistic
regression (``MatMul`` + ``Add`` + ``Softmax``) and a column map onto the run's classes. The
result is checked against the run's own model by the same parity gate as every export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import UsageError
from imgrec.models.base import Classifier
from imgrec.models.onnx_backend import INPUT_NAME, OUTPUT_NAME

_P = "imgrec_probe_"


def refuse_reason(model: Classifier) -> str | None:
    """Why a probe run cannot be exported (None when it can)."""
    backbone: Any = getattr(model, "backbone", None)
    io = getattr(backbone, "io", None)
    if backbone is None or io is None or io.runtime != "onnx":
        return "its backbone is not an imported ONNX model (torch and TFLite backbones do not export yet)"
    head = getattr(model, "model_args", {}).get("head", "logistic")
    if head != "logistic":
        return f"its {head!r} head (a calibrated SVM) has no exact ONNX form here; train it with head=logistic"
    if backbone.runtime.input.dtype == np.int8:
        return "its backbone takes int8 input"
    return None


def export_probe(model: Classifier, path: Path) -> str:
    """Write the one-graph ONNX file of a linear-probe run; returns the exporter's name."""
    import onnx

    reason = refuse_reason(model)
    if reason:
        raise UsageError(f"{model.name} cannot be exported to ONNX: {reason}.", code="not_exportable")
    backbone: Any = getattr(model, "backbone")  # noqa: B009
    from imgrec.models.onnx_backend import read_proto
    from imgrec.models.onnx_embed import EMBEDDING_OUTPUT, penultimate, with_embedding_output

    proto = with_embedding_output(read_proto(backbone.path), penultimate(read_proto(backbone.path)))
    graph = proto.graph
    original_input = graph.input[0].name
    nodes, inits = _input_nodes(backbone, original_input)
    head_nodes, head_inits = _head_nodes(model, EMBEDDING_OUTPUT)
    del graph.output[:]
    probabilities = onnx.helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, [None, model.num_classes])
    graph.output.append(probabilities)
    size = model.preprocessing.size
    del graph.input[:]
    graph.input.append(onnx.helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.UINT8, [None, size, size, 3]))
    all_nodes = _needed([*nodes, *graph.node, *head_nodes], OUTPUT_NAME)
    del graph.node[:]
    graph.node.extend(all_nodes)
    graph.initializer.extend([*inits, *head_inits])
    used = {i for n in all_nodes for i in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return "imgrec-probe"


def _needed(nodes: list[Any], output: str) -> list[Any]:
    """The nodes ``output`` depends on, in their order (the backbone's own classifier is dropped)."""
    producers = {out: i for i, n in enumerate(nodes) for out in n.output}
    keep, todo = set(), [output]
    while todo:
        i = producers.get(todo.pop())
        if i is not None and i not in keep:
            keep.add(i)
            todo.extend(nodes[i].input)
    return [n for i, n in enumerate(nodes) if i in keep]


def _const(name: str, value: np.ndarray) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ascontiguousarray(value), _P + name)


def _input_nodes(backbone: Any, target: str) -> tuple[list[Any], list[Any]]:
    """uint8 NHWC RGB ``image`` -> the backbone's own input tensor ``target``."""
    from onnx import helper

    io, prep, dtype = backbone.io, backbone.preprocessing, backbone.runtime.input.dtype
    nodes, inits, x = [], [], INPUT_NAME
    if io.color == "bgr":
        inits.append(_const("bgr", np.array([2, 1, 0], np.int64)))
        nodes.append(helper.make_node("Gather", [x, _P + "bgr"], [_P + "bgr_out"], axis=3))
        x = _P + "bgr_out"
    if dtype != np.uint8:
        std = np.asarray(prep.std, np.float32)
        inits += [_const("scale", (1.0 / (255.0 * std)).reshape(1, 1, 1, 3)),
                  _const("shift", (-np.asarray(prep.mean, np.float32) / std).reshape(1, 1, 1, 3))]  # fmt: skip
        nodes += [helper.make_node("Cast", [x], [_P + "float"], to=1),
                  helper.make_node("Mul", [_P + "float", _P + "scale"], [_P + "scaled"]),
                  helper.make_node("Add", [_P + "scaled", _P + "shift"], [_P + "normalized"])]  # fmt: skip
        x = _P + "normalized"
    if io.layout == "nchw":
        nodes.append(helper.make_node("Transpose", [x], [target], perm=[0, 3, 1, 2]))
    else:
        nodes.append(helper.make_node("Identity", [x], [target]))
    return nodes, inits


def _head_nodes(model: Any, embedding: str) -> tuple[list[Any], list[Any]]:
    """StandardScaler + LogisticRegression as ops, with the classes mapped to the run's columns."""
    from onnx import helper

    scaler, clf = model.head.named_steps["scale"], model.head.named_steps["clf"]
    coef, intercept = np.asarray(clf.coef_, np.float32), np.asarray(clf.intercept_, np.float32)
    if coef.shape[0] == 1:  # binary: softmax over [0, z] is [1 - sigmoid(z), sigmoid(z)]
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept]).astype(np.float32)
    columns = np.zeros((len(clf.classes_), model.num_classes), np.float32)
    columns[np.arange(len(clf.classes_)), np.asarray(clf.classes_, np.int64)] = 1.0
    inits = [_const("mean", np.asarray(scaler.mean_, np.float32)), _const("std", np.asarray(scaler.scale_, np.float32)),
             _const("coef", coef.T.copy()), _const("intercept", intercept), _const("columns", columns)]  # fmt: skip
    names = [_P + n for n in ("centered", "standard", "logits", "biased", "softmax")]
    nodes = [
        helper.make_node("Sub", [embedding, _P + "mean"], [names[0]]),
        helper.make_node("Div", [names[0], _P + "std"], [names[1]]),
        helper.make_node("MatMul", [names[1], _P + "coef"], [names[2]]),
        helper.make_node("Add", [names[2], _P + "intercept"], [names[3]]),
        helper.make_node("Softmax", [names[3]], [names[4]], axis=1),
        helper.make_node("MatMul", [names[4], _P + "columns"], [OUTPUT_NAME]),
    ]
    return nodes, inits

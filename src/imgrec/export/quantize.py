"""Static int8 quantization of an fp32 imgrec ONNX file with onnxruntime.quantization.

QDQ format (QuantizeLinear/DequantizeLinear pairs that onnxruntime fuses into integer kernels,
and that other runtimes read too), per-channel int8 weights, uint8 activations whose ranges
are calibrated (min/max) on real prepared images. The final softmax stays in float, so the
probabilities keep their full resolution and near-ties do not collapse; so does the input
preparation (uint8 -> normalized float) in front of the first layer.

Whether int8 is faster depends on the CPU and the architecture. Measured on an AVX2 CPU without
VNNI (benchmarks/onnx_speed.py): ResNet-18/50 run 1.65-2.0x faster than ORT fp32, but
MobileNetV3 runs at 0.75-0.8x: ORT's int8 depthwise and 3-channel stem convolutions are slower
than its fp32 ones there, and its fp32 kernels fuse hard-swish and squeeze-excite into the
convolutions while the int8 graph keeps them as separate ops. ``export_run`` notes an int8 file
that ran slower than fp32; check a model with ``imgrec benchmark RUN --backends onnx,onnx-int8``
on the target machine before deploying the int8 file.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import DependencyError, ModelFileError
from imgrec.models.onnx_backend import INPUT_NAME

log = logging.getLogger(__name__)

CALIBRATION_BATCH = 16
SCHEME = "int8-static-qdq-per-channel-u8s8-minmax"


def _quantization() -> Any:
    try:
        from onnxruntime import quantization
    except ImportError as exc:
        raise DependencyError(
            f"int8 export needs onnxruntime, which is not installed ({exc}). "
            "Install it with: pip install 'imgrec[onnx]'"
        ) from exc
    return quantization


def calibration_reader(images: np.ndarray, batch_size: int = CALIBRATION_BATCH) -> Any:
    """A ``CalibrationDataReader`` feeding prepared uint8 batches under the graph's input name."""
    q = _quantization()

    class PreparedImages(q.CalibrationDataReader):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self._batches: Iterator[np.ndarray] = (
                np.ascontiguousarray(images[i : i + batch_size]) for i in range(0, len(images), batch_size)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    return PreparedImages()


FIRST_LAYER_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def float_nodes(path: Path) -> list[str]:
    """Nodes kept in float: the final softmax, and the input preparation before the first layer.

    The preparation (layout transpose, uint8 -> float, per-channel scale and shift) is cheap in
    float but costly as int8 ops with per-channel broadcasts: about 4 ms of a 13 ms MobileNetV3
    int8 call at batch 1 on AVX2. Keeping it in float leaves one QuantizeLinear before the stem.
    """
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node  # topologically sorted
    first = next((i for i, n in enumerate(nodes) if n.op_type in FIRST_LAYER_OPS), 0)
    prep = [n.name for n in nodes[:first] if n.name]
    return prep + [n.name for n in nodes if n.op_type == "Softmax" and n.name]


PREDICTION_OPS = ("Conv", "Gemm", "MatMul")


def output_tail(path: Path) -> list[str]:
    """Nodes kept in float for a dense detector: each output's last layer and all after it.

    Walking back from every graph output, every node is taken until a layer (``PREDICTION_OPS``)
    is met, that layer included: the 1x1 prediction convolutions, the box decoding (softplus,
    times the stride, cell centres +/-) and the sigmoid. An 8-bit grid on the decoded boxes would
    move them by ``range / 255`` pixels (about 1.3 px at 320 px), which costs mAP@.95 directly,
    and one on the scores would tie candidates that NMS must rank; those convolutions are a
    tiny share of the work.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {out: n for n in graph.node for out in n.output}
    tail: dict[str, None] = {}
    todo = [o.name for o in graph.output]
    while todo:
        node = producer.get(todo.pop())
        if node is None or not node.name or node.name in tail:
            continue
        tail[node.name] = None
        if node.op_type not in PREDICTION_OPS:
            todo.extend(node.input)
    return list(tail)


def quantize_int8(src: Path, dst: Path, calibration: np.ndarray, float_outputs: bool = False) -> dict[str, Any]:
    """Write the static int8 version of the fp32 ONNX file ``src`` to ``dst``.

    Args:
        src: an fp32 imgrec ONNX file.
        dst: where the int8 file goes (metadata_props are not set here).
        calibration: prepared uint8 images ``(N, S, S, 3)`` whose activations set the ranges.
        float_outputs: keep :func:`output_tail` in float too (dense detectors: boxes and scores).

    Returns:
        The settings used, for the record.
    """
    q = _quantization()
    if len(calibration) == 0:
        raise ModelFileError("int8 calibration needs at least one image; none were readable.")
    with tempfile.TemporaryDirectory(prefix="imgrec-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        q.quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)  # folds BN, infers shapes
        keep = float_nodes(pre) + (output_tail(pre) if float_outputs else [])
        q.quantize_static(
            str(pre), str(dst), calibration_reader(calibration),
            quant_format=q.QuantFormat.QDQ, per_channel=True, reduce_range=False,
            activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax, nodes_to_exclude=list(dict.fromkeys(keep)),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    kept = "input preparation, " + ("prediction layers and box/score decoding" if float_outputs else "softmax")
    return {"scheme": SCHEME, "calibration_images": len(calibration), "float": kept}

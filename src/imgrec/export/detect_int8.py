"""Detector -> ``model.int8.onnx``: static int8 of the fp32 export, gated on COCO mAP against it.

Which detectors: the dense ones (imgrec's ``yolo-n``/``yolo-s``), whose graph is the network
alone and whose boxes and scores are decoded outside it (:mod:`imgrec.tasks.decoders`). Their
convolutions become int8 (QDQ, per-channel weights, uint8 activations calibrated min/max on
real prepared images); the input preparation, the prediction convolutions and the box/score
decoding after them stay in float (:func:`imgrec.export.quantize.output_tail`).

torchvision's detectors are refused (:func:`int8_refusal`): their graph holds their own
postprocessing (anchor or proposal decoding, RoIAlign, NMS, TopK, data-dependent shapes)
between the layers, so min/max quantization puts the box deltas and the class logits that
feed NMS on an 8-bit grid. Measured on ``fasterrcnn_mobilenet_v3_large_fpn`` at 96 px
(onnxruntime 1.32): every int8 score came out the same (1/3 with two classes: the logits
rounded to one value), and the fp32 top-20 boxes matched int8 ones at IoU 0.67-0.97 only.

The gate: the int8 file's mAP@[.5:.95] on the check images may fall at most ``max_drop``
points below model.onnx's (default ``imgrec.export.api.MAX_INT8_MAP_DROP``). Two points, not the fp32 gate's
half point: int8 weights and activations genuinely change the outputs (a box edge moves by a
fraction of a pixel, a score by a few thousandths), which the strict IoU thresholds of
mAP@.95 count, and on the few dozen validation images of a small run one box crossing an
IoU threshold moves mAP by a point or more. Post-training int8 of one-stage detectors
typically costs about 0.5-2 points of COCO mAP; a larger loss means poor calibration images
or a model that does not quantize well, and the file is not written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgrec.errors import ModelFileError, UsageError
from imgrec.export import onnx_export, quantize
from imgrec.export.api import MAX_INT8_MAP_DROP
from imgrec.export.detect_export import DetectionParity, detection_parity, graph_description, is_dense
from imgrec.export.samples import Samples, load_samples
from imgrec.models.onnx_backend import INT8_FILE, ONNX_FILE
from imgrec.models.onnx_detect import load_onnx_detector_file

CALIBRATION_SPLITS = ("train",)
INT8_FAILED = (
    "model.int8.onnx was not written (model.onnx was). Calibrate on more representative images "
    "(--calibration DATA, more of them with --calibration-size), or raise --max-map-drop."
)


def int8_refusal(model: Any) -> str | None:
    """Why the detector has no meaningful int8 export (None: it has one)."""
    if is_dense(model):
        return None
    if model.task == "instance":
        return (
            f"{model.name} is an instance segmenter (Mask R-CNN): int8 export is not implemented for instance "
            "segmentation. Its graph holds torchvision's proposal decoding, RoIAlign and NMS between its layers, "
            "which static int8 puts on an 8-bit grid (see torchvision detectors: all scores collapse to one "
            "value), and the mask head's probabilities would follow. Export this run without --int8 "
            "(model.onnx, fp32)."
        )
    return (
        f"{model.name} is a torchvision detector: its ONNX graph holds torchvision's postprocessing "
        "(anchor/proposal decoding, RoIAlign, NMS, TopK) between its layers, and static int8 quantization "
        "puts the box deltas and class logits feeding NMS on an 8-bit grid (measured: all scores collapse to "
        "one value, boxes move to IoU 0.7-0.97 of fp32). int8 export is implemented for the dense detectors "
        "yolo-n and yolo-s; export this run without --int8."
    )


def refuse_int8(run: Path, model: Any) -> None:
    """UsageError with the reason when ``model`` has no meaningful int8 export."""
    reason = int8_refusal(model)
    if reason is not None:
        raise UsageError(f"{run}: {reason}", code="not_quantizable")


def calibration_images(run: Path, model: Any, calibration: str | Path | None, limit: int) -> Samples:
    """Prepared (letterboxed) images for calibration: ``calibration``, else the run's training split."""
    found = load_samples(run, calibration, model.preprocessing, model.classes, splits=CALIBRATION_SPLITS,
                         limit=limit, seed=1)  # fmt: skip
    return Samples(found.images, None, found.source)  # boxes are not needed, only the pixels


def export_detector_int8(
    run: Path, model: Any, fp32_path: Path, check: tuple[Any, str], calib: Samples,
    max_drop: float = MAX_INT8_MAP_DROP,
) -> Any:  # fmt: skip
    """``model.int8.onnx`` for a dense detector run, written only when it passes the int8 mAP gate.

    ``check`` is the (dataset, description) the fp32 file was checked on; the int8 file is
    compared with ``fp32_path`` (model.onnx) on the same images.
    """
    from imgrec.export.api import ExportedFile, _int8_notes, _publish, _record, _staging, _stamp

    refuse_int8(run, model)
    ds, source = check
    with _staging(run) as tmp:
        settings = quantize.quantize_int8(fp32_path, tmp / "raw.onnx", calib.images, float_outputs=True)
        extra = {"task": "detect", **graph_description(model), "quantization": quantize.SCHEME,
                 "calibration": calib.describe()}  # fmt: skip
        staged = tmp / INT8_FILE
        onnx_export.write_with_metadata(tmp / "raw.onnx", staged, onnx_export.metadata(model, extra))
        figures = detection_parity(load_onnx_detector_file(fp32_path), load_onnx_detector_file(staged), ds, source)
        _gate(run, figures, max_drop)
        details = {**settings, "calibration": calib.describe(), "gated_drop_points": round(figures.map_drop, 4),
                   **_stamp(staged)}  # fmt: skip
        path = _publish(staged, run / INT8_FILE)
    done = ExportedFile("onnx-int8", path, path.stat().st_size, ONNX_FILE, figures,  # type: ignore[arg-type]
                        f"mAP drop <= {max_drop:g} points", details, _int8_notes(figures))  # type: ignore[arg-type]
    _record(run, done)
    return done


def _gate(run: Path, figures: DetectionParity, max_drop: float) -> None:
    """ModelFileError with the figures when int8 lost more than ``max_drop`` mAP points (gaining is fine)."""
    if figures.map_drop > max_drop:
        raise ModelFileError(
            f"The int8 export of {run} scores mAP {figures.candidate_map:.4f} against model.onnx's "
            f"{figures.reference_map:.4f} on {figures.images} images ({figures.map_drop:+.2f} points; the gate is "
            f"{max_drop:g}). {INT8_FAILED}"
        )

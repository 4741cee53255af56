"""Segmenter -> ``model.onnx``, gated on mIoU.

The torch segmenter is wrapped so the graph takes what every imgrec backend takes, a prepared
uint8 batch ``image`` ``[N, S, S, 3]`` (cast, NHWC -> NCHW and mean/std inside), and gives
``logits`` ``[N, C, S, S]``; the batch axis is dynamic. The ``segment`` task turns the logits into
masks in the original pixels, the same numpy code for both backends.

The file is then evaluated next to the torch model on the run's validation split (or
``--data``) by :func:`~imgrec.evaluation.segmentation.run.evaluate_segmentation`, the path of
``imgrec evaluate``; a file whose mIoU is more than ``max_drop`` points apart is not written.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgrec.data import load_dataset
from imgrec.data.run_data import run_split
from imgrec.errors import DatasetError, ModelFileError
from imgrec.evaluation.segmentation import evaluate_segmentation
from imgrec.export import onnx_export
from imgrec.inference import Predictor
from imgrec.models.onnx_backend import INPUT_NAME, ONNX_FILE
from imgrec.models.onnx_segment import LOGITS, load_onnx_segmenter_file

CHECK_SPLITS = ("val", "test")
MAX_MIOU_DROP = 0.5  # points of mIoU the ONNX file may differ by


@dataclass(frozen=True)
class SegmentationParity:
    """Figures of the reference (torch) and the candidate (ONNX) on the same images."""

    images: int
    reference_miou: float
    candidate_miou: float
    reference_pixel_accuracy: float
    candidate_pixel_accuracy: float
    reference_ms: float
    candidate_ms: float
    source: str

    @property
    def miou_drop(self) -> float:
        """mIoU lost by the candidate, in points (negative: it scored higher)."""
        return 100.0 * (self.reference_miou - self.candidate_miou)

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "reference_miou": round(self.reference_miou, 6),
                "candidate_miou": round(self.candidate_miou, 6), "miou_drop_points": round(self.miou_drop, 4),
                "reference_pixel_accuracy": round(self.reference_pixel_accuracy, 6),
                "candidate_pixel_accuracy": round(self.candidate_pixel_accuracy, 6),
                "reference_ms": round(self.reference_ms, 3), "candidate_ms": round(self.candidate_ms, 3),
                "source": self.source}  # fmt: skip

    def gate_failure(self, max_drop: float) -> str | None:
        """The figures that miss the gate of ``max_drop`` points, in words (None: it passes)."""
        if abs(self.miou_drop) <= max_drop:
            return None
        return (f"mIoU {self.candidate_miou:.4f} against the torch model's {self.reference_miou:.4f} on "
                f"{self.images} images ({self.miou_drop:+.2f} points; the gate is {max_drop:g})")  # fmt: skip


def check_dataset(run: Path, data: str | Path | None) -> tuple[Any, str]:
    """The masks the export is checked on: ``data``, else the run's val (or test) split."""
    if data is not None:
        ds, source = load_dataset(data, task="segment"), str(data)
    else:
        ds, name, data = run_split(run, CHECK_SPLITS, "give images with masks with --data")
        source = f"the run's {name} split ({data})"
    if ds.task != "segment":
        raise DatasetError(f"{source} has no masks; a segmenter's export is checked on a segment dataset.")
    return ds, source


def trace_to_onnx(model: Any, path: Path, opset: int) -> str:
    """Write the raw graph (no metadata yet); returns the exporter's name."""
    import torch

    size = model.preprocessing.size
    example = torch.zeros((2, size, size, 3), dtype=torch.uint8)
    device = model.device
    model.to("cpu")
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_wrapper(model), (example,), str(path), opset_version=opset, dynamo=False,
                              input_names=[INPUT_NAME], output_names=[LOGITS],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, LOGITS: {0: "batch"}})  # fmt: skip
    except Exception as exc:
        raise ModelFileError(f"ONNX export of {model.name} failed: {type(exc).__name__}: {str(exc)[:400]}") from None
    finally:
        model.to(device)
    return "torchscript"


def _wrapper(model: Any) -> Any:
    """uint8 NHWC -> the segmenter's own normalization -> network -> logits."""
    import torch

    class PreparedBatchSegmenter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model.module  # registers the weights with the traced module

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return model.logits(model.normalize(image)).float()  # type: ignore[no-any-return]

    return PreparedBatchSegmenter().eval()


def graph_description(model: Any) -> dict[str, str]:
    side = model.preprocessing.size
    return {"input": f"{INPUT_NAME}: uint8 [batch, {side}, {side}, 3]",
            "output": f"{LOGITS}: float32 [batch, {model.num_classes}, {side}, {side}], class logits per pixel"}


def segmentation_parity(model: Any, candidate: Any, ds: Any, source: str) -> SegmentationParity:
    """Both models through ``evaluate_segmentation`` on ``ds``."""
    ref = evaluate_segmentation(Predictor(model, {"task": "segment"}), ds, boundary=False)
    got = evaluate_segmentation(Predictor(candidate, {"task": "segment"}), ds, boundary=False)
    return SegmentationParity(
        images=int(ref.metrics["images"]), reference_miou=float(ref.metrics["miou"] or 0.0),
        candidate_miou=float(got.metrics["miou"] or 0.0),
        reference_pixel_accuracy=float(ref.metrics["pixel_accuracy"] or 0.0),
        candidate_pixel_accuracy=float(got.metrics["pixel_accuracy"] or 0.0),
        reference_ms=ref.ms_per_image, candidate_ms=got.ms_per_image, source=source,
    )  # fmt: skip


def export_segmenter(run: Path, model: Any, check: tuple[Any, str], max_drop: float, opset: int) -> Any:
    """``model.onnx`` for a torch segmenter run, written only when it passes the mIoU gate.

    ``check``: the (segment dataset, description) from :func:`check_dataset`.
    """
    from imgrec.export.api import ExportedFile, _publish, _record, _staging, _stamp

    ds, source = check
    with _staging(run) as tmp:
        used = trace_to_onnx(model, tmp / "raw.onnx", opset)
        staged = tmp / ONNX_FILE
        extra = {"exporter": used, "task": "segment", **graph_description(model)}
        onnx_export.write_with_metadata(tmp / "raw.onnx", staged, onnx_export.metadata(model, extra))
        figures = segmentation_parity(model, load_onnx_segmenter_file(staged), ds, source)
        failure = figures.gate_failure(max_drop)
        if failure is not None:
            raise ModelFileError(f"The ONNX export of {run} scores {failure}. Nothing was written.")
        path = _publish(staged, run / ONNX_FILE)
    details = {"exporter": used, "opset": opset, **_stamp(path)}
    done = ExportedFile("onnx", path, path.stat().st_size, model.family, figures,  # type: ignore[arg-type]
                        f"mIoU within {max_drop:g} points", details)  # fmt: skip
    _record(run, done)
    return done

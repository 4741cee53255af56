"""Detector (or Mask R-CNN instance segmenter) -> ``model.onnx``, gated on COCO mAP.

The torch detector is wrapped so the graph takes what every imgrec backend takes, prepared
uint8 images:

- torchvision's detectors: one image ``[1, S, S, 3]`` in; ``boxes``, ``scores``, ``labels`` in
  input pixels out, torchvision's own transform (normalization, no resize at the pinned size)
  and postprocessing inside. TorchScript tracing exports them at a fixed batch of one.
- dense detectors (imgrec's ``yolo-n``/``yolo-s``, see :func:`is_dense`): a batch
  ``[N, S, S, 3]`` in; the normalization and the network inside, the dense per-cell ``boxes``
  ``[N, A, 4]`` and ``scores`` ``[N, A, C]`` out. The metadata entry ``imgrec.layout`` names
  the :mod:`imgrec.tasks.decoders` layout that turns them into candidates: the same numpy
  code decodes the torch model's outputs, so both backends share one postprocessing.
- instance segmenters (torchvision's Mask R-CNN, task ``instance``): the torchvision kind with a
  fourth output, ``masks`` ``[K, 28, 28]``, each object's mask probabilities over its own box:
  the graph is :meth:`~imgrec.models.torch_instance.TorchInstanceSegmenter._stages`, which stops
  before torchvision pastes the masks into the image, so both backends give the ``instance``
  task the same ``InstanceCandidates(mask_frame="box")`` to paste at the original resolution.

The candidate is then evaluated next to the torch model on the run's validation split (or
``--data``) with the same COCO evaluation as ``imgrec evaluate`` (``evaluate_instances`` for
instance segmenters: mask AP and box AP); a file whose mAP@[.5:.95] (each of mask and box mAP)
is more than ``max_drop`` points apart is not written.
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
from imgrec.evaluation import evaluate_detection
from imgrec.evaluation.instance import evaluate_instances
from imgrec.export import onnx_export
from imgrec.inference import Predictor
from imgrec.models.onnx_backend import INPUT_NAME, ONNX_FILE
from imgrec.models.onnx_detect import DENSE_OUTPUTS, INSTANCE_OUTPUTS, OUTPUTS, load_onnx_detector_file

CHECK_SPLITS = ("val", "test")
CHECK_OPTIONS: dict[str, Any] = {"conf": 0.001, "iou": 0.65, "max_det": 100}
MAX_MAP_DROP = 0.5  # points of mAP@[.5:.95] the ONNX file may differ by


@dataclass(frozen=True)
class DetectionParity:
    """COCO figures of the reference (torch) and the candidate (ONNX) on the same images."""

    images: int
    reference_map: float
    candidate_map: float
    reference_map50: float
    candidate_map50: float
    reference_ms: float
    candidate_ms: float
    source: str

    @property
    def map_drop(self) -> float:
        """mAP@[.5:.95] lost by the candidate, in points (negative: it scored higher)."""
        return 100.0 * (self.reference_map - self.candidate_map)

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "reference_map": round(self.reference_map, 6),
                "candidate_map": round(self.candidate_map, 6), "reference_map50": round(self.reference_map50, 6),
                "candidate_map50": round(self.candidate_map50, 6), "map_drop_points": round(self.map_drop, 4),
                "reference_ms": round(self.reference_ms, 3), "candidate_ms": round(self.candidate_ms, 3),
                "source": self.source}  # fmt: skip

    def gate_failure(self, max_drop: float) -> str | None:
        """The figures that miss the gate of ``max_drop`` points, in words (None: it passes)."""
        if abs(self.map_drop) <= max_drop:
            return None
        return (f"mAP {self.candidate_map:.4f} against the torch model's {self.reference_map:.4f} on {self.images} "
                f"images ({self.map_drop:+.2f} points; the gate is {max_drop:g})")  # fmt: skip


@dataclass(frozen=True)
class InstanceParity(DetectionParity):
    """An instance segmenter's figures: box mAP (the detection fields) and mask mAP, both backends."""

    reference_mask_map: float = 0.0
    candidate_mask_map: float = 0.0
    reference_mask_map50: float = 0.0
    candidate_mask_map50: float = 0.0

    @property
    def mask_map_drop(self) -> float:
        """Mask mAP@[.5:.95] lost by the candidate, in points (negative: it scored higher)."""
        return 100.0 * (self.reference_mask_map - self.candidate_mask_map)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "reference_mask_map": round(self.reference_mask_map, 6),
                "candidate_mask_map": round(self.candidate_mask_map, 6),
                "reference_mask_map50": round(self.reference_mask_map50, 6),
                "candidate_mask_map50": round(self.candidate_mask_map50, 6),
                "mask_map_drop_points": round(self.mask_map_drop, 4)}  # fmt: skip

    def gate_failure(self, max_drop: float) -> str | None:
        if max(abs(self.mask_map_drop), abs(self.map_drop)) <= max_drop:
            return None
        return (f"mask mAP {self.candidate_mask_map:.4f} against the torch model's {self.reference_mask_map:.4f} "
                f"({self.mask_map_drop:+.2f} points) and box mAP {self.candidate_map:.4f} against "
                f"{self.reference_map:.4f} ({self.map_drop:+.2f} points) on {self.images} images; the gate is "
                f"{max_drop:g} points for each")  # fmt: skip


def check_dataset(run: Path, data: str | Path | None, task: str = "detect") -> tuple[Any, str]:
    """The images the export of a ``task`` model (``detect`` or ``instance``) is checked on:
    ``data``, else the run's val (or test) split."""
    if data is not None:
        ds, source = load_dataset(data, task="instance" if task == "instance" else None), str(data)
    else:
        ds, name, data = run_split(run, CHECK_SPLITS, "give images with --data")
        source = f"the run's {name} split ({data})"
    if task == "instance" and ds.task != "instance":
        raise DatasetError(f"{source} has no object masks; an instance segmenter's export is checked on an "
                           "instance dataset (COCO JSON with segmentations).")  # fmt: skip
    if task != "instance" and ds.task != "detect":
        raise DatasetError(f"{source} has no boxes; a detector's export is checked on a detection dataset.")
    return ds, source


def trace_to_onnx(model: Any, path: Path, opset: int) -> str:
    """Write the raw graph (no metadata yet); returns the exporter's name."""
    import torch

    dense = is_dense(model)
    wrapped = _wrapper(model)
    outputs = list(DENSE_OUTPUTS if dense else INSTANCE_OUTPUTS if model.task == "instance" else OUTPUTS)
    size = model.preprocessing.size
    example = torch.zeros((1, size, size, 3), dtype=torch.uint8)
    axes = {name: {0: "batch"} for name in [INPUT_NAME, *outputs]} if dense else None
    model.module.to("cpu")
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, (example,), str(path), opset_version=max(opset, 11), dynamo=False,
                              input_names=[INPUT_NAME], output_names=outputs, dynamic_axes=axes)  # fmt: skip
    except Exception as exc:
        raise ModelFileError(f"ONNX export of {model.name} failed: {type(exc).__name__}: {str(exc)[:400]}") from None
    finally:
        model.module.to(model.device)
    return "torchscript"


def is_dense(model: Any) -> bool:
    """Whether the detector exports its dense outputs (boxes + scores per anchor, decoded outside
    the graph by its ``layout``) rather than torchvision's postprocessed boxes/scores/labels."""
    return callable(getattr(model, "dense_outputs", None)) and getattr(model, "layout", None) is not None


def graph_description(model: Any) -> dict[str, str]:
    """The metadata entries that say what the graph's outputs are (``layout`` for dense ones)."""
    side = model.preprocessing.size
    if is_dense(model):
        return {"input": f"{INPUT_NAME}: uint8 [batch, {side}, {side}, 3]", "layout": model.layout,
                "output": f"boxes [batch, A, 4] (x1 y1 x2 y2, input px), scores [batch, A, {model.num_classes}] "
                          f"(probabilities); decoded by the {model.layout!r} layout"}  # fmt: skip
    if model.task == "instance":
        return {"input": f"{INPUT_NAME}: uint8 [1, {side}, {side}, 3]",
                "output": "boxes [K, 4] (input px), scores [K], labels [K] (class + 1), masks [K, 28, 28] "
                          "(each object's mask probabilities over its own box)"}  # fmt: skip
    return {"input": f"{INPUT_NAME}: uint8 [1, {side}, {side}, 3]",
            "output": "boxes [K, 4] (input px), scores [K], labels [K] (class + 1)"}  # fmt: skip


def _wrapper(model: Any) -> Any:
    """The module traced: one prepared uint8 image in for torchvision's detectors (their own
    transform and postprocessing inside; Mask R-CNN stops before pasting its masks), a prepared
    uint8 batch for dense ones (normalization and network inside, the decoding left to the ``layout``)."""
    import torch

    class PreparedImageDetector(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model.module

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            out = self.net([image[0].permute(2, 0, 1).float() / 255.0])[0]
            return out["boxes"], out["scores"], out["labels"]

    class PreparedImageInstanceSegmenter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model.module  # registers the weights with the traced module

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = model._stages([image[0].permute(2, 0, 1).float() / 255.0])[0]
            return out["boxes"], out["scores"], out["labels"], out["masks"][:, 0]

    class PreparedBatchDenseDetector(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model.module  # registers the weights with the traced module

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return model.dense_outputs(model.normalize_tensor(image))  # type: ignore[no-any-return]

    if model.task == "instance":
        return PreparedImageInstanceSegmenter().eval()
    return (PreparedBatchDenseDetector if is_dense(model) else PreparedImageDetector)().eval()


def detection_parity(model: Any, candidate: Any, ds: Any, source: str) -> DetectionParity:
    """Both models through ``evaluate_detection`` on ``ds`` (``evaluate_instances`` for instance
    segmenters: an :class:`InstanceParity`)."""
    if model.task == "instance":
        return instance_parity(model, candidate, ds, source)
    ref = evaluate_detection(Predictor(model, {"task": "detect"}), ds, **CHECK_OPTIONS)
    got = evaluate_detection(Predictor(candidate, {"task": "detect"}), ds, **CHECK_OPTIONS)
    return DetectionParity(
        images=int(ref.metrics["images"]), reference_map=float(ref.metrics["map"] or 0.0),
        candidate_map=float(got.metrics["map"] or 0.0), reference_map50=float(ref.metrics["map50"] or 0.0),
        candidate_map50=float(got.metrics["map50"] or 0.0), reference_ms=ref.ms_per_image,
        candidate_ms=got.ms_per_image, source=source,
    )  # fmt: skip


def instance_parity(model: Any, candidate: Any, ds: Any, source: str) -> InstanceParity:
    """Both instance segmenters through ``evaluate_instances`` on ``ds``: box and mask figures."""
    ref = evaluate_instances(Predictor(model, {"task": "instance"}), ds, **CHECK_OPTIONS)
    got = evaluate_instances(Predictor(candidate, {"task": "instance"}), ds, **CHECK_OPTIONS)
    r, g = ref.metrics, got.metrics
    return InstanceParity(
        images=int(r["images"]), reference_map=float(r["map"] or 0.0), candidate_map=float(g["map"] or 0.0),
        reference_map50=float(r["map50"] or 0.0), candidate_map50=float(g["map50"] or 0.0),
        reference_ms=ref.ms_per_image, candidate_ms=got.ms_per_image, source=source,
        reference_mask_map=float(r["mask_map"] or 0.0), candidate_mask_map=float(g["mask_map"] or 0.0),
        reference_mask_map50=float(r["mask_map50"] or 0.0), candidate_mask_map50=float(g["mask_map50"] or 0.0),
    )  # fmt: skip


def export_detector(run: Path, model: Any, check: tuple[Any, str], max_drop: float, opset: int) -> Any:
    """``model.onnx`` for a torch detector (or instance segmenter) run, written only when it
    passes the mAP gate (instance segmenters: mask mAP and box mAP).

    ``check``: the (detection or instance dataset, description) from :func:`check_dataset`.
    """
    from imgrec.export.api import ExportedFile, _publish, _record, _staging, _stamp

    ds, source = check
    with _staging(run) as tmp:
        used = trace_to_onnx(model, tmp / "raw.onnx", opset)
        staged = tmp / ONNX_FILE
        extra = {"exporter": used, "task": model.task, **graph_description(model)}
        onnx_export.write_with_metadata(tmp / "raw.onnx", staged, onnx_export.metadata(model, extra))
        figures = detection_parity(model, load_onnx_detector_file(staged, task=model.task), ds, source)
        failure = figures.gate_failure(max_drop)
        if failure is not None:
            raise ModelFileError(f"The ONNX export of {run} scores {failure}. Nothing was written.")
        path = _publish(staged, run / ONNX_FILE)
    details = {"exporter": used, "opset": max(opset, 11), **_stamp(path)}
    gate = "mask and box mAP" if model.task == "instance" else "mAP"
    done = ExportedFile("onnx", path, path.stat().st_size, model.family, figures,  # type: ignore[arg-type]
                        f"{gate} within {max_drop:g} points", details)  # fmt: skip
    _record(run, done)
    return done


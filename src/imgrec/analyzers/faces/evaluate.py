"""Face detection scored against boxes drawn by people: AP@0.5 (and COCO's other figures).

Ground truth comes from dlib imglab XML files (:func:`imgrec.data.imglab.read_imglab`); several
files are read as one set. The detector runs through :func:`imgrec.evaluation.detection.run.evaluate_detection`
(the Predictor's own steps, pycocotools' ``COCOeval`` via the ``DetectionAccumulator``), with a
low ``conf`` so the whole precision-recall curve counts. ``found`` counts the annotated faces
some detection at the detector's own operating point overlaps by IoU >= 0.5.

Example:
    >>> # r = evaluate_faces(["faces/testing.xml", "faces/training.xml"], detector="yunet", weights="yunet.onnx")
    >>> # r["map50"], r["found"], r["faces"]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imgrec.analyzers.faces.detectors import DEFAULT_CONF, FACE_IOU, face_detector
from imgrec.data import ImageDataset
from imgrec.data.imglab import read_imglab
from imgrec.errors import DatasetError
from imgrec.inference import Predictor
from imgrec.tasks.boxes import box_iou

EVAL_CONF = 0.01


def read_face_sets(files: Sequence[str | Path]) -> ImageDataset:
    """One detection dataset of class "face" from one or more imglab XML files."""
    if not files:
        raise DatasetError("No annotation file given; expected one or more dlib imglab XML files.")
    parts = [read_imglab(f) for f in files]
    sources = [s for p in parts for s in p.sources]
    targets = [t for p in parts for t in (p.targets or [])]
    names = {c for p in parts for c in p.classes}
    if names != {"face"}:
        raise DatasetError(f"Face evaluation takes boxes labelled 'face' (or unlabelled); the files hold "
                           f"{sorted(names)}.")  # fmt: skip
    issues = [i for p in parts for i in p.issues]
    return ImageDataset.for_detection(["face"], sources, targets, name="+".join(Path(f).stem for f in files),
                                      issues=issues)  # fmt: skip


def evaluate_faces(
    files: Sequence[str | Path], *, detector: str = "yunet", weights: str | Path | None = None,
    predictor: Predictor | None = None, threads: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """COCO figures of a face detector on imglab-annotated photos, plus ``faces`` (annotated,
    not ignored), ``found`` (of them, matched at the detector's own ``conf``) and ``seconds``."""
    from imgrec.evaluation.detection.run import evaluate_detection

    data = read_face_sets(files)
    p = predictor or face_detector(detector, weights=weights, threads=threads)
    result = evaluate_detection(p, data, conf=EVAL_CONF, iou=FACE_IOU, max_det=1000, workers=2)
    own = DEFAULT_CONF.get(str(p.meta.get("model", detector)), 0.5)
    found, total = _found(p, data, own)
    keep = ("images", "gt_boxes", "detections", "map", "map50", "map75", "ar100")
    return {"detector": str(p.meta.get("model", detector)), **{k: result.metrics.get(k) for k in keep},
            "faces": total, "found": found, "conf": own, "seconds": round(result.seconds, 3),
            "ms_per_image": round(result.ms_per_image, 2),
            "bad_files": [{"source": s, "error": m} for s, m in result.bad]}  # fmt: skip


def _found(p: Predictor, data: ImageDataset, conf: float) -> tuple[int, int]:
    """Annotated faces (not ignored) overlapped by IoU >= 0.5 by a detection scoring >= ``conf``."""
    found = total = 0
    results = p.predict(list(data.sources), conf=conf, iou=FACE_IOU, max_det=1000)
    for target, dets in zip(data.targets or [], results, strict=True):
        gt = target.boxes[~target.crowd]
        total += len(gt)
        if hasattr(dets, "boxes") and len(dets) and len(gt):
            found += int((box_iou(gt, dets.boxes).max(axis=1) >= 0.5).sum())
    return found, total

"""Face detection scored against boxes drawn by people: AP@0.5 (and COCO's other figures).

Ground truth comes from dlib imglab XML files (:func:`imgrec.data.imglab.read_imglab`); several
files are read as one set. The detector runs once per photo through ``Predictor.predict`` with
a low ``conf`` (the whole precision-recall curve counts), scored by pycocotools' ``COCOeval``
through the :class:`~imgrec.evaluation.detection.DetectionAccumulator`; ``found`` counts the
annotated faces that some detection at the detector's own operating point overlaps by IoU >= 0.5.

Example:
    >>> # r = evaluate_faces(["faces/testing.xml", "faces/training.xml"], detector="yunet", weights="yunet.onnx")
    >>> # r["map50"], r["found"], r["faces"]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.analyzers.faces.detectors import DEFAULT_CONF, FACE_IOU, face_detector
from imgrec.data import ImageDataset
from imgrec.data.imglab import read_imglab
from imgrec.errors import DatasetError
from imgrec.evaluation.detection import DetectionAccumulator
from imgrec.inference import Predictor
from imgrec.tasks.boxes import box_iou
from imgrec.tasks.detect import Detections
from imgrec.types import ItemError

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
    not ignored), ``found`` (of them, matched at the detector's own ``conf``), ``seconds`` and
    ``ms_per_image`` (decode included), and the unreadable ``bad_files``."""
    data = read_face_sets(files)
    p = predictor or face_detector(detector, weights=weights, threads=threads)
    name = str(p.meta.get("model", detector))
    start = time.perf_counter()
    results = p.predict(list(data.sources), conf=EVAL_CONF, iou=FACE_IOU, max_det=1000)
    seconds = time.perf_counter() - start
    acc, own = DetectionAccumulator(["face"], conf=DEFAULT_CONF.get(name, 0.5)), DEFAULT_CONF.get(name, 0.5)
    found = total = 0
    bad = []
    for source, target, dets in zip(data.sources, data.targets or [], results, strict=True):
        if isinstance(dets, ItemError):
            bad.append({"source": source, "error": dets.message})
            continue
        acc.add(source, target.boxes, target.labels, target.crowd, dets, dets.image_size)
        found, total = found + _found(target.boxes[~target.crowd], dets, own), total + int((~target.crowd).sum())
    if not len(acc):
        raise DatasetError(f"None of the {len(data)} images could be read (first error: {bad[0]['error']}).")
    m = acc.compute()
    keep = ("images", "gt_boxes", "detections", "map", "map50", "map75", "ar100")
    return {"detector": name, **{k: m.get(k) for k in keep}, "faces": total, "found": found, "conf": own,
            "seconds": round(seconds, 3), "ms_per_image": round(1000 * seconds / len(data), 2),
            "bad_files": bad}  # fmt: skip


def _found(gt: np.ndarray, dets: Detections, conf: float) -> int:
    """Annotated faces overlapped by IoU >= 0.5 by a detection scoring >= ``conf``. (Greedy NMS
    keeps the same boxes above ``conf`` whether the threshold comes before it or after.)"""
    kept = dets.boxes[dets.scores >= conf]
    if not len(gt) or not len(kept):
        return 0
    return int((box_iou(gt, kept).max(axis=1) >= 0.5).sum())

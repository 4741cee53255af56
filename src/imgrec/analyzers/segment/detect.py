"""Boxes from a detector as SAM prompts: a detection run finds the objects, SAM outlines them.

Each detected box becomes one box prompt; the instance keeps the detector's label and class,
its score is SAM's predicted IoU and ``extra["detector_score"]`` the detector's score. The
detector reads the input its own way (its own decode and preprocessing, boxes mapped back to
the original pixels), SAM its way: both agree on the original image's pixels.

Example:
    >>> # from imgrec.inference import Predictor
    >>> # found = segment_detections(load_sam("sam_vit_b.pth"), Predictor.from_run("runs/yolox-nano"),
    >>> #                            "street.jpg", conf=0.3)
    >>> # [(i.label, i.extra["detector_score"], i.score) for i in found.instances]
"""

from __future__ import annotations

from typing import Any

from imgrec.analyzers.segment.prompts import Prompt
from imgrec.errors import UsageError
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits
from imgrec.tasks.instance import Instances


def detection_prompts(detections: Any) -> list[Prompt]:
    """One box prompt per detection (or instance segmenter's object) with a non-empty box, best score first."""
    out = []
    found = detections.instances if isinstance(detections, Instances) else detections.detections
    for k, d in enumerate(found):
        x1, y1, x2, y2 = (float(v) for v in d.box)
        if x2 > x1 and y2 > y1:
            out.append(Prompt(box=(x1, y1, x2, y2), label=d.label, class_id=int(d.class_id),
                              extra={"detector_score": round(float(d.score), 6), "detection": k}))  # fmt: skip
    return out


def check_detector(detector: Any) -> None:
    """The detector must be a detection (or instance segmentation: its boxes) run's Predictor."""
    task = getattr(getattr(detector, "task", None), "name", None)
    if task not in ("detect", "instance"):
        name = getattr(detector, "name", detector)
        raise UsageError(f"Boxes come from a detection run; {name} is a {task} model. "
                         "Import or train a detector (imgrec import FILE --task detect ...) "
                         "and pass its run.")  # fmt: skip


def segment_detections(
    sam: Any, detector: Any, image: Any, *, limits: DecodeLimits = DEFAULT_LIMITS, **detect_options: Any
) -> Instances:  # fmt: skip
    """The detector's objects on ``image`` (path, bytes or RGB array), each outlined by SAM.

    Args:
        sam: a :class:`~imgrec.analyzers.segment.sam.SamSegmenter`.
        detector: a detection run's :class:`~imgrec.inference.Predictor`.
        image: the input, read by each model its own way.
        limits: decode limits.
        detect_options: the detector's ``conf``, ``iou``, ``max_det``, ``classes``.
    """
    check_detector(detector)
    (found,) = detector.predict([image], limits=limits, **detect_options)
    sam.set_image(image, limits)
    prompts = detection_prompts(found)
    if not prompts:
        return Instances((), sam.image.original, sam.image.path)
    return sam.segment(prompts)

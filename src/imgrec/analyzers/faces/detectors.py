"""Face detection: a detector by name (``yunet``, ``ultraface``, ``dlib-hog``, ``dlib-cnn``,
``haar``; also ``yunet-n``, ``ultraface-slim``) behind a :class:`~imgrec.inference.Predictor`,
so faces come from the same path as every detection (decode, preprocessing geometry, the
``detect`` task's threshold and NMS) with their 5 landmarks when the detector gives them.

Example:
    >>> DEFAULT_CONF["yunet"], "haar" in DETECTORS
    (0.6, True)
    >>> # faces = detect("group.jpg", weights="face_detection_yunet_2023mar.onnx")
    >>> # faces[0].detections[0].landmarks
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imgrec.errors import UsageError
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits
from imgrec.imaging.align import AlignedFace, align_face
from imgrec.inference import Predictor
from imgrec.inference.predictor import ImageInput
from imgrec.models.face_classical import CLASSICAL_NAMES
from imgrec.models.faces import FACE_CLASSES, FACE_FILES, WeightsUnavailable
from imgrec.tasks.detect import Detection

DETECTORS = (*FACE_FILES, *CLASSICAL_NAMES)
# Each detector's own operating point (its upstream demo's, or 0.5 = the margin 0 of dlib/OpenCV).
DEFAULT_CONF = {"yunet": 0.6, "yunet-n": 0.6, "ultraface": 0.7, "ultraface-slim": 0.7,
                "dlib-hog": 0.5, "dlib-cnn": 0.5, "haar": 0.5}  # fmt: skip
FACE_IOU = 0.3  # faces rarely overlap much; YuNet's and UltraFace's demos suppress from 0.3


def face_detector(
    detector: str = "yunet", *, weights: str | Path | None = None, threads: int | None = None,
    weights_option: str = "weights=FILE", **model_args: Any,
) -> Predictor:  # fmt: skip
    """A Predictor for the face detector ``detector``.

    Args:
        detector: one of :data:`DETECTORS`.
        weights: the ONNX file (YuNet, UltraFace); None: the official file, downloaded once
            into the weights cache and checked by sha256. dlib and Haar need none.
        threads: CPU threads for the model's math (None: the runtime's default).
        weights_option: how the caller gives the file, for messages (a command's ``--weights``).
        **model_args: the detector's options (dlib: ``upsample``, ``landmarks``).

    Raises:
        WeightsUnavailable: no file given and none downloadable (offline), or the given one is missing.
    """
    from imgrec.models import create_model

    if detector not in DETECTORS:
        from imgrec.errors import UnknownNameError, did_you_mean

        raise UnknownNameError(f"Unknown face detector {detector!r}.{did_you_mean(detector, DETECTORS)} "
                               f"Detectors: {', '.join(DETECTORS)}.")  # fmt: skip
    if weights is not None and detector not in FACE_FILES:
        raise UsageError(f"{detector} takes no weights file (its model comes with its package); drop "
                         f"{weights_option.split('=')[0]}.")  # fmt: skip
    args = {**model_args, **({"weights": weights} if weights is not None else {})}
    try:
        model = create_model(detector, list(FACE_CLASSES), **args)
    except WeightsUnavailable as exc:
        raise exc.for_option(weights_option) from None
    if threads is not None:
        model.set_threads(threads)
    return Predictor(model, {"task": "detect", "model": detector})


@functools.lru_cache(maxsize=4)
def cached_detector(detector: str, weights: str | None = None) -> Predictor:
    """A face detector's Predictor, built once per (name, weights) and reused (the functions that
    take a detector by name call it)."""
    return face_detector(detector, weights=weights)


def face_options(detector: str, conf: float | None = None, iou: float | None = None,
                 max_det: int | None = None) -> dict[str, Any]:  # fmt: skip
    """The ``detect`` task's options with the detector's own defaults."""
    return {"conf": DEFAULT_CONF.get(detector, 0.5) if conf is None else conf,
            "iou": FACE_IOU if iou is None else iou, "max_det": 1000 if max_det is None else max_det}  # fmt: skip


def detect(
    images: ImageInput | Iterable[ImageInput], *, detector: str = "yunet", weights: str | Path | None = None,
    conf: float | None = None, iou: float | None = None, max_det: int | None = None,
    predictor: Predictor | None = None, limits: DecodeLimits = DEFAULT_LIMITS,
) -> list[Any]:  # fmt: skip
    """The faces in each image (paths, bytes, RGB arrays or PIL images).

    Returns:
        One ``Detections`` per input (boxes and landmarks in the original image's pixels, best
        first; empty when the image has no face), or an ``ItemError`` for an unreadable one.

    Example:
        >>> # (faces,) = detect("team.jpg", weights="yunet.onnx")
        >>> # [d.box for d in faces.detections]
    """
    p = predictor or cached_detector(detector, None if weights is None else str(weights))
    name = str(p.meta.get("model", detector))
    return p.predict(images, limits=limits, **face_options(name, conf, iou, max_det))


def align(image: Any, face: Detection, *, template: str = "arcface-112", margin: float = 0.2) -> AlignedFace:
    """One detected face's crop for an embedder: aligned by its landmarks, or (a detector
    without landmarks) a square crop of its box flagged ``aligned=False``."""
    return align_face(image, face.landmarks, face.box, template=template, margin=margin)

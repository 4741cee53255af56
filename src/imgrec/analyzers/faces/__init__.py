"""Faces without a database: detect (boxes and 5 landmarks), align for an embedder, blur for
privacy, and score a detector on annotated photos. Also reached as ``imgrec.faces``.

Example:
    >>> import imgrec
    >>> imgrec.faces.DETECTORS[:2]
    ('yunet', 'yunet-n')
    >>> # (faces,) = imgrec.faces.detect("team.jpg", weights="face_detection_yunet_2023mar.onnx")
    >>> # crop = imgrec.faces.align(image, faces.detections[0]).image       # 112 x 112, aligned
    >>> # imgrec.faces.blur_files([("team.jpg", None)], "out/", imgrec.faces.face_detector(), {})
"""

from imgrec.analyzers.faces.blur import Blurred, blur_files, blur_image
from imgrec.analyzers.faces.detectors import (
    DEFAULT_CONF,
    DETECTORS,
    align,
    detect,
    face_detector,
    face_options,
)
from imgrec.analyzers.faces.evaluate import evaluate_faces, read_face_sets
from imgrec.imaging.align import TEMPLATES, AlignedFace, align_face
from imgrec.imaging.privacy import obscure

__all__ = [
    "DEFAULT_CONF",
    "DETECTORS",
    "TEMPLATES",
    "AlignedFace",
    "Blurred",
    "align",
    "align_face",
    "blur_files",
    "blur_image",
    "detect",
    "evaluate_faces",
    "face_detector",
    "face_options",
    "obscure",
    "read_face_sets",
]

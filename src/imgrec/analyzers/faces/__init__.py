"""Faces: detect (boxes and 5 landmarks), align, embed, recognize against a face collection,
cluster, evaluate detectors and embedders, blur for privacy. Also reached as ``imgrec.faces``.

Example:
    >>> import imgrec
    >>> imgrec.faces.DETECTORS[:2], imgrec.faces.EMBEDDERS
    (('yunet', 'yunet-n'), ('dlib-resnet', 'sface'))
    >>> # (faces,) = imgrec.faces.detect("team.jpg", weights="face_detection_yunet_2023mar.onnx")
    >>> # crop = imgrec.faces.align(image, faces.detections[0]).image       # 112 x 112, aligned
    >>> # imgrec.faces.blur_files([("team.jpg", None)], "out/", imgrec.faces.face_detector(), {})
    >>> # emb = imgrec.faces.face_embedder("dlib-resnet")
    >>> # rec = imgrec.faces.FaceRecognizer(imgrec.faces.face_detector(), emb)
    >>> # rec.verify("a.jpg", "b.jpg", threshold=0.93).same
"""

from imgrec.analyzers.faces.blur import Blurred, blur_files, blur_image
from imgrec.analyzers.faces.cluster import ClusteredFace, FaceClusters, cluster_faces, cluster_vectors
from imgrec.analyzers.faces.collections import (
    DEFAULT_THRESHOLDS,
    collection_embedder,
    create_collection,
    default_threshold,
)
from imgrec.analyzers.faces.detectors import (
    DEFAULT_CONF,
    DETECTORS,
    align,
    cached_detector,
    detect,
    face_detector,
    face_options,
)
from imgrec.analyzers.faces.embedders import (
    EMBEDDERS,
    DecodedImage,
    EmbeddedFace,
    FaceEmbedder,
    decode_input,
    embed_faces,
    face_embedder,
)
from imgrec.analyzers.faces.evaluate import evaluate_faces, read_face_sets
from imgrec.analyzers.faces.evaluate_embed import (
    THRESHOLD_KEY,
    evaluate_embedder,
    read_identities,
    threshold_from_report,
    verification_figures,
)
from imgrec.analyzers.faces.recognize import (
    EnrolledImage,
    EnrollReport,
    FaceRecognizer,
    IdentifiedFace,
    PreparedEnrollment,
    Verification,
)
from imgrec.imaging.align import TEMPLATES, AlignedFace, align_face
from imgrec.imaging.privacy import obscure

__all__ = [
    "DEFAULT_CONF",
    "DEFAULT_THRESHOLDS",
    "DETECTORS",
    "EMBEDDERS",
    "TEMPLATES",
    "THRESHOLD_KEY",
    "AlignedFace",
    "Blurred",
    "ClusteredFace",
    "DecodedImage",
    "EmbeddedFace",
    "EnrollReport",
    "EnrolledImage",
    "FaceClusters",
    "FaceEmbedder",
    "FaceRecognizer",
    "IdentifiedFace",
    "PreparedEnrollment",
    "Verification",
    "align",
    "align_face",
    "blur_files",
    "blur_image",
    "cached_detector",
    "cluster_faces",
    "cluster_vectors",
    "collection_embedder",
    "create_collection",
    "decode_input",
    "default_threshold",
    "detect",
    "embed_faces",
    "evaluate_embedder",
    "evaluate_faces",
    "face_detector",
    "face_embedder",
    "face_options",
    "obscure",
    "read_face_sets",
    "read_identities",
    "threshold_from_report",
    "verification_figures",
]

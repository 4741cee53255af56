"""Face embedding: an embedder by name or run (:func:`face_embedder`), and detect → align → embed
for every face of a photo (:func:`embed_faces`).

An image is decoded once, through the one safe path (EXIF orientation applied), at full
resolution; the detector finds the faces (and their 5 landmarks) on that array through its
Predictor; each face is warped onto the embedder's template (``arcface-112``, ``dlib-150``) by
its landmarks, or, for a detector without landmarks, cut as a square crop of its box
(``aligned=False``); the crops go through the embedder's Predictor as arrays (its
preprocessing is the identity on a crop of its own size) and come out L2-normalized.

Example:
    >>> "dlib-resnet" in EMBEDDERS
    True
    >>> # emb = face_embedder("runs/mobilefacenet")            # an `imgrec import --task embed` run
    >>> # faces = embed_faces("team.jpg", face_detector(weights="yunet.onnx"), emb)
    >>> # faces[0].embedding.similarity(faces[1].embedding)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.analyzers.faces.detectors import cached_detector, face_options
from imgrec.errors import ImgrecError, UnknownNameError, UsageError, did_you_mean
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits, decode
from imgrec.imaging.align import align_face
from imgrec.imaging.decode import read_bytes, to_rgb_array
from imgrec.inference import Predictor
from imgrec.inference.predictor import ImageInput, is_pil_image
from imgrec.models.face_embed import EMBEDDER_FILES
from imgrec.models.faces import WeightsUnavailable
from imgrec.tasks.detect import Detection
from imgrec.tasks.embed import Embedding
from imgrec.types import ItemError

EMBEDDERS = ("dlib-resnet", *EMBEDDER_FILES)


class FaceEmbedder:
    """A face embedder: the Predictor of an ``embed`` model plus what a face collection needs
    to know about it.

    Attributes:
        predictor: the Predictor (``predict``, ``forward``/``postprocess`` for serve's batcher).
        name: the embedder's identity, recorded by collections (vectors of two embedders are
            not comparable, so a collection refuses another's).
        dim: the embedding length.
        template: the alignment template its crops are warped onto.
        source: where it was loaded from (a registered name or a run folder's absolute path),
            recorded by the collections made for it so that they can load it again.
        weights: the weights file it was given (``sface``), or None.
    """

    def __init__(self, predictor: Predictor, source: str | None = None, weights: str | None = None) -> None:
        if predictor.task.name != "embed":
            raise UsageError(f"{predictor.name} is a {predictor.task.name} model, not a face embedder. Use a "
                             f"registered embedder ({', '.join(EMBEDDERS)}) or a run of "
                             "`imgrec import FILE --task embed`.")  # fmt: skip
        self.predictor = predictor
        model = predictor.model
        self.name, self.dim, self.template = str(model.name), int(model.dim), str(model.template)  # type: ignore[attr-defined]
        self.source = source if source is not None else str(predictor.run_dir.resolve()) if predictor.run_dir else None
        self.weights = weights
        self._fingerprint: str | None = None

    def __repr__(self) -> str:
        return f"FaceEmbedder({self.name!r}, dim={self.dim}, template={self.template!r})"

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) of what decides the vectors: the name, dimension, template, the model
        file's sha256 and how it is fed (colour order, preprocessing). Two embedders imported
        under one name from different files, or with different ``--norm``, differ here."""
        if self._fingerprint is None:
            model, prep = self.predictor.model, self.predictor.preprocessing
            fed = {k: getattr(prep, k) for k in ("size", "crop_pct", "interpolation", "grayscale", "resize_mode")}
            what = {"name": self.name, "dim": self.dim, "template": self.template, "preprocessing": fed,
                    "mean": [round(float(v), 6) for v in prep.mean], "std": [round(float(v), 6) for v in prep.std],
                    "model": model.identity()}  # type: ignore[attr-defined]  # fmt: skip
            self._fingerprint = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
        return self._fingerprint

    @property
    def size(self) -> int:
        """The side of the template's crops."""
        from imgrec.imaging.align import get_template

        return get_template(self.template).size

    def predict(self, images: ImageInput | Iterable[ImageInput], **kwargs: Any) -> list[Embedding | ItemError]:
        """Embeddings of face crops (paths, bytes, arrays: each image is taken as one face)."""
        return self.predictor.predict(images, **kwargs)

    def vectors(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """float32 ``(N, dim)`` unit vectors of aligned RGB uint8 crops."""
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        found = self.predictor.predict(list(crops))
        return np.stack([e.vector for e in found])


def face_embedder(name_or_run: str | Path = "dlib-resnet", weights: str | Path | None = None,
                  threads: int | None = None, weights_option: str = "weights=FILE") -> FaceEmbedder:  # fmt: skip
    """A face embedder by registered name (:data:`EMBEDDERS`) or embed run directory.

    Args:
        name_or_run: ``"dlib-resnet"``, ``"sface"``, or a run of ``imgrec import FILE --task embed``.
        weights: ``sface``'s ONNX file (None: the official one, downloaded once, sha256-checked).
        threads: CPU threads for the model's math (None: the runtime's default).
        weights_option: how the caller gives the file, for messages (a command's ``--embedder-weights``).

    Raises:
        UnknownNameError: neither a registered embedder nor an existing folder (close names listed).
        UsageError: ``weights`` for a model that takes none, or a run of another task.
        WeightsUnavailable: ``sface`` without a file while offline, or a given file that is missing.
    """
    from imgrec.models import create_model

    key, drop = str(name_or_run), weights_option.split("=")[0]
    if key in EMBEDDERS:
        if weights is not None and key not in EMBEDDER_FILES:
            raise UsageError(f"{key} takes no weights file (its model comes with its package); drop {drop}.")
        args: dict[str, Any] = {"weights": weights} if weights is not None else {}
        try:
            model = create_model(key, [], **args)
        except WeightsUnavailable as exc:
            raise exc.for_option(weights_option) from None
        if threads is not None:
            model.set_threads(threads)
        given = str(Path(weights).resolve()) if weights is not None else None
        return FaceEmbedder(Predictor(model, {"task": "embed", "model": key}), source=key, weights=given)
    if Path(key).is_dir():
        if weights is not None:
            raise UsageError(f"{key} is a run: it holds its own model file; drop {drop}.")
        return FaceEmbedder(Predictor.from_run(key, threads=threads))
    raise UnknownNameError(f"Unknown face embedder {key!r}.{did_you_mean(key, EMBEDDERS)} Embedders: "
                           f"{', '.join(EMBEDDERS)}, or the folder of an `imgrec import FILE --task embed` "
                           "run.")  # fmt: skip


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """An input decoded once: the RGB array, the sha256 of what identifies it (the file's bytes;
    an array's shape and pixels), and its name (a path) when it has one."""

    array: np.ndarray
    sha256: str
    name: str | None = None


def decode_input(item: ImageInput | DecodedImage, limits: DecodeLimits = DEFAULT_LIMITS) -> DecodedImage:
    """Decode a path, bytes, RGB uint8 array or PIL image through the safe path, at full size
    (a :class:`DecodedImage` is returned as it is)."""
    if isinstance(item, DecodedImage):
        return item
    if isinstance(item, str | Path):
        data = read_bytes(item, limits)
        return DecodedImage(decode(data, limits=limits, name=str(item)), hashlib.sha256(data).hexdigest(), str(item))
    if isinstance(item, bytes | bytearray):
        data = bytes(item)
        return DecodedImage(decode(data, limits=limits, name="upload"), hashlib.sha256(data).hexdigest())
    if is_pil_image(item):
        item = to_rgb_array(item)  # type: ignore[arg-type]
    arr = np.asarray(item)
    if not isinstance(item, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise UsageError(f"Expected an image path, encoded bytes, an RGB uint8 array or a PIL image; received "
                         f"{type(item).__name__} {getattr(arr, 'shape', '')}.")  # fmt: skip
    digest = hashlib.sha256(repr(arr.shape).encode() + np.ascontiguousarray(arr).tobytes()).hexdigest()
    return DecodedImage(arr, digest)


@dataclass(frozen=True, eq=False)
class EmbeddedFace:
    """One face of an image, embedded.

    Attributes:
        detection: its box, score and landmarks in the image's pixels (None: no face was found and
            the whole image was taken as the face, see :func:`embed_faces`' ``fallback``).
        crop: the RGB uint8 crop the embedder saw (the template's size).
        aligned: the crop was warped by the face's landmarks (False: a square crop of its box).
        embedding: its unit vector.
    """

    detection: Detection | None
    crop: np.ndarray
    aligned: bool
    embedding: Embedding

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        """The face's box in the image's pixels (None for the whole-image fallback)."""
        return self.detection.box if self.detection is not None else None

    def to_dict(self, vector: bool = False) -> dict[str, Any]:
        """JSON-ready: the detection (box, score, landmarks), ``aligned``, the embedder and, when
        asked, the vector."""
        out: dict[str, Any] = self.detection.to_dict() if self.detection is not None else {"box": None}
        out.update(aligned=self.aligned, embedder=self.embedding.embedder)
        if vector:
            out["embedding"] = [round(float(v), 7) for v in self.embedding.vector]
        return out


def area(d: Detection) -> float:
    """A detection's box area in pixels."""
    x1, y1, x2, y2 = d.box
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def find_faces(
    image: np.ndarray, detector: Predictor | str, options: dict[str, Any] | None = None
) -> list[Detection]:
    """The faces of a decoded image, best score first (``options``: the detector's own by default)."""
    p = cached_detector(detector) if isinstance(detector, str) else detector
    opts = options if options is not None else face_options(str(p.meta.get("model", p.name)))
    (found,) = p.predict(image, **opts)
    if isinstance(found, ItemError):
        raise ImgrecError(found.message, code=found.code)
    return list(found.detections)


def embed_faces(
    image: ImageInput | DecodedImage, detector: Predictor | str, embedder: FaceEmbedder, *, all_faces: bool = True,
    largest_first: bool = False, fallback: bool = False, options: dict[str, Any] | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> list[EmbeddedFace]:  # fmt: skip
    """Detect, align and embed the faces of one image.

    Args:
        image: a path, bytes, RGB array, PIL image, or a :class:`DecodedImage`.
        detector: a face detector's Predictor (:func:`~imgrec.analyzers.faces.face_detector`) or name.
        embedder: the embedder (:func:`face_embedder`).
        all_faces: every face (True), or only the largest one (False: enrollment from a photo).
        largest_first: order by box area instead of detection score.
        fallback: when no face is found, take the whole image as one face (a square crop,
            ``aligned=False``, ``detection=None``): for folders of face crops.
        options: the detector's options (default: its own conf, NMS IoU 0.3).
        limits: decode limits.

    Returns:
        One :class:`EmbeddedFace` per face (an empty list when there is none and no fallback).

    Raises:
        InvalidImageError: the image cannot be decoded (and the other decode errors).
    """
    decoded = image if isinstance(image, DecodedImage) else decode_input(image, limits)
    faces = find_faces(decoded.array, detector, options)
    if largest_first or not all_faces:
        faces.sort(key=area, reverse=True)
    faces = faces if all_faces else faces[:1]
    crops = [align_face(decoded.array, d.landmarks, d.box, template=embedder.template) for d in faces]
    found: list[Detection | None] = list(faces)
    if not faces and fallback:
        h, w = decoded.array.shape[:2]
        crops, found = [align_face(decoded.array, box=(0, 0, w, h), template=embedder.template, margin=0.0)], [None]
    if not crops:
        return []
    embeddings = embedder.predictor.predict([c.image for c in crops])
    return [EmbeddedFace(d, c.image, c.aligned, Embedding(e.vector, e.embedder, decoded.name))
            for d, c, e in zip(found, crops, embeddings, strict=True)]  # fmt: skip

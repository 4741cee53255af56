"""Face recognition against a face collection: enroll persons from photos, identify every face of
a photo, verify that two photos show one person.

:class:`FaceRecognizer` ties a detector, an embedder and the store's collections together: the
embedder's name goes with every vector, so a collection made with another embedder refuses
them (:class:`~imgrec.errors.ConflictError`). Enrollment keeps one face per photo by default
(the largest), its aligned crop as a JPEG blob and the photo's sha256 + box as the idempotency
key: enrolling the same photos again adds nothing. Similarity is cosine; a collection's
threshold (for example ``threshold_eer`` from :func:`~imgrec.analyzers.faces.evaluate_embedder`)
decides "unknown".

Example:
    >>> # from imgrec.store import open_store
    >>> # rec = FaceRecognizer(face_detector(weights="yunet.onnx"), face_embedder("dlib-resnet"))
    >>> # staff = open_store().collections.create("staff", embedder=rec.embedder.name,
    >>> #                                         dim=rec.embedder.dim, threshold=0.9)
    >>> # rec.enroll(staff, "ada", ["ada1.jpg", "ada2.jpg"]).added
    >>> # [(f.label, f.similarity) for f in rec.identify(staff, "team.jpg")]
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imgrec.analyzers.faces.embedders import DecodedImage, EmbeddedFace, FaceEmbedder, decode_input, embed_faces
from imgrec.errors import DataError, ImgrecError, UsageError
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits
from imgrec.inference import Predictor
from imgrec.inference.predictor import ImageInput, as_inputs
from imgrec.tasks.detect import Detection

UNKNOWN = "unknown"
ADDED, EXISTING, NO_FACE, ERROR = "added", "already_enrolled", "no_face", "error"


@dataclass(frozen=True)
class EnrolledImage:
    """What enrollment did with one image.

    Attributes:
        source: the path given (None for bytes and arrays).
        status: ``"added"``, ``"already_enrolled"`` (the same image and box were enrolled for
            this person before: nothing changes), ``"no_face"`` (nothing added) or ``"error"``
            (unreadable: nothing added; ``message`` says why).
        face_ids: the faces' ids in the collection (new or existing).
        boxes: the faces' boxes in the image's pixels.
        message: why the image added nothing.
    """

    source: str | None
    status: str
    face_ids: tuple[int, ...] = ()
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "status": self.status, "face_ids": list(self.face_ids),
                "boxes": [[round(v, 2) for v in b] for b in self.boxes], "message": self.message}  # fmt: skip


@dataclass(frozen=True)
class EnrollReport:
    """One enrollment call: the person, the collection, and an :class:`EnrolledImage` per image."""

    person: str
    collection: str
    images: tuple[EnrolledImage, ...]

    @property
    def added(self) -> tuple[int, ...]:
        """Ids of the faces this call added."""
        return tuple(i for r in self.images if r.status == ADDED for i in r.face_ids)

    @property
    def skipped(self) -> tuple[EnrolledImage, ...]:
        """The images that added nothing (already enrolled, no face, unreadable)."""
        return tuple(r for r in self.images if r.status != ADDED)

    def to_dict(self) -> dict[str, Any]:
        return {"person": self.person, "collection": self.collection, "added": len(self.added),
                "skipped": len(self.skipped), "images": [r.to_dict() for r in self.images]}  # fmt: skip


@dataclass(frozen=True)
class IdentifiedFace:
    """One face of an identified photo: where it is and who it resembles.

    Attributes:
        detection: box, score and landmarks in the photo's pixels.
        aligned: its crop was warped by its landmarks.
        matches: the collection's best persons, most similar first (``Match``: person,
            similarity, ``known`` = at or above the collection's threshold).
    """

    detection: Detection
    aligned: bool
    matches: tuple[Any, ...]

    @property
    def label(self) -> str:
        """The best match's person when it passes the threshold, else ``"unknown"``."""
        return self.matches[0].label if self.matches else UNKNOWN

    @property
    def similarity(self) -> float | None:
        """The best match's cosine similarity (None with an empty collection)."""
        return float(self.matches[0].similarity) if self.matches else None

    def to_dict(self) -> dict[str, Any]:
        return {**self.detection.to_dict(), "aligned": self.aligned, "label": self.label,
                "similarity": None if self.similarity is None else round(self.similarity, 6),
                "matches": [{"person": m.person, "similarity": round(float(m.similarity), 6), "known": m.known}
                            for m in self.matches]}  # fmt: skip


@dataclass(frozen=True)
class Verification:
    """Whether two photos show one person: their largest faces' cosine ``similarity`` against
    ``threshold`` (``same``), and those faces."""

    similarity: float
    threshold: float
    same: bool
    face_a: Detection | None
    face_b: Detection | None

    def to_dict(self) -> dict[str, Any]:
        return {"similarity": round(self.similarity, 6), "threshold": self.threshold, "same": self.same,
                "face_a": self.face_a.to_dict() if self.face_a else None,
                "face_b": self.face_b.to_dict() if self.face_b else None}  # fmt: skip


class FaceRecognizer:
    """Detector + embedder + a face collection: enroll, identify, verify.

    Args:
        detector: a face detector's Predictor (:func:`~imgrec.analyzers.faces.face_detector`) or name.
        embedder: a :class:`FaceEmbedder` (:func:`~imgrec.analyzers.faces.face_embedder`).
        options: the detector's options (default: its own conf, NMS IoU 0.3).
        keep_crops: store each enrolled face's aligned crop (JPEG) as a blob.
        limits: decode limits for every image.
    """

    def __init__(
        self, detector: Predictor | str, embedder: FaceEmbedder, *, options: dict[str, Any] | None = None,
        keep_crops: bool = True, limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> None:  # fmt: skip
        if not isinstance(embedder, FaceEmbedder):
            raise UsageError(f"Expected a FaceEmbedder (imgrec.faces.face_embedder(...)); received "
                             f"{type(embedder).__name__}.")  # fmt: skip
        self.detector, self.embedder, self.options = detector, embedder, options
        self.keep_crops, self.limits = keep_crops, limits

    def faces(
        self, image: ImageInput | DecodedImage, *, all_faces: bool = True, largest_first: bool = False
    ) -> list[EmbeddedFace]:
        """Every face of ``image`` (or the largest), detected, aligned and embedded."""
        return embed_faces(image, self.detector, self.embedder, all_faces=all_faces, largest_first=largest_first,
                           options=self.options, limits=self.limits)  # fmt: skip

    def enroll(
        self, collection: Any, person: str, images: ImageInput | Iterable[ImageInput], *, all_faces: bool = False
    ) -> EnrollReport:
        """Enroll ``person``'s faces from photos into ``collection``, in one transaction.

        Args:
            collection: a :class:`~imgrec.store.FaceCollection` made for this embedder.
            person: the person's name (created when new).
            images: paths, bytes, RGB arrays or PIL images.
            all_faces: enroll every face of each photo (False: its largest face, which is the
                person in a portrait; a group photo would enroll strangers under this name).

        Returns:
            What happened to each image; images without a face and unreadable ones add nothing.

        Raises:
            ConflictError: the collection holds another embedder's vectors, or a face was
                enrolled for another person (nothing of this call is added).
        """
        return self.commit_enrollment(collection, person, self.prepare_enrollment(images, all_faces=all_faces))

    def prepare_enrollment(
        self, images: ImageInput | Iterable[ImageInput | DecodedImage], *, all_faces: bool = False
    ) -> PreparedEnrollment:
        """The model half of :meth:`enroll`: decode, detect, align, embed (and encode the crops);
        nothing touches the database. A server runs it in its model thread and
        :meth:`commit_enrollment` beside it."""
        from imgrec.store import FaceSource

        rows, vectors, sources = [], [], []
        for item in as_inputs(images):  # type: ignore[arg-type]
            faces, outcome = self._enroll_faces(item, all_faces)
            rows.append((outcome, faces))
            for f in faces:
                vectors.append(f.embedding.vector)
                sources.append(FaceSource(outcome.sha256, f.box, _jpeg(f.crop) if self.keep_crops else None))
        return PreparedEnrollment(tuple(rows), np.stack(vectors) if vectors else None, tuple(sources))

    def commit_enrollment(self, collection: Any, person: str, prepared: PreparedEnrollment) -> EnrollReport:
        """The database half of :meth:`enroll`: one transaction adding the prepared faces."""
        result = None
        if prepared.vectors is not None:
            e = self.embedder
            result = collection.enroll(person, prepared.vectors, embedder=e.name, sources=list(prepared.sources),
                                       fingerprint=e.fingerprint)  # fmt: skip
        ids = iter(result.face_ids if result is not None else ())
        fresh = frozenset(result.added if result is not None else ())
        added = set(fresh)
        return EnrollReport(person, collection.name,
                            tuple(_outcome(o, f, ids, added, fresh) for o, f in prepared.rows))  # fmt: skip

    def _enroll_faces(self, item: ImageInput | DecodedImage, all_faces: bool) -> tuple[list[EmbeddedFace], _Pending]:
        name = str(item) if isinstance(item, str) or hasattr(item, "__fspath__") else None
        try:
            decoded = decode_input(item, self.limits)
            faces = embed_faces(decoded, self.detector, self.embedder, all_faces=all_faces, options=self.options)
        except ImgrecError as exc:
            if isinstance(exc, UsageError):
                raise
            return [], _Pending(name, "", f"{exc.code}: {exc}")
        return faces, _Pending(name, decoded.sha256, "" if faces else "no face found")

    def identify(self, collection: Any, image: ImageInput, *, top_k: int = 1) -> list[IdentifiedFace]:
        """Every face of ``image`` with its ``top_k`` best persons in ``collection`` (one face
        each), largest face first. An image without a face gives an empty list.

        Raises:
            InvalidImageError: the image cannot be decoded.
            ConflictError: the collection holds another embedder's vectors.
        """
        return self.match(collection, self.faces(image, largest_first=True), top_k=top_k)

    def match(self, collection: Any, faces: Sequence[EmbeddedFace], *, top_k: int = 1) -> list[IdentifiedFace]:
        """The database half of :meth:`identify`: each embedded face's ``top_k`` best persons."""
        out = []
        for f in faces:
            matches = collection.search(f.embedding.vector, embedder=self.embedder.name, top_k=top_k,
                                        fingerprint=self.embedder.fingerprint)  # fmt: skip
            out.append(IdentifiedFace(f.detection, f.aligned, tuple(matches)))  # type: ignore[arg-type]
        return out

    def verify(self, image_a: ImageInput, image_b: ImageInput, *, threshold: float) -> Verification:
        """Whether the largest faces of two photos are one person (cosine >= ``threshold``).

        Raises:
            DataError: one of the images has no face (code ``no_face``).
        """
        if not -1.0 <= float(threshold) <= 1.0:
            raise UsageError(f"threshold is a cosine similarity in [-1, 1]; received {threshold}.")
        a, b = (self._largest(img, which) for img, which in ((image_a, "first"), (image_b, "second")))
        similarity = float(np.einsum("i,i->", a.embedding.vector, b.embedding.vector))
        return Verification(similarity, float(threshold), similarity >= threshold, a.detection, b.detection)

    def _largest(self, image: ImageInput, which: str) -> EmbeddedFace:
        faces = embed_faces(image, self.detector, self.embedder, all_faces=False, options=self.options,
                            limits=self.limits)  # fmt: skip
        if not faces:
            raise DataError(f"No face found in the {which} image; verification needs a face in each.", code="no_face")
        return faces[0]


@dataclass(frozen=True, eq=False)
class PreparedEnrollment:
    """Faces embedded for an enrollment, not yet in a collection (:meth:`FaceRecognizer.prepare_enrollment`).

    Attributes:
        rows: per image, what was read and its faces.
        vectors: every face's unit vector, ``(N, dim)`` (None: no face at all).
        sources: every face's image sha256, box and crop.
    """

    rows: tuple[tuple[_Pending, list[EmbeddedFace]], ...]
    vectors: np.ndarray | None
    sources: tuple[Any, ...]

    @property
    def faces(self) -> int:
        """How many faces were found."""
        return len(self.sources)


@dataclass(frozen=True)
class _Pending:
    """An image read for enrollment, before the store has answered."""

    source: str | None
    sha256: str
    message: str


def _outcome(
    p: _Pending, faces: Sequence[EmbeddedFace], ids: Any, added: set[int], fresh: frozenset[int]
) -> EnrolledImage:
    """One image's status; ``added`` loses the ids it claims, so a second copy of the same image
    in one call is reported as such, not as added twice."""
    if not faces:
        return EnrolledImage(p.source, ERROR if p.sha256 == "" else NO_FACE, message=p.message)
    mine = tuple(next(ids) for _ in faces)
    boxes = tuple(f.box for f in faces if f.box is not None)
    if any(i in added for i in mine):
        added.difference_update(mine)
        return EnrolledImage(p.source, ADDED, mine, boxes)
    again = all(i in fresh for i in mine)
    why = "the same image as an earlier one of this call" if again else "already enrolled"
    return EnrolledImage(p.source, EXISTING, mine, boxes, why)


def _jpeg(crop: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, "JPEG", quality=92)
    return buf.getvalue()

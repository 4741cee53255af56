"""What the face-collection API takes and returns: plain frozen dataclasses, no database types.

Example:
    >>> src = FaceSource.of_image(b"...jpeg bytes...", box=(10, 20, 110, 140.5))
    >>> src.box_key
    '10.00 20.00 110.00 140.50'
    >>> Match(face_id=1, person="ada", similarity=0.31, known=False).label
    'unknown'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from imgrec.errors import UsageError
from imgrec.store.blobs import check_sha256, sha256_hex

UNKNOWN = "unknown"
MAX_NAME = 200


def check_name(name: str, what: str) -> str:
    """A collection or person name: 1 to 200 characters, no surrounding blanks."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or name != name.strip():
        raise UsageError(
            f"Expected a {what} name of 1 to {MAX_NAME} characters without leading or trailing "
            f"spaces, received {name!r}."
        )
    return name


def box_key(box: tuple[float, float, float, float] | None) -> str:
    """The canonical text of a box (``"x1 y1 x2 y2"``, 2 decimals); ``""`` for the whole image."""
    if box is None:
        return ""
    values = [float(v) for v in box]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise UsageError(f"Expected a box (x1, y1, x2, y2) of 4 finite numbers, received {box!r}.")
    x1, y1, x2, y2 = values
    if x2 <= x1 or y2 <= y1:
        raise UsageError(f"Expected a box with x2 > x1 and y2 > y1, received {box!r}.")
    return " ".join(f"{v:.2f}" for v in values)


@dataclass(frozen=True)
class FaceSource:
    """Where an enrolled face came from.

    Attributes:
        sha256: hex sha256 of the source image's bytes (with ``box``, the idempotency key).
        box: the face's box in source pixels, None when the image is the face.
        crop: the encoded face crop (JPEG/PNG bytes) to keep as a blob, or None.
    """

    sha256: str
    box: tuple[float, float, float, float] | None = None
    crop: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_sha256(self.sha256)
        box_key(self.box)

    @classmethod
    def of_image(
        cls, image: bytes, box: tuple[float, float, float, float] | None = None, crop: bytes | None = None
    ) -> FaceSource:
        """The source for a face in ``image`` (its bytes are hashed, not kept)."""
        return cls(sha256_hex(image), box, crop)

    @property
    def box_key(self) -> str:
        """The box as stored."""
        return box_key(self.box)


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's record.

    Attributes:
        fingerprint: sha256 of the embedder's model file and preprocessing (None: not recorded).
        source: where the embedder is loaded from: a registered name or a run folder (None: not recorded).
        weights: the embedder's weights file, when one was given at creation.
    """

    id: int
    name: str
    embedder: str
    dim: int
    threshold: float
    size: int
    created: datetime
    fingerprint: str | None = None
    source: str | None = None
    weights: str | None = None


@dataclass(frozen=True)
class PersonInfo:
    """A person in a collection and how many faces are enrolled for them."""

    name: str
    faces: int
    created: datetime


@dataclass(frozen=True)
class EnrollResult:
    """What an enrollment did: the ids of the faces it added and of those already there, and
    ``face_ids``: the face id of each source given, in the order given (a source given twice
    maps to one face), so a caller can tell which of its images were new."""

    person: str
    added: tuple[int, ...]
    existing: tuple[int, ...]
    face_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Match:
    """One search hit: the face, its person, the cosine similarity, and whether it passes the threshold."""

    face_id: int
    person: str
    similarity: float
    known: bool

    @property
    def label(self) -> str:
        """The person when known, else ``"unknown"``."""
        return self.person if self.known else UNKNOWN

"""Reading label files safely: size limits before parsing, strict text, JSON and XML.

Every function raises :class:`~imgrec.errors.DatasetError` (never a parser's own
exception) with the file named, what was expected and how to fix it. Readers turn those
into per-file :class:`~imgrec.data.boxes.LabelIssue`\\ s where one bad file should not
stop the whole dataset (YOLO, VOC), or let them through where the file *is* the dataset
(COCO JSON).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from imgrec.data.boxes import MAX_COORD
from imgrec.errors import DatasetError, ImgrecError, MissingInputError
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits
from imgrec.imaging.decode import open_image, read_bytes

_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = frozenset({5, 6, 7, 8})  # orientations that swap width and height


@dataclass(frozen=True)
class LabelLimits:
    """Limits every label reader obeys (hostile or broken files must not exhaust memory).

    Attributes:
        max_json_bytes: a COCO annotation file larger than this is refused before parsing
            (COCO train2017's instances file is 448 MB).
        max_text_bytes: one YOLO label file.
        max_xml_bytes: one Pascal VOC XML file.
        max_boxes: boxes kept per image; the rest are dropped with a ``too_many_boxes`` issue.
    """

    max_json_bytes: int = 1024 * 1024 * 1024
    max_text_bytes: int = 16 * 1024 * 1024
    max_xml_bytes: int = 16 * 1024 * 1024
    max_boxes: int = 10_000


LABEL_LIMITS = LabelLimits()


def read_limited(path: Path, max_bytes: int, what: str) -> bytes:
    """The bytes of ``path``, refused when larger than ``max_bytes`` (checked before reading)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MissingInputError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise DatasetError(f"Cannot read the {what} {path}: {exc.strerror or exc}", code="unreadable_labels") from None
    if size > max_bytes:
        raise DatasetError(
            f"The {what} {path} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB. "
            "Expected a label file, not this; split it, or raise the limit: "
            "imgrec.data.labelio.LABEL_LIMITS = LabelLimits(...).",
            code="labels_too_large",
        )
    try:
        with open(path, "rb") as fh:
            return fh.read(max_bytes + 1)
    except OSError as exc:
        raise DatasetError(f"Cannot read the {what} {path}: {exc.strerror or exc}", code="unreadable_labels") from None


def read_text(path: Path, max_bytes: int, what: str) -> str:
    """UTF-8 text (a BOM is allowed) within the size limit."""
    data = read_limited(path, max_bytes, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"The {what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "expected UTF-8. Re-save it as UTF-8.",
            code="unreadable_labels",
        ) from None


def load_json(path: Path, limits: LabelLimits | None = None) -> Any:
    """Parse a JSON file; NaN/Infinity, huge integers and deep nesting give a DatasetError."""
    text = read_text(path, (limits or LABEL_LIMITS).max_json_bytes, "annotation file")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.", code="unreadable_labels"
        ) from None
    except RecursionError:
        raise DatasetError(
            f"{path} nests JSON too deeply to parse; expected a COCO file (images, annotations, categories).",
            code="unreadable_labels",
        ) from None
    except ValueError as exc:  # integers longer than Python's digit limit, NaN/Infinity
        raise DatasetError(f"{path} holds a value that cannot be used: {exc}.", code="unreadable_labels") from None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a label may hold; expected finite numbers")


def parse_xml(path: Path, limits: LabelLimits | None = None) -> Element:
    """Parse an XML file with defusedxml: no DTDs, no entity expansion, no external references."""
    import defusedxml
    import defusedxml.ElementTree as SafeET

    data = read_limited(path, (limits or LABEL_LIMITS).max_xml_bytes, "annotation file")
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise DatasetError(
            f"{path} uses XML features refused for safety ({type(exc).__name__}); "
            "expected plain Pascal VOC XML without a DTD or entities.",
            code="unreadable_labels",
        ) from None
    except (ParseError, RecursionError, ValueError) as exc:
        raise DatasetError(f"{path} is not well-formed XML: {exc}.", code="unreadable_labels") from None


def number(value: Any) -> float | None:
    """``value`` as a finite float within :data:`MAX_COORD`, else None (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        out = float(value)
    except (ValueError, OverflowError):
        return None
    return out if math.isfinite(out) and abs(out) <= MAX_COORD else None


def oriented_size(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> tuple[int, int]:
    """(width, height) of the image as imgrec decodes it: read from the header, then swapped
    when the EXIF orientation transposes it (5-8), without decoding any pixel.

    Raises:
        MissingInputError, InvalidImageError: the image is missing or unreadable.
    """
    data = read_bytes(path, limits)
    im = open_image(data, limits, str(path))
    w, h = im.size
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # a malformed EXIF block: decode ignores it too
        orientation = None
    return (h, w) if orientation in _TRANSPOSED else (w, h)


def safe_relative(name: str) -> str | None:
    """A relative posix path without ``..`` or a drive/root, or None when ``name`` is not one."""
    rel = name.replace("\\", "/")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or rel.startswith("/") or ".." in parts or ":" in parts[0]:
        return None
    return "/".join(parts)


def describe_error(exc: ImgrecError | OSError) -> str:
    """The message of a reading error, for an issue."""
    return str(exc) if isinstance(exc, ImgrecError) else (exc.strerror or str(exc))


def walk_files(root: Path) -> list[str]:
    """Relative posix paths of the non-hidden files under ``root``, sorted."""
    out: list[str] = []
    for cur, subdirs, names in os.walk(root, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        rel = os.path.relpath(cur, root).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        out += [prefix + n for n in names if not n.startswith(".")]
    return sorted(out)

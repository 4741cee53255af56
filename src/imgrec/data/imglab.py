"""dlib's imglab XML (``<dataset><images><image file=...><box top left width height/>``).

The format of dlib's example face sets (faces-dlib ``training.xml`` / ``testing.xml``): each
``<image>`` names its file (relative to the XML's folder) and lists ``<box>`` elements with
``top``, ``left``, ``width``, ``height`` in pixels, an optional ``label`` and ``ignore='1'``
(a box that is neither to be found nor a false positive: read as COCO's crowd); ``<part>``
children (landmarks) are not read. The XML is parsed with defusedxml within the label size
limit (no DTD, no entities); a box with a missing or non-numeric coordinate, or no area, is
skipped with a ``bad_box`` issue, an image file outside the XML's folder with ``unsafe_path``.

Example:
    >>> # ds = read_imglab("faces/testing.xml")  # ImageDataset(task="detect", classes=["face"])
"""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element

from imgrec.data import labelio
from imgrec.data.boxes import BoxTarget, IssueLog
from imgrec.data.dataset import ImageDataset
from imgrec.data.labelio import number, parse_xml, safe_relative
from imgrec.errors import DatasetError, MissingInputError

DEFAULT_CLASS = "face"


def read_imglab(source: str | Path, *, default_label: str = DEFAULT_CLASS) -> ImageDataset:
    """An imglab XML file as a detection dataset (boxes x1 y1 x2 y2; classes from the ``label``
    attributes, ``default_label`` for boxes without one).

    Raises:
        MissingInputError: the XML file does not exist.
        DatasetError: it is not imglab XML (no ``<images>``), too large, or unsafe XML.
    """
    path = Path(source)
    if not path.is_file():
        raise MissingInputError(f"imglab XML file not found: {path}")
    root = parse_xml(path, labelio.LABEL_LIMITS)
    images = root.find("images")
    if root.tag != "dataset" or images is None:
        raise DatasetError(f"{path} is not dlib imglab XML: expected <dataset><images>...; the root is <{root.tag}>.",
                           code="unreadable_labels")  # fmt: skip
    log = IssueLog()
    parsed = [p for p in (_image(el, path, default_label, log) for el in images.findall("image")) if p]
    classes = sorted({name for _, boxes in parsed for *_, name, _ in boxes}) or [default_label]
    index = {c: k for k, c in enumerate(classes)}
    targets = [_target(boxes, index) for _, boxes in parsed]
    return ImageDataset.for_detection(classes, [src for src, _ in parsed], targets, name=path.stem,
                                      root=str(path.parent.absolute()), label_files=[str(path)] * len(parsed),
                                      issues=log.items)  # fmt: skip


Box = tuple[float, float, float, float, str, bool]


def _image(el: Element, xml: Path, default_label: str, log: IssueLog) -> tuple[str, list[Box]] | None:
    rel = safe_relative(el.get("file", ""))
    if rel is None:
        log.add("unsafe_path", f"image file {el.get('file')!r} is not a path inside {xml.parent}.", str(xml))
        return None
    source = str((xml.parent / rel).absolute())
    boxes = []
    for n, box in enumerate(el.findall("box")):
        parsed = _box(box, default_label)
        if parsed is None:
            log.add("bad_box", f"box {n} {dict(box.attrib)!r} needs numeric top, left and a positive width and "
                    "height.", str(xml), image=source)  # fmt: skip
            continue
        boxes.append(parsed)
    return source, boxes


def _box(el: Element, default_label: str) -> Box | None:
    top, left, width, height = (number(el.get(k)) for k in ("top", "left", "width", "height"))
    if top is None or left is None or width is None or height is None or width <= 0 or height <= 0:
        return None
    label = (el.findtext("label") or el.get("label") or default_label).strip() or default_label
    return left, top, left + width, top + height, label, el.get("ignore", "0").strip() not in ("0", "")


def _target(boxes: list[Box], index: dict[str, int]) -> BoxTarget:
    return BoxTarget.from_lists([b[:4] for b in boxes], [index[b[4]] for b in boxes], crowd=[b[5] for b in boxes],
                                origins=list(range(len(boxes))))  # fmt: skip

"""Pascal VOC segmentation: ``JPEGImages/`` + ``SegmentationClass/`` palette PNGs + image sets.

The items are the ids listed in ``ImageSets/Segmentation/{train,val,test}.txt`` (splits from
them; ``trainval.txt`` alone gives one unsplit set), else every PNG in ``SegmentationClass/``.
A palette PNG's indices are the classes (0 background ... 20 tvmonitor, 255 the "void"
border, ignored); the class names are the 21 of VOC 2012 unless ``classes.txt`` /
``labels.txt`` / ``labelmap.txt`` (CVAT's export of this layout, with colours: its masks are
RGB and map through the colours) or ``classes=`` say otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from imgrec.data import labelio
from imgrec.data.boxes import IssueLog
from imgrec.data.dataset import ImageDataset
from imgrec.data.labelio import read_text
from imgrec.data.mask_folder import class_names, segment_dataset
from imgrec.errors import DatasetError, MissingInputError
from imgrec.imaging import IMAGE_SUFFIXES

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
_MASK_DIR = "SegmentationClass"


def read_voc_segmentation(source: str, classes: Sequence[str] | str | None = None) -> ImageDataset:
    """A Pascal VOC folder with ``SegmentationClass/`` as a ``segment`` dataset.

    Raises:
        MissingInputError: the folder does not exist.
        DatasetError: no ``SegmentationClass/`` or no ``JPEGImages/``.
    """
    root = Path(source).absolute()
    if not root.is_dir():
        raise MissingInputError(f"Pascal VOC folder not found: {source}")
    mask_dir, img_dir = root / _MASK_DIR, root / "JPEGImages"
    if not mask_dir.is_dir() or not img_dir.is_dir():
        raise DatasetError(f"{root} needs JPEGImages/ and {_MASK_DIR}/ (Pascal VOC segmentation).")
    names, cmap = class_names(root, classes, default=VOC_CLASSES)
    log = IssueLog()
    ids, splits = _ids(root, mask_dir)
    pairs, kept = [], []
    for stem, split in zip(ids, splits, strict=True):
        image, mask = _find(img_dir, stem, IMAGE_SUFFIXES), _find(mask_dir, stem, (".png",))
        if image is None or mask is None:
            missing = "image" if image is None else "mask"
            where = str(mask or image or root / "ImageSets" / "Segmentation")
            folder = img_dir.name if image is None else _MASK_DIR
            log.add(f"missing_{missing}", f"{stem} has no {missing} in {folder}/.", where, image=image)
            continue
        pairs.append((image, mask))
        kept.append(split)
    return segment_dataset(root, names, cmap, pairs, kept, log)


def _ids(root: Path, mask_dir: Path) -> tuple[list[str], list[str]]:
    sets = root / "ImageSets" / "Segmentation"
    lists: dict[str, list[str]] = {}
    for split in ("train", "val", "test", "trainval"):
        f = sets / f"{split}.txt"
        if f.is_file():
            text = read_text(f, labelio.LABEL_LIMITS.max_text_bytes, "image set")
            lists[split] = [line.split()[0] for line in text.splitlines() if line.strip()]
    if "train" in lists or "val" in lists:
        lists.pop("trainval", None)
        seen: dict[str, str] = {}
        for split, stems in lists.items():
            for s in stems:
                seen.setdefault(s, split)  # an id in two lists stays in the first
        return list(seen), list(seen.values())
    if "trainval" in lists:
        return lists["trainval"], [""] * len(lists["trainval"])
    stems = sorted(p.stem for p in mask_dir.glob("*.png"))
    return stems, [""] * len(stems)


def _find(folder: Path, stem: str, suffixes: Sequence[str]) -> str | None:
    if "/" in stem or "\\" in stem or stem in ("", ".", ".."):
        return None  # an id is a file name, never a path
    for s in (*suffixes, *(x.upper() for x in suffixes)):
        cand = folder / (stem + s)
        if cand.is_file():
            return str(cand)
    return None

"""Mask folders: ``images/`` + ``masks/`` (one index, palette or colour PNG per image) and class names.

Layout::

    root/images/[split/]name.jpg     the photos (any image format)
    root/masks/[split/]name.png      the class of every pixel (lossless: PNG, BMP, TIFF, GIF)
    root/classes.txt                 one class name per line: line k is class index k

The mask of ``images/a/b.jpg`` is ``masks/a/b.<png|bmp|tif|tiff|gif>``. A first folder named
``train``/``val``/``test`` gives the split. Mask values are class indices, 255 is ignored
(65535 with more than 255 classes); a palette PNG's indices are its values (the Pascal VOC
convention). Colour masks need colours: ``labelmap.txt`` (CVAT's ``name:r,g,b::`` lines) or
``classes.txt`` lines ``name r g b``; then colours map to classes (palette PNGs by their
palette's colours) and colours not in the map are ignored pixels (``data check`` lists them).
Class names can also be given (``classes=["background", "cat"]`` or a file path), which wins
over the files. Images without a mask are left out (``missing_mask`` issue); masks without an
image are reported (``missing_image``). Nothing is decoded while reading. A mask is in the
pixels of its image as imgrec decodes it (EXIF orientation applied), like boxes: a mask drawn
on the stored pixels of a rotated JPEG is reported by ``data check`` (``mask_size_mismatch``
when the rotation swaps the sides).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imgrec.data import labelio
from imgrec.data.boxes import IssueLog
from imgrec.data.dataset import ImageDataset
from imgrec.data.labelio import read_text, walk_files
from imgrec.data.layout import SPLIT_ALIASES, is_image_name
from imgrec.data.masks import MaskTarget, ignore_index_for
from imgrec.errors import DatasetError, MissingInputError

MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".gif")
CLASS_FILES = ("labelmap.txt", "classes.txt", "labels.txt")
_CVAT = re.compile(r"^([^:]+):\s*(\d{1,3}),(\d{1,3}),(\d{1,3})\s*(?::.*)?$")
_RGB = re.compile(r"^(.*?)[\s,]+(\d{1,3})[\s,]+(\d{1,3})[\s,]+(\d{1,3})\s*$")
Classes = tuple[list[str], dict[tuple[int, int, int], int] | None]


def read_mask_folder(source: str, classes: Sequence[str] | str | None = None) -> ImageDataset:
    """A mask folder (``images/`` + ``masks/`` + class names) as a ``segment`` dataset.

    Raises:
        MissingInputError: the folder does not exist.
        DatasetError: no ``images/`` or ``masks/`` folder, or no class names.
    """
    root = Path(source).absolute()
    if not root.is_dir():
        raise MissingInputError(f"Mask folder not found: {source}")
    img_dir, mask_dir = root / "images", root / "masks"
    if not img_dir.is_dir() or not mask_dir.is_dir():
        raise DatasetError(f"{root} needs images/ and masks/ folders (a mask PNG per image); found neither or one.")
    names, cmap = class_names(root, classes)
    log = IssueLog()
    pairs = pair_masks(img_dir, mask_dir, walk_files(img_dir), walk_files(mask_dir), log)
    splits = [_split_of(rel) for rel, _ in pairs]
    return segment_dataset(root, names, cmap, [(str(img_dir / r), m) for r, m in pairs], splits, log)


def segment_dataset(
    root: Path, names: list[str], cmap: dict[tuple[int, int, int], int] | None, pairs: list[tuple[str, str]],
    splits: list[str], log: IssueLog,
) -> ImageDataset:  # fmt: skip
    """The dataset of (image, mask file) pairs."""
    ignore = ignore_index_for(len(names))
    cmap_t = tuple(sorted(cmap.items())) if cmap is not None else None
    masks = [MaskTarget(file=m, ignore_index=ignore, color_map=cmap_t) for _, m in pairs]
    return ImageDataset.for_segmentation(
        names, [s for s, _ in pairs], masks,
        splits=np.asarray(splits) if len(set(splits)) > 1 and "" not in splits else None,
        name=root.name, root=str(root), label_files=[m for _, m in pairs], issues=log.items, ignore_index=ignore,
    )  # fmt: skip


def pair_masks(
    img_dir: Path, mask_dir: Path, images: list[str], masks: list[str], log: IssueLog
) -> list[tuple[str, str]]:
    """``(image relative path, mask path)`` for every image with a mask; the rest become issues."""
    by_stem: dict[str, str] = {}
    for rel in masks:
        stem, suffix = _split_suffix(rel)
        if suffix in MASK_SUFFIXES:
            by_stem.setdefault(stem, rel)
    pairs, used = [], set()
    for rel in (r for r in images if is_image_name(r)):
        stem = _split_suffix(rel)[0]
        mask = by_stem.get(stem)
        if mask is None:
            log.add("missing_mask", f"{rel} has no mask in {mask_dir.name}/ (looked for {stem}.png); left out.",
                    str(img_dir / rel), image=str(img_dir / rel))  # fmt: skip
            continue
        used.add(stem)
        pairs.append((rel, str(mask_dir / mask)))
    for stem in sorted(set(by_stem) - used):
        log.add("missing_image", f"{by_stem[stem]} has no image {stem}.* in {img_dir.name}/.",
                str(mask_dir / by_stem[stem]))  # fmt: skip
    return pairs


def _split_suffix(rel: str) -> tuple[str, str]:
    stem, dot, suffix = rel.rpartition(".")
    return (stem, "." + suffix.lower()) if dot and "/" not in suffix else (rel, "")


def _split_of(rel: str) -> str:
    head = rel.split("/", 1)[0].lower() if "/" in rel else ""
    return SPLIT_ALIASES.get(head, "")


def class_names(root: Path, given: Sequence[str] | str | None, default: Sequence[str] | None = None) -> Classes:
    """Class names (and a colour map, when colours are given) from ``given``, the class files, or ``default``."""
    if isinstance(given, str | Path):
        if _is_file(str(given)):
            return parse_class_file(Path(given))
        return _checked([n.strip() for n in str(given).split(",") if n.strip()], None, "the given classes")
    if given:
        return _checked([str(n) for n in given], None, "the given classes")
    for name in CLASS_FILES:
        if (root / name).is_file():
            return parse_class_file(root / name)
    if default:
        return list(default), None
    raise DatasetError(
        f"{root} has no class names: expected {' or '.join(CLASS_FILES)} (one class per line, line k = mask "
        "value k; 'name r g b' or CVAT's 'name:r,g,b::' for colour masks), or give them: --classes "
        "background,cat,dog."
    )


def _is_file(name: str) -> bool:
    try:
        return "," not in name and Path(name).is_file()
    except OSError:  # a name too long to be a path
        return False


def parse_class_file(path: Path) -> Classes:
    """``name`` lines; ``name r g b`` lines; or CVAT ``labelmap.txt`` (``name:r,g,b:parts:actions``)."""
    text = read_text(path, labelio.LABEL_LIMITS.max_text_bytes, "class names file")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    names: list[str] = []
    colors: dict[tuple[int, int, int], int] = {}
    for ln in lines:
        name, rgb = _class_line(ln, path.name == "labelmap.txt")
        if rgb is not None:
            if rgb in colors:
                raise DatasetError(f"{path}: the colour {rgb} is given to two classes; expected one colour per class.")
            colors[rgb] = len(names)
        names.append(name)
    if colors and len(colors) != len(names):
        raise DatasetError(f"{path}: {len(names) - len(colors)} class(es) have no colour; give every class one.")
    return _checked(names, colors or None, str(path))


def _class_line(line: str, cvat: bool) -> tuple[str, tuple[int, int, int] | None]:
    m = _CVAT.match(line) or _RGB.match(line)
    if m and m.group(1).strip():
        return m.group(1).strip(), _rgb([m.group(2), m.group(3), m.group(4)])
    return (line.split(":", 1)[0].strip() if cvat else line), None


def _rgb(parts: Sequence[str]) -> tuple[int, int, int]:
    r, g, b = (int(p) for p in parts)
    if max(r, g, b) > 255:
        raise DatasetError(f"colour values must be 0..255; received {r}, {g}, {b}.")
    return r, g, b


def _checked(names: list[str], cmap: dict[tuple[int, int, int], int] | None, where: str) -> Classes:
    if not names:
        raise DatasetError(f"{where} lists no class names; expected one per line.")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DatasetError(f"{where} lists {', '.join(dup[:5])} more than once; expected unique class names.")
    if len(names) > 65535:
        raise DatasetError(f"{where} lists {len(names)} classes; a mask holds at most 65535.")
    return names, cmap

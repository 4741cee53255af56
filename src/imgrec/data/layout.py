"""Find the class layout in a list of relative file paths (from a folder walk or a zip).

Two layouts are recognised: one sub-folder per class (``cat/1.jpg``), and ``train/``,
``val/``, ``test/`` folders each holding class folders (``train/cat/1.jpg``). A single
wrapping folder (``photos/cat/1.jpg`` inside a zip) is looked through. Hidden entries and
files whose suffix is not an image suffix are ignored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from imgrec.errors import DatasetError
from imgrec.imaging import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

SPLIT_ALIASES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
LAYOUT_HELP = (
    "Expected one of: a folder with one sub-folder per class (photos/cat/1.jpg, "
    "photos/dog/2.jpg); train/ val/ test/ folders each holding class folders "
    "(photos/train/cat/1.jpg); a .zip of either; a CSV with a 'path,label' header; "
    "MNIST idx files; CIFAR-10 binary batches; or the name 'digits'."
)
_SUFFIXES = frozenset(IMAGE_SUFFIXES)


@dataclass
class Layout:
    """What was found: items relative to the scanned root, their labels and splits.

    Attributes:
        prefix: the wrapping folder that was looked through (``""`` or ``"photos/"``).
        classes: sorted class names (class folders without images included).
        items: relative paths, prefix included.
        labels: class index per item.
        splits: ``"train"``/``"val"``/``"test"`` per item, or None for a class layout.
    """

    prefix: str
    classes: list[str]
    items: list[str]
    labels: list[int]
    splits: list[str] | None


def is_hidden(rel: str) -> bool:
    """True when any component of the path starts with a dot or is ``__MACOSX``."""
    return any(p.startswith(".") or p == "__MACOSX" for p in rel.split("/"))


def is_image_name(name: str) -> bool:
    """True when the file name has an image suffix (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in _SUFFIXES


def find_layout(files: Iterable[str], dirs: Iterable[str], where: str) -> Layout:
    """Work out the layout of ``files`` (relative posix paths) and ``dirs`` (every folder).

    Args:
        files: relative paths of the files found.
        dirs: relative paths of every folder, empty ones included.
        where: the scanned location, for error messages.

    Raises:
        DatasetError: nothing usable is there; the message says what layout is expected.
    """
    files = sorted(f for f in files if not is_hidden(f))
    dirs = {d.rstrip("/") for d in dirs if d and not is_hidden(d)}
    dirs |= {f.rsplit("/", 1)[0] for f in files if "/" in f}
    prefix = ""
    while True:
        top_files, top_dirs = _top_level(files, dirs)
        inner = _wrapper(top_files, top_dirs, dirs)
        if inner is None:
            break
        prefix += inner + "/"
        files, dirs = (
            _strip(files, inner),
            {d[len(inner) + 1 :] for d in dirs if d.startswith(inner + "/")},
        )
    split_dirs = {d for d in top_dirs if SPLIT_ALIASES.get(d.lower()) is not None}
    if any(SPLIT_ALIASES[d.lower()] == "train" for d in split_dirs):
        layout = _split_layout(files, dirs, split_dirs, top_dirs)
    else:
        layout = _class_layout(files, top_dirs, top_files)
    if not layout.classes:
        raise DatasetError(_empty_message(where, files))
    if not layout.items:
        raise DatasetError(
            f"No images found in {where}: the class folders ({', '.join(layout.classes[:10])}) "
            f"hold no files with an image suffix ({', '.join(IMAGE_SUFFIXES)}). {LAYOUT_HELP}"
        )
    layout.prefix = prefix
    layout.items = [prefix + item for item in layout.items]
    return layout


def _top_level(files: list[str], dirs: set[str]) -> tuple[list[str], set[str]]:
    top_files = [f for f in files if "/" not in f]
    top_dirs = {d.split("/", 1)[0] for d in dirs}
    return top_files, top_dirs


def _wrapper(top_files: list[str], top_dirs: set[str], dirs: set[str]) -> str | None:
    """The single folder to look through, when the root holds only that folder."""
    if len(top_dirs) != 1 or any(is_image_name(f) for f in top_files):
        return None
    (only,) = top_dirs
    if only.lower() in SPLIT_ALIASES:
        return None
    has_subdirs = any(d.startswith(only + "/") for d in dirs)
    return only if has_subdirs else None


def _strip(files: list[str], inner: str) -> list[str]:
    n = len(inner) + 1
    return [f[n:] for f in files if f.startswith(inner + "/")]


def _class_layout(files: list[str], top_dirs: set[str], top_files: list[str]) -> Layout:
    classes = sorted(top_dirs)
    index = {c: i for i, c in enumerate(classes)}
    items, labels = [], []
    for f in files:
        head, sep, _ = f.partition("/")
        if sep and is_image_name(f):
            items.append(f)
            labels.append(index[head])
    loose = sum(is_image_name(f) for f in top_files)
    if loose and classes:
        log.warning("ignored %d image(s) outside the class folders", loose)
    _log_skipped(len(files) - len(items) - loose)
    return Layout("", classes, items, labels, None)


def _split_layout(files: list[str], dirs: set[str], split_dirs: set[str], top_dirs: set[str]) -> Layout:
    others = sorted(top_dirs - split_dirs)
    if others:
        log.warning("split layout: ignored the folders %s (expected train/ val/ test/ only)", others)
    classes = sorted({d.split("/")[1] for d in dirs if d.count("/") >= 1 and d.split("/")[0] in split_dirs})
    index = {c: i for i, c in enumerate(classes)}
    items, labels, splits = [], [], []
    for f in files:
        parts = f.split("/")
        if len(parts) >= 3 and parts[0] in split_dirs and is_image_name(f):
            items.append(f)
            labels.append(index[parts[1]])
            splits.append(SPLIT_ALIASES[parts[0].lower()])
    _log_skipped(len(files) - len(items))
    return Layout("", classes, items, labels, splits)


def _log_skipped(n: int) -> None:
    if n > 0:
        log.info("ignored %d file(s) without an image suffix or outside class folders", n)


def _empty_message(where: str, files: list[str]) -> str:
    images = [f for f in files if is_image_name(f)]
    if not files:
        return f"{where} is empty. {LAYOUT_HELP}"
    if images:
        return f"{where} holds {len(images)} image(s) but no class folders, so there are no labels. {LAYOUT_HELP}"
    return f"{where} holds no images and no class folders ({len(files)} other file(s)). {LAYOUT_HELP}"

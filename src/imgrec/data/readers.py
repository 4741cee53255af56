"""``load_dataset``: one entry point for folders, zips, CSV files, idx, CIFAR-10 and digits."""

from __future__ import annotations

import csv
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from imgrec.data.arrays import find_cifar_dir, find_idx_files, read_cifar10, read_digits, read_idx
from imgrec.data.coco import read_coco
from imgrec.data.dataset import ZIP_SEP, ImageDataset
from imgrec.data.layout import LAYOUT_HELP, SPLIT_ALIASES, Layout, find_layout
from imgrec.data.mask_folder import read_mask_folder
from imgrec.data.voc import read_voc
from imgrec.data.voc_seg import read_voc_segmentation
from imgrec.data.yolo import read_yolo
from imgrec.errors import DatasetError, MissingInputError, UsageError
from imgrec.registry import Registry

log = logging.getLogger(__name__)

Reader = Callable[..., ImageDataset]
FORMATS: Registry[Reader] = Registry("dataset format")
# formats that read more than one task, and the task each reads by default
TASKS_OF = {"coco": ("detect", "instance", "segment"), "yolo": ("detect",), "voc": ("detect",),
            "masks": ("segment",), "voc-seg": ("segment",)}  # the first: the format's own task
_CLASS_OPTION = ("masks", "voc-seg")  # formats whose class names can be given


def load_dataset(
    source: str | Path, *, format: str = "auto", task: str | None = None,
    classes: Sequence[str] | str | None = None,
) -> ImageDataset:  # fmt: skip
    """Read a labeled image dataset.

    Args:
        source: a class-per-folder directory, a directory with ``train/ val/ test/``, a
            ``.zip`` of either (``archive.zip!/inner/folder`` reads a folder inside it), a
            CSV with a ``path,label`` header, a directory of MNIST idx files or CIFAR-10
            binary batches, or the name ``"digits"`` (scikit-learn's bundled digits); for
            detection, a COCO JSON file or a folder with ``annotations/*.json``, a YOLO
            folder (``images/`` + ``labels/``, or its ``data.yaml``) or a Pascal VOC folder
            (``Annotations/`` + ``JPEGImages/``); for segmentation, a mask folder
            (``images/`` + ``masks/``), a Pascal VOC segmentation folder
            (``JPEGImages/`` + ``SegmentationClass/``) or COCO with ``task``.
        format: ``"auto"`` (judge by the source) or one of :func:`list_formats`.
        task: the dataset's task where the format holds several: COCO reads ``detect``
            (default), ``instance`` or ``segment``; None: the format's own.
        classes: class names (a list, ``"a,b,c"`` or a file) for mask folders and VOC
            segmentation, instead of their ``classes.txt``.

    Raises:
        MissingInputError: the path does not exist.
        DatasetError: nothing usable there; the message says which layout is expected.

    Example:
        >>> ds = load_dataset("digits")
        >>> len(ds), ds.classes[:3]
        (1797, ['0', '1', '2'])
    """
    src = str(source)
    fmt = detect_format(src, task=task) if format == "auto" else format
    reader = FORMATS.get(fmt)
    options: dict[str, object] = {}
    if task is not None and task != TASKS_OF.get(fmt, ("classify",))[0]:
        if task not in TASKS_OF.get(fmt, ()):
            readable = ", ".join(f"{f} ({'/'.join(t)})" for f, t in TASKS_OF.items())
            raise UsageError(f"The {fmt} format holds no {task} data; formats by task: {readable}.")
        options["task"] = task
    if classes is not None:
        if fmt not in _CLASS_OPTION:
            raise UsageError(f"Class names can be given for {', '.join(_CLASS_OPTION)} data; {src} is {fmt}.")
        options["classes"] = classes
    return reader(src, **options)


def list_formats() -> list[str]:
    """Names accepted by ``load_dataset(..., format=...)``."""
    return FORMATS.names()


def detect_format(source: str, *, task: str | None = None) -> str:
    """The reader for ``source``, judged by what is on disk (and by ``task`` where both fit).

    Segmentation layouts first: ``images/`` + ``masks/`` is ``masks``; ``SegmentationClass/``
    + ``JPEGImages/`` is ``voc-seg`` (a VOC folder holding both boxes and masks is ``voc``
    unless ``task="segment"``). Detection layouts next: ``Annotations/*.xml`` is ``voc``;
    ``annotations/*.json`` is ``coco`` (COCO wins over YOLO labels beside it: it keeps crowd
    flags and category ids; pass ``format="yolo"`` for the labels); ``images/`` with
    ``labels/`` (or a ``data.yaml``) is ``yolo``. A ``.json`` file is ``coco``, a ``.yaml``
    file ``yolo``. Anything else is judged as before (idx, CIFAR-10, class folders).
    """
    path = Path(source)
    if not path.exists():
        if source == "digits":
            return "digits"
        if ZIP_SEP in source and Path(source.split(ZIP_SEP, 1)[0]).is_file():
            return "zip"
        raise MissingInputError(f"Data not found: {source}. {LAYOUT_HELP}")
    if path.is_file():
        return _file_format(path)
    masks = _mask_format(path, task)
    if masks:
        return masks
    detection = _detection_format(path)
    if detection:
        return detection
    if find_idx_files(path):
        return "idx"
    if find_cifar_dir(path) is not None:
        return "cifar10-bin"
    return "folder"


def _mask_format(path: Path, task: str | None) -> str | None:
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return "masks"
    if (path / "SegmentationClass").is_dir() and (path / "JPEGImages").is_dir():
        boxes = (path / "Annotations").is_dir() and any((path / "Annotations").glob("*.xml"))
        return "voc-seg" if task == "segment" or not boxes else None
    return None


def _detection_format(path: Path) -> str | None:
    if (path / "Annotations").is_dir() and any((path / "Annotations").glob("*.xml")):
        return "voc"
    if (path / "annotations").is_dir() and any((path / "annotations").glob("*.json")):
        return "coco"
    if (path / "images").is_dir() and ((path / "labels").is_dir() or (path / "data.yaml").is_file()):
        return "yolo"
    return None


def _file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "coco"
    if suffix in (".yaml", ".yml"):
        return "yolo"
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        return "zip"
    raise DatasetError(f"Cannot read a dataset from the file {path}. {LAYOUT_HELP}")


@FORMATS.register("folder")
def read_folder(source: str) -> ImageDataset:
    """A class-per-folder directory, or ``train/ val/ test/`` holding class folders."""
    root = Path(source)
    if not root.is_dir():
        raise _missing_or_not_dir(root)
    files, dirs = _walk(root)
    layout = find_layout(files, dirs, str(root))
    base = str(root.absolute())
    sources = [os.path.join(base, rel) for rel in layout.items]
    return _from_layout(layout, sources, name=root.absolute().name, root=base)


def _walk(root: Path) -> tuple[list[str], list[str]]:
    files: list[str] = []
    dirs: list[str] = []
    for cur, subdirs, names in os.walk(root, followlinks=True):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        rel = os.path.relpath(cur, root).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        dirs += [prefix + d for d in subdirs]
        files += [prefix + n for n in names if not n.startswith(".")]
    return files, dirs


@FORMATS.register("zip")
def read_zip(source: str) -> ImageDataset:
    """A zip holding either folder layout; ``archive.zip!/inner`` reads a folder inside it."""
    archive, _, inner = source.partition(ZIP_SEP)
    path = Path(archive)
    if not path.is_file():
        raise MissingInputError(f"Zip archive not found: {archive}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{archive} is not a readable zip archive: {exc}") from None
    inner = inner.strip("/")
    files, dirs = _zip_entries(zf, inner)
    layout = find_layout(files, dirs, source)
    base = str(path.absolute())
    lead = inner + "/" if inner else ""
    sources = [f"{base}{ZIP_SEP}{lead}{rel}" for rel in layout.items]
    root = f"{base}{ZIP_SEP}{inner}" if inner else base
    ds = _from_layout(layout, sources, name=Path(inner).name if inner else path.stem, root=root)
    ds.share_archive(base, zf)
    return ds


def _zip_entries(zf: zipfile.ZipFile, inner: str) -> tuple[list[str], list[str]]:
    lead = inner + "/" if inner else ""
    files: list[str] = []
    dirs: list[str] = []
    for name in zf.namelist():
        if not name.startswith(lead):
            continue
        rel = name[len(lead) :]
        if rel.endswith("/"):
            dirs.append(rel.rstrip("/"))
        elif rel:
            files.append(rel)
    if inner and not files:
        raise MissingInputError(f"{zf.filename} has no folder {inner!r} (or it is empty).")
    return files, dirs


@FORMATS.register("csv")
def read_csv(source: str) -> ImageDataset:
    """A CSV with a ``path,label`` header (optional ``split``); paths relative to its folder."""
    path = Path(source)
    if not path.is_file():
        raise MissingInputError(f"CSV file not found: {source}")
    rows = _csv_rows(path)
    names = sorted({label for _, label, _ in rows}, key=_label_key)
    index = {c: i for i, c in enumerate(names)}
    base = str(path.absolute().parent)
    sources = [os.path.normpath(os.path.join(base, p)) for p, _, _ in rows]
    splits = [s for _, _, s in rows]
    has_splits = any(splits)
    return ImageDataset(
        classes=names,
        labels=np.array([index[label] for _, label, _ in rows], dtype=np.int64),
        sources=sources,
        splits=np.array([_split_name(s, path) for s in splits]) if has_splits else None,
        name=path.stem,
        root=base,
    )


_PATH_COLUMNS = ("path", "file", "filename", "image", "filepath")
_LABEL_COLUMNS = ("label", "class", "category")


def _csv_rows(path: Path) -> list[tuple[str, str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        pcol = next((header.index(c) for c in _PATH_COLUMNS if c in header), None)
        lcol = next((header.index(c) for c in _LABEL_COLUMNS if c in header), None)
        if pcol is None or lcol is None:
            raise DatasetError(
                f"{path}: expected a header row with 'path' and 'label' columns "
                f"(e.g. 'path,label' then 'cats/1.jpg,cat'); received {header or 'an empty file'}."
            )
        scol = header.index("split") if "split" in header else None
        rows = [_csv_row(r, pcol, lcol, scol, path, n) for n, r in enumerate(reader, start=2) if any(r)]
    if not rows:
        raise DatasetError(f"{path} has a header but no rows; expected one 'path,label' row per image.")
    return rows


def _csv_row(row: list[str], pcol: int, lcol: int, scol: int | None, path: Path, line: int) -> tuple[str, str, str]:
    try:
        item, label = row[pcol].strip(), row[lcol].strip()
        split = row[scol].strip().lower() if scol is not None else ""
    except IndexError:
        raise DatasetError(f"{path}, line {line}: expected {max(pcol, lcol) + 1} columns, received {row}.") from None
    if not item or not label:
        raise DatasetError(f"{path}, line {line}: the path and the label must not be empty; received {row}.")
    return item, label, split


def _split_name(value: str, path: Path) -> str:
    name = value and SPLIT_ALIASES.get(value)
    if value and not name:
        raise DatasetError(f"{path}: unknown split {value!r}; expected train, val or test.")
    return name or "train"


def _label_key(label: str) -> tuple[int, int | str]:
    return (0, int(label)) if label.lstrip("-").isdigit() else (1, label)


def _from_layout(layout: Layout, sources: list[str], *, name: str, root: str) -> ImageDataset:
    return ImageDataset(
        classes=layout.classes,
        labels=np.asarray(layout.labels, dtype=np.int64),
        sources=sources,
        splits=None if layout.splits is None else np.asarray(layout.splits),
        name=name,
        root=root,
    )


def _missing_or_not_dir(path: Path) -> Exception:
    if not path.exists():
        return MissingInputError(f"Data folder not found: {path}")
    return DatasetError(f"Expected a folder, received the file {path}. {LAYOUT_HELP}")


FORMATS.add("idx", read_idx)
FORMATS.add("cifar10-bin", read_cifar10)
FORMATS.add("digits", read_digits)
FORMATS.add("coco", read_coco)
FORMATS.add("yolo", read_yolo)
FORMATS.add("voc", read_voc)
FORMATS.add("masks", read_mask_folder)
FORMATS.add("voc-seg", read_voc_segmentation)

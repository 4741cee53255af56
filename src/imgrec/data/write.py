"""Write any dataset as a real image folder: ``out/<class>/<n>.png`` (or per split)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from imgrec.data.dataset import ImageDataset
from imgrec.errors import ImgrecError, OutputError
from imgrec.imaging.ops import resize

log = logging.getLogger(__name__)


def write_image_folder(
    ds: ImageDataset, out_dir: str | Path, size: int | None = None, *, keep_splits: bool = True
) -> Path:
    """Write every readable item as PNG into one folder per class.

    Args:
        ds: the dataset.
        out_dir: where to write; created when missing.
        size: resize each image to ``size`` x ``size`` (bicubic) when given.
        keep_splits: with pre-split data, write ``out/<split>/<class>/`` instead.

    Class names become folder names; ``/`` and ``\\`` are replaced by ``_`` and a leading dot
    gets a ``_`` in front, so such names read back slightly changed.

    Returns:
        ``out_dir``, readable back with ``load_dataset``.

    Raises:
        OutputError: the folder or a file cannot be written.

    Example:
        >>> import tempfile
        >>> from imgrec.data import ImageDataset
        >>> ds = ImageDataset.from_arrays(np.zeros((2, 8, 8), np.uint8), [0, 1], ["a", "b"])
        >>> sorted(p.name for p in write_image_folder(ds, tempfile.mkdtemp()).iterdir())
        ['a', 'b']
    """
    out = Path(out_dir)
    folders = _class_folders(ds, out, keep_splits)
    skipped = 0
    for i in range(len(ds)):
        try:
            img = ds.load(i)
        except ImgrecError as exc:
            log.warning("skipped %s: %s", ds.sources[i], exc)
            skipped += 1
            continue
        if size:
            img = resize(img, (size, size), "bicubic")
        split = str(ds.splits[i]) if keep_splits and ds.splits is not None else ""
        _save(img, folders[split, int(ds.labels[i])] / f"{i:05d}.png")
    if skipped:
        log.warning("%d unreadable item(s) were not written", skipped)
    return out


def _class_folders(ds: ImageDataset, out: Path, keep_splits: bool) -> dict[tuple[str, int], Path]:
    splits = [""]
    if keep_splits and ds.splits is not None:
        splits = sorted({str(s) for s in np.unique(ds.splits)})
    names = [_folder_name(c) for c in ds.classes]
    folders = {(s, k): out / s / c if s else out / c for s in splits for k, c in enumerate(names)}
    try:
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the image folder {out}: {exc.strerror or exc}") from None
    return folders


def _folder_name(name: str) -> str:
    """A class name usable as one folder name ("T-shirt/top" -> "T-shirt_top")."""
    safe = name.replace("/", "_").replace("\\", "_").strip()
    return "_" + safe if not safe or safe.startswith(".") else safe


def _save(img: np.ndarray, path: Path) -> None:
    try:
        Image.fromarray(np.ascontiguousarray(img)).save(path, "PNG")
    except OSError as exc:
        raise OutputError(f"Cannot write {path}: {exc.strerror or exc}") from None


def write_digits_folder(out_dir: str | Path, size: int = 32) -> Path:
    """Write scikit-learn's digits as ``out_dir/<digit>/<n>.png`` at ``size`` x ``size``.

    Example:
        >>> import tempfile
        >>> len(list(write_digits_folder(tempfile.mkdtemp(), size=16).glob("*/*.png")))
        1797
    """
    from imgrec.data.arrays import read_digits

    return write_image_folder(read_digits(), out_dir, size=size)

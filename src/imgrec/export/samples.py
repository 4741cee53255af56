"""Real images for checking and calibrating exports: the run's own splits or a given folder.

A run remembers its data source (``config.json``) and split (``splits.json``); the parity check
uses its validation/test images and int8 calibration its training images. A folder given by
the user is read as a labeled dataset when it has class folders with the model's classes,
otherwise as plain images (no labels: accuracy figures are then not available).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgrec.data import ImageDataset, load_dataset, materialize
from imgrec.data.run_data import run_split
from imgrec.errors import DataError, DatasetError, ImgrecError, MissingInputError
from imgrec.inference import collect_images
from imgrec.transforms.preprocess import Preprocessing

log = logging.getLogger(__name__)


@dataclass
class Samples:
    """Prepared images, with labels (indices into the model's classes) when known.

    Attributes:
        images: uint8 ``(N, S, S, 3)``.
        labels: int64 ``(N,)`` or None for unlabeled images.
        source: where they came from, for messages and records.
    """

    images: np.ndarray
    labels: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.images)

    def describe(self) -> str:
        kind = "labeled" if self.labels is not None else "unlabeled"
        return f"{len(self)} {kind} images from {self.source}"


def from_dataset(ds: ImageDataset, prep: Preprocessing, classes: list[str], limit: int, seed: int = 0) -> Samples:
    """Up to ``limit`` items of ``ds`` (a seeded, class-balanced-by-chance sample), prepared."""
    idx = _pick(len(ds), limit, seed)
    mat = materialize(ds.subset(idx), prep)
    for src, msg in mat.bad[:5]:
        log.warning("skipping unreadable %s: %s", src, msg)
    labels = _map_labels(ds, classes, mat.labels)
    return Samples(mat.images, labels, ds.root or ds.name)


def task_samples(ds: ImageDataset, prep: Preprocessing, limit: int, seed: int = 0) -> tuple[Samples, ImageDataset]:
    """Up to ``limit`` items of a detection or mask dataset, prepared (no class labels), and the
    subset they came from (its boxes or masks score the model)."""
    sub = ds.subset(_pick(len(ds), limit, seed))
    mat = materialize(sub, prep)
    for src, msg in mat.bad[:5]:
        log.warning("skipping unreadable %s: %s", src, msg)
    if not len(mat.images):
        raise DatasetError(f"No readable image in {ds.root or ds.name}.")
    return Samples(mat.images, None, ds.root or ds.name), sub


def _map_labels(ds: ImageDataset, classes: list[str], labels: np.ndarray) -> np.ndarray | None:
    index = {c: i for i, c in enumerate(classes)}
    if any(c not in index for c in ds.classes):
        log.info("the data's classes differ from the model's; treating the images as unlabeled")
        return None
    lut = np.asarray([index[c] for c in ds.classes], np.int64)
    return lut[labels]


def from_folder(path: str | Path, prep: Preprocessing, classes: list[str], limit: int, seed: int = 0) -> Samples:
    """Images from a user folder: a labeled dataset when it reads as one, else plain image files."""
    p = Path(path)
    if not p.exists():
        raise MissingInputError(f"Data not found: {p}")
    try:
        ds = load_dataset(p)
    except DataError:
        ds = None
    if ds is not None and len(ds):
        return from_dataset(ds, prep, classes, limit, seed)
    files = collect_images([p])
    chosen = [files[i] for i in _pick(len(files), limit, seed)]
    images = []
    for f in chosen:
        try:
            images.append(prep.load(f))
        except ImgrecError as exc:
            log.warning("skipping %s: %s", f, exc)
    if not images:
        raise DatasetError(f"No readable image in {p}; expected image files or class folders.")
    return Samples(np.stack(images), None, str(p))


def load_samples(
    run_dir: Path,
    data: str | Path | None,
    prep: Preprocessing,
    classes: list[str],
    *,
    splits: tuple[str, ...],
    limit: int,
    seed: int = 0,
) -> Samples:
    """Prepared images from ``data`` when given, else from the run's ``splits`` (first non-empty)."""
    if data is not None:
        samples = from_folder(data, prep, classes, limit, seed)
    else:
        ds, name, source = run_split(run_dir, splits, "give images with --data")
        desc = f"the run's {name} split ({source})"
        samples = from_dataset(ds, prep, classes, limit, seed)
        samples.source = desc
    if len(samples) == 0:
        raise DatasetError(f"No readable image in {samples.source}.")
    return samples


def _pick(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))

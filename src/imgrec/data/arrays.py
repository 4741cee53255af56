"""Readers of array datasets: MNIST-style idx files, CIFAR-10 binary batches, sklearn digits."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np

from imgrec.data.dataset import ImageDataset
from imgrec.errors import DatasetError, MissingInputError

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
# sha256 (first 16 hex) of the decompressed Fashion-MNIST label bytes, header excluded
_FASHION_LABEL_DIGESTS = frozenset({"657fbd221bfc9f41", "3d0e6c6ea990b53b"})
_IDX_RE = re.compile(r"^(train|t10k|test)[-_.]images[-_.]idx3[-_.]ubyte(\.gz)?$", re.IGNORECASE)
_CIFAR_RECORD = 1 + 32 * 32 * 3


def find_idx_files(folder: Path) -> dict[str, tuple[Path, Path]]:
    """``{"train"|"test": (images, labels)}`` for the idx pairs in ``folder``."""
    found: dict[str, tuple[Path, Path]] = {}
    for img in sorted(folder.iterdir()):
        m = _IDX_RE.match(img.name)
        if not m:
            continue
        split = "test" if m.group(1).lower() in ("t10k", "test") else "train"
        labels = _label_file(folder, img.name)
        if labels is None:
            want = img.name.replace("images", "labels").replace("idx3", "idx1")
            raise DatasetError(f"{img} has no matching labels file (expected {want}).")
        found[split] = (img, labels)
    return found


def _label_file(folder: Path, image_name: str) -> Path | None:
    base = re.sub("idx3", "idx1", re.sub("images", "labels", image_name, flags=re.I), flags=re.I)
    for name in (base, base.removesuffix(".gz"), base + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx_array(path: Path) -> np.ndarray:
    """Parse one idx file (gzip or not) of unsigned bytes into an array of its shape."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DatasetError(f"{path} is not a readable gzip file: {exc}") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DatasetError(f"{path} is not an idx file of unsigned bytes (magic {data[:4].hex()}).")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)]
    start, count = 4 + 4 * ndim, int(np.prod(dims))
    if len(data) - start != count:
        raise DatasetError(f"{path} declares shape {tuple(dims)} ({count} bytes) but holds {len(data) - start} bytes.")
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(dims).copy()


def read_idx(source: str) -> ImageDataset:
    """MNIST / Fashion-MNIST idx files in a folder; ``train`` and ``t10k`` become splits."""
    folder = Path(source)
    if not folder.is_dir():
        raise MissingInputError(f"idx folder not found: {source}")
    pairs = find_idx_files(folder)
    if not pairs:
        raise DatasetError(f"{source} has no idx files (expected train-images-idx3-ubyte[.gz] and its labels).")
    images, labels, sources, splits = [], [], [], []
    for split in ("train", "test"):
        if split not in pairs:
            continue
        x, y = _idx_pair(*pairs[split])
        images.append(x)
        labels.append(y)
        sources += [f"{split}[{i}]" for i in range(len(y))]
        splits += [split] * len(y)
    y_all = np.concatenate(labels)
    return ImageDataset(
        classes=_idx_classes(folder, labels),
        labels=y_all,
        sources=sources,
        arrays=np.concatenate(images),
        splits=np.asarray(splits),
        name=folder.absolute().name,
        root=str(folder.absolute()),
    )


def _idx_pair(img_path: Path, label_path: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx_array(img_path), read_idx_array(label_path)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DatasetError(
            f"{img_path.name} {x.shape} and {label_path.name} {y.shape} do not match: expected "
            "images (N, rows, cols) and labels (N,)."
        )
    return x, y.astype(np.int64)


def _idx_classes(folder: Path, labels: list[np.ndarray]) -> list[str]:
    top = max(int(y.max(initial=0)) for y in labels)
    digests = {hashlib.sha256(y.astype(np.uint8).tobytes()).hexdigest()[:16] for y in labels}
    if top < 10 and ("fashion" in folder.absolute().name.lower() or digests & _FASHION_LABEL_DIGESTS):
        return list(FASHION_CLASSES)
    return [str(i) for i in range(max(10, top + 1))]


def find_cifar_dir(folder: Path) -> Path | None:
    """The folder holding CIFAR-10 binary batches: ``folder`` or its ``cifar-10-batches-bin``."""
    for cand in (folder, folder / "cifar-10-batches-bin"):
        if (cand / "data_batch_1.bin").is_file() or (cand / "test_batch.bin").is_file():
            return cand
    return None


def read_cifar10(source: str) -> ImageDataset:
    """CIFAR-10 binary batches: ``data_batch_1..5.bin`` (train), ``test_batch.bin`` (test)."""
    folder = find_cifar_dir(Path(source)) if Path(source).is_dir() else None
    if folder is None:
        raise MissingInputError(f"No CIFAR-10 binary batches in {source} (expected data_batch_1.bin ...).")
    batches = sorted(folder.glob("data_batch_*.bin")) + sorted(folder.glob("test_batch.bin"))
    images, labels, sources, splits = [], [], [], []
    for path in batches:
        x, y = _cifar_batch(path)
        images.append(x)
        labels.append(y)
        sources += [f"{path.stem}[{i}]" for i in range(len(y))]
        splits += ["test" if path.stem == "test_batch" else "train"] * len(y)
    classes = _cifar_classes(folder)
    y_all = np.concatenate(labels)
    if y_all.size and y_all.max() >= len(classes):
        raise DatasetError(f"{source}: label {int(y_all.max())} is out of range for {len(classes)} classes.")
    return ImageDataset(
        classes=classes,
        labels=y_all,
        sources=sources,
        arrays=np.concatenate(images),
        splits=np.asarray(splits),
        name=Path(source).absolute().name,
        root=str(folder.absolute()),
    )


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if data.size % _CIFAR_RECORD:
        raise DatasetError(
            f"{path} is {data.size} bytes, not a multiple of the {_CIFAR_RECORD}-byte CIFAR-10 "
            "record (1 label byte + 32x32x3 pixels)."
        )
    rec = data.reshape(-1, _CIFAR_RECORD)
    images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), rec[:, 0].astype(np.int64)


def _cifar_classes(folder: Path) -> list[str]:
    meta = folder / "batches.meta.txt"
    if meta.is_file():
        names = [line.strip() for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
        if names:
            return names
    return [str(i) for i in range(10)]


def read_digits(source: str = "digits") -> ImageDataset:
    """scikit-learn's bundled 8x8 digits (values 0..16 scaled to 0..255), in memory."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return ImageDataset.from_arrays(images, bunch.target, [str(i) for i in range(10)], name="digits")

"""The dataset type every reader returns: sources, integer labels, class names, splits."""

from __future__ import annotations

import hashlib
import threading
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imgrec.data.boxes import BoxTarget, LabelIssue, boxes_per_class, images_per_class, stratify_labels
from imgrec.data.masks import IGNORE_INDEX, MaskTarget, images_with_class, mask_stratify_labels
from imgrec.errors import (
    DataError,
    ImageTooLargeError,
    ImgrecError,
    InvalidImageError,
    MissingInputError,
)
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits, decode, load_image
from imgrec.imaging.decode import read_bytes

ZIP_SEP = "!/"
BOX_TASKS = ("detect", "instance")  # datasets whose targets are BoxTargets (InstanceTargets)
TASK_NAMES = ("classify", "detect", "instance", "segment")


class Preparer(Protocol):
    """How images become model inputs (``imgrec.transforms.Preprocessing`` is one)."""

    def prepare(self, img: np.ndarray) -> np.ndarray: ...

    def decode(self, data: bytes, *, limits: DecodeLimits = ..., name: str = ...) -> np.ndarray: ...


class FramingPreparer(Preparer, Protocol):
    """A :class:`Preparer` that also says where each image landed (boxes map through it)."""

    def prepare_framed(self, img: np.ndarray, original: tuple[int, int] | None = ...) -> tuple[np.ndarray, Any]: ...

    def decode_framed(self, data: bytes, *, limits: DecodeLimits = ..., name: str = ...) -> tuple[np.ndarray, Any]: ...


@dataclass
class ImageDataset:
    """A labeled set of images, backed by files, a zip archive, or in-memory arrays.

    Attributes:
        classes: class names; ``labels`` index into it.
        labels: int64 array ``(N,)``.
        sources: one string per item: a file path, ``archive.zip!/inner/path``, or
            ``name[i]`` for in-memory items.
        arrays: in-memory images ``(N, H, W, 3)`` or ``(N, H, W)`` uint8, or None.
        splits: per-item ``"train"``/``"val"``/``"test"`` when the data came pre-split.
        name: a short human name (folder name, "fashion-mnist", ...).
        root: where it was read from.
        task: ``"classify"`` (one class per image), ``"detect"`` (boxes in ``targets``),
            ``"instance"`` (boxes and masks: :class:`~imgrec.data.masks.InstanceTarget`\\ s in
            ``targets``) or ``"segment"`` (a class per pixel: ``masks``).
        targets: one :class:`~imgrec.data.boxes.BoxTarget` per item (detect, instance), else None.
            With targets or masks, ``labels`` is the per-image split key (the image's rarest
            class, or ``-1`` for an image without objects or whose classes are not known
            before its mask is decoded), not a class of the whole image.
        masks: one :class:`~imgrec.data.masks.MaskTarget` per item (segment), else None.
        ignore_index: the mask value of pixels to ignore (segment).
        class_ids: the source format's id of each class (COCO category ids), so that
            conversion back restores them; None when the classes are just 0..N-1.
        label_files: the label file of each item (a YOLO txt, a VOC XML, the COCO JSON), for
            messages and conversion; None for classification.
        issues: problems found in the label files while reading (bad lines, unknown
            classes, boxes that cannot be used, labels without an image); ``check_dataset``
            reports them.

    Example:
        >>> import numpy as np
        >>> ds = ImageDataset.from_arrays(np.zeros((4, 8, 8), np.uint8), [0, 1, 0, 1], ["a", "b"])
        >>> len(ds), ds.load(1).shape
        (4, (8, 8, 3))
    """

    classes: list[str]
    labels: np.ndarray
    sources: list[str]
    arrays: np.ndarray | None = None
    splits: np.ndarray | None = None
    name: str = "dataset"
    root: str = ""
    limits: DecodeLimits = field(default=DEFAULT_LIMITS, repr=False)
    task: str = "classify"
    targets: list[BoxTarget] | None = field(default=None, repr=False)
    class_ids: list[int] | None = None
    label_files: list[str] | None = field(default=None, repr=False)
    issues: list[LabelIssue] = field(default_factory=list, repr=False)
    masks: list[MaskTarget] | None = field(default=None, repr=False)
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.sources) != len(self.labels):
            raise DataError(f"Dataset has {len(self.sources)} items but {len(self.labels)} labels.")
        if self.task not in TASK_NAMES:
            raise DataError(f"Unknown dataset task {self.task!r}; expected one of {', '.join(TASK_NAMES)}.")
        if (self.targets is None) != (self.task not in BOX_TASKS) or (self.masks is None) != (self.task != "segment"):
            raise DataError(
                f"task={self.task!r} needs targets exactly for detect/instance and masks exactly for segment; "
                "fix the reader."
            )
        for name, items in (("box targets", self.targets), ("mask targets", self.masks)):
            if items is not None and len(items) != len(self.sources):
                raise DataError(f"Dataset has {len(self.sources)} items but {len(items)} {name}.")
        if self.class_ids is not None and len(self.class_ids) != len(self.classes):
            raise DataError(f"{len(self.class_ids)} class ids for {len(self.classes)} classes; expected one each.")
        self._zip_lock = threading.Lock()
        self._zips: dict[str, zipfile.ZipFile] = {}

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        labels: Sequence[int] | np.ndarray,
        classes: list[str],
        name: str = "arrays",
    ) -> ImageDataset:
        """Wrap in-memory uint8 images (gray ``(N,H,W)`` or RGB ``(N,H,W,3)``)."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise DataError(
                f"Expected uint8 images shaped (N,H,W) or (N,H,W,3); received {images.dtype} {images.shape}."
            )
        sources = [f"{name}[{i}]" for i in range(len(images))]
        return cls(
            classes=list(classes),
            labels=np.asarray(labels),
            sources=sources,
            arrays=images,
            name=name,
            root=name,
        )

    @classmethod
    def for_detection(
        cls, classes: list[str], sources: list[str], targets: list[BoxTarget], **kwargs: object
    ) -> ImageDataset:
        """A detection dataset; ``labels`` (the split key) is computed from the targets.

        Example:
            >>> t = BoxTarget.from_lists([[1, 2, 5, 6]], [1])
            >>> ds = ImageDataset.for_detection(["a", "b"], ["x.jpg"], [t])
            >>> ds.task, ds.labels.tolist(), ds.instance_counts()
            ('detect', [1], {'a': 0, 'b': 1})
        """
        labels = stratify_labels(targets, len(classes))
        task = str(kwargs.pop("task", "detect"))
        return cls(classes=classes, labels=labels, sources=sources, task=task, targets=targets, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def for_segmentation(
        cls, classes: list[str], sources: list[str], masks: list[MaskTarget], **kwargs: object
    ) -> ImageDataset:
        """A ``segment`` dataset; ``labels`` (the split key) comes from the classes known present.

        Example:
            >>> m = MaskTarget(file="m.png", present=(0, 2))
            >>> ds = ImageDataset.for_segmentation(["background", "a", "b"], ["x.jpg"], [m])
            >>> ds.task, ds.labels.tolist(), ds.class_counts()
            ('segment', [2], {'background': 1, 'a': 0, 'b': 1})
        """
        labels = mask_stratify_labels(masks, len(classes))
        return cls(classes=classes, labels=labels, sources=sources, task="segment", masks=masks, **kwargs)  # type: ignore[arg-type]

    def load_mask(self, i: int) -> np.ndarray:
        """The ``(H, W)`` index mask of item ``i`` (segment datasets; decoded now, within the limits)."""
        if self.masks is None:
            raise DataError(f"{self.name} is a {self.task} dataset; it has no masks.")
        return self.masks[i].load(self.limits)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def load(self, i: int, min_side: int | None = None) -> np.ndarray:
        """Decode item ``i`` to RGB uint8 ``(H, W, 3)``; raises InvalidImageError when broken."""
        if self.arrays is not None:
            img = self.arrays[i]
            return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
        src = self.sources[i]
        if ZIP_SEP in src:
            return decode(self._read_zip(src), limits=self.limits, min_side=min_side, name=src)
        return load_image(src, limits=self.limits, min_side=min_side)

    def load_prepared(self, i: int, prep: Preparer) -> np.ndarray:
        """Item ``i`` as a model input: the same decode and prepare path as predict and serve."""
        if self.arrays is not None:
            return prep.prepare(self.load(i))
        return prep.decode(self.read_bytes(i), limits=self.limits, name=self.sources[i])

    def load_framed(self, i: int, prep: FramingPreparer) -> tuple[np.ndarray, Any]:
        """:meth:`load_prepared` plus the geometry record (``imgrec.transforms.frame.Geometry``)."""
        if self.arrays is not None:
            return prep.prepare_framed(self.load(i))
        return prep.decode_framed(self.read_bytes(i), limits=self.limits, name=self.sources[i])

    def read_bytes(self, i: int) -> bytes:
        """The stored bytes of item ``i``: the encoded file (or zip member), or the array's bytes.

        Raises MissingInputError or InvalidImageError (unreadable, over the byte limit).
        """
        if self.arrays is not None:
            return np.ascontiguousarray(self.arrays[i]).tobytes()
        src = self.sources[i]
        if ZIP_SEP in src:
            return self._read_zip(src)
        return read_bytes(src, self.limits)

    def _read_zip(self, src: str) -> bytes:
        archive, inner = src.split(ZIP_SEP, 1)
        try:
            with self._zip_lock:
                zf = self._zips.get(archive)
                if zf is None:
                    zf = self._zips[archive] = zipfile.ZipFile(archive)
                info = zf.getinfo(inner)
                if info.file_size > self.limits.max_bytes:
                    raise ImageTooLargeError(f"{src} is {info.file_size / 1e6:.1f} MB; over the limit.")
                return zf.read(info)
        except (FileNotFoundError, KeyError):
            raise MissingInputError(f"Not found: {src}") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InvalidImageError(f"Cannot read {src} from its archive: {exc}", code="image_unreadable") from None

    def share_archive(self, archive: str, zf: zipfile.ZipFile) -> None:
        """Reuse an already opened zip (reading a large central directory takes a while)."""
        with self._zip_lock:
            self._zips[archive] = zf

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageDataset:
        """A dataset of the given items (same classes)."""
        idx = np.asarray(indices, dtype=np.int64)
        sources = [self.sources[i] for i in idx]
        out = replace(
            self,
            labels=self.labels[idx],
            sources=sources,
            arrays=None if self.arrays is None else self.arrays[idx],
            splits=None if self.splits is None else self.splits[idx],
            targets=None if self.targets is None else [self.targets[i] for i in idx],
            masks=None if self.masks is None else [self.masks[i] for i in idx],
            label_files=None if self.label_files is None else [self.label_files[i] for i in idx],
            issues=_issues_of(self.issues, sources),
        )
        out._zip_lock, out._zips = self._zip_lock, self._zips  # share open archives
        return out

    def relative(self, src: str) -> str:
        """``src`` relative to the dataset root (``a.zip!/x/y.jpg`` under root ``a.zip``
        gives ``x/y.jpg``); sources outside the root come back unchanged."""
        rel = _strip_root(self.root, src)
        return src if rel is None else rel

    def class_counts(self) -> dict[str, int]:
        """Images per class: for detection, the images holding at least one (non-crowd) box of it;
        for segmentation, the images known to hold it (from COCO objects, or masks a split decoded)."""
        if self.targets is not None:
            counts = images_per_class(self.targets, self.num_classes)
        elif self.masks is not None:
            counts = images_with_class(self.masks, self.num_classes)
        else:
            counts = np.bincount(self.labels, minlength=self.num_classes)
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}

    def instance_counts(self) -> dict[str, int]:
        """Objects per class: non-crowd boxes for detection, images for classification and segmentation."""
        if self.targets is None:
            return self.class_counts()
        counts = boxes_per_class(self.targets, self.num_classes)
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}

    def fingerprint(self) -> str:
        """sha256 of the item list and labels (content of in-memory arrays and boxes included)."""
        h = hashlib.sha256()
        h.update("\n".join(self.classes).encode())
        for src, lab in zip(self.sources, self.labels.tolist(), strict=True):
            h.update(f"{self.relative(src)}\t{lab}\n".encode())
        if self.arrays is not None:
            h.update(np.ascontiguousarray(self.arrays).tobytes())
        if self.targets is not None:
            _hash_targets(h, self.task, self.targets, self.class_ids)
        if self.masks is not None:
            h.update(f"task={self.task} ids={self.class_ids} ignore={self.ignore_index}\n".encode())
            for m in self.masks:
                h.update(f"{m.file and self.relative(m.file)}|{m.color_map}|{m.present}\n".encode())
                if m.objects is not None:
                    _hash_targets(h, "objects", [m.objects], None)
        return h.hexdigest()[:16]


@dataclass
class Materialized:
    """Images decoded and prepared into one array, plus the items that failed."""

    images: np.ndarray
    labels: np.ndarray
    kept: np.ndarray
    bad: list[tuple[str, str]]


def materialize(
    ds: ImageDataset,
    prep: Preparer,
    *,
    workers: int = 4,
    progress: Callable[[int], None] | None = None,
) -> Materialized:
    """Decode and prepare every item; unreadable ones are skipped and listed, never raised.

    Args:
        ds: the dataset.
        prep: the model's preprocessing (``ImageDataset.load_prepared`` uses it, so the
            arrays equal what predict and serve make of the same files).
        workers: decoding threads (PIL releases the GIL while decoding).
        progress: called with the number of items done so far, now and then.
    """

    def one(i: int) -> np.ndarray | str:
        return or_error(ds.load_prepared, i, prep)

    n = len(ds)
    if ds.arrays is not None or workers <= 1:
        results = [one(i) for i in range(n)]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = []
            for k, r in enumerate(pool.map(one, range(n), chunksize=32)):
                results.append(r)
                if progress and k % 256 == 0:
                    progress(k)
    kept = [i for i, r in enumerate(results) if not isinstance(r, str)]
    bad = [(ds.sources[i], str(r)) for i, r in enumerate(results) if isinstance(r, str)]
    images = np.stack([results[i] for i in kept]) if kept else np.zeros((0, 1, 1, 3), np.uint8)
    return Materialized(images=images, labels=ds.labels[kept], kept=np.asarray(kept, np.int64), bad=bad)


def _issues_of(issues: list[LabelIssue], sources: list[str]) -> list[LabelIssue]:
    """The issues that concern the given items (and those that concern no one item)."""
    if not issues:
        return []
    kept = set(sources)
    return [x for x in issues if x.image is None or x.image in kept]


def _hash_targets(h: hashlib._Hash, task: str, targets: list[BoxTarget], class_ids: list[int] | None) -> None:
    h.update(f"task={task} ids={class_ids}\n".encode())
    for t in targets:
        h.update(np.ascontiguousarray(t.boxes).tobytes() + t.labels.tobytes())
        h.update(t.crowd.tobytes() + t.difficult.tobytes() + f"{t.image_size}\n".encode())
        for seg in getattr(t, "segments", ()):  # instance masks
            if seg is not None:
                h.update(seg.counts or b"".join(p.tobytes() for p in seg.polygons))


def or_error(load: Callable[..., Any], *args: Any) -> Any:
    """``load(*args)``, or the message of why it failed (an unreadable item must not stop a run)."""
    try:
        return load(*args)
    except ImgrecError as exc:
        return str(exc)
    except MemoryError:
        raise
    except Exception as exc:  # a reader bug must not lose the whole run
        return f"{type(exc).__name__}: {exc}"


def relative_source(ds: ImageDataset, src: str) -> str:
    """A source path relative to the dataset root, for reports."""
    rel = _strip_root(ds.root, src)
    return Path(src).name if rel is None else rel


def _strip_root(root: str, src: str) -> str | None:
    if not root:
        return None
    for base in (root + ZIP_SEP, root.rstrip("/") + "/"):
        if src.startswith(base):
            return src[len(base) :]
    return None

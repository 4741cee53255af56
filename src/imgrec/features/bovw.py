"""Bag of visual words: OpenCV SIFT/ORB descriptors quantized with a MiniBatchKMeans vocabulary."""

from __future__ import annotations

from typing import Any

import numpy as np

from imgrec.errors import DataError
from imgrec.features._batch import (
    BatchTransformer,
    check_choice,
    check_number,
    normalize_hist,
)
from imgrec.imaging.ops import to_gray

DESCRIPTORS = ("sift", "orb")
_CHUNK = 512  # images per descriptor/assignment round (bounds memory)


def auto_step(side: int) -> int:
    """Grid step used when ``step`` is None: about 8 keypoints across, at least 4 px apart."""
    return max(4, side // 8)


def dense_keypoints(h: int, w: int, step: int, size: float, offset: int = 0) -> list[Any]:
    """A regular grid of ``cv2.KeyPoint`` of diameter ``size`` (shifted by ``offset``)."""
    import cv2

    ys = np.arange(step // 2, h, step) + offset
    xs = np.arange(step // 2, w, step) + offset
    return [cv2.KeyPoint(float(x), float(y), float(size)) for y in ys for x in xs]


class _Extractor:
    """Computes float32 descriptors of one gray uint8 image (dense grid or detected keypoints)."""

    def __init__(self, kind: str, step: int, patch: int, detect: bool, shape: tuple[int, int]):
        import cv2

        self.kind, self.detect, self.pad = kind, detect, patch if kind == "orb" else 0
        if kind == "sift":
            self.cv = cv2.SIFT_create()  # type: ignore[attr-defined]
        else:
            size = max(patch, 3)
            self.cv = cv2.ORB_create(edgeThreshold=size, patchSize=size)  # type: ignore[attr-defined]
        self.grid = dense_keypoints(shape[0], shape[1], step, patch, self.pad)

    @property
    def width(self) -> int:
        return 128 if self.kind == "sift" else 256

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        import cv2

        if self.pad:
            p = self.pad
            gray = np.asarray(cv2.copyMakeBorder(gray, p, p, p, p, cv2.BORDER_REFLECT))
        if self.detect:
            _, desc = self.cv.detectAndCompute(gray, None)
        else:
            _, desc = self.cv.compute(gray, self.grid)
        if desc is None or len(desc) == 0:
            return np.zeros((0, self.width), np.float32)
        if self.kind == "orb":
            return np.unpackbits(desc, axis=1).astype(np.float32)
        return np.asarray(desc, np.float32)


class BagOfVisualWords(BatchTransformer):
    """Normalized histograms of visual words (SIFT or ORB descriptors, k-means vocabulary).

    Args:
        descriptor: ``"sift"`` (128-d gradients) or ``"orb"`` (binary, compared as bits).
        n_words: vocabulary size (fewer when the training set has fewer descriptors).
        step: dense grid step in pixels; None picks ``max(4, side // 8)``.
        patch_size: descriptor patch diameter; None = twice the step.
        detect: use the detector's keypoints instead of a dense grid (images where none
            are found get an all-zero histogram).
        max_descriptors: at most this many descriptors train the vocabulary.
        power: histograms are L1-normalized then raised to this power (0.5 = Hellinger).
        random_state: seed of the sampling and of MiniBatchKMeans.

    Attributes:
        vocabulary_: float32 ``(n_words_, d)`` word centres.
        step_, patch_size_: the grid in use.
        image_shape_, n_features_out_: fitted input size and output width.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
        >>> BagOfVisualWords(n_words=8).fit_transform(X).shape
        (6, 8)
    """

    def __init__(
        self,
        descriptor: str = "sift",
        n_words: int = 256,
        step: int | None = None,
        patch_size: int | None = None,
        detect: bool = False,
        max_descriptors: int = 50_000,
        power: float = 0.5,
        random_state: int | None = 0,
    ) -> None:
        self.descriptor = descriptor
        self.n_words = n_words
        self.step = step
        self.patch_size = patch_size
        self.detect = detect
        self.max_descriptors = max_descriptors
        self.power = power
        self.random_state = random_state

    def check_params(self) -> None:
        name = "BagOfVisualWords"
        check_choice(name, "descriptor", self.descriptor, DESCRIPTORS)
        check_number(name, "n_words", self.n_words, 2)
        if self.step is not None:
            check_number(name, "step", self.step, 1)
        if self.patch_size is not None:
            check_number(name, "patch_size", self.patch_size, 2)
        check_number(name, "max_descriptors", self.max_descriptors, 2)
        check_number(name, "power", self.power, 0.0, integer=False)

    def _extractor(self, shape: tuple[int, int]) -> _Extractor:
        return _Extractor(self.descriptor, self.step_, self.patch_size_, self.detect, shape)

    def _descriptors(self, X: np.ndarray, ext: _Extractor) -> list[np.ndarray]:
        gray = to_gray(X)
        return [ext(np.ascontiguousarray(g)) for g in gray]

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.cluster import MiniBatchKMeans

        side = min(X.shape[1:3])
        self.step_ = int(self.step or auto_step(side))
        self.patch_size_ = int(self.patch_size or 2 * self.step_)
        ext = self._extractor(X.shape[1:3])
        rng = np.random.default_rng(self.random_state)
        per_image = max(1, len(ext.grid)) if not self.detect else 50
        take = min(len(X), -(-self.max_descriptors // per_image))
        order = np.sort(rng.permutation(len(X))[:take])
        desc = np.concatenate(self._descriptors(X[order], ext))
        if len(desc) < 2:
            raise DataError(
                f"BagOfVisualWords found {len(desc)} descriptors in {take} training images; "
                "at least 2 are needed. Use the dense grid (detect=False) or larger images."
            )
        if len(desc) > self.max_descriptors:
            desc = desc[np.sort(rng.choice(len(desc), self.max_descriptors, replace=False))]
        k = int(min(self.n_words, len(desc)))
        seed = None if self.random_state is None else int(self.random_state)
        km = MiniBatchKMeans(k, random_state=seed, n_init=1, batch_size=min(2048, len(desc)))
        self.vocabulary_ = km.fit(desc).cluster_centers_.astype(np.float32)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.metrics import pairwise_distances_argmin

        ext = self._extractor(X.shape[1:3])
        k = len(self.vocabulary_)
        parts = []
        for start in range(0, len(X), _CHUNK):
            descs = self._descriptors(X[start : start + _CHUNK], ext)
            owner = np.repeat(np.arange(len(descs)), [len(d) for d in descs])
            counts = np.zeros(len(descs) * k, np.int64)
            if len(owner):
                words = pairwise_distances_argmin(np.concatenate(descs), self.vocabulary_)
                counts = np.bincount(owner * k + words, minlength=len(descs) * k)
            parts.append(normalize_hist(counts.reshape(len(descs), k).astype(np.float32), self.power))
        return np.concatenate(parts)

"""A split's prepared images for training, epoch after epoch, in bounded memory.

:class:`PreparedImages` stands between a dataset and the training loop (DESIGN rule 12):

- :meth:`~PreparedImages.scan` decodes every item once, by worker threads, a chunk at a
  time, to find the unreadable ones before training starts (they are listed, never raised);
- :meth:`~PreparedImages.batches` then gives the readable items in any order, a batch at a
  time: from a cache of prepared images when the split fits the memory budget, otherwise
  decoded again by worker threads one batch ahead (at most two batches in memory).

Both modes give the same arrays (the prepared image of a file does not change), so the
numbers of a run do not depend on whether its data fitted in memory. Every image goes
through ``ImageDataset.load_framed`` / ``load_prepared``: the one path from file to model
input that evaluate, predict and serve take.

Example:
    >>> import numpy as np
    >>> from imgrec.transforms.preprocess import Preprocessing
    >>> ds = ImageDataset.from_arrays(np.zeros((5, 8, 8), np.uint8), [0, 1, 0, 1, 0], ["a", "b"])
    >>> images = PreparedImages(ds, Preprocessing(size=4), cache="off").scan()
    >>> [(len(y), x.shape) for y, x in images.batches(np.arange(5), [slice(0, 3), slice(3, 5)])]
    [(3, (3, 4, 4, 3)), (2, (2, 4, 4, 3))]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from imgrec.data.dataset import FramingPreparer, ImageDataset, or_error
from imgrec.data.stream import stream_chunks
from imgrec.errors import UsageError
from imgrec.machine import available_memory

log = logging.getLogger(__name__)
CACHE_MODES = ("auto", "ram", "off")
CACHE_SHARE = 0.4  # "auto" caches a split when its prepared images take at most this share of free memory
CACHE_MAX = 2 * 2**30  # ... and at most this many bytes: a larger split streams unless cache="ram" asks
SCAN_CHUNK = 256
Decoded = tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]  # dataset indices, images, (source, error)


class PreparedImages:
    """The readable items of ``ds``, prepared with ``prep``, with their labels.

    Args:
        ds: the split (a classification dataset: ``ds.labels`` are class indices).
        prep: the model's preprocessing.
        cache: ``"ram"`` keeps every prepared image in memory after the scan; ``"off"``
            decodes each batch again every epoch; ``"auto"`` caches a small split: one whose
            prepared images take at most 2 GiB and 40% of the memory available now (else it
            streams).
        workers: decoding threads (PIL releases the GIL while decoding).

    Attributes:
        kept: dataset indices of the readable items (after :meth:`scan`).
        labels: their labels, int64.
        bad: ``(source, message)`` of the unreadable items.
        cached: whether batches come from memory.
    """

    def __init__(self, ds: ImageDataset, prep: FramingPreparer, *, cache: str = "auto", workers: int = 4) -> None:
        if cache not in CACHE_MODES:
            raise UsageError(f"cache must be one of {', '.join(CACHE_MODES)}; received {cache!r}.")
        self.ds, self.prep, self.workers = ds, prep, max(1, workers)
        size = int(getattr(prep, "size", 0))
        self.nbytes = len(ds) * size * size * 3
        small = self.nbytes <= min(CACHE_MAX, CACHE_SHARE * available_memory())
        self.cached = cache == "ram" or (cache == "auto" and small)
        self.kept = np.arange(len(ds), dtype=np.int64)
        self.labels = np.asarray(ds.labels, np.int64)
        self.bad: list[tuple[str, str]] = []
        self._cache: np.ndarray | None = None
        self._scanned = False

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, prep: FramingPreparer) -> PreparedImages:
        """Images that are already prepared (uint8 ``(N, S, S, 3)``), held as they are."""
        x, y = np.asarray(images), np.asarray(labels, np.int64)
        names = [str(i) for i in range(int(y.max(initial=0)) + 1)]
        out = cls(ImageDataset.from_arrays(x, y, names), prep, cache="ram")
        out._cache, out._scanned = x, True
        return out

    def __len__(self) -> int:
        return len(self.kept)

    def scan(self) -> PreparedImages:
        """Decode every item once: find the unreadable ones, fill the cache (when caching)."""
        if self._scanned:
            return self
        n, ok = len(self.ds), np.zeros(len(self.ds), bool)
        chunks = [np.arange(i, min(i + SCAN_CHUNK, n)) for i in range(0, n, SCAN_CHUNK)]
        for idx, images, bad in self._decode(chunks):
            ok[idx] = True
            self.bad += bad
            if self.cached and len(idx):
                if self._cache is None:
                    self._cache = np.empty((n, *images.shape[1:]), np.uint8)
                self._cache[idx] = images
        self.kept = np.flatnonzero(ok).astype(np.int64)
        self.labels = np.asarray(self.ds.labels, np.int64)[self.kept]
        self._scanned = True
        mode = f"cached in memory ({self.nbytes / 2**20:.0f} MiB)" if self.cached else "streamed from disk"
        log.info("%s: %d readable of %d items, %s", self.ds.name, len(self.kept), n, mode)
        return self

    def batches(self, order: np.ndarray, slices: Sequence[slice]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(labels, images)`` for each slice of ``order`` (positions into :attr:`kept`).

        A file that became unreadable since the scan drops out of its batch (with a warning).
        """
        if not self._scanned:
            raise UsageError("PreparedImages.batches() before scan(): call scan() first.")
        parts = [np.asarray(order[s], np.int64) for s in slices]
        if self.cached and self._cache is not None:
            for pos in parts:
                yield self.labels[pos], self._cache[self.kept[pos]]
            return
        wanted = [self.kept[pos] for pos in parts]
        for idx, images, bad in self._decode(wanted):
            for source, message in bad:
                log.warning("skipping %s, unreadable since the scan: %s", source, message)
            yield np.asarray(self.ds.labels, np.int64)[idx], images

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, images)`` of every readable item, in order (for models fitted in one call)."""
        whole = np.arange(len(self))
        if self.cached and self._cache is not None:
            return self.labels, self._cache[self.kept]
        parts = list(self.batches(whole, [slice(i, i + SCAN_CHUNK) for i in range(0, len(whole), SCAN_CHUNK)]))
        if not parts:
            return self.labels, np.zeros((0, 1, 1, 3), np.uint8)
        return np.concatenate([y for y, _ in parts]), np.concatenate([x for _, x in parts])

    def _decode(self, chunks: list[np.ndarray]) -> Iterator[Decoded]:
        if self.ds.arrays is not None:  # in memory: preparing is cheap, threads would only add overhead
            for idx in chunks:
                yield _prepare_chunk(self.ds, self.prep, idx)
            return
        for batch in stream_chunks(self.ds, self.prep, chunks, workers=self.workers):
            yield batch.indices, batch.images, batch.bad


def _prepare_chunk(ds: ImageDataset, prep: Any, idx: np.ndarray) -> Decoded:
    results = [or_error(ds.load_prepared, int(i), prep) for i in idx]
    ok = [k for k, r in enumerate(results) if not isinstance(r, str)]
    bad = [(ds.sources[int(idx[k])], str(r)) for k, r in enumerate(results) if isinstance(r, str)]
    images = np.stack([results[k] for k in ok]) if ok else np.zeros((0, 1, 1, 3), np.uint8)
    return idx[ok], images, bad


__all__ = ["CACHE_MODES", "PreparedImages"]

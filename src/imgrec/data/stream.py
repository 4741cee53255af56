"""Stream a dataset in batches: decoded by worker threads, one batch ahead, memory bounded.

DESIGN rule 12: nothing decodes a whole dataset into RAM. Each batch is decoded and prepared
through ``ImageDataset.load_framed`` (the one path from file to model input) by a thread pool
while the caller works on the previous batch, so at most two batches are in memory.

Example:
    >>> import numpy as np
    >>> from imgrec.transforms.preprocess import Preprocessing
    >>> ds = ImageDataset.from_arrays(np.zeros((5, 8, 8), np.uint8), [0, 1, 0, 1, 0], ["a", "b"])
    >>> [len(b.indices) for b in stream_batches(ds, Preprocessing(size=4), np.arange(5), 2)]
    [2, 2, 1]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgrec.data.dataset import FramingPreparer, ImageDataset, or_error


@dataclass
class Batch:
    """Prepared images of one batch and where they came from.

    Attributes:
        indices: dataset indices of the images that decoded (in order).
        images: uint8 ``(B, S, S, 3)``.
        geometries: one geometry record per image.
        bad: ``(source, message)`` of the items of this batch that could not be read.
    """

    indices: np.ndarray
    images: np.ndarray
    geometries: list[Any]
    bad: list[tuple[str, str]] = field(default_factory=list)


def stream_batches(
    ds: ImageDataset, prep: FramingPreparer, order: Sequence[int] | np.ndarray, batch_size: int, *, workers: int = 4
) -> Iterator[Batch]:
    """Batches of ``ds`` in ``order``; unreadable items are skipped and listed in ``Batch.bad``."""
    chunks = [np.asarray(order[i : i + batch_size], np.int64) for i in range(0, len(order), max(1, batch_size))]
    yield from stream_chunks(ds, prep, chunks, workers=workers)


def stream_chunks(
    ds: ImageDataset, prep: FramingPreparer, chunks: Sequence[np.ndarray], *, workers: int = 4
) -> Iterator[Batch]:
    """One batch per chunk of dataset indices (chunks may differ in size), decoded one ahead."""
    if not chunks:
        return
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, ThreadPoolExecutor(max_workers=1) as ahead_pool:
        ahead: Future[Batch] = ahead_pool.submit(_decode_batch, pool, ds, prep, chunks[0])
        for k in range(len(chunks)):
            batch = ahead.result()
            if k + 1 < len(chunks):  # decode the next batch while the caller uses this one
                ahead = ahead_pool.submit(_decode_batch, pool, ds, prep, chunks[k + 1])
            yield batch


def _decode_batch(pool: ThreadPoolExecutor, ds: ImageDataset, prep: FramingPreparer, idx: np.ndarray) -> Batch:
    results = list(pool.map(lambda i: _one(ds, prep, int(i)), idx))
    ok = [k for k, r in enumerate(results) if not isinstance(r, str)]
    bad = [(ds.sources[int(idx[k])], str(r)) for k, r in enumerate(results) if isinstance(r, str)]
    images = np.stack([results[k][0] for k in ok]) if ok else np.zeros((0, 1, 1, 3), np.uint8)  # type: ignore[index]
    return Batch(idx[ok], images, [results[k][1] for k in ok], bad)  # type: ignore[index]


def _one(ds: ImageDataset, prep: FramingPreparer, i: int) -> tuple[np.ndarray, Any] | str:
    return or_error(ds.load_framed, i, prep)  # type: ignore[no-any-return]

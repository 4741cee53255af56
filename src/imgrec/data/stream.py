"""Stream a dataset in batches: decoded by worker threads, one batch ahead, memory bounded.

DESIGN rule 12: nothing decodes a whole dataset into RAM. Each batch is decoded and prepared
through ``ImageDataset.load_framed`` (the one path from file to model input) by a thread pool
while the caller works on the previous batch, so at most two batches are in memory. With
``masks=True`` (segment datasets) each image's index mask is decoded in the same threads, at the
image's own resolution (an unreadable or mis-sized mask makes the item a bad one).

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
from imgrec.errors import DatasetError

NOTHING_READABLE = "nothing_readable"  # the code of the DatasetError of a dataset none of whose items could be read


@dataclass
class Batch:
    """Prepared images of one batch and where they came from.

    Attributes:
        indices: dataset indices of the images that decoded (in order).
        images: uint8 ``(B, S, S, 3)``.
        geometries: one geometry record per image.
        bad: ``(source, message)`` of the items of this batch that could not be read (a
            training step adds those it cannot use, e.g. masks of another size).
        masks: with ``masks=True``, one ``(H, W)`` index mask per image in the original's pixels.
    """

    indices: np.ndarray
    images: np.ndarray
    geometries: list[Any]
    bad: list[tuple[str, str]] = field(default_factory=list)
    masks: list[np.ndarray] | None = None


def stream_batches(
    ds: ImageDataset, prep: FramingPreparer, order: Sequence[int] | np.ndarray, batch_size: int, *, workers: int = 4,
    masks: bool = False,
) -> Iterator[Batch]:  # fmt: skip
    """Batches of ``ds`` in ``order``; unreadable items are skipped and listed in ``Batch.bad``."""
    chunks = [np.asarray(order[i : i + batch_size], np.int64) for i in range(0, len(order), max(1, batch_size))]
    yield from stream_chunks(ds, prep, chunks, workers=workers, masks=masks)


def stream_chunks(
    ds: ImageDataset, prep: FramingPreparer, chunks: Sequence[np.ndarray], *, workers: int = 4, masks: bool = False
) -> Iterator[Batch]:
    """One batch per chunk of dataset indices (chunks may differ in size), decoded one ahead."""
    if not chunks:
        return
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, ThreadPoolExecutor(max_workers=1) as ahead_pool:
        ahead: Future[Batch] = ahead_pool.submit(_decode_batch, pool, ds, prep, chunks[0], masks)
        for k in range(len(chunks)):
            batch = ahead.result()
            if k + 1 < len(chunks):  # decode the next batch while the caller uses this one
                ahead = ahead_pool.submit(_decode_batch, pool, ds, prep, chunks[k + 1], masks)
            yield batch


def _decode_batch(
    pool: ThreadPoolExecutor, ds: ImageDataset, prep: FramingPreparer, idx: np.ndarray, masks: bool = False
) -> Batch:
    results = list(pool.map(lambda i: or_error(_one, ds, prep, int(i), masks), idx))
    ok = [k for k, r in enumerate(results) if not isinstance(r, str)]
    bad = [(ds.sources[int(idx[k])], str(r)) for k, r in enumerate(results) if isinstance(r, str)]
    images = np.stack([results[k][0] for k in ok]) if ok else np.zeros((0, 1, 1, 3), np.uint8)
    found = [results[k][2] for k in ok] if masks else None
    return Batch(idx[ok], images, [results[k][1] for k in ok], bad, found)


def _one(ds: ImageDataset, prep: FramingPreparer, i: int, masks: bool) -> tuple[np.ndarray, Any, Any]:
    image, geometry = ds.load_framed(i, prep)
    if not masks:
        return image, geometry, None
    assert ds.masks is not None
    stated = ds.masks[i].render_size  # objects to render: their size is compared before rendering
    mask = ds.load_mask(i) if stated is None else None
    mw, mh = (mask.shape[1], mask.shape[0]) if mask is not None else stated or (0, 0)
    if (mw, mh) != tuple(geometry.original):
        from imgrec.errors import DataError

        w, h = geometry.original
        raise DataError(f"mask_size_mismatch: the mask is {mw}x{mh} but the image is {w}x{h} "
                        "(imgrec data check lists such masks).")  # fmt: skip
    return image, geometry, ds.load_mask(i) if mask is None else mask


def nothing_readable(ds: ImageDataset, bad: Sequence[tuple[str, str]]) -> DatasetError:
    """The error for ``ds`` when none of its items could be read (``bad``: ``(source, message)``)."""
    first = f" (the first: {bad[0][0]}: {bad[0][1].rstrip('.')})" if bad else ""
    return DatasetError(f"No image of {ds.name!r} could be read: {len(bad)} of {len(ds)} failed{first}.",
                        code=NOTHING_READABLE)  # fmt: skip

"""``stream_batches(masks=True)``: each image's mask decoded with it, in the original's pixels;
an unreadable or mis-sized mask makes the item a bad one, not the batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.segmentation_data import save_palette_png, write_few_class_masks

from imgrec.data import load_dataset
from imgrec.data.stream import stream_batches
from imgrec.imaging import load_image
from imgrec.transforms.preprocess import Preprocessing


def test_masks_come_with_their_images_and_bad_ones_are_listed(tmp_path: Path) -> None:
    root = write_few_class_masks(tmp_path / "m", ("person", "car"), n=5)
    stems = sorted(p.stem for p in (root / "masks").glob("*.png"))
    save_palette_png(root / "masks" / f"{stems[1]}.png", np.zeros((7, 9), np.uint8))  # not the image's size
    (root / "masks" / f"{stems[3]}.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    ds = load_dataset(root)
    prep = Preprocessing(size=64, resize_mode="letterbox")
    batches = list(stream_batches(ds, prep, np.arange(len(ds)), 3, masks=True))
    bad = dict(b for batch in batches for b in batch.bad)
    assert {Path(s).stem for s in bad} == {stems[1], stems[3]}
    assert any("mask_size_mismatch" in m for m in bad.values())
    for batch in batches:
        assert batch.masks is not None and len(batch.masks) == len(batch.indices) == len(batch.images)
        for i, g, mask in zip(batch.indices, batch.geometries, batch.masks, strict=True):
            assert (mask.shape[1], mask.shape[0]) == tuple(g.original) == load_image(ds.sources[i]).shape[1::-1]
            np.testing.assert_array_equal(mask, ds.load_mask(int(i)))
            assert set(np.unique(mask).tolist()) <= {0, 1, 2}
    plain = next(iter(stream_batches(ds, prep, np.arange(2), 2)))
    assert plain.masks is None and len(plain.images) == 2

"""Conversions with masks on COCO128: COCO -> mask folders -> COCO (RLE exact, polygons close)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from tests.conftest import shared_data_path

from imgrec.data import convert_dataset, load_dataset
from imgrec.errors import DatasetError


@pytest.fixture(scope="module")
def instance_ds():
    return load_dataset(shared_data_path("coco128"), task="instance").subset(range(8))


def test_coco_to_masks_to_coco_round_trip(tmp_path, instance_ds) -> None:
    res = convert_dataset(instance_ds, "masks", tmp_path / "m")
    assert res.images == 8 and res.linked == 8 and res.notes
    m = load_dataset(tmp_path / "m")
    seg = load_dataset(shared_data_path("coco128"), task="segment").subset(range(8))
    assert m.classes == seg.classes
    expected = [seg.load_mask(i) for i in range(8)]
    assert all(np.array_equal(m.load_mask(i), e) for i, e in enumerate(expected))
    # images are linked, never re-encoded; nothing temporary left behind
    first = sorted((tmp_path / "m" / "images").iterdir())[0]
    assert os.stat(first).st_ino == os.stat(shared_data_path("coco128", "images", "train2017", first.name)).st_ino
    assert not [p for p in (tmp_path / "m").rglob("*") if p.name.startswith(".")]

    convert_dataset(m, "coco", tmp_path / "c")
    back = load_dataset(tmp_path / "c", task="segment")
    assert back.classes == m.classes
    assert all(np.array_equal(back.load_mask(i), e) for i, e in enumerate(expected))
    inst = load_dataset(tmp_path / "c", task="instance")
    assert all(s is not None and s.kind == "rle" for t in inst.targets for s in t.segments)


def test_polygon_encoding_is_close_and_holes_stay_rle(tmp_path, instance_ds) -> None:
    convert_dataset(instance_ds, "masks", tmp_path / "m")
    m = load_dataset(tmp_path / "m")
    res = convert_dataset(m, "coco", tmp_path / "p", mask_encoding="polygon")
    assert any("half a pixel" in n for n in res.notes)
    back = load_dataset(tmp_path / "p", task="segment")
    agree = [float((back.load_mask(i) == m.load_mask(i)).mean()) for i in range(len(m))]
    assert min(agree) > 0.99
    inst = load_dataset(tmp_path / "p", task="instance")
    kinds = {s.kind for t in inst.targets for s in t.segments if s is not None}
    assert "polygon" in kinds


def test_instance_to_coco_keeps_polygons_and_rles(tmp_path, instance_ds) -> None:
    convert_dataset(instance_ds, "coco", tmp_path / "c")
    back = load_dataset(tmp_path / "c", task="instance")
    for a, b in zip(instance_ds.targets, back.targets, strict=True):
        assert [s.kind for s in a.segments] == [s.kind for s in b.segments]
        assert all(np.array_equal(x.decode(), y.decode()) for x, y in zip(a.segments, b.segments, strict=True))


def test_masks_cannot_become_boxes_only_formats(tmp_path, instance_ds) -> None:
    convert_dataset(instance_ds, "masks", tmp_path / "m")
    with pytest.raises(DatasetError, match="coco or masks"):
        convert_dataset(load_dataset(tmp_path / "m"), "yolo", tmp_path / "y")
    detect = load_dataset(shared_data_path("coco128")).subset(range(2))
    with pytest.raises(DatasetError, match="instance"):
        convert_dataset(detect, "masks", tmp_path / "x")

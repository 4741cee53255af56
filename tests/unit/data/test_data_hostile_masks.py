"""Hostile masks and segmentations: clear errors or issues, never a crash, a hang or gigabytes."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import shared_data_path

from imgrec.data import check_dataset, convert_dataset, load_dataset
from imgrec.data.rle import SegmentError, parse_segmentation, string_counts
from imgrec.errors import ImageTooLargeError, InvalidImageError
from imgrec.imaging.masks import decode_mask, encode_mask_png


def _png(mode: str, arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, "PNG") if mode != "I;16" else Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def test_16_bit_png_keeps_its_values() -> None:
    arr = np.array([[0, 300], [65535, 1024]], np.uint16)
    m = decode_mask(_png("I;16", arr))
    assert m.values.dtype == np.uint16 and m.values.tolist() == arr.tolist()
    assert decode_mask(encode_mask_png(arr)).values.tolist() == arr.tolist()


def test_palette_png_keeps_indices_not_colours() -> None:
    im = Image.frombytes("P", (3, 1), bytes([0, 15, 255]))
    im.putpalette([9, 9, 9] * 256)  # every index the same colour: RGB conversion would lose the classes
    buf = io.BytesIO()
    im.save(buf, "PNG")
    assert decode_mask(buf.getvalue()).values.tolist() == [[0, 15, 255]]


def test_lossy_and_unreadable_masks_are_refused() -> None:
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "JPEG")
    with pytest.raises(InvalidImageError, match="losslessly"):
        decode_mask(buf.getvalue())
    with pytest.raises(InvalidImageError):
        noise = np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)
        decode_mask(_png("L", noise)[:2000])  # truncated in the middle of its pixel data
    with pytest.raises(InvalidImageError, match="unrecognised"):
        decode_mask(b"not an image at all")
    f = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.float32)).save(f, "TIFF")
    with pytest.raises(InvalidImageError, match="index mask"):
        decode_mask(f.getvalue())


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming a huge size (the pixels would be gigabytes), tiny data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_mask_decompression_bomb_is_refused_before_decoding() -> None:
    started = time.perf_counter()
    with pytest.raises(ImageTooLargeError):
        decode_mask(_bomb_png(100_000, 100_000))
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"counts": [10**9, 5], "size": [4, 5]}, "cover"),  # would write past pycocotools' buffer
        ({"counts": [5, -3, 18], "size": [4, 5]}, "negative"),
        ({"counts": "0" * 30, "size": [4, 5]}, "cover"),
        ({"counts": "ooooooooooo1", "size": [4, 5]}, "too long"),
        ({"counts": "ab !", "size": [4, 5]}, "alphabet"),
        ({"counts": "o", "size": [4, 5]}, "middle of a number"),
        ({"counts": [20], "size": [5, 4]}, "its image is"),
        ({"counts": [20], "size": "4x5"}, "size"),
        ([[1, 2, 3]], "at least 6"),
        ([[0, 0, 1e300, 0, 1, 1]], "finite"),
        ([[0, 0, 9e6, 0, 9e6, 9e6, 0, 9e6]], "implausible"),
        ([], "empty"),
        ("polygon", "expected polygons"),
    ],
)
def test_bad_segmentations_raise_segment_error(value: object, match: str) -> None:
    with pytest.raises(SegmentError, match=match):
        parse_segmentation(value, (4, 5))


def test_huge_rle_string_is_refused_by_length(monkeypatch: pytest.MonkeyPatch) -> None:
    from imgrec.data import rle

    monkeypatch.setattr(rle, "RLE_LIMITS", rle.RleLimits(max_rle_chars=100))
    with pytest.raises(SegmentError, match="the limit is 100"):
        parse_segmentation({"counts": "1" * 101, "size": [4, 5]}, (4, 5))
    with pytest.raises(SegmentError, match="the limit is 100"):
        parse_segmentation({"counts": [0] * 101 + [20], "size": [4, 5]}, (4, 5))


def test_string_counts_matches_pycocotools_on_real_rles() -> None:
    from pycocotools import mask as mask_utils

    doc = json.loads((shared_data_path("coco128") / "annotations" / "instances_train2017.json").read_text())
    crowd = [a for a in doc["annotations"] if isinstance(a["segmentation"], dict)]
    assert len(crowd) == 10
    for a in crowd:
        h, w = a["segmentation"]["size"]
        compressed = mask_utils.frPyObjects(a["segmentation"], h, w)["counts"]
        assert string_counts(compressed).tolist() == a["segmentation"]["counts"]


def test_coco_hostile_segmentations_keep_boxes_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imgrec.data import rle

    monkeypatch.setattr(rle, "RLE_LIMITS", rle.RleLimits(max_polygon_coords=10_000))
    src = shared_data_path("coco128")
    doc = json.loads((src / "annotations" / "instances_train2017.json").read_text())
    doc["images"] = doc["images"][:2]
    keep = {im["id"] for im in doc["images"]}
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in keep]
    first = next(im for im in doc["images"] if im["id"] == doc["annotations"][0]["image_id"])
    doc["annotations"][0]["segmentation"] = {"counts": [10**12], "size": [first["height"], first["width"]]}
    doc["annotations"][1]["segmentation"] = [[0.0] * 10_002]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances.json").write_text(json.dumps(doc))
    (tmp_path / "images").symlink_to(src / "images" / "train2017")
    ds = load_dataset(tmp_path, task="instance")
    bad = [i for i in ds.issues if i.code == "bad_segment"]
    assert len(bad) == 2 and "cover" in bad[0].message and "limit" in bad[1].message
    i = [im["id"] for im in doc["images"]].index(first["id"])
    assert ds.targets[i].segments[0] is None and len(ds.targets[i]) == sum(
        a["image_id"] == first["id"] for a in doc["annotations"]
    )
    mask = load_dataset(tmp_path, task="segment").load_mask(0)  # renders the usable objects only
    assert mask.shape == (480, 640)


def test_images_of_2_to_the_32_pixels_are_refused_before_pycocotools() -> None:
    with pytest.raises(SegmentError, match="1000000x1000000 cannot hold a mask"):  # its runs would wrap around
        parse_segmentation([[10, 10, 100, 10, 100, 100]], (1_000_000, 1_000_000))
    with pytest.raises(SegmentError, match="cannot hold a mask"):
        parse_segmentation({"counts": [5, 5], "size": [-2, -5]}, (-2, -5))
    assert parse_segmentation([[10, 10, 100, 10, 100, 100]], (60_000, 60_000)).area() == 4005


def _coco_sized(tmp_path: Path, sizes: list[tuple[int, int]]) -> Path:
    """The first COCO128 images whose stated (width, height) are ``sizes``."""
    src = shared_data_path("coco128")
    doc = json.loads((src / "annotations" / "instances_train2017.json").read_text())
    doc["images"] = doc["images"][: len(sizes)]
    for im, (w, h) in zip(doc["images"], sizes, strict=True):
        im["width"], im["height"] = w, h
    keep = {im["id"] for im in doc["images"]}
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in keep]
    (tmp_path / "annotations").mkdir(parents=True)
    (tmp_path / "annotations" / "instances.json").write_text(json.dumps(doc))
    (tmp_path / "images").symlink_to(src / "images" / "train2017")
    return tmp_path


def test_coco_stated_sizes_that_are_not_the_images_are_found_before_rendering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stated size of 40000 x 40000 (or one with the sides swapped) on a 640 x 480 photo: reported
    without drawing a 1.6-gigapixel mask (it took minutes), and left out of a conversion instead of
    written empty."""
    from imgrec.data import masks

    drawn: list[tuple[int, int]] = []
    render = masks.render_objects
    monkeypatch.setattr(masks, "render_objects", lambda o, size, *a: drawn.append(size) or render(o, size, *a))
    root = _coco_sized(tmp_path / "coco", [(40_000, 40_000), (480, 640), (640, 428)])
    ds = load_dataset(root, task="segment")
    report = check_dataset(ds, near_dup_distance=-1)
    assert drawn == [(640, 428)]
    found = sorted(i["message"] for i in report.label_issues if i["code"] == "mask_size_mismatch")
    assert found == ["000000000009.jpg: the annotation states 40000x40000, the image is 640x480.",
                     "000000000025.jpg: the annotation states 480x640, the image is 640x426."]  # fmt: skip
    with pytest.raises(ImageTooLargeError, match="states a 40000x40000 image"):
        ds.load_mask(0)
    result = convert_dataset(load_dataset(root, task="instance"), "masks", tmp_path / "out")
    assert result.images == 1 and sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == [
        "000000000030.png"]  # fmt: skip
    assert "2 image(s) left out" in result.notes[0] and "states 480x640, the image is 640x426" in result.notes[0]
    assert "125 problem(s) found while reading the labels were left out (unlabeled_image 125)" in result.notes[-1]

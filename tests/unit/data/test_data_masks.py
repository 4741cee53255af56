"""Segmentation readers on real COCO128 polygons: mask folders, VOC segmentation, COCO instance/segment."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools.coco import COCO
from tests.conftest import shared_data_path
from tests.segmentation_data import save_palette_png, write_mask_folder, write_voc_segmentation

from imgrec.data import check_dataset, detect_format, load_dataset
from imgrec.data.masks import InstanceTarget, render_objects
from imgrec.errors import DataError, DatasetError, UsageError


def test_mask_folder_reads_palette_indices_as_classes(tmp_path) -> None:
    root, masks = write_mask_folder(tmp_path / "m", n=4)
    assert detect_format(str(root)) == "masks"
    ds = load_dataset(root)
    assert ds.task == "segment" and len(ds) == 4 and ds.classes[:2] == ["background", "person"]
    assert ds.num_classes == 81 and ds.ignore_index == 255
    for i, expected in enumerate(masks):
        got = ds.load_mask(i)
        assert got.dtype == np.uint8 and np.array_equal(got, expected)
    assert ds.load(0).shape[:2] == masks[0].shape  # masks are in the decoded image's pixels
    assert ds.labels.tolist() == [-1] * 4  # classes are unknown until a mask is decoded


def test_mask_folder_splits_classes_option_and_missing_pairs(tmp_path) -> None:
    root, _ = write_mask_folder(tmp_path / "m", n=6, splits=True)
    (root / "masks" / "val" / "orphan.png").write_bytes((root / "masks" / "val").glob("*.png").__next__().read_bytes())
    next((root / "masks" / "train").glob("*.png")).unlink()
    ds = load_dataset(root, classes=",".join(f"c{k}" for k in range(81)))
    assert sorted(set(ds.splits.tolist())) == ["train", "val"] and len(ds) == 5
    assert ds.classes[:2] == ["c0", "c1"]
    codes = sorted(i.code for i in ds.issues)
    assert codes == ["missing_image", "missing_mask"]


def test_mask_folder_without_class_names_says_how_to_fix(tmp_path) -> None:
    root, _ = write_mask_folder(tmp_path / "m", n=1)
    (root / "classes.txt").unlink()
    with pytest.raises(DatasetError, match="--classes"):
        load_dataset(root)


def test_colour_masks_map_through_the_labelmap(tmp_path) -> None:
    root, masks = write_mask_folder(tmp_path / "m", n=2)
    colours = {0: (0, 0, 0), 1: (220, 20, 60), 3: (0, 0, 142)}
    lines = [f"{name}:{','.join(map(str, colours.get(k, (k, k, 255 - k))))}::" for k, name in
             enumerate((root / "classes.txt").read_text().splitlines())]  # fmt: skip
    (root / "classes.txt").unlink()
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n" + "\n".join(lines) + "\n")
    from PIL import Image

    lut = np.array([colours.get(k, (k, k, 255 - k)) for k in range(256)], np.uint8)
    for f, m in zip(sorted((root / "masks").glob("*.png")), masks, strict=True):
        rgb = lut[m]
        rgb[0, 0] = (1, 2, 3)  # a colour no class has
        Image.fromarray(rgb).save(f)
    ds = load_dataset(root)
    got, unknown = ds.masks[0].read()
    expected = masks[0].copy()
    expected[0, 0] = 255
    assert np.array_equal(got, expected) and unknown == [(1, 2, 3)]
    report = check_dataset(ds, near_dup_distance=-1)
    assert "unknown_color" in {x["code"] for x in report.label_issues}


def test_rgb_masks_without_colours_are_read_when_gray_else_refused(tmp_path) -> None:
    """Without a colour map an RGB (or RGBA) mask was read as all-ignored pixels: training learnt nothing."""
    from PIL import Image

    root, masks = write_mask_folder(tmp_path / "m", n=3)
    files = sorted((root / "masks").glob("*.png"))
    Image.fromarray(np.dstack([masks[0]] * 3)).save(files[0])  # an index mask saved as RGB
    Image.fromarray(np.dstack([masks[1]] * 3 + [np.full_like(masks[1], 255)])).save(files[1])  # as RGBA
    Image.fromarray(np.dstack([masks[2], masks[2] * 2, masks[2]])).save(files[2])  # real colours
    ds = load_dataset(root)
    assert np.array_equal(ds.load_mask(0), masks[0]) and np.array_equal(ds.load_mask(1), masks[1])
    with pytest.raises(DataError, match=r"is a colour mask \(rgb\(0, 0, 0\).*no colours for its classes"):
        ds.load_mask(2)
    report = check_dataset(ds, near_dup_distance=-1)
    assert [(x["code"], x["file"]) for x in report.label_issues] == [("unreadable_mask", str(files[2]))]


def test_voc_segmentation_layout(tmp_path) -> None:
    root, masks = write_voc_segmentation(tmp_path / "voc", n=4)
    assert detect_format(str(root)) == "voc-seg"
    ds = load_dataset(root)
    assert ds.task == "segment" and ds.splits.tolist() == ["train", "train", "val", "val"]
    assert all(np.array_equal(ds.load_mask(i), m) for i, m in enumerate(masks))
    (root / "classes.txt").unlink()
    assert load_dataset(root).classes[15] == "person"  # VOC's own 21 names by default


def test_coco_instance_masks_equal_pycocotools(tmp_path) -> None:
    root = shared_data_path("coco128")
    ds = load_dataset(root, task="instance")
    api = COCO(str(root / "annotations" / "instances_train2017.json"))
    assert ds.task == "instance" and sum(len(t) for t in ds.targets) == 939
    for i in (0, 1, 5, 20):
        t = ds.targets[i]
        assert isinstance(t, InstanceTarget)
        for k in range(len(t)):
            ann = api.dataset["annotations"][int(t.origins[k])]
            assert np.array_equal(t.segments[k].decode(), api.annToMask(ann).astype(bool))
    crowd = [t for t in ds.targets if t.crowd.any()]
    assert crowd and crowd[0].segments[int(np.flatnonzero(crowd[0].crowd)[0])].kind == "rle"


def test_coco_segment_renders_smaller_objects_on_top() -> None:
    ds = load_dataset(shared_data_path("coco128"), task="segment")
    assert ds.classes[0] == "background" and ds.class_ids[:2] == [0, 1] and len(ds.classes) == 81
    objects = ds.masks[0].objects
    mask = ds.load_mask(0)
    areas = [s.area() for s in objects.segments]
    small = int(np.argmin(areas))
    assert (mask[objects.segments[small].decode()] == objects.labels[small] + 1).all()
    assert np.array_equal(mask, render_objects(objects, (mask.shape[1], mask.shape[0])))
    assert set(np.unique(mask).tolist()) <= {0, *[int(c) for c in ds.masks[0].present]}


def test_task_and_classes_options_are_checked(tmp_path) -> None:
    with pytest.raises(UsageError, match="holds no segment data"):
        load_dataset(shared_data_path("bccd"), format="voc", task="segment")
    root, _ = write_mask_folder(tmp_path / "m", n=1)
    with pytest.raises(UsageError, match="Class names can be given"):
        load_dataset(shared_data_path("coco128"), classes="a,b")
    assert load_dataset(root, task="segment").task == "segment"


def test_check_counts_pixels_and_flags_hostile_masks(tmp_path) -> None:
    root, masks = write_mask_folder(tmp_path / "m", n=5)
    files = sorted((root / "masks").glob("*.png"))
    save_palette_png(files[0], masks[0][:-3])  # wrong size
    bad = masks[1].copy()
    bad[:2, :2] = 200  # not a class (81 classes), not 255
    save_palette_png(files[1], bad)
    save_palette_png(files[2], np.zeros_like(masks[2]))  # empty
    files[3].write_bytes(files[3].read_bytes()[:80])  # truncated PNG
    report = check_dataset(load_dataset(root), near_dup_distance=-1)
    codes = {x["code"]: x for x in report.label_issues}
    assert {"mask_size_mismatch", "unknown_class", "empty_mask", "unreadable_mask"} <= set(codes)
    assert "200" in codes["unknown_class"]["message"]
    assert report.pixel_counts["person"] == int((masks[4] == 1).sum() + (bad == 1).sum() + (masks[0][:-3] == 1).sum())
    assert report.class_counts["background"] == 4 and not report.ok  # 1 of 5 masks unreadable: an error
    assert {p["code"] for p in report.problems} >= {"mask_size_mismatch", "unknown_class"}


def test_a_region_encodes_to_the_bytes_of_its_whole_mask() -> None:
    """encode_rle_region (Mask R-CNN's pasted masks) == encode_rle of the full mask, for random
    regions anywhere (edges, empty, full, one pixel wide), and a region that does not fit is refused."""
    from imgrec.data.rle import encode_rle, encode_rle_region

    rng = np.random.default_rng(0)
    for _ in range(500):
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        rw, rh = int(rng.integers(0, w - x0 + 1)), int(rng.integers(0, h - y0 + 1))
        region = rng.random((rh, rw)) < rng.choice([0.0, 0.3, 0.9, 1.0])
        full = np.zeros((h, w), bool)
        full[y0 : y0 + rh, x0 : x0 + rw] = region
        assert encode_rle_region(region, (x0, y0), (w, h)) == encode_rle(full)
    with pytest.raises(ValueError, match="does not fit"):
        encode_rle_region(np.ones((2, 2), bool), (3, 0), (4, 4))

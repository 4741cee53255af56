"""Detection datasets split by image, stratified on each image's rarest class, seeded, with a manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imgrec.data import ImageDataset, load_dataset, load_splits, split_dataset
from imgrec.data.boxes import NO_OBJECTS, BoxTarget


def _detection(n: int = 200, seed: int = 0) -> ImageDataset:
    """Class 0 in most images, class 1 in every 5th, class 2 in every 20th, every 10th empty."""
    targets = []
    for i in range(n):
        labels = [] if i % 10 == 9 else [0] + ([1] if i % 5 == 0 else []) + ([2] if i % 20 == 0 else [])
        targets.append(BoxTarget.from_lists([[1, 1, 5, 5]] * len(labels), labels))
    return ImageDataset.for_detection(
        ["common", "medium", "rare"], [f"/d/{i}.jpg" for i in range(n)], targets, root="/d"
    )


def test_split_key_is_the_rarest_class_or_no_objects() -> None:
    ds = _detection()
    assert ds.labels[0] == 2 and ds.labels[5] == 1 and ds.labels[1] == 0 and ds.labels[9] == NO_OBJECTS
    assert ds.class_counts() == {"common": 180, "medium": 40, "rare": 10}
    assert ds.instance_counts() == {"common": 180, "medium": 40, "rare": 10}


def test_split_by_image_balances_classes_and_is_seeded() -> None:
    ds = _detection()
    a = split_dataset(ds, val=0.2, test=0.2, seed=1)
    b = split_dataset(ds, val=0.2, test=0.2, seed=1)
    assert all(np.array_equal(a.indices[k], b.indices[k]) for k in a.indices)
    assert sorted(np.concatenate(list(a.indices.values())).tolist()) == list(range(200))
    assert a.sizes() == {"train": 120, "val": 40, "test": 40}
    for part in (a.val, a.test):
        assert part.class_counts()["rare"] == 2 and part.class_counts()["medium"] == 8
        assert int((part.labels == NO_OBJECTS).sum()) == 4
        assert part.targets is not None and len(part.targets) == len(part)
    assert a.train.class_counts()["rare"] == 6
    c = split_dataset(ds, val=0.2, test=0.2, seed=2)
    assert not np.array_equal(a.indices["val"], c.indices["val"])


def test_subset_carries_targets_and_fingerprint_sees_boxes() -> None:
    ds = _detection(20)
    sub = ds.subset([3, 0])
    assert sub.task == "detect" and np.array_equal(sub.targets[1].labels, ds.targets[0].labels)
    moved = _detection(20)
    moved.targets[4] = BoxTarget.from_lists([[1, 1, 6, 5]], [0])
    assert moved.fingerprint() != ds.fingerprint() and _detection(20).fingerprint() == ds.fingerprint()


def test_manifest_round_trip(tmp_path: Path) -> None:
    ds = _detection()
    s = split_dataset(ds, seed=3)
    again = load_splits(_detection(), s.save(tmp_path / "splits.json"))
    assert all(np.array_equal(again.indices[k], s.indices[k]) for k in s.indices)


def test_real_bccd_keeps_its_image_sets(shared_data) -> None:
    s = split_dataset(load_dataset(shared_data("bccd")), seed=0)
    assert s.sizes() == {"train": 205, "val": 87, "test": 72}
    assert sum(sum(p.instance_counts().values()) for p in (s.train, s.val, s.test)) == 4888


def test_real_coco128_split_sizes_and_rare_classes(shared_data) -> None:
    ds = load_dataset(shared_data("coco128"))
    s = split_dataset(ds, val=0.2, test=0.1, seed=0)
    assert sum(s.sizes().values()) == 128 and s.sizes()["test"] == 13
    # 64 classes in 2+ of 128 images: val grows from 26 to hold (nearly) all of them
    assert 26 <= s.sizes()["val"] <= 36
    counts, val, train = ds.class_counts(), s.val.class_counts(), s.train.class_counts()
    assert sum(1 for c, n in counts.items() if n >= 2 and not val[c]) <= 1  # was 20 by split keys alone
    assert all(train[c] for c, n in counts.items() if n)


def test_real_coco128_split_says_why_val_is_larger_than_asked(shared_data) -> None:
    s = split_dataset(load_dataset(shared_data("coco128")), val=0.1, test=0.0, seed=0)
    assert s.sizes()["val"] == 28
    (note,) = s.notes
    assert not note.empty and note.text == ("val: 28 images (asked 10% = 13): 15 added so that every class held by "
                                            "two or more images also has one in val.")  # fmt: skip


def test_real_coco128_8_images_say_val_and_test_are_empty(shared_data) -> None:
    s = split_dataset(load_dataset(shared_data("coco128")).subset(np.arange(8)), val=0.25, test=0.25, seed=0)
    assert s.sizes() == {"train": 8, "val": 0, "test": 0}
    val, test = s.notes
    assert val.empty and test.empty
    assert val.text.startswith("val: 0 images (asked 25% = 2): 2 fewer drawn, as the stratified draw leaves at "
                               "least one image of each class in train. It is empty: training has no validation")
    assert "test: 0 images" in test.text and "no held-out test figures" in test.text


def test_a_split_of_the_asked_sizes_has_no_notes() -> None:
    assert split_dataset(_detection(), val=0.2, test=0.2, seed=1).notes == []

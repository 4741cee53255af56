"""Stratified seeded splits, pre-split data, and the manifest round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from imgrec.data import ImageDataset, load_dataset, load_splits, split_dataset
from imgrec.errors import DatasetError, MissingInputError, UsageError


def _arrays(counts: list[int], seed: int = 0) -> ImageDataset:
    labels = np.repeat(np.arange(len(counts)), counts)
    images = np.random.default_rng(seed).integers(0, 256, (len(labels), 4, 4), dtype=np.uint8)
    return ImageDataset.from_arrays(images, labels, [f"c{i}" for i in range(len(counts))])


def test_same_seed_same_split_other_seed_other_split() -> None:
    ds = _arrays([50, 30, 20])
    a = split_dataset(ds, val=0.2, test=0.1, seed=3)
    b = split_dataset(ds, val=0.2, test=0.1, seed=3)
    c = split_dataset(ds, val=0.2, test=0.1, seed=4)
    for name in ("train", "val", "test"):
        assert np.array_equal(a.indices[name], b.indices[name])
    assert not np.array_equal(a.indices["val"], c.indices["val"])
    assert a.sizes() == {"train": 70, "val": 20, "test": 10}
    everything = np.concatenate(list(a.indices.values()))
    assert sorted(everything.tolist()) == list(range(100))


def test_stratified_per_class() -> None:
    ds = _arrays([100, 40, 10])
    s = split_dataset(ds, val=0.2, test=0.2, seed=0)
    for part, frac in ((s.val, 0.2), (s.test, 0.2)):
        counts = part.class_counts()
        for cls, n in zip(ds.classes, (100, 40, 10), strict=True):
            assert abs(counts[cls] - n * frac) <= 1, (cls, counts)


def test_tiny_classes_keep_a_training_item() -> None:
    ds = _arrays([40, 1, 2])
    s = split_dataset(ds, val=0.3, test=0.3, seed=1)
    counts = s.train.class_counts()
    assert counts["c1"] == 1 and counts["c2"] >= 1


def test_presplit_keeps_its_split_and_carves_val() -> None:
    ds = _arrays([30, 30])
    ds.splits = np.array((["train"] * 20 + ["test"] * 10) * 2)
    s = split_dataset(ds, val=0.25, test=0.5, seed=0)
    assert s.sizes() == {"train": 30, "val": 10, "test": 20}
    assert set(ds.splits[s.indices["test"]]) == {"test"}
    assert s.val.class_counts() == {"c0": 5, "c1": 5}
    ds.splits = np.array(["train"] * 60)
    assert len(split_dataset(ds, val=0.1).test) == 0
    ds.splits = np.array(["train", "val"] * 30)
    kept = split_dataset(ds, val=0.5, seed=0)
    assert np.array_equal(kept.indices["val"], np.arange(1, 60, 2))


@pytest.mark.parametrize("val,test", [(-0.1, 0.1), (0.5, 0.5), (1.0, 0.0)])
def test_bad_fractions(val: float, test: float) -> None:
    with pytest.raises(UsageError, match="fractions"):
        split_dataset(_arrays([5, 5]), val=val, test=test)


def test_manifest_round_trip_relocated(tmp_path: Path, image_folder: Path) -> None:
    ds = load_dataset(image_folder)
    s = split_dataset(ds, val=0.2, test=0.2, seed=7)
    path = s.save(tmp_path / "splits.json")
    data = json.loads(path.read_text())
    assert {"seed", "fractions", "dataset", "classes", "splits"} <= set(data)
    assert data["seed"] == 7 and data["dataset"]["fingerprint"] == ds.fingerprint()
    assert data["splits"]["val"][0].count("/") == 1  # relative to the root: class/file
    moved = shutil.copytree(image_folder, tmp_path / "elsewhere")
    again = load_splits(load_dataset(moved), path)
    for name in ("train", "val", "test"):
        assert np.array_equal(again.indices[name], s.indices[name])
    assert again.seed == 7 and again.fractions == {"val": 0.2, "test": 0.2}


def test_manifest_mismatch_names_what_differs(tmp_path: Path, image_folder: Path) -> None:
    ds = load_dataset(image_folder)
    path = split_dataset(ds, seed=0).save(tmp_path / "m.json")
    (image_folder / "square" / "square_004.png").unlink()
    with pytest.raises(DatasetError, match=r"square/square_004\.png"):
        load_splits(load_dataset(image_folder), path)
    (image_folder / "triangle").mkdir()
    with pytest.raises(DatasetError, match="classes differ"):
        load_splits(load_dataset(image_folder), path)


def test_manifest_fingerprint_mismatch(tmp_path: Path) -> None:
    ds = _arrays([6, 6])
    path = split_dataset(ds).save(tmp_path / "m.json")
    changed = ImageDataset.from_arrays(ds.arrays[::-1].copy(), ds.labels, ds.classes)  # type: ignore[index]
    with pytest.raises(DatasetError, match="fingerprint"):
        load_splits(changed, path)


def test_manifest_unreadable(tmp_path: Path) -> None:
    ds = _arrays([3, 3])
    with pytest.raises(MissingInputError):
        load_splits(ds, tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="JSON"):
        load_splits(ds, bad)
    bad.write_text('{"format": "other"}')
    with pytest.raises(DatasetError, match="manifest"):
        load_splits(ds, bad)


def test_a_val_carved_from_train_names_its_base_when_smaller_than_asked() -> None:
    ds = _arrays([30, 1])  # c1's one item stays in train
    ds.splits = np.array(["train"] * 31)
    (note,) = split_dataset(ds, val=0.5, seed=0).notes
    assert note.text.startswith("val: 15 images (asked 50% of train's 31 = 16): 1 fewer drawn")


def test_a_fraction_that_rounds_to_no_item_is_flagged_as_empty() -> None:
    (note,) = split_dataset(_arrays([20, 20]), val=0.01, test=0.0, seed=0).notes
    assert note.empty and note.text.startswith("val: 0 images (asked 1% = 0): the fraction rounds to no image. ")
    assert note.text.endswith("; ask a larger fraction.")


def test_the_manifest_keeps_the_size_notes_and_reads_one_without_them(tmp_path: Path) -> None:
    ds = _arrays([20, 20])
    drawn = split_dataset(ds, val=0.01, test=0.0, seed=0)
    path = drawn.save(tmp_path / "m.json")
    (note,) = load_splits(ds, path).notes
    assert note == drawn.notes[0] and note.empty and note.split == "val"
    data = json.loads(path.read_text())
    del data["notes"]  # a manifest written before notes were kept
    path.write_text(json.dumps(data))
    again = load_splits(ds, path)
    assert again.notes == [] and again.sizes() == drawn.sizes()
    assert "split_notes" not in again.record() and drawn.record()["split_notes"] == [note.text]

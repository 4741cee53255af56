"""Class-balanced splits for segment data whose files do not say which classes a mask holds
(mask folders, Pascal VOC): the masks are decoded once, a class of two images lands in train and
val, and the same holds for detection and classification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgrec.data.masks as masks_module
from imgrec.data import ImageDataset, load_dataset, load_splits, split_dataset
from imgrec.data.boxes import BoxTarget

N, RARE = 20, (4, 13)  # 20 images; class 2 ("rare") in exactly two of them


def _write_pair(images: Path, masks: Path, stem: str, k: int, rare: bool) -> None:
    rng = np.random.default_rng(k)
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / f"{stem}.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 2 + k % 4 : 10 + k % 4] = 1  # "common": in every image
    mask[0, :] = 255  # an ignored row
    if rare:
        mask[12:15, 12:15] = 2
    Image.fromarray(mask, "L").save(masks / f"{stem}.png")


def _mask_folder(root: Path, sub: list[str] | None = None) -> Path:
    for k in range(N):
        split = f"{sub[k]}/" if sub else ""
        _write_pair(root / "images" / split, root / "masks" / split, f"im{k:02d}", k, k in RARE)
    (root / "classes.txt").write_text("background\ncommon\nrare\n")
    return root


def _voc(root: Path, sets: dict[str, list[int]]) -> Path:
    for k in range(N):
        _write_pair(root / "JPEGImages", root / "SegmentationClass", f"im{k:02d}", k, k in RARE)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    for name, ids in sets.items():
        (root / "ImageSets" / "Segmentation" / f"{name}.txt").write_text("".join(f"im{k:02d}\n" for k in ids))
    (root / "classes.txt").write_text("background\ncommon\nrare\n")
    return root


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every mask file decoded from now on."""
    seen: list[str] = []
    real = masks_module.load_mask

    def counting(path, **kwargs):
        seen.append(str(path))
        return real(path, **kwargs)

    monkeypatch.setattr(masks_module, "load_mask", counting)
    return seen


def _rare_in(s) -> tuple[int, int, int]:
    return tuple(part.class_counts()["rare"] for part in (s.train, s.val, s.test))


def test_a_class_in_two_of_twenty_masks_lands_in_train_and_val(tmp_path: Path, decodes: list[str]) -> None:
    ds = load_dataset(_mask_folder(tmp_path / "m"))
    assert ds.labels.tolist() == [-1] * N and ds.class_counts()["rare"] == 0  # unknown before a split
    for seed in range(10):
        s = split_dataset(ds, seed=seed)
        assert s.sizes() == {"train": 16, "val": 2, "test": 2}
        assert _rare_in(s) == (1, 1, 0), seed
    assert len(decodes) == N and len(set(decodes)) == N  # decoded once, for all ten splits
    assert ds.class_counts() == {"background": N, "common": N, "rare": 2}


def test_the_scan_changes_no_fingerprint_and_a_saved_split_reloads_without_decoding(
    tmp_path: Path, decodes: list[str]
) -> None:
    root = _mask_folder(tmp_path / "m")
    before = load_dataset(root).fingerprint()
    ds = load_dataset(root)
    s = split_dataset(ds, seed=3)
    assert ds.fingerprint() == before and s.manifest()["dataset"]["fingerprint"] == before
    decodes.clear()
    again = load_splits(load_dataset(root), s.save(tmp_path / "splits.json"))
    assert not decodes and all(np.array_equal(again.indices[k], s.indices[k]) for k in s.indices)
    assert split_dataset(load_dataset(root), val=0.0, test=0.0).sizes()["train"] == N and not decodes


def test_presplit_mask_folders_carve_val_with_the_rare_class_and_keep_their_test(
    tmp_path: Path, decodes: list[str]
) -> None:
    sub = ["test" if k in (0, 1, 2, 3) else "train" for k in range(N)]
    ds = load_dataset(_mask_folder(tmp_path / "m", sub))
    s = split_dataset(ds, val=0.1, seed=0)
    assert s.sizes() == {"train": 14, "val": 2, "test": 4} and _rare_in(s) == (1, 1, 0)
    assert set(s.indices["test"].tolist()) == set(np.flatnonzero(ds.splits == "test").tolist())
    assert len(decodes) == 16  # only the train part needed its classes


def test_voc_segmentation_without_a_val_list_is_stratified_and_with_one_is_kept(
    tmp_path: Path, decodes: list[str]
) -> None:
    ds = load_dataset(_voc(tmp_path / "voc", {"trainval": list(range(N))}), task="segment")
    assert ds.splits is None and _rare_in(split_dataset(ds, seed=1)) == (1, 1, 0)
    decodes.clear()
    given = load_dataset(_voc(tmp_path / "voc2", {"train": list(range(10)), "val": list(range(10, N))}),
                         task="segment")  # fmt: skip
    assert split_dataset(given, seed=1).sizes() == {"train": 10, "val": 10, "test": 0} and not decodes


def test_an_unreadable_mask_is_a_key_of_its_own_not_an_error(tmp_path: Path) -> None:
    root = _mask_folder(tmp_path / "m")
    (root / "masks" / "im07.png").write_bytes(b"not a png")
    ds = load_dataset(root)
    s = split_dataset(ds, seed=0)
    assert sum(s.sizes().values()) == N and _rare_in(s)[:2] == (1, 1)
    assert ds.masks[7].classes is None and ds.masks[8].classes == (0, 1)  # the ignore index is no class


def test_detection_gives_a_class_of_two_to_train_and_val_classification_stays_stratified() -> None:
    targets = [BoxTarget.from_lists([[1, 1, 5, 5]] * 2, [i % 2, 2]) if i in RARE else
               BoxTarget.from_lists([[1, 1, 5, 5]], [i % 2]) for i in range(N)]  # fmt: skip
    det = ImageDataset.for_detection(["a", "b", "rare"], [f"/d/{i}.jpg" for i in range(N)], targets, root="/d")
    labels = [2 if i in RARE else i % 2 for i in range(N)]
    cls = ImageDataset.from_arrays(np.zeros((N, 4, 4), np.uint8), labels, ["a", "b", "rare"])
    for seed in range(10):
        assert _rare_in(split_dataset(det, seed=seed)) == (1, 1, 0), seed
        assert _rare_in(split_dataset(cls, seed=seed))[0] >= 1, seed  # the stratified draw; no val guarantee

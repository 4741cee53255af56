"""check_dataset on a folder with every kind of problem; the duplicate search; validate_trainable."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgrec.data import ImageDataset, check_dataset, load_dataset, split_dataset, validate_trainable
from imgrec.data.dedup import MIN_HASH_BITS, dhashes, near_pairs, popcount, thumbnails
from imgrec.errors import DatasetError


def _texture(seed: int, side: int = 64) -> Image.Image:
    """A smooth random colour image: 6x6 noise blown up (rich, distinct gradients)."""
    small = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ and test/ with a corrupt file, a truncated JPEG, an exact duplicate, a near
    duplicate across the splits, a tiny image and an empty class."""
    root = tmp_path_factory.mktemp("messy")
    seed = 0
    for split, n in (("train", 5), ("test", 2)):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for k in range(n):
                seed += 1
                _texture(seed).save(root / split / cls / f"{k}.png")
    (root / "train" / "c").mkdir()
    shutil.copy(root / "train" / "a" / "0.png", root / "train" / "a" / "dup.png")
    (root / "train" / "a" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    buf = io.BytesIO()
    _texture(99).save(buf, "JPEG", quality=90)
    (root / "train" / "b" / "trunc.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    photo = _texture(500, 96)
    photo.save(root / "train" / "b" / "photo.png")
    photo.resize((60, 60), Image.Resampling.BILINEAR).save(root / "test" / "b" / "copy.jpg", quality=80)
    _texture(7, 8).save(root / "train" / "a" / "tiny.png")
    return root


def test_check_finds_every_problem(messy: Path) -> None:
    ds = load_dataset(messy)
    report = check_dataset(ds, workers=2)
    rel = ds.relative
    assert report.num_items == len(ds) == report.num_checked
    assert report.class_counts["c"] == 0 and report.empty_classes == ["c"]
    assert report.split_counts["test"] == {"a": 2, "b": 3, "c": 0}
    bad = {rel(u["source"]): u["code"] for u in report.unreadable}
    assert bad == {"train/a/corrupt.png": "image_invalid", "train/b/trunc.jpg": "image_invalid"}
    assert [[rel(s) for s in g] for g in report.exact_duplicates] == [["train/a/0.png", "train/a/dup.png"]]
    near = [sorted(rel(s) for s in g["sources"]) for g in report.near_duplicates]
    assert near == [["test/b/copy.jpg", "train/b/photo.png"]]
    assert [(leak["kind"], sorted(leak["splits"])) for leak in report.leaks] == [("near", ["test", "train"])]
    assert [rel(t["source"]) for t in report.tiny] == ["train/a/tiny.png"]
    codes = {p["code"]: p["severity"] for p in report.problems}
    assert codes == {
        "empty_classes": "error",
        "unreadable_files": "error",
        "split_leakage": "error",
        "exact_duplicates": "warning",
        "near_duplicates": "info",
        "tiny_images": "warning",
    }
    assert "train/b/trunc.jpg" in next(p["message"] for p in report.problems if p["code"] == "unreadable_files")
    assert not report.ok
    data = json.loads(json.dumps(report.to_dict()))
    assert data["size_stats"]["width"]["max"] == 96 and data["ok"] is False
    assert sorted(report.bad_sources) == sorted(u["source"] for u in report.unreadable)


def test_check_clean_folder_has_no_problems(image_folder: Path) -> None:
    report = check_dataset(load_dataset(image_folder), min_side=16)
    assert report.problems == [] and report.ok
    assert report.size_stats["common_sizes"] == [["48x48", 60]]


def _arrays(counts: list[int], seed: int = 0) -> ImageDataset:
    labels = np.repeat(np.arange(len(counts)), counts)
    tiles = np.stack([np.asarray(_texture(seed + i, 24)) for i in range(len(labels))])
    return ImageDataset.from_arrays(tiles, labels, [f"c{i}" for i in range(len(counts))])


def test_imbalance_sample_and_leak_across_given_splits() -> None:
    ds = _arrays([20, 4])
    assert ds.arrays is not None
    ds.arrays[5] = ds.arrays[0]  # an exact duplicate in class c0
    report = check_dataset(ds)
    assert report.imbalance_ratio == 5.0
    assert "class_imbalance" in {p["code"] for p in report.problems}
    assert report.leaks == []
    splits = np.array(["train"] * 24)
    splits[5] = "val"
    leaked = check_dataset(ds, splits=splits)
    assert [leak["kind"] for leak in leaked.leaks] == ["exact"]
    parts = split_dataset(ds, val=0.5, seed=0)
    together = bool(parts.item_splits()[0] == parts.item_splits()[5])
    assert (check_dataset(ds, splits=parts).leaks == []) == together
    assert check_dataset(ds, max_items=10).num_checked == 10
    with pytest.raises(DatasetError):
        check_dataset(ds, splits=["train"] * 3)


def _brute_force(thumbs: np.ndarray, d: int, max_diff: float) -> set[tuple[int, int]]:
    hh, vh = dhashes(thumbs)
    bits = popcount(hh)
    ok = (bits >= MIN_HASH_BITS) & (bits <= 64 - MIN_HASH_BITS)
    close = (popcount(hh[:, None] ^ hh[None, :]) <= d) & (popcount(vh[:, None] ^ vh[None, :]) <= d)
    diff = np.abs(thumbs[:, None].astype(np.int16) - thumbs[None, :]).mean(axis=(2, 3))
    close &= ok[:, None] & ok[None, :] & (diff <= max_diff)
    i, j = np.nonzero(np.triu(close, 1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


def test_near_pairs_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    base = thumbnails(np.stack([np.asarray(_texture(i, 32)) for i in range(150)]))
    noisy = np.clip(base[:40].astype(int) + rng.integers(-2, 3, (40, 16, 16)), 0, 255)
    crowd = np.clip(base[[0] * 60].astype(int) + rng.integers(-1, 2, (60, 16, 16)), 0, 255)  # a long run
    thumbs = np.concatenate([base, noisy, crowd]).astype(np.uint8)
    for d, diff in ((4, 3.0), (10, 40.0), (0, 3.0)):
        got = {(int(a), int(b)) for a, b, _ in near_pairs(thumbs, d, diff)}
        assert got == _brute_force(thumbs, d, diff)
    assert len(_brute_force(thumbs, 4, 3.0)) > 40


def test_validate_trainable() -> None:
    ds = ImageDataset.from_arrays(np.zeros((6, 4, 4), np.uint8), [0, 0, 0, 1, 1, 1], ["a", "b"])
    validate_trainable(ds, [ds.sources[0]], max_bad_fraction=0.2)
    one = ImageDataset.from_arrays(np.zeros((2, 4, 4), np.uint8), [0, 0], ["a"])
    with pytest.raises(DatasetError, match="at least 2 classes") as err:
        validate_trainable(one, [])
    assert err.value.exit_code == 65
    with pytest.raises(DatasetError, match="no readable images: b"):
        validate_trainable(ds, ds.sources[3:], max_bad_fraction=1.0)
    many = ImageDataset.from_arrays(np.zeros((40, 4, 4), np.uint8), [0, 1] * 20, ["a", "b"])
    with pytest.raises(DatasetError, match=r"12 of 40 files .* and 2 more") as err:
        validate_trainable(many, many.sources[:12], max_bad_fraction=0.05)
    assert many.sources[9] in str(err.value) and many.sources[11] not in str(err.value)

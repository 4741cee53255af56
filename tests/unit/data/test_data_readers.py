"""Readers: folders, split layouts, zips, CSV, idx, CIFAR-10 binary, digits; real data."""

from __future__ import annotations

import gzip
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgrec.data import ImageDataset, list_formats, load_dataset, write_image_folder
from imgrec.data.dataset import ZIP_SEP
from imgrec.errors import DatasetError, MissingInputError, UnknownNameError


def _png(path: Path, value: int = 0, size: tuple[int, int] = (12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 255 - value, 7)).save(path, "PNG")
    return path


def _names(ds: ImageDataset) -> list[str]:
    return sorted(Path(s.split(ZIP_SEP)[-1]).name for s in ds.sources)


def test_class_folder(image_folder: Path) -> None:
    ds = load_dataset(image_folder)
    assert ds.classes == ["circle", "square", "stripes"]
    assert ds.class_counts() == {"circle": 20, "square": 20, "stripes": 20}
    assert ds.splits is None and ds.name == "shapes"
    i = ds.sources.index(str(image_folder.absolute() / "square" / "square_003.png"))
    assert ds.classes[ds.labels[i]] == "square"
    assert ds.load(i).shape == (48, 48, 3)


def test_hidden_and_non_image_files_are_ignored(tmp_path: Path) -> None:
    _png(tmp_path / "cats" / "a.png")
    _png(tmp_path / "cats" / "UPPER.PNG")
    _png(tmp_path / "cats" / ".hidden.png")
    _png(tmp_path / ".thumbs" / "x.png")
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    _png(tmp_path / "dogs" / "deeper" / "b.jpg".replace(".jpg", ".png"))
    ds = load_dataset(tmp_path)
    assert ds.classes == ["cats", "dogs"]
    assert _names(ds) == ["UPPER.PNG", "a.png", "b.png"]


def test_paths_with_spaces(tmp_path: Path) -> None:
    _png(tmp_path / "my data" / "big cats" / "a photo.png")
    _png(tmp_path / "my data" / "small dogs" / "b.png")
    ds = load_dataset(str(tmp_path / "my data"))
    assert ds.classes == ["big cats", "small dogs"]
    assert ds.load(0).shape == (10, 12, 3)


def test_split_layout_sets_splits(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 2), ("test", 1)):
        for cls in ("a", "b"):
            for k in range(n):
                _png(tmp_path / split / cls / f"{k}.png", k)
    (tmp_path / "val" / "c").mkdir()  # a class seen only as an empty folder
    ds = load_dataset(tmp_path)
    assert ds.classes == ["a", "b", "c"]
    assert ds.splits is not None
    assert {s: int((ds.splits == s).sum()) for s in ("train", "val", "test")} == {"train": 6, "val": 4, "test": 2}
    assert ds.class_counts()["c"] == 0


def test_single_wrapping_folder_is_looked_through(tmp_path: Path) -> None:
    _png(tmp_path / "photos" / "a" / "1.png")
    _png(tmp_path / "photos" / "b" / "2.png")
    ds = load_dataset(tmp_path)
    assert ds.classes == ["a", "b"]


def test_zip_with_and_without_top_folder(tmp_path: Path, image_folder: Path) -> None:
    flat = tmp_path / "flat.zip"
    wrapped = tmp_path / "wrapped data.zip"
    with zipfile.ZipFile(flat, "w") as zf, zipfile.ZipFile(wrapped, "w") as zw:
        for p in sorted(image_folder.rglob("*.png")):
            rel = p.relative_to(image_folder).as_posix()
            zf.write(p, rel)
            zw.write(p, "shapes/" + rel)
        zw.writestr("shapes/README.txt", "ignored")
        zw.writestr("__MACOSX/shapes/circle/._x.png", "ignored")
    for source in (flat, wrapped, f"{wrapped}{ZIP_SEP}shapes"):
        ds = load_dataset(source)
        assert ds.class_counts() == {"circle": 20, "square": 20, "stripes": 20}, source
        assert ds.load(5).shape == (48, 48, 3)
        assert ds.relative(ds.sources[0]).endswith("circle/circle_000.png")
    sub = load_dataset(wrapped).subset([0, 1])
    assert sub.load(1).shape == (48, 48, 3)


def test_zip_missing_inner_folder(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/1.png", b"x")
    with pytest.raises(MissingInputError):
        load_dataset(f"{path}{ZIP_SEP}nothere")


def test_csv_with_names_and_relative_paths(tmp_path: Path) -> None:
    _png(tmp_path / "imgs" / "x.png", 1)
    _png(tmp_path / "imgs" / "y y.png", 2)
    _png(tmp_path / "imgs" / "z.png", 3)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\nimgs/x.png,dog\nimgs/y y.png,cat\n\nimgs/z.png,dog\n")
    ds = load_dataset(csv)
    assert ds.classes == ["cat", "dog"]
    assert ds.labels.tolist() == [1, 0, 1]
    assert ds.load(1).shape == (10, 12, 3)


def test_csv_numeric_labels_sort_numerically_and_split_column(tmp_path: Path) -> None:
    csv = tmp_path / "l.csv"
    csv.write_text("file,class,split\na.png,10,train\nb.png,2,test\nc.png,1,\n")
    ds = load_dataset(csv)
    assert ds.classes == ["1", "2", "10"]
    assert ds.splits is not None and ds.splits.tolist() == ["train", "test", "train"]


@pytest.mark.parametrize("text", ["", "image_path,name\na.png,x\n", "path,label\n", "path,label\n,x\n"])
def test_csv_errors(tmp_path: Path, text: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises(DatasetError, match="path"):
        load_dataset(csv)


def _idx(path: Path, arr: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    x_tr, y_tr = rng.integers(0, 256, (7, 6, 5)), np.arange(7) % 10
    x_te, y_te = rng.integers(0, 256, (3, 6, 5)), np.array([9, 0, 1])
    gz = ".gz" if compress else ""
    folder = tmp_path / "mnist"
    folder.mkdir()
    _idx(folder / f"train-images-idx3-ubyte{gz}", x_tr, compress)
    _idx(folder / f"train-labels-idx1-ubyte{gz}", y_tr, compress)
    _idx(folder / f"t10k-images-idx3-ubyte{gz}", x_te, compress)
    _idx(folder / f"t10k-labels-idx1-ubyte{gz}", y_te, compress)
    ds = load_dataset(folder)
    assert len(ds) == 10 and ds.classes == [str(i) for i in range(10)]
    assert ds.splits is not None and ds.splits.tolist() == ["train"] * 7 + ["test"] * 3
    assert np.array_equal(ds.load(8)[..., 0], x_te[1]) and ds.labels[8] == 0
    fashion = tmp_path / "my-fashion"
    shutil.copytree(folder, fashion)
    assert load_dataset(fashion).classes[0] == "T-shirt/top"


def test_idx_size_mismatch(tmp_path: Path) -> None:
    _idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 2, 2)), False)
    _idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3), False)
    with pytest.raises(DatasetError, match="do not match"):
        load_dataset(tmp_path)


def test_cifar10_binary(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    labels = np.array([3, 0, 1, 2, 1], dtype=np.uint8)
    planar = images.transpose(0, 3, 1, 2).reshape(5, -1)
    records = np.concatenate([labels[:, None], planar], axis=1)
    (tmp_path / "data_batch_1.bin").write_bytes(records[:3].tobytes())
    (tmp_path / "test_batch.bin").write_bytes(records[3:].tobytes())
    (tmp_path / "batches.meta.txt").write_text("plane\ncar\nbird\ncat\n\n")
    ds = load_dataset(tmp_path)
    assert ds.classes == ["plane", "car", "bird", "cat"]
    assert ds.labels.tolist() == [3, 0, 1, 2, 1]
    assert ds.splits is not None and ds.splits.tolist() == ["train"] * 3 + ["test"] * 2
    assert np.array_equal(ds.load(4), images[4])
    (tmp_path / "test_batch.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DatasetError, match="3073"):
        load_dataset(tmp_path)


def test_digits() -> None:
    ds = load_dataset("digits")
    assert len(ds) == 1797 and ds.classes == [str(i) for i in range(10)]
    img = ds.load(0)
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    assert ds.arrays is not None and ds.arrays.max() == 255 and ds.arrays.min() == 0


def test_missing_empty_and_classless(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="Expected one of"):
        load_dataset(tmp_path / "empty")
    _png(tmp_path / "loose" / "a.png")
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset(tmp_path / "loose")
    (tmp_path / "noimg" / "cls").mkdir(parents=True)
    (tmp_path / "noimg" / "cls" / "a.txt").write_text("x")
    with pytest.raises(DatasetError, match="No images"):
        load_dataset(tmp_path / "noimg")
    with pytest.raises(UnknownNameError, match="folder"):
        load_dataset(tmp_path, format="foldr")
    assert {"folder", "zip", "csv", "idx", "cifar10-bin", "digits"} <= set(list_formats())


def test_write_image_folder_round_trip(tmp_path: Path) -> None:
    images = np.arange(6 * 8 * 8, dtype=np.int64).reshape(6, 8, 8) % 256
    ds = ImageDataset.from_arrays(images.astype(np.uint8), [0, 1, 0, 1, 0, 1], ["x", "a/b"])
    out = write_image_folder(ds, tmp_path / "out", size=16)
    back = load_dataset(out)
    assert back.classes == ["a_b", "x"] and back.class_counts() == {"a_b": 3, "x": 3}
    assert back.load(0).shape == (16, 16, 3)
    ds.splits = np.array(["train", "train", "train", "test", "test", "test"])
    split_back = load_dataset(write_image_folder(ds, tmp_path / "split"))
    assert split_back.splits is not None and sorted(set(split_back.splits.tolist())) == ["test", "train"]


# --- the real data (cheap: listing and a few decodes) --------------------------------------


def test_real_fashion_mnist(shared_data) -> None:
    ds = load_dataset(shared_data("fashion-mnist"))
    assert ds.splits is not None
    assert int((ds.splits == "train").sum()) == 60000 and int((ds.splits == "test").sum()) == 10000
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert ds.load(0).shape == (28, 28, 3)


def test_real_hymenoptera(shared_data) -> None:
    root = shared_data("hymenoptera")
    ds = load_dataset(root)
    assert ds.classes == ["ants", "bees"] and ds.splits is not None
    assert int((ds.splits == "train").sum()) == 245 and int((ds.splits == "val").sum()) == 153
    rel = {ds.relative(s) for s in ds.sources}
    assert {"train/ants/ant photos.jpg", "train/ants/imageNotFound.gif", "train/ants/formica.jpeg"} <= rel
    i = ds.sources.index(str(Path(root).absolute() / "train" / "ants" / "ant photos.jpg"))
    assert ds.load(i).ndim == 3


def test_real_cifar_zip(shared_data) -> None:
    ds = load_dataset(shared_data("cifar10-jpg", "cifar10_jpg.zip"))
    assert ds.classes[:3] == ["airplane", "automobile", "bird"] and len(ds.classes) == 10
    assert ds.splits is not None and int((ds.splits == "test").sum()) == 10000
    assert set(ds.class_counts().values()) == {6000}
    assert ds.load(len(ds) - 1).shape == (32, 32, 3)

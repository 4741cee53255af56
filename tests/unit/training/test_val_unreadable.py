"""A training run meets an unreadable validation image once: the first validation warns about it (count
and name) and the later epochs validate without it, with the figures of a split that never held it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.detection_data import write_squares_yolo

pytest.importorskip("torch")

from imgrec.config import TrainConfig
from imgrec.data import ImageDataset, load_dataset
from imgrec.models import create_model
from imgrec.training.loop import seed_everything

CORRUPT = b"\xff\xd8\xff\xe0 not a jpeg"


def _unreadable_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    return [m for m in messages if "could not be read" in m]


def _decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources decoded for a model from now on (``ImageDataset.load_framed`` calls)."""
    seen: list[str] = []
    original = ImageDataset.load_framed

    def spy(self: ImageDataset, i: int, prep: object) -> object:
        seen.append(self.sources[i])
        return original(self, i, prep)  # type: ignore[arg-type]

    monkeypatch.setattr(ImageDataset, "load_framed", spy)
    return seen


def _val_rows(history) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k.startswith("val_")} for row in history.epochs]


def _check(fit, make_model, train, val, bad_source, tmp_path, caplog, monkeypatch) -> None:
    """``fit(model, train, val, run_dir)`` with and without the unreadable item of ``val``."""
    clean = val.subset([i for i, s in enumerate(val.sources) if s != bad_source])
    expected = fit(make_model(), train, clean, tmp_path / "clean")
    caplog.clear()
    seen = _decoded(monkeypatch)
    with caplog.at_level(logging.WARNING):
        history = fit(make_model(), train, val, tmp_path / "bad")
    warnings = _unreadable_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert f"1 of {len(val)} validation image(s)" in warnings[0] and Path(bad_source).name in warnings[0]
    assert seen.count(bad_source) == 1  # the first validation only
    assert len(history.epochs) == 3 and _val_rows(history) == _val_rows(expected)


def test_detector_run_warns_once_about_an_unreadable_val_image(tmp_path, caplog, monkeypatch) -> None:
    from imgrec.training.detect_api import DETECT
    from imgrec.training.detect_loop import fit_detector

    ds = load_dataset(write_squares_yolo(tmp_path / "data", n=10))
    train, val = ds.subset(range(6)), ds.subset(range(6, 10))
    Path(val.sources[1]).write_bytes(CORRUPT)
    cfg = TrainConfig(model="yolo-n", epochs=3, batch_size=4, image_size=64, num_threads=1, augment="none",
                      warmup_epochs=0.5, monitor="val_map")  # fmt: skip

    def make():
        seed_everything(0)
        return create_model("yolo-n", ds.classes, image_size=64)

    def fit(model, tr, va, run_dir):
        return fit_detector(model, tr, va, cfg, run_dir=run_dir, validate=DETECT.validate)

    _check(fit, make, train, val, val.sources[1], tmp_path, caplog, monkeypatch)


def test_segmenter_run_warns_once_about_an_unreadable_val_mask(tmp_path, caplog, monkeypatch) -> None:
    pytest.importorskip("segmentation_models_pytorch")
    from tests.segmentation_data import write_mask_folder

    from imgrec.training.segment_api import _validate
    from imgrec.training.segment_loop import fit_segmenter

    root, _ = write_mask_folder(tmp_path / "data", n=6)
    ds = load_dataset(root)
    train, val = ds.subset(range(4)), ds.subset(range(4, 6))
    bad_mask = root / "masks" / f"{Path(val.sources[0]).stem}.png"
    bad_mask.unlink()  # our own file (the images are links into the shared data: never written)
    bad_mask.write_bytes(b"not a png")
    cfg = TrainConfig(model="unet-tiny", epochs=3, batch_size=2, image_size=32, num_threads=1, augment="none",
                      warmup_epochs=0.5, monitor="val_miou")  # fmt: skip

    def make():
        seed_everything(0)
        return create_model("unet-tiny", ds.classes, image_size=32)

    def fit(model, tr, va, run_dir):
        return fit_segmenter(model, tr, va, cfg, run_dir=run_dir, validate=_validate)

    _check(fit, make, train, val, val.sources[0], tmp_path, caplog, monkeypatch)


def test_a_detection_train_run_warns_once_in_all(tmp_path, caplog) -> None:
    """The final val figures (metrics.json still lists the file) do not warn a second time."""
    import json

    from imgrec.config import DataConfig
    from imgrec.data import split_dataset
    from imgrec.training import train

    ds = load_dataset(write_squares_yolo(tmp_path / "data", n=10))
    dcfg = DataConfig(val=0.3, test=0.0)
    bad = split_dataset(ds, val=dcfg.val, test=dcfg.test, seed=dcfg.seed).val.sources[0]  # train draws the same
    Path(bad).write_bytes(CORRUPT)
    cfg = TrainConfig(model="yolo-n", epochs=2, batch_size=4, image_size=64, num_threads=1, augment="none")
    with caplog.at_level(logging.WARNING):
        run = train(ds, cfg, data_config=dcfg, out=tmp_path / "run")
    assert len(_unreadable_warnings(caplog)) == 1
    listed = json.loads((run.path / "metrics.json").read_text())["val"]["bad_files"]
    assert [f["source"] for f in listed] == [bad]

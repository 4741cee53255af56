"""Training streams its data (DESIGN rule 12): real JPEGs, cached or decoded again each epoch,
give the same run; streamed training holds a batch or two, not the split."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from imgrec.config import DataConfig, TrainConfig
from imgrec.data import load_dataset
from imgrec.data.prepared import PreparedImages
from imgrec.errors import UsageError
from imgrec.models import create_model
from imgrec.training import train
from imgrec.training.loop import fit_torch, seed_everything

SIZE = 64


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 real ant/bee JPEGs (20 per class) and one corrupt file, as a class-folder dataset."""
    from tests.conftest import shared_data_path

    src = shared_data_path("hymenoptera", "train")
    root = tmp_path_factory.mktemp("photos")
    for cls in ("ants", "bees"):
        (root / cls).mkdir()
        for f in sorted((src / cls).glob("*.jpg"))[:20]:
            shutil.copy(f, root / cls / f.name)
    (root / "bees" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return root


def _cfg(**changes: object) -> TrainConfig:
    base = {"model": "cnn-small", "epochs": 2, "batch_size": 8, "image_size": SIZE, "num_threads": 1,
            "augment": "standard", "warmup_epochs": 0.5}  # fmt: skip
    return TrainConfig.from_dict({**base, **changes})


def test_cached_and_streamed_training_give_the_same_run(photos: Path, tmp_path: Path) -> None:
    runs = {}
    for cache in ("ram", "off"):
        dcfg = DataConfig(val=0.25, test=0.0, seed=0, max_bad_fraction=0.1, cache=cache, workers=2)
        runs[cache] = train(photos, _cfg(), data_config=dcfg, out=tmp_path / cache)
    ram, off = runs["ram"], runs["off"]
    assert [r["train_loss"] for r in ram.history.epochs] == [r["train_loss"] for r in off.history.epochs]
    assert ram.metrics == off.metrics
    assert [s for s, _ in ram.bad_files] == [s for s, _ in off.bad_files] == [str(photos / "bees" / "broken.jpg")]


def test_streamed_fit_decodes_a_batch_ahead_not_the_split(photos: Path, tmp_path: Path) -> None:
    from imgrec.training.callbacks import Callback

    ds = load_dataset(photos)
    seed_everything(0)
    model = create_model("cnn-small", ds.classes, image_size=SIZE)
    images = PreparedImages(ds, model.preprocessing, cache="off", workers=2).scan()
    assert not images.cached and len(images) == 40 and len(images.bad) == 1
    decoded: list[int] = []
    real = ds.load_framed
    ds.load_framed = lambda i, prep: (decoded.append(i), real(i, prep))[1]  # type: ignore[method-assign]
    ahead: list[int] = []

    class Watch(Callback):
        def on_batch_end(self, epoch: int, batch: int, loss: float) -> None:
            ahead.append(len(decoded) - 40 * (epoch - 1) - 8 * (batch + 1))  # decoded, not yet trained on

    fit_torch(model, images, None, _cfg(epochs=2, augment="none"), run_dir=tmp_path, callbacks=[Watch()])
    assert len(decoded) == 80  # every readable image, once per epoch; the broken one is not tried again
    assert len(ahead) == 10 and max(ahead) <= 8, ahead  # at most the next batch, never the whole split


def test_auto_streams_a_split_that_does_not_fit(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imgrec.data.prepared as prepared

    ds = load_dataset(photos)
    model = create_model("cnn-small", ds.classes, image_size=SIZE)
    assert PreparedImages(ds, model.preprocessing).cached  # 41 small images fit
    monkeypatch.setattr(prepared, "available_memory", lambda: 1000)
    streamed = PreparedImages(ds, model.preprocessing).scan()
    assert not streamed.cached
    cached = PreparedImages(ds, model.preprocessing, cache="ram").scan()
    order = np.random.default_rng(0).permutation(len(cached))
    slices = [slice(0, 16), slice(16, 40)]
    for (ya, xa), (yb, xb) in zip(streamed.batches(order, slices), cached.batches(order, slices), strict=True):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)


def test_bad_cache_setting_is_refused(photos: Path) -> None:
    with pytest.raises(UsageError, match="cache must be one of auto, ram, off; received 'disk'"):
        PreparedImages(load_dataset(photos), create_model("cnn-small", ["a", "b"], image_size=SIZE).preprocessing,
                       cache="disk")  # fmt: skip
    from imgrec.errors import ConfigError

    with pytest.raises(ConfigError, match="cache must be auto, ram or off"):
        DataConfig.from_dict({"cache": "disk"})

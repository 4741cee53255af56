"""Shared fixtures: small seeded image folders made on the fly, and the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imgrec.models.base import Classifier


class BrightnessClassifier(Classifier):
    """A real (if simple) two-class classifier ("dark", "light"): P(light) grows with brightness."""

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        light = batch.reshape(len(batch), -1).mean(axis=1) / 255.0
        return np.stack([1 - light, light], axis=1).astype(np.float32)

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        return {}

    def num_params(self) -> int:
        return 0


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_path(*parts: str) -> Path:
    """Path inside ../shared/data; skips the test when absent, fails under CI=true."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data {path} is required under CI=true but is missing")
        pytest.skip(f"real data not present: {path} (see ../shared/data/README.md)")
    return path


@pytest.fixture
def shared_data():
    """Callable fixture: ``shared_data("hymenoptera", "train")``."""
    return shared_data_path


def draw_shape(kind: str, rng: np.random.Generator, size: int = 48) -> Image.Image:
    """One synthetic image of a class: circle, square or stripes, with jitter and noise."""
    bg = tuple(int(v) for v in rng.integers(0, 80, 3))
    fg = tuple(int(v) for v in rng.integers(150, 256, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    c = size / 2 + rng.uniform(-size / 10, size / 10, 2)
    r = size * rng.uniform(0.22, 0.32)
    if kind == "circle":
        d.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=fg)
    elif kind == "square":
        d.rectangle([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=fg)
    else:
        step = int(rng.integers(5, 9))
        for x in range(0, size, step * 2):
            d.rectangle([x, 0, x + step - 1, size], fill=fg)
    arr = np.asarray(im).astype(np.int16) + rng.integers(-12, 13, (size, size, 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


CLASSES = ("circle", "square", "stripes")


def make_image_folder(root: Path, per_class: int = 20, seed: int = 0, size: int = 48) -> Path:
    """Write ``root/<class>/<i>.png`` for three easy classes; returns ``root``."""
    rng = np.random.default_rng(seed)
    for cls in CLASSES:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw_shape(cls, rng, size).save(root / cls / f"{cls}_{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three classes x 20 PNGs of 48x48 shapes, seeded."""
    return make_image_folder(tmp_path / "shapes")


@pytest.fixture(scope="session")
def shapes_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``image_folder`` (30 per class) but made once per session; do not modify it."""
    return make_image_folder(tmp_path_factory.mktemp("shapes") / "shapes", per_class=30, seed=1)

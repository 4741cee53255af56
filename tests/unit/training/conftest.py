"""Tiny seeded arrays and models for the training-loop tests (fast on 2 slow cores)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

pytest.importorskip("torch")

from imgrec.config import TrainConfig
from imgrec.models import create_model
from imgrec.models.torch_classifier import TorchClassifier
from imgrec.training.loop import seed_everything

SIZE = 12
CLASSES = ["dark", "bright", "striped"]


def make_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three easy classes of ``SIZE``-pixel images: dark, bright, vertical stripes."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.integers(0, 60, (n, SIZE, SIZE, 3)).astype(np.uint8)
    x[y == 1] += 150
    x[y == 2, :, ::3] = 230
    return x, y


@pytest.fixture(scope="session")
def tiny_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train, val): 48 and 24 images."""
    return make_arrays(48, 0), make_arrays(24, 1)


@pytest.fixture
def new_model() -> Callable[..., TorchClassifier]:
    """``new_model(name="cnn-bn", seed=0)``: a freshly initialized, seeded model."""

    def make(name: str = "cnn-bn", seed: int = 0, **args: object) -> TorchClassifier:
        seed_everything(seed)
        model = create_model(name, CLASSES, image_size=SIZE, **args)
        assert isinstance(model, TorchClassifier)
        return model

    return make


@pytest.fixture
def tiny_cfg() -> Callable[..., TrainConfig]:
    """``tiny_cfg(epochs=3)``: a fast config (2 epochs of 16-image batches, 1 thread)."""

    def make(**changes: object) -> TrainConfig:
        base = {"epochs": 2, "batch_size": 16, "num_threads": 1, "warmup_epochs": 0.5, "augment": "none"}
        return TrainConfig.from_dict({**base, **changes})

    return make

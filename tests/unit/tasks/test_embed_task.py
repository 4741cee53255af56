"""The embed task: L2 normalization shared by every backend, the Embedding result, its options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgrec.errors import ModelFileError, UsageError
from imgrec.inference import Predictor
from imgrec.models.base import Embedder
from imgrec.tasks import EMBED, Embedding, cosine, get_task
from imgrec.transforms.preprocess import Preprocessing


class MeanColour(Embedder):
    """A real (if crude) embedder: each image's mean colour and its spread, 6 values."""

    @property
    def dim(self) -> int:
        return 6

    def embed(self, batch: np.ndarray) -> np.ndarray:
        x = batch.reshape(len(batch), -1, 3).astype(np.float32)
        return np.concatenate([x.mean(axis=1), x.std(axis=1)], axis=1)

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        return {}

    def num_params(self) -> int:
        return 0


def test_postprocess_normalizes_and_names_every_vector() -> None:
    raw = np.array([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]], np.float32)
    out = EMBED.postprocess(raw, [None] * 3, ["a.jpg", None, "c.png"], [], EMBED.options(embedder="toy"))
    assert [e.vector.tolist() for e in out] == [[pytest.approx(0.6), pytest.approx(0.8)], [0.0, 0.0], [-1.0, 0.0]]
    assert [(e.embedder, e.path, e.dim) for e in out] == [("toy", "a.jpg", 2), ("toy", None, 2), ("toy", "c.png", 2)]
    assert out[0].to_dict() == {"path": "a.jpg", "embedder": "toy", "dim": 2, "embedding": [0.6, 0.8]}
    assert out[0].similarity(out[2]) == pytest.approx(-0.6)
    with pytest.raises(ModelFileError, match="NaN"):
        EMBED.postprocess(np.array([[np.nan, 1.0]]), [None], [None], [], {})


def test_options_and_embeddings_of_other_embedders() -> None:
    assert get_task("embedding") is EMBED and EMBED.options() == {"embedder": ""}
    with pytest.raises(UsageError, match="top_k do not apply to embed"):
        EMBED.options(top_k=3)
    a, b = Embedding(np.array([1.0, 0.0], np.float32), "x"), Embedding(np.array([1.0, 0.0], np.float32), "y")
    with pytest.raises(UsageError, match="not comparable"):
        a.similarity(b)
    with pytest.raises(UsageError, match="dimensions 2 and 3"):
        cosine([1, 0], [1, 0, 0])


def test_predictor_gives_unit_vectors_named_after_the_model() -> None:
    model = MeanColour("mean-colour", [], Preprocessing(size=16))
    p = Predictor(model, {"task": "embed"})
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8) for i in range(3)]
    found = p.predict(images, batch_size=2)
    assert [type(e) for e in found] == [Embedding] * 3 and {e.embedder for e in found} == {"mean-colour"}
    np.testing.assert_allclose([np.linalg.norm(e.vector) for e in found], 1.0, atol=1e-6)
    expected = model.embed(np.stack([p.prepare(i) for i in images]))
    np.testing.assert_allclose(np.stack([e.vector for e in found]),
                               expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-6)  # fmt: skip
    assert p.options() == {"embedder": "mean-colour"} and EMBED.forward(model, np.zeros((0, 16, 16, 3))).shape == (0, 6)

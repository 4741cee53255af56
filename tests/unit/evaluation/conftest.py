"""Helpers for the evaluate tests: a real (tiny) fitted classifier and folder datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgrec.data.dataset import ImageDataset, materialize
from imgrec.models.base import Classifier
from imgrec.transforms.preprocess import Preprocessing


class CentroidClassifier(Classifier):
    """Nearest class centroid on 8x8 thumbnails; softmax of negative distances."""

    def fit(self, batch: np.ndarray, labels: np.ndarray) -> CentroidClassifier:
        feats = self._features(batch)
        means = [feats[labels == k].mean(axis=0) for k in range(self.num_classes)]
        self.centroids_ = np.stack(means)
        return self

    def _features(self, batch: np.ndarray) -> np.ndarray:
        n, s = len(batch), batch.shape[1]
        small = batch.reshape(n, 8, s // 8, 8, s // 8, 3).mean(axis=(2, 4))
        return small.reshape(n, -1).astype(np.float64) / 255.0

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        d = ((self._features(batch)[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)
        z = np.exp(-(d - d.min(axis=1, keepdims=True)))
        return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        path = Path(run_dir) / "centroids.npz"
        np.savez(path, centroids=self.centroids_)
        return {"weights": path.name}

    def num_params(self) -> int:
        return int(self.centroids_.size)


def folder_dataset(root: Path) -> ImageDataset:
    """``root/<class>/*`` as a dataset (classes sorted), without imgrec.data's readers."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    sources, labels = [], []
    for k, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            sources.append(str(f))
            labels.append(k)
    return ImageDataset(classes=classes, labels=np.asarray(labels), sources=sources,
                        name=root.name, root=str(root))


def fit_centroids(ds: ImageDataset, size: int = 32) -> CentroidClassifier:
    """A CentroidClassifier fitted on every readable image of ``ds``."""
    model = CentroidClassifier("centroid", ds.classes, Preprocessing(size=size))
    mat = materialize(ds, model.preprocessing, workers=1)
    return model.fit(mat.images, mat.labels)


@pytest.fixture(scope="module")
def shapes_model(shapes_session: Path) -> CentroidClassifier:
    """A centroid model fitted on the session's shapes folder."""
    return fit_centroids(folder_dataset(shapes_session))


@pytest.fixture
def as_dataset():
    """Callable fixture: ``as_dataset(folder) -> ImageDataset``."""
    return folder_dataset


@pytest.fixture
def fit_model():
    """Callable fixture: ``fit_model(dataset, size=32) -> fitted CentroidClassifier``."""
    return fit_centroids

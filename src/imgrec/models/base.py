"""One interface across backends: every classifier maps prepared uint8 batches to probabilities."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from imgrec.errors import UsageError
from imgrec.transforms.preprocess import Preprocessing

Family = Literal["classical", "torch", "onnx", "external", "probe", "faces"]


class Model(abc.ABC):
    """What every model of every task has: a name, classes, preprocessing, weights.

    Every backend takes the same input: a uint8 batch ``(N, size, size, 3)`` already prepared
    with :attr:`preprocessing`; normalization with mean/std, if any, happens inside the model.
    What comes out depends on the task (:class:`Classifier`, :class:`Detector`, :class:`Segmenter`).

    Attributes:
        name: registered model name (``"hog-svm"``, ``"resnet18"``).
        family: backend family.
        task: the task name (``imgrec.tasks``): ``"classify"``, ``"detect"``, ``"segment"`` or ``"embed"``.
        classes: class names, index-aligned with the model's outputs.
        preprocessing: how inputs were prepared in training.
        model_args: keyword arguments the model was built with (recorded in the artifact).
    """

    family: Family = "classical"
    task: str = "classify"

    def __init__(
        self, name: str, classes: list[str], preprocessing: Preprocessing, model_args: Mapping[str, Any] | None = None
    ) -> None:
        self.name = name
        self.classes = list(classes)
        self.preprocessing = preprocessing
        self.model_args = dict(model_args or {})

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def set_threads(self, threads: int | None) -> None:
        """Use ``threads`` CPU threads for the math from now on (None: the backend's default).

        Backends override this; the base class has no threads to set.
        """
        check_threads(threads)

    @abc.abstractmethod
    def save_weights(self, run_dir: Path) -> dict[str, str]:
        """Write learned state into ``run_dir`` (no pickle); return {role: file name}."""

    @abc.abstractmethod
    def num_params(self) -> int:
        """Number of learned scalars (for listings and comparisons)."""


class Classifier(Model):
    """A trained (or trainable) image classifier: ``predict_proba`` returns float32
    ``(N, num_classes)`` rows summing to 1 for a prepared uint8 batch."""

    task = "classify"

    @abc.abstractmethod
    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for a prepared uint8 batch."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Index of the most probable class per image."""
        return np.asarray(self.predict_proba(batch)).argmax(axis=1)


class Detector(Model):
    """An object detector: ``detect`` returns one ``imgrec.tasks.BoxCandidates`` per image, in
    model-input pixels, before score threshold and NMS (the ``detect`` task does those)."""

    task = "detect"

    @abc.abstractmethod
    def detect(self, batch: np.ndarray) -> list[Any]:
        """Decoded box candidates per image for a prepared uint8 batch."""


class Segmenter(Model):
    """A semantic segmenter: ``segment`` returns one raw map per image over the model input
    (``(C, h, w)`` scores, ``(h, w)`` class indices or one sigmoid channel, optionally wrapped in
    ``imgrec.tasks.SegmentOutput`` saying which); the ``segment`` task maps it to the original
    image's pixels."""

    task = "segment"

    @abc.abstractmethod
    def segment(self, batch: np.ndarray) -> list[Any]:
        """Raw maps per image for a prepared uint8 batch."""


class Embedder(Model):
    """A face (or image) embedder: ``embed`` returns float32 ``(N, dim)`` vectors for a prepared
    uint8 batch of crops; the ``embed`` task L2-normalizes them, and they compare by cosine.

    Embedders have no classes (``classes == []``). ``template`` names the alignment template
    (:data:`imgrec.imaging.align.TEMPLATES`) a face crop must be warped onto before
    :meth:`embed`: ``"arcface-112"`` or ``"dlib-150"``.
    """

    task = "embed"
    template: str = "arcface-112"

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """The length of each embedding."""

    @abc.abstractmethod
    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Raw (not yet normalized) float32 ``(N, dim)`` embeddings of a prepared uint8 batch."""

    def identity(self) -> dict[str, Any]:
        """What decides this embedder's vectors besides its name and preprocessing (the sha256 of
        its weights file, the colour order it is fed): two embedders of one name whose identities
        differ give vectors that are not comparable. Empty when nothing beyond the name is known."""
        return {}

    def embedding_info(self) -> dict[str, Any]:
        """What ``model.json`` records under ``embedding``: dimension, alignment template,
        the normalization applied to outputs and the similarity to compare them with."""
        return {"dim": self.dim, "template": self.template, "normalization": "l2", "similarity": "cosine"}


def check_threads(threads: int | None) -> None:
    """Refuse a thread count below 1 (None means the backend's default)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UsageError(f"threads must be an integer >= 1, or None for the default; received {threads!r}.")


# Loads a model of one family from a run directory and its parsed model.json.
Loader = Callable[[Path, dict[str, Any]], Model]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: what it is and how to build an untrained one.

    Attributes:
        name: registry name.
        family: "classical" or "torch".
        description: one line for `imgrec models`.
        default_size: default input side in pixels.
        build: ``build(name, classes, preprocessing, **model_args) -> Classifier``; the pretrained
            and weights options arrive in ``model_args``.
        default_lr: learning rate used when the config leaves it unset (torch).
        params: approximate parameter count for 10 classes, or None when unknown.
        timm_name: the timm architecture, for models built by timm.
        tags: free-form labels (``"lowres"``, ``"transformer"``).
        task: what the model does (``imgrec.tasks``): "classify", "detect", "segment" or "embed".
    """

    name: str
    family: Family
    description: str
    default_size: int
    build: Callable[..., Model]
    default_lr: float = 1e-3
    params: int | None = None
    timm_name: str | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    tags: tuple[str, ...] = field(default=())
    task: str = "classify"

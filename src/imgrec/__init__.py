"""imgrec: self-hosted image recognition, from a folder of labeled photos to a served model.

The public API (imported lazily, so ``import imgrec`` stays fast and inert)::

    import imgrec
    ds = imgrec.load_dataset("photos/")                 # folder, zip, CSV, idx, CIFAR, "digits"
    run = imgrec.train(ds, imgrec.TrainConfig(model="hog-svm"), out="runs/hog-svm-1")
    pred = imgrec.Predictor.from_run(run.path)
    pred.predict(["cat.jpg"], top_k=3)
    result = imgrec.evaluate(pred, ds)
    imgrec.list_models("resnet*"); imgrec.create_model("cnn-small", ["a", "b"])
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_dataset": "imgrec.data",
    "ImageDataset": "imgrec.data",
    "split_dataset": "imgrec.data",
    "check_dataset": "imgrec.data",
    "create_model": "imgrec.models",
    "list_models": "imgrec.models",
    "load_model": "imgrec.models",
    "Predictor": "imgrec.inference",
    "evaluate": "imgrec.evaluation",
    "compare_runs": "imgrec.evaluation",
    "train": "imgrec.training",
    "Run": "imgrec.training",
    "TrainConfig": "imgrec.config",
    "DataConfig": "imgrec.config",
    "Prediction": "imgrec.types",
    "ImgrecError": "imgrec.errors",
    "load_sam": "imgrec.analyzers.segment",
}

__all__ = sorted(_LAZY)


_SUBPACKAGES = frozenset(
    {
        "config",
        "errors",
        "types",
        "registry",
        "imaging",
        "store",
        "data",
        "transforms",
        "features",
        "tasks",
        "training",
        "evaluation",
        "models",
        "inference",
        "export",
        "serve",
        "analyzers",
        "library",
    }
)


# imgrec.faces.detect(...), imgrec.segment.load_sam(...), without packages of their own
_ALIASES = {"faces": "imgrec.analyzers.faces", "segment": "imgrec.analyzers.segment"}


def __getattr__(name: str) -> Any:
    if name in _ALIASES:
        return importlib.import_module(_ALIASES[name])
    if name in _SUBPACKAGES:
        return importlib.import_module(f"imgrec.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imgrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

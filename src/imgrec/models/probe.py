"""``linear-probe``: a classical head trained on a frozen backbone's penultimate-layer features.

The small-data recipe: a network trained on millions of images (a run, or an imported ONNX /
TFLite classifier) turns each photo into an embedding; a scikit-learn head (standardized
logistic regression, or a calibrated linear SVM) learns the user's classes from a few hundred
of them in seconds. The run stores a copy of the backbone (``backbone/``) and the head
(``head.json`` + ``head.npz``, no pickle), so it predicts, serves and evaluates as one model.

Example:
    >>> # create_model("linear-probe", ["ants", "bees"], backbone="runs/mobilenetv2")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ConfigError, ModelFileError, UsageError
from imgrec.models.artifact import load_model, save_model
from imgrec.models.base import Classifier, Model, ModelSpec
from imgrec.models.registry import register_loader, register_model
from imgrec.transforms.preprocess import Preprocessing

log = logging.getLogger(__name__)
HEAD_FILE, HEAD_ARRAYS, BACKBONE_DIR = "head.json", "head.npz", "backbone"
HEADS = ("logistic", "svm")
DEFAULTS: dict[str, Any] = {"backbone": None, "head": "logistic", "C": 1.0, "max_iter": 2000}


class LinearProbe(Classifier):
    """A frozen embedding backbone + a fitted scikit-learn head.

    Attributes:
        backbone: a classifier with ``embed(batch) -> (N, D)`` (torch runs, imported models).
        head: the scikit-learn pipeline on embeddings (None before :meth:`fit`).
    """

    family = "probe"

    def __init__(
        self, name: str, classes: list[str], backbone: Model, model_args: Mapping[str, Any], head: Any = None,
        backbone_meta: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        if not hasattr(backbone, "embed"):
            raise ConfigError(
                f"The backbone {backbone.name!r} ({backbone.family}) cannot give penultimate-layer embeddings; "
                "use a torch run or an imported ONNX/TFLite classifier."
            )
        super().__init__(name, classes, backbone.preprocessing, model_args)
        self.backbone, self.head = backbone, head
        self.backbone_meta = dict(backbone_meta or {})

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """The backbone's features for a prepared batch."""
        return np.asarray(self.backbone.embed(batch), np.float32)  # type: ignore[attr-defined]

    def fit(self, batch: np.ndarray, labels: Any) -> LinearProbe:
        """Embed a prepared uint8 batch and fit the head on integer labels; returns self."""
        y = np.asarray(labels, np.int64)
        if len(np.unique(y)) < 2:
            raise ConfigError(f"{self.name} needs images of at least 2 classes to train; received {len(np.unique(y))}.")
        self.head = build_head(self.model_args).fit(self.embed(batch), y)
        return self

    def set_threads(self, threads: int | None) -> None:
        super().set_threads(threads)
        self.backbone.set_threads(threads)

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities ``float32 (N, C)``."""
        if self.head is None:
            raise UsageError(f"{self.name} is not trained: call fit() or load a trained run.")
        out = np.zeros((len(batch), self.num_classes), np.float32)
        if len(batch):
            cols = np.asarray(self.head.classes_, np.int64)
            out[:, cols] = self.head.predict_proba(self.embed(batch))
        return out

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        """The head as ``head.json`` + ``head.npz``; the backbone as a run in ``backbone/``."""
        from imgrec.models.sklearn_io import save_estimator

        if self.head is None:
            raise UsageError(f"{self.name} is not trained; there is nothing to save.")
        run = Path(run_dir)
        save_estimator(self.head, run / HEAD_FILE, run / HEAD_ARRAYS)
        extra = {k: v for k, v in self.backbone_meta.items() if k != "files"}
        save_model(self.backbone, run / BACKBONE_DIR, extra)
        return {"head": HEAD_FILE, "head_arrays": HEAD_ARRAYS, "backbone": f"{BACKBONE_DIR}/model.json"}

    def num_params(self) -> int:
        from imgrec.models.sklearn_io import count_learned

        return self.backbone.num_params() + (count_learned(self.head) if self.head is not None else 0)


def build_head(args: Mapping[str, Any]) -> Any:
    """StandardScaler + LogisticRegression, or a sigmoid-calibrated linear SVM."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    c, iters = float(args["C"]), int(args["max_iter"])
    if args["head"] == "svm":
        clf: Any = CalibratedClassifierCV(LinearSVC(C=c, max_iter=iters), ensemble=False, cv=3)
    else:
        clf = LogisticRegression(C=c, max_iter=iters)
    return Pipeline([("scale", StandardScaler()), ("clf", clf)])


def _options(model_args: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(model_args) - set(DEFAULTS) - {"threads"})
    if unknown:
        raise ConfigError(f"linear-probe options are {', '.join(DEFAULTS)}; received unknown {', '.join(unknown)}.")
    args = {**DEFAULTS, **{k: v for k, v in model_args.items() if v is not None}}
    if not args["backbone"]:
        raise ConfigError(
            "linear-probe needs a backbone: --backbone RUN (a torch run or an imported model, "
            "e.g. `imgrec import mobilenetv2.onnx --classes labels.txt --out runs/mnv2`)."
        )
    if args["head"] not in HEADS:
        raise ConfigError(f"linear-probe head must be one of {', '.join(HEADS)}; received {args['head']!r}.")
    if not isinstance(args["C"], int | float) or isinstance(args["C"], bool) or args["C"] <= 0:
        raise ConfigError(f"linear-probe C must be a positive number; received {args['C']!r}.")
    return args


def build_probe(name: str, classes: list[str], preprocessing: Preprocessing, **model_args: Any) -> LinearProbe:
    """``ModelSpec.build``: load the backbone run; the preprocessing is the backbone's own."""
    args = _options(model_args)
    backbone, meta = load_model(str(args["backbone"]))
    if meta.get("family") == "probe":
        raise ConfigError(f"{args['backbone']} is itself a linear probe; give the run it was built on.")
    args.pop("threads", None)
    recorded = {**args, "backbone": str(Path(args["backbone"]).resolve()), "backbone_model": backbone.name,
                "embedding_layer": getattr(backbone, "embedding_layer", None)}  # fmt: skip
    probe = LinearProbe(name, classes, backbone, recorded, backbone_meta=meta)
    if preprocessing.size != backbone.preprocessing.size:
        log.info("linear-probe uses the backbone's input size %d", backbone.preprocessing.size)
    return probe


def load_probe(run_dir: Path, meta: dict[str, Any]) -> LinearProbe:
    """Loader of the ``"probe"`` family: the stored backbone run plus the head."""
    from imgrec.models.sklearn_io import load_estimator

    run = Path(run_dir)
    backbone, backbone_meta = load_model(run / BACKBONE_DIR)
    head = load_estimator(run / HEAD_FILE, run / HEAD_ARRAYS)
    classes = [str(c) for c in meta["classes"]]
    cols = np.asarray(getattr(head, "classes_", []))
    if cols.size == 0 or cols.min() < 0 or cols.max() >= len(classes):
        raise ModelFileError(f"{run}: the head predicts classes {cols.tolist()} but model.json lists {len(classes)}.")
    args = dict(meta.get("model_args") or {})
    return LinearProbe(str(meta["model"]), classes, backbone, args, head, backbone_meta)


register_model(
    ModelSpec(
        name="linear-probe",
        family="probe",
        description="linear head on a frozen backbone's embeddings (--backbone RUN)",
        default_size=224,
        build=build_probe,
        tags=("classical", "transfer"),
    )
)
register_loader("probe", load_probe)

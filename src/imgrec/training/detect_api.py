"""``imgrec.train`` for detection: the same run directory, splits, checkpoints and report as a
classifier's run, with boxes. ``train()`` comes here when the data or the model is a detection one.

Instance segmentation (Mask R-CNN) trains through the same steps with another :class:`BoxTask`
(:mod:`imgrec.training.instance_api`): its targets add masks, its figures add mask AP."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgrec.config import DataConfig, TrainConfig
from imgrec.data import ImageDataset
from imgrec.errors import ConfigError, DatasetError
from imgrec.evaluation import evaluate_detection, write_detection_report
from imgrec.inference import Predictor
from imgrec.models import create_model, get_model_spec, read_meta, save_model
from imgrec.training.callbacks import Callback
from imgrec.training.detect_loop import training_targets
from imgrec.training.selection import kept_weights
from imgrec.transforms.augment import create_augmenter

log = logging.getLogger(__name__)
VAL_OPTIONS: dict[str, Any] = {"conf": 0.001, "iou": 0.65, "max_det": 100}  # the usual mAP settings


@dataclass(frozen=True)
class BoxTask:
    """What differs between training a detector and an instance segmenter (Mask R-CNN).

    Attributes:
        name: the task (``detect`` or ``instance``).
        noun: what its models are called ("detector").
        data_noun: what its datasets are called ("detection").
        what: what the data holds, for messages ("boxes", "boxes and masks").
        data_hint: where such data comes from, for messages.
        evaluate: ``evaluate(predictor, dataset, **VAL_OPTIONS)`` -> a result with ``metrics``.
        report: writes metrics.json and report.html (``write_detection_report``'s signature).
        summary: the metrics model.json keeps per split.
        monitors: the ``val_*`` figures an epoch's validation gives (the first is the default).
        targets: the loop's training-target builder (:mod:`imgrec.training.detect_loop`).
    """

    name: str
    noun: str
    data_noun: str
    what: str
    data_hint: str
    evaluate: Callable[..., Any]
    report: Callable[..., Any]
    summary: tuple[str, ...]
    monitors: tuple[str, ...]
    targets: Callable[..., Any]

    def monitor(self, cfg: TrainConfig) -> Any:  # a TrainConfig.monitor literal
        return cfg.monitor if cfg.monitor in self.monitors else self.monitors[0]

    def validate(self, model: Any, val: ImageDataset) -> tuple[dict[str, float], list[tuple[str, str]]]:
        """An epoch's figures and the unreadable items (the training run warns about them once)."""
        result = self.evaluate(Predictor(model, {"task": self.name}), val, **VAL_OPTIONS, warn=False)
        return {key: float(result.metrics[key[len("val_") :]] or 0.0) for key in self.monitors}, result.bad


DETECT = BoxTask(
    "detect", "detector", "detection", "boxes",
    "Give COCO JSON, YOLO labels or Pascal VOC XML (see `imgrec data check`).",
    evaluate_detection, write_detection_report, ("map", "map50", "map75"), ("val_map", "val_map50"), training_targets,
)  # fmt: skip


def check_detection_pair(ds: ImageDataset, model_name: str, kind: BoxTask = DETECT) -> None:
    """A detector needs boxes, and boxes need a detector; say which is missing."""
    spec = get_model_spec(model_name)
    task = spec.task
    if "pretrained-only" in spec.tags:
        raise ConfigError(f"{model_name} is a pretrained detector imgrec cannot train. Use it as it is: `imgrec "
                          f"faces detect photos/ --detector {model_name}` (or `imgrec faces evaluate`).")  # fmt: skip
    if ds.task != kind.name and task == kind.name:
        raise ConfigError(f"{model_name} is a {kind.noun}, but {ds.name} is a {ds.task} dataset (no "
                          f"{kind.what}). {kind.data_hint}")  # fmt: skip
    if ds.task == kind.name and task != kind.name:
        raise ConfigError(
            f"{ds.name} is a {kind.data_noun} dataset ({kind.what}), but {model_name} is a {task} model. Pick a "
            f"{kind.noun}: `imgrec models --task {kind.name}`."
        )
    if not ds.targets or not any(len(t.boxes) for t in ds.targets):
        raise DatasetError(f"{ds.name} has no boxes to train on.")


def build_detector(cfg: TrainConfig, ds: ImageDataset) -> Any:
    """The detector of ``cfg`` for ``ds``'s classes (before any run folder exists)."""
    from imgrec.training.loop import seed_everything

    seed_everything(cfg.seed)
    args = {**cfg.model_args, "pretrained": cfg.pretrained, "weights": cfg.weights,
            "backbone_weights": cfg.backbone_weights}  # fmt: skip
    return create_model(cfg.model, ds.classes, image_size=cfg.image_size, **args)


def fit_and_evaluate(
    model: Any, parts: Any, cfg: TrainConfig, run_dir: Path, callbacks: Sequence[Callback], resume: bool,
    cycles: list[int], kind: BoxTask = DETECT,
) -> tuple[Any, dict[str, Any], float]:  # fmt: skip
    """Train, then evaluate the kept weights on val and test; returns (history, results, seconds)."""
    from imgrec.training.detect_loop import fit_detector
    from imgrec.training.epochs import split_figures

    cfg = dataclasses.replace(cfg, monitor=kind.monitor(cfg))
    started = time.perf_counter()
    history = fit_detector(model, parts.train, parts.val, cfg, run_dir=run_dir, callbacks=callbacks, resume=resume,
                           augment=create_augmenter(cfg.augment), cycles=cycles, validate=kind.validate,
                           targets=kind.targets)  # fmt: skip
    seconds = time.perf_counter() - started
    predictor = Predictor(model, {"task": kind.name}, run_dir)
    # val's unreadable images were warned about by the first epoch's validation (still listed in metrics.json)
    results = split_figures(lambda part: kind.evaluate(predictor, part, **VAL_OPTIONS, warn=part is not parts.val),
                            parts)  # fmt: skip
    return history, results, seconds


def save_detection_run(
    model: Any, run_dir: Path, cfg: TrainConfig, ds: ImageDataset, parts: Any, results: dict[str, Any],
    history: Any, seconds: float, kind: BoxTask = DETECT,
) -> dict[str, Any]:  # fmt: skip
    """model.json (with the figures and the kept epoch), metrics.json and the report."""
    summary = {split: {k: r.metrics.get(k) for k in kind.summary} for split, r in results.items()}
    monitor = kind.monitor(cfg)
    meta = {
        "training": {**cfg.to_dict(), "monitor": monitor, "kept_weights": kept_weights(history.epochs, monitor)},
        "data": {
            "name": ds.name,
            "root": ds.root,
            "fingerprint": ds.fingerprint(),
            "task": kind.name,
            **parts.record(),  # the split sizes, and why val or test is not the size asked
            "instance_counts": ds.instance_counts(),
            "class_counts": ds.class_counts(),
        },
        "metrics": summary,
        "timing": {"train_seconds": round(seconds, 3)},
    }
    save_model(model, run_dir, meta)
    meta = read_meta(run_dir)
    kind.report(run_dir, meta=meta, results=results, history=history.epochs, dataset=parts.test or parts.val,
                predictor=Predictor(model, meta, run_dir))  # fmt: skip
    log.info("run written to %s", run_dir)
    return meta


def build(cfg: TrainConfig, ds: ImageDataset, resume: bool = False) -> Any:
    """:func:`build_detector` under the step name ``train()`` calls for every task module."""
    return build_detector(cfg, ds)


check_pair, save_run = check_detection_pair, save_detection_run  # the step names train() calls

__all__ = ["DETECT", "BoxTask", "DataConfig", "build_detector", "check_detection_pair", "fit_and_evaluate",
           "save_detection_run"]  # fmt: skip

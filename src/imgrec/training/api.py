"""``imgrec.train``: data in, an evaluated run directory out. Reads top to bottom."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.config import DataConfig, TrainConfig
from imgrec.data import ImageDataset, load_dataset, load_splits, split_dataset, validate_trainable
from imgrec.data.prepared import PreparedImages
from imgrec.errors import ConfigError, DatasetError
from imgrec.evaluation import evaluate_classifier, write_report
from imgrec.imaging import image_size
from imgrec.inference import Predictor
from imgrec.models import Classifier, create_model, get_model_spec, read_meta, save_model
from imgrec.training.callbacks import Callback
from imgrec.training.resume import RUN_CONFIG, plan_resume, read_run_config, write_run_config
from imgrec.training.run_dir import next_run_dir, open_run_dir
from imgrec.training.selection import kept_weights
from imgrec.transforms.augment import create_augmenter
from imgrec.types import History

log = logging.getLogger(__name__)
__all__ = ["RUN_CONFIG", "Run", "next_run_dir", "read_run_config", "train"]


@dataclass
class Run:
    """A finished training run.

    Attributes:
        path: the run directory (``model.json``, weights, ``report.html``...).
        metrics: evaluation figures per split name (``"val"``, ``"test"``).
        history: per-epoch figures (deep models).
        bad_files: ``(source, message)`` of every image skipped as unreadable.
    """

    path: Path
    metrics: dict[str, Any]
    history: History | None = None
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.path / "report.html"


def train(
    data: ImageDataset | str | Path,
    config: TrainConfig | None = None,
    *,
    data_config: DataConfig | None = None,
    out: str | Path | None = None,
    splits: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    runs_root: str | Path = "runs",
) -> Run:
    """Train, evaluate and save a model; returns the :class:`Run`.

    Args:
        data: a dataset or anything ``load_dataset`` reads (folder, zip, CSV, idx, "digits").
        config: training settings (model name, epochs, ...); defaults to ``TrainConfig()``.
        data_config: split fractions and seed, bad-file tolerance.
        out: the run directory; default ``runs/<model>-<n>``.
        splits: a split manifest (``imgrec data split --out``) to reuse.
        callbacks: progress hooks (the CLI passes a progress bar).
        resume: continue an interrupted run in ``out`` from its last checkpoint.
        runs_root: parent folder of automatically named runs.

    Example:
        >>> import imgrec, tempfile
        >>> run = imgrec.train("digits", imgrec.TrainConfig(model="hog-svm"),
        ...                    out=tempfile.mkdtemp() + "/run")
        >>> run.metrics["test"]["accuracy"] > 0.9
        True
    """
    cfg, dcfg, cycles = _configs(config, data_config, out, resume)
    model_task = get_model_spec(cfg.model).task
    ds = data if isinstance(data, ImageDataset) else load_dataset(data, task=_data_task(dcfg, model_task))
    for task in ("detect", "instance", "segment"):
        if task in (ds.task, model_task):
            return _train_task(task, ds, data, cfg, dcfg, cycles, out, splits, callbacks, resume, runs_root)
    _check_classes(ds)
    parts = _splits(ds, splits, dcfg, out if resume else None)
    model = _build_model(cfg, ds, parts.train, resume)  # a wrong name, option or size fails before any folder
    with open_run_dir(out, cfg.model, runs_root, resume) as run_dir:
        write_run_config(run_dir, _source(data), cfg, dcfg, cycles)
        parts.save(run_dir / "splits.json")
        images = _scan_splits(model, parts, dcfg)  # bounded memory: cached when a split fits, else streamed
        bad = [b for split in images.values() for b in split.bad]
        validate_trainable(ds, [s for s, _ in bad], max_bad_fraction=dcfg.max_bad_fraction)
        started = time.perf_counter()
        history = _fit(model, images, cfg, run_dir, callbacks, resume, cycles)
        train_seconds = time.perf_counter() - started

    predictor = Predictor(model, run_dir=run_dir)
    results = {  # the path of `imgrec evaluate`, so the run's figures are what evaluate gives
        name: evaluate_classifier(predictor, getattr(parts, name), workers=dcfg.workers)
        for name in ("val", "test")
        if len(images[name])
    }
    meta = _run_meta(cfg, ds, parts, bad, results, train_seconds, history, cycles)
    save_model(model, run_dir, meta)
    meta = read_meta(run_dir)  # the full model.json record: model, family, classes, versions...
    write_report(
        run_dir, meta=meta, results=results, history=history.epochs if history else None, dataset=ds, bad_files=bad
    )
    log.info("run written to %s", run_dir)
    return Run(run_dir, {k: r.metrics for k, r in results.items()}, history, bad, meta)


def _configs(
    config: TrainConfig | None, data_config: DataConfig | None, out: str | Path | None, resume: bool
) -> tuple[TrainConfig, DataConfig, list[int]]:
    """The configs to train with, and the learning-rate cycles (one unless a run is extended)."""
    if not resume:
        cfg = config or TrainConfig()
        return cfg, data_config or DataConfig(), [cfg.epochs]
    if out is None:
        raise ConfigError("resume needs the run directory to continue (out=...).")
    plan = plan_resume(out, config)
    if plan.nothing_to_do:
        raise ConfigError(plan.message())
    return plan.config, data_config or plan.data_config, plan.cycles


def _splits(ds: ImageDataset, splits: str | Path | None, dcfg: DataConfig, resumed: str | Path | None) -> Any:
    """The given manifest, else a resumed run's own, else a fresh seeded split."""
    if splits is None and resumed is not None and (Path(resumed) / "splits.json").is_file():
        splits = Path(resumed) / "splits.json"
    if splits:
        parts = load_splits(ds, splits)  # its notes were kept when it was drawn
    else:
        parts = split_dataset(ds, val=dcfg.val, test=dcfg.test, seed=dcfg.seed, workers=dcfg.workers)
    for note in parts.notes:  # val or test not the size asked (rare classes covered), or empty
        log.warning("%s", note.text)
    return parts


def _check_classes(ds: ImageDataset) -> None:
    counts = ds.class_counts()
    if len(counts) < 2:
        raise DatasetError(
            f"Training needs at least 2 classes; {ds.name} has {len(counts)} ({', '.join(counts) or 'none'}). "
            "Expected one sub-folder per class."
        )
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise DatasetError(f"These classes have no images: {', '.join(empty)}. Add images or remove the folders.")


def _data_task(dcfg: DataConfig, model_task: str) -> str | None:
    """The task to read the data with: the configured one, else ``segment`` for a segmenter and
    ``instance`` for an instance segmenter (COCO is read with its masks), else the format's own."""
    return dcfg.task or (model_task if model_task in ("segment", "instance") else None)


def _train_task(
    task: str, ds: ImageDataset, data: ImageDataset | str | Path, cfg: TrainConfig, dcfg: DataConfig,
    cycles: list[int], out: str | Path | None, splits: str | Path | None, callbacks: Sequence[Callback],
    resume: bool, runs_root: str | Path,
) -> Run:  # fmt: skip
    """:func:`train` for detection and segmentation: same folder, splits and safety; the task's
    own checks, model, loop, figures and report (``training/detect_api.py``, ``instance_api.py``,
    ``segment_api.py``)."""
    import importlib

    steps = importlib.import_module(f"imgrec.training.{task}_api")
    steps.check_pair(ds, cfg.model)
    parts = _splits(ds, splits, dcfg, out if resume else None)
    model = steps.build(cfg, ds, resume)  # a wrong name, option or size fails before any folder
    if task in ("segment", "instance") and dcfg.task is None:
        dcfg = dcfg.replace(task=task)  # config.json: evaluate, export and resume read the masks again
    with open_run_dir(out, cfg.model, runs_root, resume) as run_dir:
        write_run_config(run_dir, _source(data), cfg, dcfg, cycles)
        parts.save(run_dir / "splits.json")
        history, results, seconds = steps.fit_and_evaluate(model, parts, cfg, run_dir, callbacks, resume, cycles)
    meta = steps.save_run(model, run_dir, cfg, ds, parts, results, history, seconds)
    return Run(run_dir, {k: r.metrics for k, r in results.items()}, history, [], meta)


def _source(data: ImageDataset | str | Path) -> str:
    """How config.json names the data: an absolute path, "digits", or the dataset's root."""
    if isinstance(data, ImageDataset):
        return str(data.root)
    return str(Path(data).resolve()) if data != "digits" else str(data)


def _build_model(cfg: TrainConfig, ds: ImageDataset, train_ds: ImageDataset, resume: bool = False) -> Classifier:
    spec = get_model_spec(cfg.model)
    size = cfg.image_size or min(spec.default_size, _typical_side(train_ds))
    args = dict(cfg.model_args)
    if spec.family == "torch":
        from imgrec.training.loop import seed_everything

        seed_everything(cfg.seed)  # the initial weights are part of a seeded run
        if not resume:  # a resumed run's weights come from its checkpoint: no download, no weights file
            args.update(pretrained=cfg.pretrained, weights=cfg.weights)
        if cfg.dropout is not None:
            args["dropout"] = cfg.dropout
    elif spec.family == "probe":
        args["backbone"] = cfg.backbone or args.get("backbone")
    elif cfg.pretrained or cfg.weights:
        raise ConfigError(f"{cfg.model} is a classical model: pretrained weights do not apply to it.")
    elif cfg.num_threads:
        args.setdefault("threads", cfg.num_threads)
    return create_model(cfg.model, ds.classes, image_size=size, grayscale=_is_grayscale(train_ds), **args)


def _sample(ds: ImageDataset, n: int = 24) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.choice(len(ds), size=min(n, len(ds)), replace=False) if len(ds) else np.zeros(0, np.int64)


def _typical_side(ds: ImageDataset) -> int:
    """Median shorter side of a sample of the images (header reads only)."""
    if ds.arrays is not None:
        return int(min(ds.arrays.shape[1:3]))
    sides = []
    for i in _sample(ds):
        try:
            w, h = image_size(ds.sources[i], ds.limits) if "!/" not in ds.sources[i] else ds.load(i).shape[1::-1]
            sides.append(min(w, h))
        except Exception:  # unreadable files are reported by the scan
            continue
    return int(np.median(sides)) if sides else 10**6


def _is_grayscale(ds: ImageDataset) -> bool:
    if ds.arrays is not None:
        return ds.arrays.ndim == 3
    seen = 0
    for i in _sample(ds, 12):
        try:
            img = ds.load(int(i))
        except Exception:
            continue
        seen += 1
        if not (np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])):
            return False
    return seen > 0


def _scan_splits(model: Classifier, parts: Any, dcfg: DataConfig) -> dict[str, PreparedImages]:
    """Each split's readable images, found by one decoding pass (cached when they fit, see ``DataConfig.cache``)."""
    return {
        name: PreparedImages(getattr(parts, name), model.preprocessing, cache=dcfg.cache, workers=dcfg.workers).scan()
        for name in ("train", "val", "test")
    }


def _fit(
    model: Classifier,
    images: dict[str, PreparedImages],
    cfg: TrainConfig,
    run_dir: Path,
    callbacks: Sequence[Callback],
    resume: bool,
    cycles: list[int],
) -> History | None:
    if model.family in ("classical", "probe"):  # fitted in one call, no epochs
        y_train, x_train = images["train"].arrays()
        model.fit(x_train, y_train)  # type: ignore[attr-defined]
        return None
    from imgrec.models.torch_classifier import TorchClassifier
    from imgrec.training.loop import fit_torch

    if not isinstance(model, TorchClassifier):
        raise ConfigError(f"{model.name} ({model.family}) cannot be trained; only classical and torch models can.")
    return fit_torch(
        model,
        images["train"],
        images["val"] if len(images["val"]) else None,
        cfg,
        run_dir=run_dir,
        callbacks=callbacks,  # type: ignore[arg-type]
        resume=resume,
        augment=create_augmenter(cfg.augment),
        cycles=cycles,
    )


def _run_meta(
    cfg: TrainConfig,
    ds: ImageDataset,
    parts: Any,
    bad: list[tuple[str, str]],
    results: dict[str, Any],
    seconds: float,
    history: History | None,
    cycles: list[int],
) -> dict[str, Any]:
    summary = {
        split: {k: r.metrics[k] for k in ("accuracy", "macro_f1") if k in r.metrics} for split, r in results.items()
    }
    return {
        "training": {**cfg.to_dict(), **_training_facts(cfg, history, cycles)},
        "data": {
            "name": ds.name,
            "root": ds.root,
            "fingerprint": ds.fingerprint(),
            **parts.record(),  # the split sizes, and why val or test is not the size asked
            "class_counts": ds.class_counts(),
            "bad_files": len(bad),
        },
        "metrics": summary,
        "timing": {"train_seconds": round(seconds, 3)},
    }


def _training_facts(cfg: TrainConfig, history: History | None, cycles: list[int]) -> dict[str, Any]:
    """What model.json says beyond the config: the epoch the saved weights are from, restarts."""
    if history is None:
        return {}
    facts: dict[str, Any] = {"kept_weights": kept_weights(history.epochs, cfg.monitor)}
    if len(cycles) > 1:
        facts["cycles"] = cycles
    return facts

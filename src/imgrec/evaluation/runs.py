"""``evaluate`` (any task) and ``evaluate_run``: evaluate a finished run again, on its test
split or on new data, and write its report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imgrec.data import ImageDataset, load_dataset
from imgrec.data.run_data import run_split
from imgrec.errors import DatasetError, MissingInputError, UsageError
from imgrec.evaluation.classify import evaluate_classifier
from imgrec.evaluation.detection.report import write_detection_report
from imgrec.evaluation.detection.run import evaluate_detection
from imgrec.evaluation.instance import evaluate_instances, write_instance_report
from imgrec.evaluation.report import write_report
from imgrec.evaluation.segmentation import evaluate_segmentation, write_segmentation_report
from imgrec.inference import Predictor


def evaluate(predictor: Any, dataset: ImageDataset, **options: Any) -> Any:
    """Evaluate ``predictor`` on ``dataset`` by the predictor's task (``imgrec.evaluate``).

    A classifier (anything with ``classes``, ``preprocessing`` and ``predict_proba``) gets
    :func:`~imgrec.evaluation.classify.evaluate_classifier` (options ``batch_size``,
    ``top_k``, ``keep_errors``, ``workers``, ``chunk_size``); a detector gets
    :func:`~imgrec.evaluation.detection.run.evaluate_detection` (``conf``, ``iou``,
    ``max_det``, ``batch_size``, ``workers``); a segmenter
    :func:`~imgrec.evaluation.segmentation.run.evaluate_segmentation` (``batch_size``,
    ``workers``, ``boundary``, ``threshold``); an instance segmenter
    :func:`~imgrec.evaluation.instance.run.evaluate_instances` (``conf``, ``iou``, ``max_det``,
    ``threshold``, ``batch_size``, ``workers``).

    Returns:
        An ``EvalResult`` (classify), a ``DetectionResult`` (detect), a ``SegmentationResult``
        (segment) or an ``InstanceResult`` (instance).
    """
    task = getattr(predictor, "task", None)
    name = getattr(task, "name", task)
    if name in ("detect", "detection"):
        return evaluate_detection(predictor, dataset, **options)
    if name in ("embed", "embedding"):
        raise _not_for_embedders(getattr(predictor, "name", "this model"))
    if name in ("segment", "segmentation"):
        return evaluate_segmentation(predictor, dataset, **options)
    if name in ("instance", "instance-segmentation"):
        return evaluate_instances(predictor, dataset, **options)
    return evaluate_classifier(predictor, dataset, **options)


def _not_for_embedders(run: Any) -> UsageError:
    """An embedder has no classes to score: its figures come from pairs of one or two persons."""
    return UsageError(
        f"{run} is an embedder (task embed): it gives vectors, not classes, so it is evaluated by "
        "verification and rank-1 on a folder with one sub-folder of face photos per person. Run "
        f"`imgrec faces evaluate --embedder {run} IDENTITIES/` (Python: "
        "imgrec.faces.evaluate_embedder(imgrec.faces.face_embedder(RUN), IDENTITIES))."
    )


def evaluate_run(
    run_dir: str | Path, data: str | Path | None = None, *, top_k: tuple[int, ...] = (1, 3, 5)
) -> tuple[Any, Path]:
    """Evaluate a run and write ``metrics.json`` + ``report.html`` under ``run_dir/eval/<name>/``.

    Args:
        run_dir: the run directory.
        data: labeled images; default: the run's own test split (else its validation split).
        top_k: the k of top-k accuracy (classifiers).

    Returns:
        An :class:`EvalResult` (classify), a ``DetectionResult`` (detect), a
        ``SegmentationResult`` (segment) or an ``InstanceResult`` (instance), and the folder.
    """
    predictor = Predictor.from_run(run_dir)
    if predictor.task.name == "embed":
        raise _not_for_embedders(run_dir)
    task = predictor.task.name
    if data is None:
        ds, name = _own_split(Path(run_dir))  # test, else val
    else:
        if str(data) != "digits" and not Path(data).exists():
            raise MissingInputError(f"Data not found: {data}")
        ds, name = load_dataset(data, task=task if task in ("segment", "instance") else None), Path(str(data)).name
    out = Path(run_dir) / "eval" / name
    if task == "detect":
        found = evaluate_detection(predictor, ds)
        write_detection_report(out, meta=predictor.meta, results={name: found}, dataset=ds, predictor=predictor)
        return found, out
    if task == "instance":
        found = evaluate_instances(predictor, ds)
        write_instance_report(out, meta=predictor.meta, results={name: found}, dataset=ds, predictor=predictor)
        return found, out
    if task == "segment":
        masks = evaluate_segmentation(predictor, ds)
        write_segmentation_report(out, meta=predictor.meta, results={name: masks}, dataset=ds, predictor=predictor)
        return masks, out
    ds = align_classes(ds, predictor.classes)
    result = evaluate_classifier(predictor, ds, top_k=top_k)
    write_report(out, meta=predictor.meta, results={name: result}, history=None, dataset=ds, bad_files=result.bad)
    return result, out


def _own_split(run_dir: Path) -> tuple[ImageDataset, str]:
    hint = "give data to evaluate on (imgrec evaluate RUN DATA)"
    part, name, _ = run_split(run_dir, ("test", "val"), hint)
    return part, name


def align_classes(ds: ImageDataset, classes: list[str]) -> ImageDataset:
    """Relabel ``ds`` to the model's class order; classes the model does not know are an error."""
    unknown = [c for c in ds.classes if c not in classes]
    if unknown:
        raise DatasetError(
            f"The data has classes the model does not know: {', '.join(unknown)}. "
            f"The model's classes: {', '.join(classes)}."
        )
    lut = np.array([classes.index(c) for c in ds.classes], dtype=np.int64)
    out = ds.subset(np.arange(len(ds)))
    out.labels, out.classes = lut[ds.labels], list(classes)
    return out

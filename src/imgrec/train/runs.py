"""Working with finished runs: evaluate one again, on its test split or on new data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imgrec.data import ImageDataset, load_dataset, load_splits
from imgrec.errors import DatasetError, MissingInputError
from imgrec.evaluate import evaluate, evaluate_detection, write_detection_report, write_report
from imgrec.inference import Predictor
from imgrec.train.api import read_run_config


def evaluate_run(
    run_dir: str | Path, data: str | Path | None = None, *, top_k: tuple[int, ...] = (1, 3, 5)
) -> tuple[Any, Path]:
    """Evaluate a run and write ``metrics.json`` + ``report.html`` under ``run_dir/eval/<name>/``.

    Args:
        run_dir: the run directory.
        data: labeled images; default: the run's own test split (else its validation split).
        top_k: the k of top-k accuracy (classifiers).

    Returns:
        An :class:`EvalResult` (classify) or a ``DetectionResult`` (detect), and the folder.
    """
    predictor = Predictor.from_run(run_dir)
    if data is None:
        ds, name = _own_split(Path(run_dir))
    else:
        if str(data) != "digits" and not Path(data).exists():
            raise MissingInputError(f"Data not found: {data}")
        ds, name = load_dataset(data), Path(str(data)).name
    out = Path(run_dir) / "eval" / name
    if predictor.task.name == "detect":
        found = evaluate_detection(predictor, ds)
        write_detection_report(out, meta=predictor.meta, results={name: found}, dataset=ds, predictor=predictor)
        return found, out
    ds = align_classes(ds, predictor.classes)
    result = evaluate(predictor, ds, top_k=top_k)
    write_report(out, meta=predictor.meta, results={name: result}, history=None, dataset=ds, bad_files=result.bad)
    return result, out


def _own_split(run_dir: Path) -> tuple[ImageDataset, str]:
    source, _, _ = read_run_config(run_dir)
    splits = load_splits(load_dataset(source), run_dir / "splits.json")
    if len(splits.test):
        return splits.test, "test"
    if len(splits.val):
        return splits.val, "val"
    raise DatasetError(f"{run_dir} has neither a test nor a validation split; give data to evaluate on.")


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

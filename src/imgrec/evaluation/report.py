"""The one report per run: metrics.json for machines, PNG figures, and report.html for people.

Example:
    >>> import numpy as np, tempfile
    >>> from imgrec.evaluation.metrics import classification_metrics
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], np.float32)
    >>> y = np.array([0, 1, 1])
    >>> res = EvalResult(classification_metrics(y, proba, ["ant", "bee"]), y, proba,
    ...                  ["a.jpg", "b.jpg", "c.jpg"], [], 0.1, 1.0, ["ant", "bee"])
    >>> page = write_report(tempfile.mkdtemp(), meta={"model": "demo"}, results={"test": res})
    >>> page.name, (page.parent / "metrics.json").is_file()
    ('report.html', True)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ImgrecError, UsageError
from imgrec.evaluation import plots
from imgrec.evaluation import report_sections as sec
from imgrec.evaluation.classify import EvalResult
from imgrec.evaluation.diagnosis import diagnose
from imgrec.evaluation.html_page import page
from imgrec.files import write_bytes_atomic, write_json_atomic

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"
ERRORS_SHOWN = 24


def primary_split(results: Mapping[str, EvalResult]) -> str | None:
    """The split that headlines a run: ``test`` if evaluated, else ``val``, else the first."""
    for name in ("test", "val"):
        if name in results:
            return name
    return next(iter(results), None)


def summarize(results: Mapping[str, EvalResult]) -> dict[str, Any]:
    """A short summary for model.json's ``metrics`` entry and for leaderboards.

    Example:
        >>> summarize({})
        {}
    """
    split = primary_split(results)
    if split is None:
        return {}
    main = results[split]
    return {
        "split": split,
        "accuracy": main.accuracy,
        "macro_f1": main.macro_f1,
        "balanced_accuracy": float(main.metrics["balanced_accuracy"]),
        "num_samples": int(main.metrics["num_samples"]),
        "ms_per_image": round(main.ms_per_image, 4),
        "splits": {
            name: {"accuracy": r.accuracy, "macro_f1": r.macro_f1,
                   "num_samples": int(r.metrics["num_samples"])}
            for name, r in results.items()
        },
    }


def write_metrics_json(run_dir: str | Path, results: Mapping[str, EvalResult]) -> Path:
    """Write ``metrics.json``: one entry per split (metrics, timing, unreadable files) plus
    ``summary``."""
    if "summary" in results:
        raise UsageError("A split cannot be named 'summary' (that key holds the summary).")
    data: dict[str, Any] = {name: r.to_dict() for name, r in results.items()}
    data["summary"] = summarize(results)
    path = Path(run_dir) / METRICS_FILE
    write_json_atomic(path, data)
    return path


@dataclass
class ErrorExample:
    """One confidently wrong prediction, for the gallery."""

    source: str
    true: str
    pred: str
    score: float
    image: np.ndarray | None = field(default=None, repr=False)

    @property
    def caption(self) -> str:
        return plots.error_caption(self.true, self.pred, self.score)


def collect_errors(
    result: EvalResult, dataset: Any = None, limit: int = ERRORS_SHOWN
) -> list[ErrorExample]:
    """The most confidently wrong rows, most confident first.

    Images come from ``dataset.load`` (the original file) when a dataset holding the row's
    source is given, else from the prepared copies the evaluation kept, else are None.
    """
    index = {s: i for i, s in enumerate(dataset.sources)} if dataset is not None else {}
    out = []
    for row in result.confident_errors(limit).tolist():
        src = result.sources[row]
        img = _load_quietly(dataset, index.get(src))
        out.append(ErrorExample(
            source=src,
            true=result.classes[int(result.y_true[row])],
            pred=result.classes[int(result.y_pred[row])],
            score=float(result.proba[row].max()),
            image=img if img is not None else result.error_images.get(row),
        ))
    return out


def _load_quietly(dataset: Any, index: int | None) -> np.ndarray | None:
    if dataset is None or index is None:
        return None
    try:
        return np.asarray(dataset.load(index))
    except ImgrecError as exc:  # the file changed since the evaluation
        log.info("cannot reload %s for the error gallery: %s", dataset.sources[index], exc)
        return None


def write_figures(
    run_dir: Path,
    result: EvalResult | None,
    history: Sequence[Mapping[str, Any]] | None,
    errors: Sequence[ErrorExample],
) -> dict[str, bytes]:
    """Render and write the PNGs; returns {file name: PNG bytes} for inlining."""
    pngs: dict[str, bytes] = {}
    if result is not None:
        cm, classes = result.metrics["confusion_matrix"], result.classes
        pngs["confusion_matrix.png"] = plots.confusion_matrix_png(cm, classes)
        pngs["confusion_matrix_normalized.png"] = plots.confusion_matrix_png(
            cm, classes, normalize=True
        )
    if history:
        pngs["curves.png"] = plots.learning_curves_png(history)
    shown = [(e.image, e.caption) for e in errors if e.image is not None]
    if shown:
        pngs["errors.png"] = plots.errors_grid_png([i for i, _ in shown], [c for _, c in shown])
    for name, data in pngs.items():
        write_bytes_atomic(run_dir / name, data)
    return pngs


def write_report(
    run_dir: str | Path,
    *,
    meta: Mapping[str, Any],
    results: Mapping[str, EvalResult],
    history: Sequence[Mapping[str, Any]] | None = None,
    dataset: Any = None,
    bad_files: Sequence[tuple[str, str]] | None = None,
) -> Path:
    """Write metrics.json, the PNG figures and the self-contained report.html into ``run_dir``.

    Args:
        run_dir: the run directory (created when missing).
        meta: the run's model.json content (model, training, data, versions, timing ...).
        results: evaluation per split name, e.g. ``{"val": ..., "test": ...}``; the figures
            use ``test`` when present, else ``val``.
        history: per-epoch dicts (epoch, train_loss, val_loss, train_accuracy, val_accuracy).
        dataset: the dataset the results came from, to show original images of mistakes and
            fill in data facts model.json lacks.
        bad_files: ``[(source, message)]`` skipped while loading the training data.

    Returns:
        The path of report.html.
    """
    run = Path(run_dir)
    write_metrics_json(run, results)
    split = primary_split(results)
    main = results[split] if split is not None else None
    errors = collect_errors(main, dataset) if main is not None else []
    pngs = write_figures(run, main, history, errors)
    html = _render(meta, results, history or [], dataset, list(bad_files or []), pngs, errors)
    path = run / REPORT_FILE
    write_bytes_atomic(path, html.encode("utf-8"))
    return path


def _render(
    meta: Mapping[str, Any],
    results: Mapping[str, EvalResult],
    history: Sequence[Mapping[str, Any]],
    dataset: Any,
    bad_files: list[tuple[str, str]],
    pngs: dict[str, bytes],
    errors: Sequence[ErrorExample],
) -> str:
    split = primary_split(results)
    findings = diagnose(results[split].metrics if split is not None else None, history)
    sections = [
        ("summary", "Summary", sec.summary_section(meta, results, split, findings)),
        ("training", "Training", sec.training_section(meta)),
        ("data", "Data", sec.data_section(meta, dataset, results, bad_files)),
        ("curves", "Learning curves", sec.curves_section(history, pngs.get("curves.png"), bool(findings))),
    ]
    if split is not None:
        rows = [(e.source, e.true, e.pred, e.score) for e in errors]
        sections += [
            ("classes", "Per class", sec.per_class_section(results[split], split)),
            ("confusion", "Confusion", sec.confusion_section(
                pngs.get("confusion_matrix.png"), pngs.get("confusion_matrix_normalized.png"), split
            )),
            ("errors", "Mistakes", sec.errors_section(pngs.get("errors.png"), rows, split)),
        ]
    sections += [
        ("environment", "Environment", sec.environment_section(meta)),
        ("timing", "Timing", sec.timing_section(meta, results)),
    ]
    title = f"imgrec report: {meta.get('model', 'model')}"
    parts = (meta.get("run"), meta.get("created"), _headline(results))
    subtitle = " · ".join(str(v) for v in parts if v)
    return page(title, subtitle, sections)


def _headline(results: Mapping[str, EvalResult]) -> str:
    split = primary_split(results)
    if split is None:
        return ""
    r = results[split]
    return f"{split}: accuracy {100 * r.accuracy:.2f}%, macro F1 {r.macro_f1:.4f}"

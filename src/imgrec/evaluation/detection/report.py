"""The one report of a detection run: ``metrics.json`` and a self-contained ``report.html``.

Sections: the headline figures (COCO mAP@[.5:.95], mAP@.5, @.75, by object size, AR@100),
per-class AP with box counts (weakest classes first), precision–recall curves at IoU 0.5, the
detection confusion matrix with its background row and column, the worst images with false
positives and misses drawn (when a predictor is given), loss terms and val mAP per epoch, and
the options that applied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.evaluation.detection.run import DetectionResult
from imgrec.evaluation.html_page import NOTHING_MEASURED, cards, esc, fmt, png_img, save_report, table
from imgrec.evaluation.plots import _new_figure, confusion_matrix_png, figure_png
from imgrec.evaluation.report_sections import training_section

HEADLINE = (("map", "mAP@[.5:.95]"), ("map50", "mAP@.5"), ("map75", "mAP@.75"), ("map_small", "AP small"),
            ("map_medium", "AP medium"), ("map_large", "AP large"), ("ar100", "AR@100"))  # fmt: skip
GALLERY = 8


def write_detection_report(
    run_dir: str | Path, *, meta: Mapping[str, Any], results: Mapping[str, DetectionResult],
    history: Sequence[Mapping[str, Any]] | None = None, dataset: Any = None, predictor: Any = None,
) -> Path:  # fmt: skip
    """Write ``metrics.json`` and ``report.html`` into ``run_dir``; returns the report's path."""
    run = Path(run_dir)
    sections = [("summary", "Summary", _summary(results))]
    split = "test" if "test" in results else next(iter(results), None)
    if split is not None:
        m = results[split].metrics
        sections += [("classes", f"Per class ({split})", _per_class(m)),
                     ("curves", "Precision–recall at IoU 0.5", pr_curves_html(m)),
                     ("confusion", "Confusion (background = missed / spurious)", confusion_html(m))]  # fmt: skip
        if predictor is not None and dataset is not None:
            sections.append(("worst", "Worst images", _gallery(m, dataset, predictor)))
    if history:
        sections.append(("training", "Training", history_html(history) + training_section(meta)))
    return save_report(run, meta, results, sections, "detector", "detection")


def _summary(results: Mapping[str, DetectionResult]) -> str:
    if not results:
        return NOTHING_MEASURED
    first = next(iter(results.values())).metrics
    body = cards([(label, fmt(first.get(key))) for key, label in HEADLINE[:3]])
    rows = [[esc(name), *(fmt(r.metrics.get(k)) for k, _ in HEADLINE), str(r.metrics.get("images")),
             str(r.metrics.get("gt_boxes")), fmt(r.ms_per_image, 2)] for name, r in results.items()]  # fmt: skip
    headers = ["split", *(label for _, label in HEADLINE), "images", "boxes", "ms/image"]
    return body + table(headers, rows, numeric=range(1, len(headers)))


def _per_class(m: Mapping[str, Any]) -> str:
    per = m.get("per_class") or {}
    order = sorted(per, key=lambda c: (per[c].get("ap") is None, per[c].get("ap") or 0.0))
    shown = [c for c in order if per[c].get("gt") or per[c].get("detections")]
    rows = [[esc(c), fmt(per[c].get("ap")), fmt(per[c].get("ap50")), str(per[c].get("gt", 0)),
             str(per[c].get("detections", 0))] for c in shown]  # fmt: skip
    note = '<p class="note">Weakest first. A class without boxes in this split has no AP.</p>'
    return note + table(["class", "AP", "AP@.5", "boxes", "detections"], rows, numeric=(1, 2, 3, 4))


def pr_curves_html(m: Mapping[str, Any]) -> str:
    """The per-class precision-recall curves at IoU 0.5 of the box figures (``pr_curves``)."""
    curves = m.get("pr_curves") or {}
    recall, precision = curves.get("recall"), curves.get("precision") or {}
    drawn = {c: p for c, p in precision.items() if p}
    if not recall or not drawn:
        return '<p class="note">No curve: no class had both boxes and detections.</p>'
    fig = _new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    for name, values in list(drawn.items())[:20]:
        ax.plot(recall, values, linewidth=1.2, label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return png_img(figure_png(fig), "precision-recall curves")


def confusion_html(m: Mapping[str, Any]) -> str:
    """The detection confusion matrix with its background row and column (``confusion``)."""
    conf = m.get("confusion") or {}
    labels, matrix = conf.get("labels"), conf.get("matrix")
    if not labels or matrix is None or len(labels) > 40:
        return '<p class="note">Not drawn (no matrix, or more than 40 classes).</p>'
    note = (f'<p class="note">Detections with score ≥ {fmt(conf.get("conf"))} matched at IoU ≥ '
            f'{fmt(conf.get("iou"))}. Last row: detections with no box (false positives); last column: '
            "boxes no detection found (misses).</p>")  # fmt: skip
    return note + png_img(confusion_matrix_png(np.asarray(matrix), labels), "detection confusion matrix")


def _gallery(m: Mapping[str, Any], dataset: Any, predictor: Any) -> str:
    from imgrec.tasks.detect_draw import draw_detections

    index = {s: i for i, s in enumerate(dataset.sources)}
    tiles = []
    for row in (m.get("worst_images") or [])[:GALLERY]:
        i = index.get(row.get("image_id"))
        if i is None:
            continue
        image = dataset.load(i)
        (dets,) = predictor.predict(image, conf=0.25)
        t = dataset.targets[i]
        drawn = draw_detections(image, dets, gt=(t.boxes, [dataset.classes[k] for k in t.labels]))
        counts = json.dumps({k: v for k, v in row.items() if k != "image_id"})
        caption = esc(f"{Path(str(row['image_id'])).name}: {counts}")
        tiles.append(f"<figure>{_png(drawn)}<figcaption>{caption}</figcaption></figure>")
    return "".join(tiles) or '<p class="note">No image had errors at this threshold.</p>'


def _png(image: np.ndarray) -> str:
    import io

    from PIL import Image

    pil = Image.fromarray(image)
    pil.thumbnail((480, 480))
    buf = io.BytesIO()
    pil.save(buf, "PNG")
    return png_img(buf.getvalue(), "detections (ground truth in green)")


def history_html(history: Sequence[Mapping[str, Any]], scores: Sequence[str] = ("val_map", "val_map50")) -> str:
    """Loss terms (every logged key but ``epoch``, ``lr``, ``seconds`` and ``scores``) and the
    validation ``scores`` per epoch, side by side."""
    fig = _new_figure(10, 4)
    loss_ax, map_ax = fig.subplots(1, 2)
    epochs = [float(h.get("epoch", i + 1)) for i, h in enumerate(history)]
    skip = {"epoch", "lr", "seconds", *scores}
    for key in sorted({k for h in history for k in h} - skip):
        loss_ax.plot(epochs, [h.get(key, np.nan) for h in history], marker="o", markersize=3, label=key)
    for key in scores:
        map_ax.plot(epochs, [h.get(key, np.nan) for h in history], marker="o", markersize=3, label=key)
    for ax, name in ((loss_ax, "loss terms"), (map_ax, "validation mAP")):
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    return png_img(figure_png(fig), "training curves")

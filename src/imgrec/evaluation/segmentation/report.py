"""The one report of a segmentation run: ``metrics.json`` and a self-contained ``report.html``.

Sections, in the detection report's shape: the headline figures (mIoU, pixel accuracy, mean
Dice, boundary F1), per-class IoU / Dice / accuracy / boundary F1 with pixel counts (weakest
first), the pixel confusion matrix (rows: truth, normalized), the worst images (truth and
prediction side by side, when a predictor is given), training curves (loss and val mIoU per
epoch) and the options that applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.evaluation.html_page import NOTHING_MEASURED, cards, esc, fmt, png_img, save_report, table
from imgrec.evaluation.plots import _new_figure, confusion_matrix_png, figure_png
from imgrec.evaluation.report_sections import training_section
from imgrec.evaluation.segmentation.run import SegmentationResult

HEADLINE = (("miou", "mIoU"), ("pixel_accuracy", "pixel accuracy"), ("mean_dice", "mean Dice"),
            ("boundary_f1", "boundary F1"), ("mean_accuracy", "mean class accuracy"))  # fmt: skip
GALLERY = 6
MAX_CONFUSION = 40


def write_segmentation_report(
    run_dir: str | Path, *, meta: Mapping[str, Any], results: Mapping[str, SegmentationResult],
    history: Sequence[Mapping[str, Any]] | None = None, dataset: Any = None, predictor: Any = None,
) -> Path:  # fmt: skip
    """Write ``metrics.json`` and ``report.html`` into ``run_dir``; returns the report's path."""
    run = Path(run_dir)
    sections = [("summary", "Summary", _summary(results))]
    split = "test" if "test" in results else next(iter(results), None)
    if split is not None:
        m = results[split].metrics
        sections += [("classes", f"Per class ({split})", _per_class(m)),
                     ("confusion", "Pixel confusion (rows: truth)", _confusion(m))]  # fmt: skip
        if predictor is not None and dataset is not None:
            sections.append(("worst", "Worst images (truth | prediction)", _gallery(m, dataset, predictor)))
    if history:
        sections.append(("training", "Training", _history(history) + training_section(meta)))
    return save_report(run, meta, results, sections, "segmenter", "segmentation")


def _summary(results: Mapping[str, SegmentationResult]) -> str:
    if not results:
        return NOTHING_MEASURED
    first = next(iter(results.values())).metrics
    body = cards([(label, fmt(first.get(key))) for key, label in HEADLINE[:4]])
    rows = [[esc(name), *(fmt(r.metrics.get(k)) for k, _ in HEADLINE), str(r.metrics.get("images")),
             fmt(r.ms_per_image, 2)] for name, r in results.items()]  # fmt: skip
    headers = ["split", *(label for _, label in HEADLINE), "images", "ms/image"]
    note = ('<p class="note">Measured at each image\'s own resolution, after the prediction is brought back '
            "to its pixels (the path of predict and serve). Ignored pixels (255) are left out.</p>")  # fmt: skip
    return body + table(headers, rows, numeric=range(1, len(headers))) + note


def _per_class(m: Mapping[str, Any]) -> str:
    per = m.get("per_class") or {}
    shown = [c for c in per if per[c].get("iou") is not None]
    order = sorted(shown, key=lambda c: per[c]["iou"])
    rows = [[esc(c), fmt(per[c].get("iou")), fmt(per[c].get("dice")), fmt(per[c].get("accuracy")),
             fmt(per[c].get("boundary_f1")), str(per[c].get("pixels", 0))] for c in order]  # fmt: skip
    note = '<p class="note">Weakest first. A class neither in the truth nor predicted has no IoU and is left out.</p>'
    return note + table(["class", "IoU", "Dice", "accuracy", "boundary F1", "pixels"], rows, numeric=(1, 2, 3, 4, 5))


def _confusion(m: Mapping[str, Any]) -> str:
    conf = m.get("confusion") or {}
    labels, matrix = conf.get("labels"), np.asarray(conf.get("matrix") or [])
    if not labels or not matrix.size:
        return '<p class="note">No matrix.</p>'
    seen = np.flatnonzero(matrix.sum(axis=0) + matrix.sum(axis=1))  # classes in the truth or predicted
    if len(seen) > MAX_CONFUSION:
        return f'<p class="note">Not drawn: {len(seen)} classes occur (over {MAX_CONFUSION}); see metrics.json.</p>'
    sub = matrix[np.ix_(seen, seen)]
    names = [labels[i] for i in seen]
    return png_img(confusion_matrix_png(sub, names, normalize=True), "pixel confusion matrix (row-normalized)")


def _gallery(m: Mapping[str, Any], dataset: Any, predictor: Any) -> str:
    from imgrec.imaging.draw import overlay_mask
    from imgrec.tasks.segment_draw import draw_segmentation

    index = {s: i for i, s in enumerate(dataset.sources)}
    tiles = []
    for row in (m.get("worst_images") or [])[:GALLERY]:
        i = index.get(row.get("image_id"))
        if i is None:
            continue
        try:
            image, truth = dataset.load(i), dataset.load_mask(i)
        except Exception:  # an unreadable item was reported by the evaluation
            continue
        (seg,) = predictor.predict(image)
        pair = np.concatenate([overlay_mask(image, truth, ignore=dataset.ignore_index), draw_segmentation(image, seg)],
                              axis=1)  # fmt: skip
        caption = esc(f"{Path(str(row['image_id'])).name}: image mIoU {fmt(row.get('miou'))}")
        tiles.append(f"<figure>{_png(pair)}<figcaption>{caption}</figcaption></figure>")
    return "".join(tiles) or '<p class="note">No image to show.</p>'


def _png(image: np.ndarray) -> str:
    import io

    from PIL import Image

    pil = Image.fromarray(image)
    pil.thumbnail((720, 360))
    buf = io.BytesIO()
    pil.save(buf, "PNG")
    return png_img(buf.getvalue(), "truth (left) and prediction (right)")


def _history(history: Sequence[Mapping[str, Any]]) -> str:
    fig = _new_figure(10, 4)
    loss_ax, miou_ax = fig.subplots(1, 2)
    epochs = [float(h.get("epoch", i + 1)) for i, h in enumerate(history)]
    for key in sorted({k for h in history for k in h if k.endswith("loss")}):
        loss_ax.plot(epochs, [h.get(key, np.nan) for h in history], marker="o", markersize=3, label=key)
    for key in ("val_miou", "val_pixel_accuracy"):
        miou_ax.plot(epochs, [h.get(key, np.nan) for h in history], marker="o", markersize=3, label=key)
    for ax, name in ((loss_ax, "loss"), (miou_ax, "validation")):
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    return png_img(figure_png(fig), "training curves")

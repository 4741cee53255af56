"""The one report of an instance-segmentation run: ``metrics.json`` and a self-contained ``report.html``.

Sections: the headline figures, box AP next to mask AP (mAP@[.5:.95], @.5, @.75, by object
size, AR@100), per-class box and mask AP with object counts (weakest mask AP first), then the
detection report's own sections on the boxes (precision–recall curves at IoU 0.5, the
detection confusion matrix with its background row and column), the images whose masks are
worst (truth and prediction side by side, masks tinted, when a predictor is given), loss
terms and validation mAP per epoch, and the options that applied.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.evaluation.detection.report import confusion_html, history_html, pr_curves_html
from imgrec.evaluation.html_page import NOTHING_MEASURED, cards, esc, fmt, png_img, save_report, table
from imgrec.evaluation.instance.run import InstanceResult
from imgrec.evaluation.report_sections import training_section

HEADLINE = (("map", "mAP@[.5:.95]"), ("map50", "mAP@.5"), ("map75", "mAP@.75"), ("map_small", "AP small"),
            ("map_medium", "AP medium"), ("map_large", "AP large"), ("ar100", "AR@100"))  # fmt: skip
KINDS = (("box", ""), ("mask", "mask_"))
SCORES = ("val_map", "val_map50", "val_mask_map", "val_mask_map50")  # validation figures in the history
GALLERY = 6


def write_instance_report(
    run_dir: str | Path, *, meta: Mapping[str, Any], results: Mapping[str, InstanceResult],
    history: Sequence[Mapping[str, Any]] | None = None, dataset: Any = None, predictor: Any = None,
) -> Path:  # fmt: skip
    """Write ``metrics.json`` and ``report.html`` into ``run_dir``; returns the report's path.

    Args:
        run_dir: the folder (created if needed).
        meta: the run's ``model.json`` (``model``, ``data``, ``training``...).
        results: one :class:`InstanceResult` per split (``test`` is the one detailed, else the first).
        history: the per-epoch log (loss terms, ``val_map``, ``val_mask_map``...), if trained here.
        dataset: the evaluated data; with ``predictor``, the worst images are drawn.
        predictor: the instance Predictor (``predict(image, conf=...)`` gives ``Instances``).
    """
    run = Path(run_dir)
    sections = [("summary", "Summary", _summary(results))]
    split = "test" if "test" in results else next(iter(results), None)
    if split is not None:
        m = results[split].metrics
        sections += [("classes", f"Per class ({split})", _per_class(m)),
                     ("curves", "Box precision–recall at IoU 0.5", pr_curves_html(m)),
                     ("confusion", "Box confusion (background = missed / spurious)", confusion_html(m))]  # fmt: skip
        if predictor is not None and dataset is not None:
            sections.append(("worst", "Worst masks (truth | prediction)", _gallery(m, dataset, predictor)))
    if history:
        sections.append(("training", "Training", history_html(history, SCORES) + training_section(meta)))
    return save_report(run, meta, results, sections, "instance segmenter", "instance segmentation")


def _summary(results: Mapping[str, InstanceResult]) -> str:
    if not results:
        return NOTHING_MEASURED
    first = next(iter(results.values())).metrics
    body = cards([(f"{kind} {label}", fmt(first.get(p + key))) for key, label in HEADLINE[:2] for kind, p in KINDS])
    rows = [[esc(name), kind, *(fmt(r.metrics.get(p + k)) for k, _ in HEADLINE), str(r.metrics.get("images")),
             str(r.metrics.get("gt_boxes" if kind == "box" else "gt_masks")), fmt(r.ms_per_image, 2)]
            for name, r in results.items() for kind, p in KINDS]  # fmt: skip
    headers = ["split", "", *(label for _, label in HEADLINE), "images", "objects", "ms/image"]
    no_mask = sum(int(r.metrics.get("no_mask") or 0) for r in results.values())
    note = (f'<p class="note">{no_mask} object(s) without a usable mask count, for mask AP, as crowd regions '
            "shaped like their boxes (never missed; predictions inside them are ignored).</p>")  # fmt: skip
    note = note if no_mask else ""
    return body + table(headers, rows, numeric=range(2, len(headers))) + note


def _per_class(m: Mapping[str, Any]) -> str:
    per = m.get("per_class") or {}
    order = sorted(per, key=lambda c: (per[c].get("mask_ap") is None, per[c].get("mask_ap") or 0.0))
    shown = [c for c in order if per[c].get("gt") or per[c].get("detections")]
    rows = [[esc(c), fmt(per[c].get("ap")), fmt(per[c].get("mask_ap")), fmt(per[c].get("ap50")),
             fmt(per[c].get("mask_ap50")), str(per[c].get("gt", 0)), str(per[c].get("detections", 0))]
            for c in shown]  # fmt: skip
    note = ('<p class="note">Weakest mask AP first. A class without objects in this split has no AP. Box AP well '
            "above mask AP: the objects are found but outlined poorly.</p>")  # fmt: skip
    headers = ["class", "box AP", "mask AP", "box AP@.5", "mask AP@.5", "objects", "detections"]
    return note + table(headers, rows, numeric=range(1, len(headers)))


def _gallery(m: Mapping[str, Any], dataset: Any, predictor: Any) -> str:
    from imgrec.tasks.segment_draw import draw_instances

    index = {s: i for i, s in enumerate(dataset.sources)}
    errors = _box_errors(m)
    tiles = []
    for row in (m.get("worst_mask_images") or [])[:GALLERY]:
        i = index.get(row.get("image_id"))
        if i is None:
            continue
        try:
            image = dataset.load(i)
        except Exception:  # an unreadable item was reported by the evaluation
            continue
        (found,) = predictor.predict(image, conf=0.25)
        truth = truth_instances(dataset.targets[i], dataset.classes, (image.shape[1], image.shape[0]))
        pair = np.concatenate([draw_instances(image, truth), draw_instances(image, found)], axis=1)
        boxes = json.dumps(errors.get(str(row["image_id"]), {}))
        caption = esc(f"{Path(str(row['image_id'])).name}: mask IoU {fmt(row.get('mask_iou'))}; boxes {boxes}")
        tiles.append(f"<figure>{_png(pair)}<figcaption>{caption}</figcaption></figure>")
    note = ('<p class="note">Lowest mask IoU first: each object\'s best mask IoU with a same-class prediction '
            "scoring ≥ 0.25, averaged over the image.</p>")  # fmt: skip
    return note + "".join(tiles) if tiles else '<p class="note">No image to show.</p>'


def truth_instances(target: Any, classes: Sequence[str], image_size: tuple[int, int]) -> Any:
    """The objects of ``target`` with a mask of the image's size, as :class:`Instances` (score 1)."""
    from imgrec.tasks.instance import Instance, Instances

    w, h = image_size
    found = [
        Instance(tuple(float(v) for v in box), classes[int(k)], 1.0, int(k), seg.rle())  # type: ignore[arg-type]
        for box, k, seg in zip(target.boxes, target.labels, target.segments, strict=True)
        if seg is not None and tuple(seg.size) == (h, w)
    ]
    return Instances(tuple(found), (w, h))


def _box_errors(m: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Image id -> the image's box error counts (false positives, misses, wrong class)."""
    per = m.get("per_image") or {}
    keys = ("false_positives", "misses", "wrong_class")
    columns = [per.get(k) or [] for k in keys]
    return {str(n): dict(zip(keys, (int(c[j]) for c in columns), strict=True))
            for j, n in enumerate(per.get("image_id") or []) if all(len(c) > j for c in columns)}  # fmt: skip


def _png(image: np.ndarray) -> str:
    from PIL import Image

    pil = Image.fromarray(image)
    pil.thumbnail((720, 360))
    buf = io.BytesIO()
    pil.save(buf, "PNG")
    return png_img(buf.getvalue(), "truth (left) and prediction (right)")

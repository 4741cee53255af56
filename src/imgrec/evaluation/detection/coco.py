"""pycocotools glue: in-memory COCO ground truth and results, and a quiet ``COCOeval`` run.

pycocotools prints progress on stdout ("creating index...", "DONE (t=0.01s)") and the
summary table; the library never prints, so every call into it runs with stdout captured.
Capturing swaps ``sys.stdout`` for the duration, so output that other threads print in that
window is captured too (and dropped).

Arrays in, pycocotools objects out: image indices are 1-based COCO ids, class indices map to
category ids ``index + 1``, boxes are x, y, w, h floats (COCO's ``bbox``).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from imgrec.errors import DependencyError

STAT_NAMES = ("map", "map50", "map75", "map_small", "map_medium", "map_large",
              "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")  # fmt: skip
"""The names of ``COCOeval.stats``, in order."""


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Capture (and drop) what pycocotools prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def pycocotools() -> tuple[Any, Any]:
    """``(COCO, COCOeval)``, or a DependencyError that says what to install."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise DependencyError(
            "Detection metrics need pycocotools, which is not installed. Install it with "
            "`pip install pycocotools` (it comes with `pip install imgrec`)."
        ) from None
    return COCO, COCOeval


def ground_truth(sizes: np.ndarray, gt: np.ndarray, classes: Sequence[str]) -> Any:
    """A ``COCO`` object from image sizes ``(N, 2)`` (width, height) and ground-truth rows
    ``(K, 8)``: image index (0-based), x1, y1, x2, y2, class index, crowd flag, area."""
    return in_memory(sizes, classes, _gt_annotations(gt))


def in_memory(sizes: np.ndarray, classes: Sequence[str], annotations: list[dict[str, Any]]) -> Any:
    """A ``COCO`` object indexed over ``annotations`` (COCO dicts with 1-based image and category
    ids), for images of ``sizes`` ``(N, 2)`` (width, height) and categories ``classes``."""
    coco_cls, _ = pycocotools()
    images = [{"id": i + 1, "width": int(w), "height": int(h)} for i, (w, h) in enumerate(np.asarray(sizes).tolist())]
    categories = [{"id": k + 1, "name": str(name)} for k, name in enumerate(classes)]
    coco = coco_cls()
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    with quiet():
        coco.createIndex()
    return coco


def _gt_annotations(gt: np.ndarray) -> list[dict[str, Any]]:
    image, label, crowd = (gt[:, c].astype(np.int64).tolist() for c in (0, 5, 6))
    rows = zip(image, label, crowd, gt[:, 7].tolist(), xywh(gt[:, 1:5]).tolist(), strict=True)
    return [
        {"id": n + 1, "image_id": i + 1, "category_id": k + 1, "bbox": b, "area": a, "iscrowd": c}
        for n, (i, k, c, a, b) in enumerate(rows)
    ]


def results(gt_coco: Any, dets: np.ndarray) -> Any:
    """The detections as a results ``COCO`` (``loadRes`` on the ``(D, 7)`` array pycocotools
    takes: image id, x, y, w, h, score, category id), from rows ``(D, 7)``: image index
    (0-based), x1, y1, x2, y2, score, class index."""
    if len(dets) == 0:
        return _empty_results(gt_coco)
    table = np.column_stack([dets[:, 0] + 1, xywh(dets[:, 1:5]), dets[:, 5], dets[:, 6] + 1])
    with quiet():
        return gt_coco.loadRes(table)


def _empty_results(gt_coco: Any) -> Any:
    """What ``loadRes`` would give for no detections (it refuses an empty list)."""
    coco_cls, _ = pycocotools()
    res = coco_cls()
    res.dataset = {"images": list(gt_coco.dataset["images"]), "categories": list(gt_coco.dataset["categories"]),
                   "annotations": []}  # fmt: skip
    with quiet():
        res.createIndex()
    return res


def evaluate_bbox(gt_coco: Any, dt_coco: Any) -> Any:
    """``COCOeval(gt, dt, "bbox")`` evaluated, accumulated and summarized (``.stats``, ``.eval``)."""
    return evaluate(gt_coco, dt_coco, "bbox")


def evaluate(gt_coco: Any, dt_coco: Any, iou_type: str) -> Any:
    """``COCOeval(gt, dt, iou_type)`` (``"bbox"`` or ``"segm"``) evaluated, accumulated and summarized."""
    _, eval_cls = pycocotools()
    ev = eval_cls(gt_coco, dt_coco, iou_type)
    with quiet():
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def xywh(xyxy: np.ndarray) -> np.ndarray:
    """Corners -> COCO's x, y, width, height, in float64 (as COCO JSON holds them)."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def precision_slice(ev: Any, key: str = "precision") -> np.ndarray:
    """``ev.eval[key]`` at area "all" and the largest maxDets: ``(T, R, K)``."""
    area = list(ev.params.areaRngLbl).index("all")
    return np.asarray(ev.eval[key])[:, :, :, area, -1]


def mean_valid(values: np.ndarray) -> float | None:
    """COCO's mean over the entries that exist (-1 marks a class without ground truth)."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None


def figure(value: float) -> float | None:
    """A ``COCOeval.stats`` value, None where COCO gives -1 (nothing to measure)."""
    return None if value <= -1 else float(value)

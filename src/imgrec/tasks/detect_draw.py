"""Drawing :class:`Detections` on their image: boxes in a colour per class, "label score"
captions, landmarks (when a detector gives them) as dots in one colour per point, and
optionally the ground truth in green underneath (``predict --save``, the evaluation report's
gallery).

Example:
    >>> import numpy as np
    >>> from imgrec.tasks.detect import Detection
    >>> dets = Detections((Detection((40.0, 40.0, 80.0, 80.0), "cat", 0.9, 0),), (100, 100))
    >>> out = draw_detections(np.zeros((100, 100, 3), np.uint8), dets)
    >>> out[60, 40].tolist() != [0, 0, 0], out[60, 60].tolist()
    (True, [0, 0, 0])
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from imgrec.errors import UsageError
from imgrec.imaging.draw import draw_boxes, draw_points, palette_color
from imgrec.tasks.detect import Detections

GT_COLOR = (0, 220, 0)
# Landmark dots: eye on the image's left, other eye, nose, mouth corners (then the palette).
POINT_COLORS = ((0, 255, 255), (255, 0, 255), (255, 255, 0), (0, 160, 255), (255, 120, 0))
GroundTruth = Detections | np.ndarray | tuple[np.ndarray, Sequence[str]] | None


def draw_detections(
    image: np.ndarray, dets: Detections, *, gt: GroundTruth = None, line_width: int | None = None
) -> np.ndarray:
    """A copy of the RGB uint8 ``image`` with ``dets`` drawn on it.

    Args:
        image: the image the detections were found in (their boxes are in its pixels).
        dets: the detections; each box gets its class's colour and "label score".
        gt: ground truth drawn first in green, thinner: ``Detections``, a ``(K, 4)`` array of
            boxes, or ``(boxes, names)`` to caption them.
        line_width: box outline in pixels (default: from the image size).
    """
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise UsageError(f"draw_detections needs an RGB uint8 (H, W, 3) image; received {img.dtype} {img.shape}.")
    lw = line_width or max(1, round(sum(img.shape[:2]) / 2 * 0.003))
    gt_boxes, gt_names = _ground_truth(gt)
    if len(gt_boxes):
        img = draw_boxes(img, gt_boxes, gt_names, colors=GT_COLOR, line_width=max(1, lw // 2 or 1))
    captions = [f"{d.label} {d.score:.2f}" for d in dets.detections]
    colors = [palette_color(d.class_id if d.class_id >= 0 else zlib.crc32(d.label.encode())) for d in dets.detections]
    out = draw_boxes(img, dets.boxes, captions, colors=colors, line_width=lw) if len(dets) else img.copy()
    return _landmarks(out, dets, lw)


def _landmarks(img: np.ndarray, dets: Detections, lw: int) -> np.ndarray:
    points = [np.asarray(d.landmarks, np.float64) for d in dets.detections if d.landmarks]
    if not points:
        return img
    colors = [POINT_COLORS[i] if i < len(POINT_COLORS) else palette_color(i) for p in points for i in range(len(p))]
    return draw_points(img, np.concatenate(points), colors=colors, radius=max(2, lw + 1))


def _ground_truth(gt: GroundTruth) -> tuple[np.ndarray, list[str] | None]:
    if gt is None:
        return np.zeros((0, 4)), None
    if isinstance(gt, Detections):
        return gt.boxes, [d.label for d in gt.detections]
    if isinstance(gt, tuple):
        boxes, names = gt
        return np.asarray(boxes, np.float64).reshape(-1, 4), [str(n) for n in names]
    return np.asarray(gt, np.float64).reshape(-1, 4), None

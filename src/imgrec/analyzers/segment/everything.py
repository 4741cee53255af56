"""Segment everything: SAM's ``SamAutomaticMaskGenerator`` (a grid of point prompts, filtered by
predicted IoU and stability, duplicates removed by box NMS), as the ``instance`` task's
:class:`Instances`.

The generator works on the decoded image (a large JPEG is decoded at a reduced scale whose long
side still reaches SAM's input side, so no detail SAM could see is lost); its masks are mapped
to the original pixels by nearest neighbour, centre to centre. It shares the segmenter's
embedding cache: everything after prompts on one image computes no second embedding.

Example:
    >>> sorted(EVERYTHING_DEFAULTS)
    ['min_mask_region_area', 'points_per_side', 'pred_iou_thresh', 'stability_score_thresh']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imgrec.errors import UsageError
from imgrec.tasks.instance import Instances

EVERYTHING_DEFAULTS: dict[str, Any] = {
    "points_per_side": 32,  # the grid: 32 x 32 point prompts
    "pred_iou_thresh": 0.88,  # least predicted IoU kept
    "stability_score_thresh": 0.95,  # least IoU between the mask thresholded at +1 and at -1
    "min_mask_region_area": 0,  # remove holes and islands smaller than this (decoded pixels; 0: off)
}


def everything_options(**given: Any) -> dict[str, Any]:
    """The generator's options, checked (None = default)."""
    unknown = sorted(set(given) - set(EVERYTHING_DEFAULTS))
    if unknown:
        raise UsageError(f"Unknown option(s) {', '.join(unknown)}; everything() takes "
                         f"{', '.join(EVERYTHING_DEFAULTS)}.")  # fmt: skip
    opts = {k: (EVERYTHING_DEFAULTS[k] if given.get(k) is None else given[k]) for k in EVERYTHING_DEFAULTS}
    if not 1 <= int(opts["points_per_side"]) <= 128:
        raise UsageError(f"points_per_side must be in 1..128; received {opts['points_per_side']}.")
    for key in ("pred_iou_thresh", "stability_score_thresh"):
        if not 0.0 <= float(opts[key]) <= 1.0:
            raise UsageError(f"{key} must be in [0, 1]; received {opts[key]}.")
    if int(opts["min_mask_region_area"]) < 0:
        raise UsageError(f"min_mask_region_area must be >= 0; received {opts['min_mask_region_area']}.")
    return opts


def segment_everything(model: Any, predictor: Any, image: Any, **options: Any) -> Instances:
    """Every mask the generator keeps on ``image`` (a :class:`~imgrec.analyzers.segment.sam.SamImage`),
    best predicted IoU first; ``extra``: ``stability_score`` and the grid ``point`` (original pixels)."""
    import torch
    from segment_anything import SamAutomaticMaskGenerator

    opts = everything_options(**options)
    gen = SamAutomaticMaskGenerator(model, points_per_side=int(opts["points_per_side"]),
                                    pred_iou_thresh=float(opts["pred_iou_thresh"]),
                                    stability_score_thresh=float(opts["stability_score_thresh"]),
                                    min_mask_region_area=int(opts["min_mask_region_area"]),
                                    output_mode="binary_mask")  # fmt: skip
    gen.predictor = predictor  # the segmenter's: its embedding cache
    with torch.inference_mode():
        records = gen.generate(image.array)
    records.sort(key=lambda r: -float(r["predicted_iou"]))
    return Instances(tuple(_instance(r, image) for r in records), image.original, image.path)


def _instance(record: dict[str, Any], image: Any) -> Any:
    from imgrec.analyzers.segment.sam import mask_instance

    h, w = image.array.shape[:2]
    W, H = image.original
    mask = to_original(np.asarray(record["segmentation"], bool), image.original)
    x, y = record["point_coords"][0]
    extra = {"stability_score": round(float(record["stability_score"]), 6),
             "point": [round(float(x) * W / w, 2), round(float(y) * H / h, 2)]}  # fmt: skip
    return mask_instance(mask, float(record["predicted_iou"]), "object", 0, extra)


def to_original(mask: np.ndarray, original: tuple[int, int]) -> np.ndarray:
    """A bool mask of the decoded image in the original's ``(width, height)`` pixels (nearest,
    centre to centre).

    Example:
        >>> to_original(np.array([[True, False]]), (4, 2)).astype(int).tolist()
        [[1, 1, 0, 0], [1, 1, 0, 0]]
    """
    from imgrec.transforms.frame import Geometry

    h, w = mask.shape
    if (w, h) == tuple(original):
        return mask
    side = max(h, w)
    square = np.zeros((side, side), np.uint8)
    square[:h, :w] = mask
    g = Geometry(original=original, scale=(w / original[0], h / original[1]), offset=(0.0, 0.0), size=side)
    return g.mask_to_original(square).astype(bool)

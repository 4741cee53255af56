"""Fast paths of detection postprocessing give the same results as the plain algorithms: the yolox
decoder skipping anchors that cannot reach MIN_SCORE, NMS on precomputed columns, stopping at max_det."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.tasks.boxes import batched_nms, box_iou, cxcywh_to_xyxy, nms
from imgrec.tasks.decoders import MIN_SCORE, _grids, decode


def brute_force(o: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every anchor decoded, then the best class per anchor kept from MIN_SCORE on."""
    grid, stride = _grids(size)
    xy, wh = (o[:, :2] + grid) * stride, np.exp(np.clip(o[:, 2:4], -20, 20)) * stride
    boxes = cxcywh_to_xyxy(np.concatenate([xy, wh], axis=1))
    scores = o[:, 4:5] * o[:, 5:]
    labels = scores.argmax(axis=1)
    best = scores[np.arange(len(labels)), labels]
    keep = best >= MIN_SCORE
    return boxes[keep], best[keep], labels[keep]


def test_yolox_candidates_equal_the_brute_force_decoding() -> None:
    rng = np.random.default_rng(0)
    out = rng.normal(0, 1, (2, 3549, 85)).astype(np.float32)
    out[..., 4] = rng.random((2, 3549)) ** 6  # most objectness tiny, as in real outputs
    out[..., 5:] = rng.random((2, 3549, 80)).astype(np.float32)
    for o, c in zip(out, decode("yolox", [out], 416, 80), strict=True):
        boxes, scores, labels = brute_force(o, 416)
        assert 0 < len(c.scores) < 3549
        assert np.array_equal(c.boxes, boxes) and np.array_equal(c.scores, scores) and np.array_equal(c.labels, labels)


def test_grids_are_cached_and_read_only() -> None:
    grid, stride = _grids(416)
    assert _grids(416)[0] is grid and not grid.flags.writeable and not stride.flags.writeable
    assert grid.shape == (3549, 2) and stride[-1, 0] == 32


def plain_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        order = [j for j in order if box_iou(boxes[best], boxes[j])[0, 0] <= iou]
    return keep


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("iou", [0.0, 0.45, 0.65, 1.0])
def test_nms_equals_the_plain_greedy_algorithm(seed: int, iou: float) -> None:
    rng = np.random.default_rng(seed)
    xy, wh = rng.uniform(0, 200, (120, 2)), rng.uniform(0, 60, (120, 2))
    wh[:10] = 0  # empty boxes
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = np.round(rng.random(120), 1).astype(np.float32)  # ties
    assert nms(boxes, scores, iou).tolist() == plain_nms(boxes, scores, iou)


def test_max_keep_is_a_prefix() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 300, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 80, (300, 2))], axis=1).astype(np.float32)
    scores, labels = rng.random(300).astype(np.float32), rng.integers(0, 4, 300)
    full = batched_nms(boxes, scores, labels, 0.5)
    assert len(full) > 20
    assert batched_nms(boxes, scores, labels, 0.5, 20).tolist() == full[:20].tolist()
    assert batched_nms(boxes, scores, labels, 0.5, 10_000).tolist() == full.tolist()

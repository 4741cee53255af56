"""The yolox decoder skips anchors that cannot reach MIN_SCORE: the candidates stay the same."""

from __future__ import annotations

import numpy as np

from imgrec.tasks.boxes import cxcywh_to_xyxy
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

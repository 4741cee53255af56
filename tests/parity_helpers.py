"""Helpers for export parity tests: untrained models whose outputs do not tie."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np


def settle_batchnorm(module: Any, inputs: Any) -> None:
    """Set every BatchNorm's running statistics to those of one forward pass on ``inputs``.

    A fresh network in eval mode normalizes with mean 0 / variance 1, which shrinks its
    activations layer after layer: every detector cell then scores its prior (about 0.01) up to
    float noise, and torch and ONNX Runtime break those near-ties differently. With statistics
    of real activations the scores spread, so two backends can be compared detection by detection.
    torchvision's ``FrozenBatchNorm2d`` (the MobileNetV3 Mask R-CNN's backbone has them even
    untrained) get the statistics of their input in the same pass.
    """
    import torch

    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    frozen = [m for m in module.modules() if type(m).__name__ == "FrozenBatchNorm2d"]
    hooks = [m.register_forward_pre_hook(_input_statistics) for m in frozen]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 1.0
    module.train()
    with torch.no_grad():
        module(inputs)
    module.eval()
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    for hook in hooks:
        hook.remove()


def _input_statistics(layer: Any, args: tuple[Any, ...]) -> None:
    """A FrozenBatchNorm2d's running mean and variance set to those of its input, before it runs."""
    x = args[0]
    layer.running_mean.copy_(x.mean(dim=(0, 2, 3)))
    layer.running_var.copy_(x.var(dim=(0, 2, 3)))


def random_batch(n: int, size: int, seed: int = 0) -> np.ndarray:
    """A prepared uint8 batch ``(n, size, size, 3)`` of seeded noise."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def unmatched(a: Any, b: Any, box_tol: float = 0.05, score_tol: float = 1e-4) -> int:
    """How many boxes of ``a`` find no partner in ``b`` (same label, score and box within the
    tolerances; each box of ``b`` taken once), plus the count difference. Boxes are compared as
    sets: candidates whose scores tie come out of two backends in either order."""
    boxes_a, boxes_b = np.asarray(a.boxes, np.float64), np.asarray(b.boxes, np.float64)
    labels_a, labels_b = _labels(a), _labels(b)
    free = np.ones(len(boxes_b), bool)
    missing = 0
    for box, score, label in zip(boxes_a, np.asarray(a.scores, np.float64), labels_a, strict=True):
        close = free & (labels_b == label) & (np.abs(np.asarray(b.scores) - score) <= score_tol)
        close &= np.abs(boxes_b - box).max(axis=1, initial=0.0) <= box_tol if len(boxes_b) else close
        hit = np.flatnonzero(close)
        if len(hit):
            free[hit[0]] = False
        else:
            missing += 1
    return missing + abs(len(boxes_a) - len(boxes_b))


def best(found: Any, k: int) -> SimpleNamespace:
    """The ``k`` highest-scoring boxes of ``found`` (Detections or BoxCandidates), for ``unmatched``."""
    order = np.argsort(-np.asarray(found.scores, np.float64), kind="stable")[:k]
    return SimpleNamespace(
        boxes=np.asarray(found.boxes)[order], scores=np.asarray(found.scores)[order], class_ids=_labels(found)[order]
    )


def _labels(found: Any) -> np.ndarray:
    """Class indices of BoxCandidates (``labels``) or Detections (``class_ids``)."""
    return np.asarray(found.labels if hasattr(found, "labels") else found.class_ids)

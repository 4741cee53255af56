"""Helpers for export parity tests: untrained models whose outputs do not tie."""

from __future__ import annotations

from typing import Any

import numpy as np


def settle_batchnorm(module: Any, inputs: Any) -> None:
    """Set every BatchNorm's running statistics to those of one forward pass on ``inputs``.

    A fresh network in eval mode normalizes with mean 0 / variance 1, which shrinks its
    activations layer after layer: every detector cell then scores its prior (about 0.01) up to
    float noise, and torch and ONNX Runtime break those near-ties differently. With statistics
    of real activations the scores spread, so two backends can be compared detection by detection.
    """
    import torch

    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 1.0
    module.train()
    with torch.no_grad():
        module(inputs)
    module.eval()
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum


def random_batch(n: int, size: int, seed: int = 0) -> np.ndarray:
    """A prepared uint8 batch ``(n, size, size, 3)`` of seeded noise."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)

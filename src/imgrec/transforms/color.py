"""Random colour changes for a batch: one 3x3 matrix and offset per image, then noise.

Hue rotation (in YIQ space), saturation, brightness and contrast are all linear in RGB, so
they fold into ``y = M x + b`` per image, applied in one pass (OpenCV ``transform``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from imgrec.transforms.augment import AugmentConfig

_LUMA = np.array([0.299, 0.587, 0.114])
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def has_color(cfg: AugmentConfig) -> bool:
    """True when ``cfg`` changes colours at all."""
    return cfg.color_p > 0 and any((cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue))


def random_color(cfg: AugmentConfig, batch: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-image ``(n, 3, 3)`` matrices and ``(n, 3)`` offsets drawn from ``cfg``."""
    n = len(batch)
    on = rng.random(n) < cfg.color_p
    hue = np.where(on, rng.uniform(-cfg.hue, cfg.hue, n), 0.0) * 2 * np.pi
    sat = np.where(on, rng.uniform(1 - cfg.saturation, 1 + cfg.saturation, n), 1.0)
    bright = np.where(on, rng.uniform(1 - cfg.brightness, 1 + cfg.brightness, n), 1.0)
    contrast = np.where(on, rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, n), 1.0)
    m = _hue_matrices(hue)
    gray = np.outer(np.ones(3), _LUMA)
    m = (sat[:, None, None] * np.eye(3) + (1 - sat)[:, None, None] * gray) @ m
    m = m * bright[:, None, None]
    mean_rgb = _means(batch)
    mean_luma = np.einsum("c,ncd,nd->n", _LUMA, m, mean_rgb)
    offset = ((1 - contrast) * mean_luma)[:, None] * np.ones(3)
    return m * contrast[:, None, None], offset


def _means(batch: np.ndarray) -> np.ndarray:
    """``(n, 3)`` channel means (OpenCV: much faster than numpy reductions here)."""
    import cv2

    return np.array([cv2.mean(img)[:3] for img in batch], dtype=np.float64)


def _hue_matrices(angle: np.ndarray) -> np.ndarray:
    rot = np.broadcast_to(np.eye(3), (len(angle), 3, 3)).copy()
    c, s = np.cos(angle), np.sin(angle)
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    return _YIQ_TO_RGB @ rot @ _RGB_TO_YIQ


def apply_color(
    batch: np.ndarray,
    matrices: np.ndarray | None,
    offsets: np.ndarray | None,
    sigma: np.ndarray | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """``M x + b`` per image (OpenCV ``transform``, saturating), then ``sigma * N(0, 1)`` noise."""
    import cv2

    out = batch.copy()
    if matrices is not None and offsets is not None:
        affine = np.concatenate([matrices, offsets[:, :, None]], axis=2).astype(np.float32)
        for i in range(len(batch)):
            out[i] = cv2.transform(batch[i], affine[i])
    if sigma is not None and np.any(sigma > 0):
        noisy = np.flatnonzero(sigma > 0)
        noise = rng.standard_normal((len(noisy), *batch.shape[1:]), dtype=np.float32)
        noise *= sigma[noisy, None, None, None].astype(np.float32)
        shifted = out[noisy].astype(np.int16) + np.rint(noise).astype(np.int16)
        out[noisy] = np.clip(shifted, 0, 255).astype(np.uint8)
    return out

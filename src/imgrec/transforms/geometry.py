"""Random geometric transforms for a batch, as one 3x3 matrix per image, and the warps.

Every geometric step (random crop, flip, rotation, scale, translation, perspective) is a
matrix; they are multiplied together so each image is resampled once, with OpenCV's
``warpAffine`` (or ``warpPerspective`` when a perspective distortion is drawn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from imgrec.transforms.augment import AugmentConfig


def random_matrices(cfg: AugmentConfig, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3, 3)`` forward matrices (source pixel -> output pixel) drawn from ``cfg``."""
    m = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    if cfg.crop == "resized":
        m = _resized_crop(cfg, n, h, w, rng) @ m
    elif cfg.crop == "pad" and cfg.crop_pad > 0:
        m = _pad_crop(cfg.crop_pad, n, h, w, rng) @ m
    if cfg.flip > 0 or cfg.rotate > 0 or cfg.scale != (1.0, 1.0) or cfg.translate > 0:
        m = _affine(cfg, n, h, w, rng) @ m
    if cfg.distort > 0 and cfg.distort_p > 0:
        m = _perspective(cfg.distort, cfg.distort_p, n, h, w, rng) @ m
    return m


def _translate(tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    m = np.broadcast_to(np.eye(3), (len(tx), 3, 3)).copy()
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _scale(sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    m = np.broadcast_to(np.eye(3), (len(sx), 3, 3)).copy()
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate(theta: np.ndarray) -> np.ndarray:
    m = np.broadcast_to(np.eye(3), (len(theta), 3, 3)).copy()
    c, s = np.cos(theta), np.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _resized_crop(cfg: AugmentConfig, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Random-resized crop: a random box (area fraction and aspect ratio) stretched to h x w."""
    area = rng.uniform(*cfg.crop_scale, n) * h * w
    log_ratio = rng.uniform(np.log(cfg.crop_ratio[0]), np.log(cfg.crop_ratio[1]), n)
    ratio = np.exp(log_ratio)
    cw = np.clip(np.sqrt(area * ratio), 1, w)
    ch = np.clip(np.sqrt(area / ratio), 1, h)
    x0 = rng.uniform(0, 1, n) * (w - cw)
    y0 = rng.uniform(0, 1, n) * (h - ch)
    return _scale(w / cw, h / ch) @ _translate(-x0, -y0)


def _pad_crop(pad: float, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Pad-and-crop: a whole-pixel shift of up to ``pad`` x side in each direction."""
    px, py = round(pad * w), round(pad * h)
    dx = rng.integers(-px, px + 1, n).astype(np.float64)
    dy = rng.integers(-py, py + 1, n).astype(np.float64)
    return _translate(dx, dy)


def _affine(cfg: AugmentConfig, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Flip, rotation, scale and translation about the image centre."""
    cx, cy = (w - 1) / 2, (h - 1) / 2
    flip = np.where(rng.random(n) < cfg.flip, -1.0, 1.0)
    theta = np.deg2rad(rng.uniform(-cfg.rotate, cfg.rotate, n))
    s = np.exp(rng.uniform(np.log(cfg.scale[0]), np.log(cfg.scale[1]), n))
    tx = rng.uniform(-cfg.translate, cfg.translate, n) * w
    ty = rng.uniform(-cfg.translate, cfg.translate, n) * h
    centre = _translate(np.full(n, -cx), np.full(n, -cy))
    back = _translate(cx + tx, cy + ty)
    return back @ _rotate(theta) @ _scale(s * flip, s) @ centre


def _perspective(strength: float, p: float, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Homographies moving each corner inwards/outwards by up to ``strength`` x side."""
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    jitter = rng.uniform(-strength, strength, (n, 4, 2)) * np.array([w, h])
    jitter *= (rng.random(n) < p)[:, None, None]
    return homographies(np.broadcast_to(src, (n, 4, 2)), src + jitter)


def homographies(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``(n, 3, 3)`` homographies mapping 4 points ``src[i]`` onto ``dst[i]`` (batched solve)."""
    n = len(src)
    a = np.zeros((n, 8, 8))
    b = dst.reshape(n, 8)
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    a[:, 0::2, 0], a[:, 0::2, 1], a[:, 0::2, 2] = x, y, 1
    a[:, 0::2, 6], a[:, 0::2, 7] = -x * u, -y * u
    a[:, 1::2, 3], a[:, 1::2, 4], a[:, 1::2, 5] = x, y, 1
    a[:, 1::2, 6], a[:, 1::2, 7] = -x * v, -y * v
    sol = np.linalg.solve(a, b[..., None])[..., 0]
    return np.concatenate([sol, np.ones((n, 1))], axis=1).reshape(n, 3, 3)


def warp_batch(batch: np.ndarray, matrices: np.ndarray, fill: str) -> np.ndarray:
    """Resample each image with its forward matrix (bilinear); identity matrices are skipped."""
    import cv2

    border = {"reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT, "edge": cv2.BORDER_REPLICATE}[fill]
    h, w = batch.shape[1:3]
    out = batch.copy()
    identity = np.all(np.abs(matrices - np.eye(3)) < 1e-9, axis=(1, 2))
    affine = np.all(np.abs(matrices[:, 2, :2]) < 1e-12, axis=1)
    for i in np.flatnonzero(~identity).tolist():
        warp = cv2.warpAffine if affine[i] else cv2.warpPerspective
        m = matrices[i, :2] if affine[i] else matrices[i]
        out[i] = warp(batch[i], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=border).reshape(out[i].shape)
    return out

"""Uniform local binary patterns with a spatial grid of histograms, vectorized over the batch."""

from __future__ import annotations

import numpy as np

from imgrec.features._batch import (
    BatchTransformer,
    check_number,
    chunks,
    gray_batch,
    grid_bounds,
    normalize_hist,
)


def sample_shifted(padded: np.ndarray, pad: int, dy: float, dx: float, h: int, w: int) -> np.ndarray:
    """Bilinear samples of ``padded`` at offset ``(dy, dx)`` from every original pixel."""
    y0, x0 = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = np.float32(dy - y0), np.float32(dx - x0)

    def at(oy: int, ox: int) -> np.ndarray:
        return padded[:, pad + oy : pad + oy + h, pad + ox : pad + ox + w]

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def _snap(v: float) -> float:
    """Round offsets that are integers up to float noise (so they sample exact pixels)."""
    return float(round(v)) if abs(v - round(v)) < 1e-6 else float(v)


def uniform_lbp(gray: np.ndarray, n_points: int, radius: float) -> np.ndarray:
    """Rotation-invariant uniform LBP codes ``0..n_points+1`` of a float batch ``(N, H, W)``.

    A pattern with at most two 0/1 transitions around the circle gets its number of ones;
    every other pattern gets ``n_points + 1`` (scikit-image's ``method="uniform"``).
    """
    _, h, w = gray.shape
    pad = int(np.ceil(radius)) + 1
    padded = np.pad(gray, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    angles = 2 * np.pi * np.arange(n_points) / n_points
    bits = []
    for a in angles:
        dy, dx = _snap(-radius * np.sin(a)), _snap(radius * np.cos(a))
        bits.append(sample_shifted(padded, pad, dy, dx, h, w) >= gray - 1e-4)
    stack = np.stack(bits).astype(np.int8)
    ones = stack.sum(axis=0, dtype=np.int16)
    transitions = np.abs(stack - np.roll(stack, 1, axis=0)).sum(axis=0, dtype=np.int16)
    return np.where(transitions <= 2, ones, n_points + 1).astype(np.int64)


def grid_histograms(codes: np.ndarray, n_codes: int, grid: int) -> np.ndarray:
    """Histogram of ``codes`` in each cell of a ``grid x grid`` split, ``(N, grid*grid, n_codes)``."""
    n, h, w = codes.shape
    gy, gx = grid_bounds(h, grid), grid_bounds(w, grid)
    region = gy[:, None] * grid + gx[None, :]
    index = (np.arange(n)[:, None, None] * grid * grid + region) * n_codes + codes
    counts = np.bincount(index.ravel(), minlength=n * grid * grid * n_codes)
    return counts.reshape(n, grid * grid, n_codes).astype(np.float32)


class LBPFeatures(BatchTransformer):
    """Uniform LBP texture histograms over a spatial grid (on luma).

    Args:
        n_points: neighbours sampled on the circle (2..24).
        radius: circle radius in pixels.
        grid: the image is split into ``grid x grid`` regions, one histogram each.
        power: each L1-normalized histogram is raised to this power (0.5 = Hellinger,
            which suits RBF and linear classifiers).

    Attributes:
        image_shape_: ``(H, W)`` of the fitted images.
        n_features_out_: ``grid * grid * (n_points + 2)``.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).integers(0, 255, (2, 28, 28, 3), dtype=np.uint8)
        >>> LBPFeatures(grid=2).fit_transform(X).shape
        (2, 40)
    """

    def __init__(self, n_points: int = 8, radius: float = 1.0, grid: int = 4, power: float = 0.5) -> None:
        self.n_points = n_points
        self.radius = radius
        self.grid = grid
        self.power = power

    def check_params(self) -> None:
        check_number("LBPFeatures", "n_points", self.n_points, 2, maximum=24)
        check_number("LBPFeatures", "radius", self.radius, 0.5, integer=False)
        check_number("LBPFeatures", "grid", self.grid, 1)
        check_number("LBPFeatures", "power", self.power, 0.0, integer=False)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        n_codes = self.n_points + 2
        grid = int(min(self.grid, *X.shape[1:3]))
        parts = []
        for part in chunks(len(X), X.shape[1] * X.shape[2] * self.n_points // 4):
            codes = uniform_lbp(gray_batch(X[part]), self.n_points, float(self.radius))
            hist = grid_histograms(codes, n_codes, grid)
            parts.append(normalize_hist(hist, self.power).reshape(len(hist), -1))
        return np.concatenate(parts)

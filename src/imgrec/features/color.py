"""Colour histograms (joint HSV or RGB) over a spatial grid, and raw-pixel features."""

from __future__ import annotations

import numpy as np

from imgrec.errors import ConfigError
from imgrec.features._batch import (
    BatchTransformer,
    check_choice,
    check_number,
    chunks,
    gray_batch,
    grid_bounds,
    normalize_hist,
)

SPACES = ("hsv", "rgb")


def rgb_to_hsv(X: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(..., 3)`` -> float32 HSV in ``[0, 1]`` (hue 0 for grays)."""
    rgb = X.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    c = v - rgb.min(axis=-1)
    s = np.where(v > 0, c / np.maximum(v, 1e-12), 0.0)
    safe = np.maximum(c, 1e-12)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(c > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], axis=-1).astype(np.float32)


def quantize(values: np.ndarray, bins: tuple[int, int, int]) -> np.ndarray:
    """Joint bin index of ``(..., 3)`` values in ``[0, 1]``, ``0 .. prod(bins)-1``."""
    edges = np.asarray(bins)
    idx = np.minimum((values * edges).astype(np.int64), edges - 1)
    return (idx[..., 0] * bins[1] + idx[..., 1]) * bins[2] + idx[..., 2]


class ColorHistogram(BatchTransformer):
    """Joint colour histogram per region of a ``grid x grid`` split.

    Args:
        bins: bins per channel, e.g. ``(8, 3, 3)`` for hue, saturation, value.
        space: ``"hsv"`` or ``"rgb"``.
        grid: regions per side (1 = whole image).
        power: each L1-normalized histogram is raised to this power (0.5 = Hellinger).

    Attributes:
        image_shape_: ``(H, W)`` of the fitted images.
        n_features_out_: ``grid * grid * prod(bins)``.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
        >>> ColorHistogram(bins=(4, 2, 2), grid=2).fit_transform(X).shape
        (2, 64)
    """

    def __init__(
        self,
        bins: tuple[int, int, int] = (8, 3, 3),
        space: str = "hsv",
        grid: int = 2,
        power: float = 0.5,
    ) -> None:
        self.bins = bins
        self.space = space
        self.grid = grid
        self.power = power

    def check_params(self) -> None:
        check_choice("ColorHistogram", "space", self.space, SPACES)
        if not isinstance(self.bins, (tuple, list)) or len(self.bins) != 3:
            raise ConfigError(
                f"ColorHistogram: bins must be three bin counts such as (8, 3, 3); received {self.bins!r}."
            )
        for b in self.bins:
            check_number("ColorHistogram", "bins", b, 1, maximum=64)
        check_number("ColorHistogram", "grid", self.grid, 1)
        check_number("ColorHistogram", "power", self.power, 0.0, integer=False)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        bins = tuple(int(b) for b in self.bins)
        n_bins = int(np.prod(bins))
        grid = int(min(self.grid, *X.shape[1:3]))
        gy, gx = grid_bounds(X.shape[1], grid), grid_bounds(X.shape[2], grid)
        region = gy[:, None] * grid + gx[None, :]
        parts = []
        for part in chunks(len(X), X.shape[1] * X.shape[2] * 4):
            batch = X[part]
            vals = rgb_to_hsv(batch) if self.space == "hsv" else batch.astype(np.float32) / 256.0
            offsets = np.arange(len(batch))[:, None, None] * grid * grid + region
            index = offsets * n_bins + quantize(vals, bins)  # type: ignore[arg-type]
            counts = np.bincount(index.ravel(), minlength=len(batch) * grid * grid * n_bins)
            hist = counts.reshape(len(batch), grid * grid, n_bins).astype(np.float32)
            parts.append(normalize_hist(hist, self.power).reshape(len(batch), -1))
        return np.concatenate(parts)


class PixelFeatures(BatchTransformer):
    """Raw pixels scaled to ``[0, 1]``, optionally average-pooled and/or in colour.

    Args:
        pool: average-pool factor (1 = every pixel; 2 halves each side).
        grayscale: use luma only (else the three RGB channels).

    Attributes:
        image_shape_: ``(H, W)`` of the fitted images.
        n_features_out_: ``(H // pool) * (W // pool) * (1 or 3)``.

    Example:
        >>> import numpy as np
        >>> PixelFeatures(pool=2).fit_transform(np.zeros((2, 28, 28, 3), np.uint8)).shape
        (2, 196)
    """

    def __init__(self, pool: int = 1, grayscale: bool = True) -> None:
        self.pool = pool
        self.grayscale = grayscale

    def check_params(self) -> None:
        check_number("PixelFeatures", "pool", self.pool, 1)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        p = int(min(self.pool, *X.shape[1:3]))
        n, h, w = X.shape[0], X.shape[1] // p * p, X.shape[2] // p * p
        img = gray_batch(X)[..., None] if self.grayscale else X.astype(np.float32)
        if p > 1:
            img = img[:, :h, :w].reshape(n, h // p, p, w // p, p, img.shape[-1]).mean(axis=(2, 4))
        return (img.reshape(n, -1) / np.float32(255.0)).astype(np.float32)

"""Histogram of oriented gradients, vectorized over the whole batch (no per-image loop)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from imgrec.features._batch import BatchTransformer, check_number, chunks, gray_batch


def auto_cell_size(side: int) -> int:
    """The cell side used when ``pixels_per_cell`` is None: about 8 cells across, at least 2 px.

    Example:
        >>> auto_cell_size(28), auto_cell_size(32), auto_cell_size(64)
        (3, 4, 8)
    """
    return max(2, side // 8)


def gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradients ``(gx, gy)`` of a float batch ``(N, H, W)``; 0 on the border.

    For colour batches ``(N, H, W, C)`` each pixel takes the channel with the strongest
    gradient (Dalal & Triggs).
    """
    gx = np.zeros_like(image)
    gy = np.zeros_like(image)
    gx[:, :, 1:-1] = image[:, :, 2:] - image[:, :, :-2]
    gy[:, 1:-1, :] = image[:, 2:, :] - image[:, :-2, :]
    if image.ndim == 4:
        pick = (gx * gx + gy * gy).argmax(axis=-1)[..., None]
        gx = np.take_along_axis(gx, pick, axis=-1)[..., 0]
        gy = np.take_along_axis(gy, pick, axis=-1)[..., 0]
    return gx, gy


def cell_histograms(image: np.ndarray, orientations: int, cell: int, signed: bool = False) -> np.ndarray:
    """Orientation histograms per cell, ``(N, rows, cols, orientations)``.

    Each pixel votes its gradient magnitude into the two nearest orientation bins (linear
    interpolation). The cell grid is centred; leftover border pixels are ignored.
    ``image`` is float ``(N, H, W)`` (gray) or ``(N, H, W, C)`` (see :func:`gradients`).
    """
    n, h, w = image.shape[:3]
    rows, cols = h // cell, w // cell
    gx, gy = gradients(image)
    top, left = (h - rows * cell) // 2, (w - cols * cell) // 2
    gx = gx[:, top : top + rows * cell, left : left + cols * cell]
    gy = gy[:, top : top + rows * cell, left : left + cols * cell]
    mag = np.sqrt(gx * gx + gy * gy)
    span = 2 * np.pi if signed else np.pi
    pos = (np.arctan2(gy, gx) % span) * np.float32(orientations / span) - np.float32(0.5)
    low = np.floor(pos)
    w_high = pos - low
    lo = low.astype(np.int64) % orientations
    hi = (lo + 1) % orientations
    cell_y = (np.arange(rows * cell) // cell)[:, None] * cols
    cell_x = (np.arange(cols * cell) // cell)[None, :]
    base = (np.arange(n)[:, None, None] * (rows * cols) + cell_y + cell_x) * orientations
    size = n * rows * cols * orientations
    m_high = mag * w_high
    hist = np.bincount((base + lo).ravel(), (mag - m_high).ravel(), size)
    hist += np.bincount((base + hi).ravel(), m_high.ravel(), size)
    return hist.astype(np.float32).reshape(n, rows, cols, orientations)


def block_normalize(hist: np.ndarray, block: int, eps: float = 1e-3) -> np.ndarray:
    """Overlapping ``block x block`` cell groups (stride one cell), L2-Hys normalized; ``(N, D)``."""
    n = hist.shape[0]
    win = sliding_window_view(hist, (block, block), axis=(1, 2))
    win = win.reshape(n, win.shape[1], win.shape[2], -1)
    win = win / np.sqrt((win * win).sum(-1, keepdims=True) + eps**2)
    win = np.minimum(win, 0.2)
    win = win / np.sqrt((win * win).sum(-1, keepdims=True) + eps**2)
    return win.reshape(n, -1).astype(np.float32)


class HOGFeatures(BatchTransformer):
    """HOG descriptors (Dalal & Triggs) of the luma channel, computed for a batch at once.

    Args:
        orientations: orientation bins per cell.
        pixels_per_cell: cell side in pixels; None picks ``max(2, side // 8)`` from the
            image size at fit time (3 px for 28 px images, 4 for 32, 8 for 64).
        cells_per_block: block side in cells (blocks overlap with a one-cell stride);
            clipped to the cell grid for tiny images.
        signed: use 0..360 degree orientations instead of 0..180.
        color: take gradients from the strongest RGB channel instead of luma (about 3x
            slower; helps on colour photos).

    Attributes:
        cell_size_: the cell side in use.
        image_shape_: ``(H, W)`` of the fitted images.
        n_features_out_: output width.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
        >>> HOGFeatures().fit_transform(X).shape
        (4, 1764)
    """

    def __init__(
        self,
        orientations: int = 9,
        pixels_per_cell: int | None = None,
        cells_per_block: int = 2,
        signed: bool = False,
        color: bool = False,
    ) -> None:
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.signed = signed
        self.color = color

    def check_params(self) -> None:
        check_number("HOGFeatures", "orientations", self.orientations, 2)
        if self.pixels_per_cell is not None:
            check_number("HOGFeatures", "pixels_per_cell", self.pixels_per_cell, 2)
        check_number("HOGFeatures", "cells_per_block", self.cells_per_block, 1)

    def _fit(self, X: np.ndarray) -> None:
        side = min(X.shape[1:3])
        cell = self.pixels_per_cell or auto_cell_size(side)
        self.cell_size_ = int(min(cell, side))

    def _transform(self, X: np.ndarray) -> np.ndarray:
        side = min(X.shape[1:3]) // self.cell_size_
        block = int(min(self.cells_per_block, side))
        parts = []
        for part in chunks(len(X), X.shape[1] * X.shape[2] * (3 if self.color else 1)):
            image = X[part].astype(np.float32) if self.color else gray_batch(X[part])
            hist = cell_histograms(image, self.orientations, self.cell_size_, self.signed)
            parts.append(block_normalize(hist, block))
        return np.concatenate(parts)

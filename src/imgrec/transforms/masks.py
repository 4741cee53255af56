"""Masks moved with the pixels: into the model input and back, and through augmentation.

Index masks are only ever resampled by nearest neighbour, so no new class value appears.
Every mapping goes through the preprocessing's :class:`~imgrec.transforms.frame.Geometry`
(``input = original * scale + offset`` on pixel edges), pixel centre to pixel centre, so a
mask lands on exactly the pixels its image lands on, whatever the resize mode and whatever
scale a JPEG was decoded at (the geometry refers to the full-resolution image, and so does
the mask). Input pixels that show no image (letterbox padding) get the ignore index.

Example:
    >>> from imgrec.transforms.frame import Geometry
    >>> g = Geometry(original=(4, 2), scale=(1.0, 1.0), offset=(0.0, 1.0), size=4)  # letterbox
    >>> m = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.uint8)
    >>> mask_to_input(m, g).tolist()
    [[255, 255, 255, 255], [1, 2, 3, 4], [5, 6, 7, 8], [255, 255, 255, 255]]
    >>> mask_to_original(mask_to_input(m, g), g).tolist()
    [[1, 2, 3, 4], [5, 6, 7, 8]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imgrec.transforms.frame import Geometry

IGNORE = 255


def mask_to_input(mask: np.ndarray, geometry: Geometry, fill: int = IGNORE) -> np.ndarray:
    """:meth:`Geometry.mask_to_input <imgrec.transforms.frame.Geometry.mask_to_input>`."""
    return geometry.mask_to_input(mask, fill)


def mask_to_original(mask: np.ndarray, geometry: Geometry, fill: int | None = None) -> np.ndarray:
    """:meth:`Geometry.mask_to_original <imgrec.transforms.frame.Geometry.mask_to_original>`."""
    return geometry.mask_to_original(mask, fill)


def warp_masks(masks: np.ndarray, matrices: np.ndarray, fill: str, ignore: int = IGNORE) -> np.ndarray:
    """Resample ``(N, H, W)`` index masks with the augmentation's forward matrices, nearest neighbour.

    Pixels from outside the mask are reflected / repeated like the image's (``fill``), and are
    the ignore index where the image is filled with a constant.
    """
    import cv2

    border = {"reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT, "edge": cv2.BORDER_REPLICATE}[fill]
    h, w = masks.shape[1:3]
    out = masks.copy()
    identity = np.all(np.abs(matrices - np.eye(3)) < 1e-9, axis=(1, 2))
    affine = np.all(np.abs(matrices[:, 2, :2]) < 1e-12, axis=1)
    for i in np.flatnonzero(~identity).tolist():
        warp = cv2.warpAffine if affine[i] else cv2.warpPerspective
        m = matrices[i, :2] if affine[i] else matrices[i]
        out[i] = warp(masks[i], m, (w, h), flags=cv2.INTER_NEAREST, borderMode=border, borderValue=int(ignore))
    return out


def flip_masks(masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Horizontal flips of index masks (what a flip does to its image)."""
    return [np.ascontiguousarray(m[:, ::-1]) for m in masks]

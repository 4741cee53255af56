"""Seeded batch augmentation with named presets: ``none``, ``light``, ``standard``, ``strong``.

An :class:`Augmenter` maps a uint8 batch ``(N, H, W, 3)`` and a ``numpy`` Generator to a
new batch of the same shape. Geometry (random crop, flip, rotation, scale, translation,
perspective) is one matrix per image and one OpenCV warp; colour (brightness, contrast,
saturation, hue) is one 3x3 matrix per image; then Gaussian noise. Same generator state,
same output.

Example:
    >>> import numpy as np
    >>> aug = create_augmenter("standard")
    >>> batch = np.zeros((2, 32, 32, 3), np.uint8)
    >>> aug(batch, np.random.default_rng(0)).shape
    (2, 32, 32, 3)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from imgrec.errors import ConfigError, UsageError, did_you_mean
from imgrec.registry import Registry
from imgrec.transforms.boxes import MIN_VISIBLE, outline, scale_boxes, transform_boxes
from imgrec.transforms.color import apply_color, has_color, random_color
from imgrec.transforms.geometry import random_matrices, warp_batch
from imgrec.transforms.masks import warp_masks


@dataclass(frozen=True)
class AugmentConfig:
    """What an augmenter draws from; every field off by default.

    Attributes:
        flip: probability of a horizontal flip (0 for digits and text).
        rotate: largest rotation in degrees, either way.
        scale: range of the zoom factor (drawn log-uniformly).
        translate: largest shift as a fraction of the side, each axis.
        crop: ``"pad"`` (pad-and-crop: a whole-pixel shift of up to ``crop_pad``),
            ``"resized"`` (random-resized crop back to size), or ``"none"``.
        crop_pad: pad-and-crop margin as a fraction of the side.
        crop_scale: random-resized crop: range of the kept area fraction.
        crop_ratio: random-resized crop: range of the box aspect ratio.
        distort: perspective distortion: largest corner shift as a fraction of the side.
        distort_p: probability of a perspective distortion.
        brightness: largest relative brightness change.
        contrast: largest relative contrast change.
        saturation: largest relative saturation change.
        hue: largest hue rotation as a fraction of the colour circle.
        color_p: probability of a colour change.
        noise: largest standard deviation of Gaussian noise, in gray levels.
        noise_p: probability of noise.
        fill: how pixels from outside the image are filled: ``"reflect"``, ``"edge"``,
            ``"constant"`` (black).
    """

    flip: float = 0.0
    rotate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    translate: float = 0.0
    crop: Literal["none", "pad", "resized"] = "none"
    crop_pad: float = 0.125
    crop_scale: tuple[float, float] = (0.35, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    distort: float = 0.0
    distort_p: float = 0.5
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    color_p: float = 0.8
    noise: float = 0.0
    noise_p: float = 0.5
    fill: Literal["reflect", "edge", "constant"] = "reflect"

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def is_identity(self) -> bool:
        """True when nothing is ever changed."""
        geometry = (
            self.flip,
            self.rotate,
            self.translate,
            self.scale != (1.0, 1.0),
            self.crop == "resized",
            self.crop == "pad" and self.crop_pad > 0,
            self.distort * self.distort_p,
        )
        colour = (self.brightness, self.contrast, self.saturation, self.hue)
        return not any(geometry) and not (self.color_p and any(colour)) and not self.noise * self.noise_p


def _validate(c: AugmentConfig) -> None:
    probs = {"flip": c.flip, "distort_p": c.distort_p, "color_p": c.color_p, "noise_p": c.noise_p}
    fractions = {
        "translate": c.translate,
        "crop_pad": c.crop_pad,
        "distort": c.distort,
        "brightness": c.brightness,
        "contrast": c.contrast,
        "saturation": c.saturation,
        "hue": c.hue,
    }
    for name, value in {**probs, **fractions}.items():
        if not 0 <= value <= 1:
            raise ConfigError(f"augment {name} must be in [0, 1]; received {value!r}.")
    for name, (lo, hi) in {"scale": c.scale, "crop_scale": c.crop_scale, "crop_ratio": c.crop_ratio}.items():
        if not 0 < lo <= hi:
            raise ConfigError(
                f"augment {name} must be a range (low, high) with 0 < low <= high; received {(lo, hi)!r}."
            )
    if c.crop not in ("none", "pad", "resized") or c.fill not in ("reflect", "edge", "constant"):
        raise ConfigError(
            f"augment crop must be none/pad/resized and fill reflect/edge/constant; "
            f"received crop={c.crop!r}, fill={c.fill!r}."
        )
    if not (0 <= c.rotate <= 180 and 0 <= c.noise <= 255 and c.crop_scale[1] <= 1):
        raise ConfigError(
            "augment rotate must be in [0, 180] degrees, noise in [0, 255] and "
            f"crop_scale at most 1; received {c.rotate}, {c.noise}, {c.crop_scale}."
        )


AUGMENT_PRESETS: Registry[AugmentConfig] = Registry("augmentation preset")
AUGMENT_PRESETS.add("none", AugmentConfig())
# no flip, no hue: safe for digits and text; small shifts, turns and lighting changes
AUGMENT_PRESETS.add(
    "light",
    AugmentConfig(
        rotate=8,
        scale=(0.92, 1.08),
        crop="pad",
        crop_pad=0.08,
        brightness=0.15,
        contrast=0.15,
    ),
)
# flips only: small centred images (Fashion-MNIST, CIFAR) where crops and colour shifts cost accuracy
AUGMENT_PRESETS.add("flip", AugmentConfig(flip=0.5))
# flips and shifts of up to 12.5% of the side (4 px at 32 px): the classic CIFAR recipe
AUGMENT_PRESETS.add("flip-shift", AugmentConfig(flip=0.5, crop="pad", crop_pad=0.125))
# the usual recipe for photos: random-resized crop, flip, colour jitter
AUGMENT_PRESETS.add(
    "standard",
    AugmentConfig(
        flip=0.5,
        rotate=10,
        crop="resized",
        crop_scale=(0.5, 1.0),
        brightness=0.3,
        contrast=0.3,
        saturation=0.3,
        hue=0.03,
    ),
)
# everything, harder: for small data sets or long schedules
AUGMENT_PRESETS.add(
    "strong",
    AugmentConfig(
        flip=0.5,
        rotate=25,
        scale=(0.8, 1.2),
        translate=0.1,
        crop="resized",
        crop_scale=(0.3, 1.0),
        distort=0.12,
        distort_p=0.5,
        brightness=0.4,
        contrast=0.4,
        saturation=0.5,
        hue=0.08,
        noise=10.0,
        noise_p=0.5,
    ),
)


class Augmenter:
    """Applies random augmentations drawn from a config to uint8 batches.

    Args:
        config: what to draw.
        name: the preset name, for reports.
    """

    def __init__(self, config: AugmentConfig, name: str = "custom") -> None:
        self.config = config
        self.name = name

    def __repr__(self) -> str:
        return f"Augmenter({self.name!r}, {self.config})"

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment a uint8 ``(N, H, W, 3)`` batch; returns a new array of the same shape.

        The ``none`` preset returns ``batch`` itself.
        """
        return self.augment(batch, rng)[0]

    def augment(self, batch: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Like calling it, and also return the ``(N, 3, 3)`` geometry matrices it drew
        (identity for the ``none`` preset), so targets can move with the pixels."""
        _check_batch(batch)
        cfg = self.config
        n, h, w = batch.shape[:3]
        if cfg.is_identity or not len(batch):
            return batch, np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
        matrices = random_matrices(cfg, n, h, w, rng)
        out = warp_batch(batch, matrices, cfg.fill)
        colour = random_color(cfg, out, rng) if has_color(cfg) else (None, None)
        sigma = None
        if cfg.noise > 0 and cfg.noise_p > 0:
            sigma = np.where(rng.random(n) < cfg.noise_p, rng.uniform(0, cfg.noise, n), 0.0)
        if colour[0] is None and sigma is None:
            return out, matrices
        return apply_color(out, colour[0], colour[1], sigma, rng), matrices

    def with_boxes(
        self,
        batch: np.ndarray,
        boxes: Sequence[np.ndarray],
        rng: np.random.Generator,
        *,
        min_visible: float = MIN_VISIBLE,
    ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Augment a batch and move each image's ``(K, 4)`` xyxy pixel boxes with it.

        Returns:
            The images, the kept boxes per image, and per image the bool mask of kept boxes
            (to select their labels); boxes mostly pushed out of the image are dropped.
        """
        images, matrices = self.augment(batch, rng)
        h, w = batch.shape[1:3]
        moved = [transform_boxes(b, matrices[i], (w, h), min_visible=min_visible) for i, b in enumerate(boxes)]
        return images, [b for b, _ in moved], [k for _, k in moved]


    def with_masks(
        self, batch: np.ndarray, masks: np.ndarray, rng: np.random.Generator, *, ignore_index: int = 255
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augment a batch and move its ``(N, H, W)`` index masks with the pixels.

        The masks get the same geometry (nearest neighbour: no new class values), no colour
        change or noise; pixels brought in from outside are reflected/repeated like the
        image's, or ``ignore_index`` where the image is filled with a constant.

        Example:
            >>> aug = Augmenter(AugmentConfig(flip=1.0))
            >>> img, m = np.zeros((1, 2, 3, 3), np.uint8), np.array([[[0, 1, 2], [3, 4, 5]]], np.uint8)
            >>> aug.with_masks(img, m, np.random.default_rng(0))[1].tolist()
            [[[2, 1, 0], [5, 4, 3]]]
        """
        masks = np.asarray(masks)
        if masks.shape[:3] != batch.shape[:3]:
            raise UsageError(f"Masks {masks.shape} do not match the batch {batch.shape[:3]}; expected (N, H, W).")
        images, matrices = self.augment(batch, rng)
        return images, warp_masks(masks, matrices, self.config.fill, ignore_index)


def _check_batch(batch: Any) -> None:
    if not isinstance(batch, np.ndarray) or batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[3] != 3:
        got = f"{batch.dtype} {batch.shape}" if isinstance(batch, np.ndarray) else type(batch).__name__
        raise UsageError(f"Augmenter expects a uint8 batch shaped (N, H, W, 3); received {got}.")


def create_augmenter(preset: str = "standard", **overrides: Any) -> Augmenter:
    """The augmenter of a named preset, optionally with some fields changed.

    Args:
        preset: ``none``, ``light`` (no flip: safe for digits and text), ``standard``, ``strong``.
        overrides: :class:`AugmentConfig` fields to change, e.g. ``flip=0``.

    Raises:
        UnknownNameError: the preset does not exist (with close matches).
        ConfigError: an override is not a field or out of range.

    Example:
        >>> create_augmenter("light", rotate=5).config.rotate
        5
    """
    base = AUGMENT_PRESETS.get(preset)
    fields = {f.name for f in dataclasses.fields(AugmentConfig)}
    for key in overrides:
        if key not in fields:
            raise ConfigError(
                f"Unknown augmentation setting {key!r}.{did_you_mean(key, fields)} Valid: {', '.join(sorted(fields))}."
            )
    return Augmenter(dataclasses.replace(base, **overrides), name=preset)


def list_augment_presets() -> list[str]:
    """Names of the augmentation presets."""
    return AUGMENT_PRESETS.names()


def preview_grid(
    images: Sequence[np.ndarray],
    preset: str,
    *,
    seed: int = 0,
    variants: int = 4,
    cell: int = 96,
    boxes: Sequence[np.ndarray] | None = None,
    masks: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """One row per image: the original, then ``variants`` augmented copies, as one RGB grid.

    With ``boxes`` (``(K, 4)`` xyxy pixels per image) each tile shows its boxes, moved by
    the augmentation; with ``masks`` (``(H, W)`` index masks) each tile shows its mask as a
    tint, moved with the pixels.

    Example:
        >>> import numpy as np
        >>> preview_grid([np.zeros((40, 50, 3), np.uint8)], "light", variants=2, cell=16).shape
        (30, 48, 3)
    """
    from imgrec.imaging.draw import make_grid
    from imgrec.imaging.ops import resize_shorter

    aug = create_augmenter(preset)
    rng = np.random.default_rng(seed)
    tiles, captions = [], []
    for k, img in enumerate(images):
        small = resize_shorter(img, 2 * cell) if min(img.shape[:2]) > 2 * cell else img
        batch = np.repeat(np.ascontiguousarray(small)[None], variants, axis=0)
        if masks is not None:
            tiles += _mask_tiles(aug, img, small, masks[k], batch, rng)
        elif boxes is None:
            tiles += [small, *aug(batch, rng)]
        else:
            own = scale_boxes(boxes[k], small.shape[1] / img.shape[1], small.shape[0] / img.shape[0])
            copies, moved, _ = aug.with_boxes(batch, [own] * variants, rng)
            tiles += [outline(small, own), *(outline(c, b) for c, b in zip(copies, moved, strict=True))]
        captions += ["original", *[f"{preset} {k + 1}" for k in range(variants)]]
    return make_grid(tiles, captions, cell=cell, cols=variants + 1)


def _mask_tiles(
    aug: Augmenter, img: np.ndarray, small: np.ndarray, mask: np.ndarray, batch: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """The original and the augmented copies of one image, each with its mask as a tint."""
    from imgrec.imaging.draw import overlay_mask
    from imgrec.transforms.frame import Geometry

    h, w = small.shape[:2]
    g = Geometry(original=(img.shape[1], img.shape[0]), scale=(w / img.shape[1], h / img.shape[0]),
                 offset=(0.0, 0.0), size=max(h, w))  # fmt: skip
    own = g.mask_to_input(mask)[:h, :w]
    copies, moved = aug.with_masks(batch, np.repeat(own[None], len(batch), axis=0), rng)
    return [overlay_mask(small, own), *(overlay_mask(c, m) for c, m in zip(copies, moved, strict=True))]

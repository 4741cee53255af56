"""Preprocessing that travels with a model: resize, crop, colour, normalization constants."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ModelFileError
from imgrec.imaging.decode import DEFAULT_LIMITS, DecodeLimits, decode, read_bytes
from imgrec.imaging.ops import INTERPOLATIONS, center_crop, resize, resize_shorter, to_gray

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How a decoded RGB image becomes a model input; recorded in every artifact.

    ``prepare`` does the geometric part and returns uint8 ``(size, size, 3)``; models take
    batches of those and apply ``mean``/``std`` (on 0..1 values) themselves, so every
    backend receives the same array.

    Attributes:
        size: model input side in pixels (square).
        crop_pct: resize the shorter side to ``size / crop_pct`` then centre-crop ``size``
            (timm's convention; 1.0 = no margin). ``0`` squashes to size x size instead.
        interpolation: resize filter name.
        mean: per-channel mean of 0..1 inputs.
        std: per-channel standard deviation of 0..1 inputs.
        grayscale: the model sees luma only (replicated on 3 channels by ``prepare``).

    Example:
        >>> import numpy as np
        >>> p = Preprocessing(size=32)
        >>> p.prepare(np.zeros((60, 80, 3), np.uint8)).shape
        (32, 32, 3)
    """

    size: int = 224
    crop_pct: float = 1.0
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    grayscale: bool = False

    @property
    def min_side(self) -> int:
        """The smallest decoded side that still fills the input (for reduced-size JPEG decoding)."""
        return math.ceil(self.size / self.crop_pct) if self.crop_pct > 0 else self.size

    def prepare(self, img: np.ndarray) -> np.ndarray:
        """Resize/crop one RGB uint8 image to the model's input size."""
        s = self.size
        if self.crop_pct <= 0:
            out = resize(img, (s, s), self.interpolation)
        else:
            out = resize_shorter(img, max(s, round(s / self.crop_pct)), self.interpolation)
            out = center_crop(out, (s, s))
        if self.grayscale:
            g = to_gray(out)
            out = np.repeat(g[..., None], 3, axis=2)
        return np.ascontiguousarray(out)

    def decode(self, data: bytes, *, limits: DecodeLimits = DEFAULT_LIMITS, name: str = "image") -> np.ndarray:
        """Encoded bytes to a prepared input: the one path from a file to a model input.

        Train, evaluate, predict, benchmark, export checks and serve all come through here
        (datasets through :meth:`decode_rgb` and :meth:`prepare`), so a JPEG is decoded at the
        same reduced scale everywhere and every command sees the same array.
        """
        return self.prepare(self.decode_rgb(data, limits=limits, name=name))

    def decode_rgb(self, data: bytes, *, limits: DecodeLimits = DEFAULT_LIMITS, name: str = "image") -> np.ndarray:
        """Encoded bytes to the RGB image :meth:`prepare` expects (large JPEGs at reduced scale)."""
        return decode(data, limits=limits, min_side=self.min_side, name=name)

    def load(self, path: str | Path, *, limits: DecodeLimits = DEFAULT_LIMITS) -> np.ndarray:
        """A prepared input from an image file (see :meth:`decode`)."""
        return self.decode(read_bytes(path, limits), limits=limits, name=str(path))

    def prepare_batch(self, images: list[np.ndarray]) -> np.ndarray:
        """Prepare several images into one ``(N, size, size, 3)`` uint8 array."""
        if not images:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        return np.stack([self.prepare(i) for i in images])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        """Rebuild from ``model.json``; unknown or invalid entries raise ModelFileError."""
        try:
            p = cls(
                size=int(data["size"]),
                crop_pct=float(data.get("crop_pct", 1.0)),
                interpolation=str(data.get("interpolation", "bilinear")),
                mean=tuple(float(v) for v in data.get("mean", IMAGENET_MEAN)),  # type: ignore[arg-type]
                std=tuple(float(v) for v in data.get("std", IMAGENET_STD)),  # type: ignore[arg-type]
                grayscale=bool(data.get("grayscale", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"Invalid preprocessing record {dict(data)!r}: {exc}") from None
        if p.interpolation not in INTERPOLATIONS or len(p.mean) != 3 or len(p.std) != 3 or p.size < 1:
            raise ModelFileError(f"Invalid preprocessing record {dict(data)!r}.")
        return p

    def normalize(self, batch: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` -> float32 ``(N, 3, H, W)`` normalized with mean/std."""
        scale = np.float32(1.0 / 255.0)
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        x: np.ndarray = (batch.astype(np.float32) * scale - mean) / std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

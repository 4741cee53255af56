"""Preprocessing that travels with a model: resize, crop, colour, normalization constants."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ModelFileError
from imgrec.imaging.decode import DEFAULT_LIMITS, DecodeLimits, decode_sized, read_bytes
from imgrec.imaging.ops import INTERPOLATIONS, to_gray
from imgrec.transforms.frame import PAD_ANCHORS, RESIZE_MODES, Geometry, compose, input_shape, place

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How a decoded RGB image becomes a model input; recorded in every artifact.

    ``prepare`` does the geometric part and returns uint8 ``(size, size, 3)`` (the file's own
    :attr:`input_hw` when ``aspect`` is not 1); models take batches of those and apply
    ``mean``/``std`` (on 0..1 values) themselves, so every backend receives the same array.

    Attributes:
        size: model input side in pixels (square).
        crop_pct: with ``resize_mode="crop"``: resize the shorter side to ``size / crop_pct``
            then centre-crop ``size`` (timm's convention; 1.0 = no margin). ``0`` squashes to
            size x size instead (the same as ``resize_mode="stretch"``).
        interpolation: resize filter name.
        mean: per-channel mean of 0..1 inputs.
        std: per-channel standard deviation of 0..1 inputs.
        grayscale: the model sees luma only (replicated on 3 channels by ``prepare``).
        resize_mode: "crop" (classifiers), "letterbox" (keep the aspect ratio, pad; detectors)
            or "stretch" (squash to the square).
        pad_value: letterbox padding gray level.
        pad_anchor: letterbox placement: "center", or "topleft" (YOLOX's convention).
        aspect: width / height of the model's own input when the file takes a fixed non-square
            input (MediaPipe's landscape segmenter: 256 / 144): the image is prepared straight at
            that shape (:attr:`input_hw`, one resize), its geometry still given in the
            ``size x size`` square (1.0: a square input; recorded only when it is not 1).

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
    resize_mode: str = "crop"
    pad_value: int = 114
    pad_anchor: str = "center"
    aspect: float = 1.0

    @property
    def mode(self) -> str:
        """The resize mode in effect (``crop_pct <= 0`` with "crop" means "stretch")."""
        return "stretch" if self.resize_mode == "crop" and self.crop_pct <= 0 else self.resize_mode

    @property
    def input_hw(self) -> tuple[int, int]:
        """``(height, width)`` of a prepared image: ``(size, size)``, or the non-square shape ``aspect`` gives."""
        return input_shape(self.size, self.aspect)

    @property
    def min_side(self) -> int:
        """The smallest decoded side that still fills the input (for reduced-size JPEG decoding)."""
        return math.ceil(self.size / self.crop_pct) if self.mode == "crop" else self.size

    def prepare(self, img: np.ndarray) -> np.ndarray:
        """Resize/crop one RGB uint8 image to the model's input size."""
        return self.prepare_framed(img)[0]

    def prepare_framed(self, img: np.ndarray, original: tuple[int, int] | None = None) -> tuple[np.ndarray, Geometry]:
        """:meth:`prepare`, plus where the image landed in the input (:class:`Geometry`).

        Args:
            img: the decoded RGB image.
            original: ``(width, height)`` of the full-resolution image when ``img`` was decoded
                at reduced scale (default: ``img``'s own size).
        """
        out, scale, offset = place(img, self.size, self.mode, crop_pct=self.crop_pct or 1.0,
                                   interpolation=self.interpolation, pad_value=self.pad_value,
                                   anchor=self.pad_anchor, aspect=self.aspect)  # fmt: skip
        if self.grayscale:
            out = np.repeat(to_gray(out)[..., None], 3, axis=2)
        decoded = (img.shape[1], img.shape[0])
        return np.ascontiguousarray(out), compose(decoded, original or decoded, scale, offset, self.size)

    def decode(self, data: bytes, *, limits: DecodeLimits = DEFAULT_LIMITS, name: str = "image") -> np.ndarray:
        """Encoded bytes to a prepared input: the one path from a file to a model input.

        Train, evaluate, predict, benchmark, export checks and serve all come through here
        (datasets through ``ImageDataset.load_prepared``), so a JPEG is decoded at the same
        reduced scale everywhere and every command sees the same array.
        """
        return self.decode_framed(data, limits=limits, name=name)[0]

    def decode_framed(
        self, data: bytes, *, limits: DecodeLimits = DEFAULT_LIMITS, name: str = "image"
    ) -> tuple[np.ndarray, Geometry]:
        """:meth:`decode`, plus the geometry relative to the full-resolution image."""
        img, original = decode_sized(data, limits=limits, min_side=self.min_side, name=name)
        return self.prepare_framed(img, original)

    def load(self, path: str | Path, *, limits: DecodeLimits = DEFAULT_LIMITS) -> np.ndarray:
        """A prepared input from an image file (see :meth:`decode`)."""
        return self.load_framed(path, limits=limits)[0]

    def load_framed(self, path: str | Path, *, limits: DecodeLimits = DEFAULT_LIMITS) -> tuple[np.ndarray, Geometry]:
        """:meth:`load`, plus the geometry relative to the full-resolution image."""
        return self.decode_framed(read_bytes(path, limits), limits=limits, name=str(path))

    def prepare_batch(self, images: list[np.ndarray]) -> np.ndarray:
        """Prepare several images into one ``(N, size, size, 3)`` uint8 array (``(N, *input_hw, 3)``)."""
        if not images:
            return np.zeros((0, *self.input_hw, 3), np.uint8)
        return np.stack([self.prepare(i) for i in images])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        if self.aspect == 1.0:
            del d["aspect"]
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
                resize_mode=str(data.get("resize_mode", "crop")),
                pad_value=int(data.get("pad_value", 114)),
                pad_anchor=str(data.get("pad_anchor", "center")),
                aspect=float(data.get("aspect", 1.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"Invalid preprocessing record {dict(data)!r}: {exc}") from None
        shape_ok = p.interpolation in INTERPOLATIONS and len(p.mean) == 3 and len(p.std) == 3 and p.size >= 1
        mode_ok = p.resize_mode in RESIZE_MODES and p.pad_anchor in PAD_ANCHORS and 0 <= p.pad_value <= 255
        mode_ok = mode_ok and 0.01 <= p.aspect <= 100
        if not (shape_ok and mode_ok):
            raise ModelFileError(f"Invalid preprocessing record {dict(data)!r}.")
        return p

    def normalize(self, batch: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` -> float32 ``(N, 3, H, W)`` normalized with mean/std."""
        scale = np.float32(1.0 / 255.0)
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        x: np.ndarray = (batch.astype(np.float32) * scale - mean) / std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

"""The one safe image path: decode with limits, normalize to RGB uint8, resize, draw."""

from imgrec.imaging.decode import (
    ALLOWED_FORMATS,
    DEFAULT_LIMITS,
    IMAGE_SUFFIXES,
    DecodeLimits,
    decode,
    decode_sized,
    image_size,
    load_image,
    sniff_format,
)
from imgrec.imaging.ops import center_crop, pad_to, resize, resize_shorter, to_gray

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_LIMITS",
    "IMAGE_SUFFIXES",
    "DecodeLimits",
    "center_crop",
    "decode",
    "decode_sized",
    "image_size",
    "load_image",
    "pad_to",
    "resize",
    "resize_shorter",
    "sniff_format",
    "to_gray",
]

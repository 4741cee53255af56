"""Small real classifiers and image bytes for the HTTP service tests."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from tests.conftest import BrightnessClassifier

from imgrec.inference import Predictor
from imgrec.transforms.preprocess import Preprocessing


class RecordingClassifier(BrightnessClassifier):
    """Records each batch size; with ``gated=True`` every call waits until ``release`` is set."""

    def __init__(self, *args, gated: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not gated:
            self.release.set()

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        self.entered.set()
        if not self.release.wait(timeout=20):
            raise RuntimeError("test gate never released")
        return super().predict_proba(batch)


class FailingClassifier(BrightnessClassifier):
    """A model with a bug whose message holds a file path (which must never reach a client)."""

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        raise RuntimeError(f"weights missing at {Path(__file__).resolve()}")


def make_predictor(cls: type[BrightnessClassifier] = BrightnessClassifier, **kwargs) -> Predictor:
    model = cls("brightness", ["dark", "light"], Preprocessing(size=16), **kwargs)
    meta = {"model": "brightness", "family": "classical", "metrics": {"test": {"accuracy": 0.9, "macro_f1": 0.8}}}
    return Predictor(model, meta)


def png_bytes(value: int = 200, size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (value,) * 3).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(value: int = 200, size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(value)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def truncated_jpeg() -> bytes:
    data = jpeg_bytes(size=(128, 96))
    return data[: len(data) // 2]


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb shape)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )

"""Real segmentation files imported into runs for tests (MediaPipe selfie, DeepLabV3 on Coral)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgrec.models.importer import ImportOptions, import_model
from tests.conftest import shared_data_path

SELFIE = "selfie_segmentation.tflite"
LANDSCAPE_ONNX = "selfie_segmentation_landscape.onnx"
DEEPLAB = "deeplabv3_mnv2_pascal_quant.tflite"


def segmentation_file(name: str) -> Path:
    """A file of ../shared/data/models/segmentation (TFLite ones need ai-edge-litert)."""
    if name.endswith(".tflite"):
        pytest.importorskip("ai_edge_litert")
    else:
        pytest.importorskip("onnxruntime")
    return shared_data_path("models", "segmentation", name)


def import_segmenter(name: str, out: Path) -> Path:
    """``imgrec import FILE --task segment`` with the file's classes (VOC for DeepLab)."""
    classes = "voc" if name == DEEPLAB else "background,person"
    return import_model(segmentation_file(name), ImportOptions(task="segment", classes=classes), out)


def photo(name: str) -> Path:
    """A real photo of ../shared/data/test-images."""
    return shared_data_path("test-images", name)

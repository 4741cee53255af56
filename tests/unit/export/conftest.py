"""Fixtures for export tests: a private copy of the tiny trained run per test."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from tests.unit.export.helpers import copy_run, tiny_data, tiny_run_template


@pytest.fixture
def torch_run(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A copy of the session's tiny cnn-small run (trained with imgrec.train, 1 epoch, 32 px)."""
    return copy_run(tiny_run_template(tmp_path_factory), tmp_path / "run")


@pytest.fixture
def shapes_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 36 labeled images the tiny run was trained on (read only)."""
    return tiny_data(tmp_path_factory)

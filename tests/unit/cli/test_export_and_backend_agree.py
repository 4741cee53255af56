"""A classical run: ``imgrec export`` and ``predict --backend onnx`` give the same explanation."""

from __future__ import annotations

import pytest
from tests.unit.export.helpers import make_classical_run

from imgrec.cli.main import main


@pytest.fixture(scope="module")
def classical_run(tmp_path_factory):
    return make_classical_run(tmp_path_factory.mktemp("runs") / "hog")


def _explanation(text: str) -> str:
    start = text.index("holds the classical model")
    return " ".join(text[start:].split())


def test_predict_with_onnx_on_a_classical_run_explains_like_export(classical_run, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (32, 32), (9, 9, 9)).save(tmp_path / "a.png")
    assert main(["export", str(classical_run)]) == 2
    exported = capsys.readouterr()
    assert main(["predict", str(classical_run), str(tmp_path / "a.png"), "--backend", "onnx"]) == 2
    predicted = capsys.readouterr()
    text = " ".join(predicted.err.split())
    assert "cannot be exported to ONNX" in text and "it has: 'classical'" in text
    assert "imgrec export" not in text and "Traceback" not in text
    assert _explanation(predicted.err) == _explanation(exported.err)

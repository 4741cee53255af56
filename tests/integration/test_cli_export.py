"""``imgrec export`` and ``imgrec benchmark`` through the CLI: outputs, exit codes, messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tests.unit.export.helpers import (
    copy_run,
    make_classical_run,
    tamper_head,
    tiny_data,
    tiny_run_template,
)

QUICK = ("--iters", "3", "--seconds", "0.5", "--warmup", "1")


@pytest.fixture
def run(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_run(tiny_run_template(tmp_path_factory), tmp_path / "run")


@pytest.fixture
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_data(tmp_path_factory)


def test_export_int8_then_predict_and_benchmark(cli, run, shapes):
    code, out, err = cli("export", run, "--format", "onnx", "--int8", "--data", shapes,
                         "--calibration", shapes, "--max-drop", "25")
    assert code == 0, out + err
    assert "model.onnx" in out and "model.int8.onnx" in out and "top-1 agreement" in out
    code, out, err = cli("predict", run, shapes / "circle" / "circle_000.png", "--format", "json")
    assert code == 0 and json.loads(out)[0]["label"] in ("circle", "square", "stripes")
    code, out, err = cli("benchmark", run, "--batch", "1,2", *QUICK)
    assert code == 0, out + err
    for text in ("torch", "onnx-int8", "p50 ms", "images/s", "physical", "load"):
        assert text in out
    code, out, err = cli(
        "benchmark", run, "--batch", "1,4", "--data", shapes, "--limit", "12", "--format", "json", *QUICK
    )
    assert code == 0, out + err
    result = json.loads(out)
    rows = result["rows"]
    assert {r["backend"] for r in rows} == {"torch", "onnx", "onnx-int8"} and {r["batch"] for r in rows} == {1, 4}
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["images_per_s"] > 0 and r["p95_ms"] >= r["p50_ms"] for r in rows)
    sizes = {r["backend"]: r["model_mb"] for r in rows}
    assert sizes["onnx-int8"] < sizes["onnx"]
    assert result["machine"]["cpu"] and result["machine"]["physical_cores"] >= 1


def test_a_tampered_model_fails_the_check_with_figures_and_exit_65(cli, run, shapes):
    assert cli("export", run, "--data", shapes, "--json")[0] == 0
    tamper_head(run / "model.onnx")
    code, _, err = cli("export", run, "--check", "--data", shapes)
    assert code == 65
    assert "parity check" in err and "top-1 agreement" in err and "max abs probability error" in err


def test_a_corrupt_model_onnx_is_exit_65(cli, run, shapes):
    (run / "model.onnx").write_bytes(b"not an onnx file at all" * 20)
    code, _, err = cli("predict", run, shapes / "circle" / "circle_000.png")
    assert code == 65 and "model.onnx" in err
    code, _, err = cli("predict", run, shapes / "circle" / "circle_000.png", "--backend", "torch")
    assert code == 0, err


def test_refusals_are_usage_errors(cli, run, tmp_path):
    code, _, err = cli("benchmark", run, "--backends", "onnx")
    assert code == 2 and "'torch'" in err and "imgrec export" in err
    code, _, err = cli("export", make_classical_run(tmp_path / "hog"))
    assert code == 2 and "no ONNX equivalent" in err
    code, _, err = cli("export", run, "--min-agreement", "1.5")
    assert code == 2 and "min_agreement" in err

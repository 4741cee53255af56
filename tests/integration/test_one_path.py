"""One path from file to model input: train, evaluate, predict, benchmark, export checks and
serve give identical predictions on real JPEGs of mixed sizes (ants/bees photos).

A JPEG may be decoded at a reduced DCT scale; a command that decodes it at another scale
sees other pixels. These tests fail when any command takes its own route.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import shared_data_path

from imgrec.cli.main import main
from imgrec.data import load_dataset, materialize
from imgrec.inference import Predictor, collect_images

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    return out


@pytest.fixture(scope="module")
def hymenoptera() -> Path:
    return shared_data_path("hymenoptera")


@pytest.fixture(scope="module")
def svm_run(hymenoptera: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hog-svm trained on train/, scored on val/ by training itself (metrics.json)."""
    out = tmp_path_factory.mktemp("one-path") / "hog-svm"
    assert main(["train", str(hymenoptera), "--model", "hog-svm", "--out", str(out)]) == 0
    return out


def _val_figures(run: Path) -> tuple[float, list[list[int]]]:
    val = json.loads((run / "metrics.json").read_text())["val"]
    return val["accuracy"], val["confusion_matrix"]


def test_evaluate_cli_equals_training_figures_on_real_jpegs(svm_run, hymenoptera, capsys):
    accuracy, confusion = _val_figures(svm_run)
    m = json.loads(_cli(capsys, "evaluate", svm_run, hymenoptera / "val", "--format", "json"))
    assert m["num_samples"] == 153
    assert m["confusion_matrix"] == confusion
    assert m["accuracy"] == accuracy


def test_predict_cli_and_predictor_agree_with_evaluate(svm_run, hymenoptera, capsys):
    from imgrec.evaluation import evaluate_run

    result, _ = evaluate_run(svm_run, hymenoptera / "val")
    by_source = {Path(s).resolve(): result.classes[p] for s, p in zip(result.sources, result.y_pred, strict=True)}
    rows = json.loads(_cli(capsys, "predict", svm_run, hymenoptera / "val", "--format", "json"))
    assert len(rows) == 153
    assert {Path(r["path"]).resolve(): r["label"] for r in rows} == by_source
    files = collect_images([hymenoptera / "val"])
    predictor = Predictor.from_run(svm_run)
    encoded = [Path(f).read_bytes() for f in files[:20]]
    assert [p.label for p in predictor.predict(encoded)] == [by_source[Path(f).resolve()] for f in files[:20]]


def test_benchmark_accuracy_equals_training_figure(svm_run, hymenoptera, capsys):
    accuracy, _ = _val_figures(svm_run)
    out = _cli(capsys, "benchmark", svm_run, "--data", hymenoptera / "val", "--batch", "8", "--format", "json",
               "--iters", "1", "--seconds", "0.1", "--warmup", "0")
    (row,) = json.loads(out)["rows"]
    assert row["accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_export_samples_and_serve_prepare_the_same_arrays(svm_run, hymenoptera):
    from fastapi.testclient import TestClient

    from imgrec.export.samples import from_folder
    from imgrec.serve import ServeConfig, create_app

    predictor = Predictor.from_run(svm_run)
    prep = predictor.preprocessing
    ds = load_dataset(hymenoptera / "val")
    reference = materialize(ds, prep).images
    files = ds.sources
    assert np.array_equal(np.stack([predictor.prepare(f) for f in files]), reference)
    samples = from_folder(hymenoptera / "val", prep, predictor.classes, limit=len(files))
    assert samples.images.shape == reference.shape
    assert {a.tobytes() for a in samples.images} == {a.tobytes() for a in reference}

    expected = [p.label for p in predictor.predict(files[:24])]  # type: ignore[union-attr]
    app = create_app({"svm": predictor}, ServeConfig())
    with TestClient(app) as client:
        got = []
        for start in range(0, 24, 8):
            parts = [("files", (Path(f).name, Path(f).read_bytes(), "image/jpeg")) for f in files[start : start + 8]]
            r = client.post("/v1/models/svm/predict", files=parts)
            assert r.status_code == 200, r.text
            got += [p["label"] for p in r.json()["predictions"]]
    assert got == expected

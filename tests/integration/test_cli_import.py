"""``imgrec import`` on the real pretrained files, and ``linear-probe`` on real photos (ants/bees)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import shared_data_path

pytestmark = [pytest.mark.realdata]
pytest.importorskip("onnxruntime")

MODELS = "models"


def _model(*parts: str) -> Path:
    return shared_data_path(MODELS, *parts)


@pytest.fixture(scope="module")
def labels() -> Path:
    return _model("labels", "imagenet_labels_1001.txt")


@pytest.fixture(scope="module")
def onnx_run(labels, tmp_path_factory) -> Path:
    from imgrec.models.importer import ImportOptions, import_model

    out = tmp_path_factory.mktemp("imported") / "mobilenetv2"
    return import_model(_model("imagenet-embeddings", "mobilenetv2-12-int8.onnx"), ImportOptions(classes=labels), out)


def test_import_tflite_then_predict_real_photos(cli, labels, tmp_path):
    pytest.importorskip("ai_edge_litert")
    tflite = _model("mobilenet-tflite", "mobilenet_v1_0.25_128_quant.tflite")
    code, out, err = cli("import", tflite, "--classes", labels, "--out", tmp_path / "mnv1")
    assert code == 0, out + err
    assert "1000" in out and "background column dropped" in out
    meta = json.loads((tmp_path / "mnv1" / "model.json").read_text())
    assert meta["external"]["output"] == "probabilities" and meta["preprocessing"]["size"] == 128
    parrot = shared_data_path("test-images", "parrot.jpg")
    code, out, err = cli("predict", tmp_path / "mnv1", parrot, "--format", "json", "--top-k", "3")
    assert code == 0, out + err
    (row,) = json.loads(out)
    assert row["label"] == "macaw" and row["score"] > 0.3


def test_imported_onnx_int8_predicts_real_photos(cli, onnx_run):
    images = shared_data_path("test-images")
    code, out, err = cli("predict", onnx_run, images / "parrot.jpg", images / "hot_dog.jpg", "--format", "json")
    assert code == 0, out + err
    assert [r["label"] for r in json.loads(out)] == ["macaw", "hotdog, hot dog, red hot"]


def test_a_bare_model_file_gets_the_import_command(cli):
    code, _, err = cli("predict", _model("imagenet-embeddings", "mobilenetv2-12-int8.onnx"),
                         shared_data_path("test-images", "owl.jpg"))  # fmt: skip
    assert code == 2
    assert "imgrec import" in err and "--classes" in err and "JSON" not in err and "utf-8" not in err


@pytest.mark.slow
def test_linear_probe_on_imported_mobilenet_beats_90_percent_and_serves_as_one_model(cli, onnx_run, tmp_path):
    from fastapi.testclient import TestClient

    from imgrec.inference import Predictor
    from imgrec.serve import ServeConfig, create_app

    data = shared_data_path("hymenoptera")
    code, out, err = cli("train", data, "--model", "linear-probe", "--backbone", onnx_run, "--out", tmp_path / "probe")
    assert code == 0, out + err
    metrics = json.loads((tmp_path / "probe" / "metrics.json").read_text())
    assert metrics["val"]["accuracy"] >= 0.90
    meta = json.loads((tmp_path / "probe" / "model.json").read_text())
    assert meta["model_args"]["embedding_layer"] == "472_quantized"
    bees = sorted((data / "val" / "bees").glob("*.jpg"))[:6]
    code, out, err = cli("predict", tmp_path / "probe", *bees, "--format", "json")
    assert code == 0, out + err
    labels = [r["label"] for r in json.loads(out)]
    predictor = Predictor.from_run(tmp_path / "probe")
    with TestClient(create_app({"probe": predictor}, ServeConfig())) as client:
        files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in bees]
        r = client.post("/v1/models/probe/predict", files=files)
    assert r.status_code == 200 and [p["label"] for p in r.json()["predictions"]] == labels
    assert np.mean([lab == "bees" for lab in labels]) >= 0.5
    code, out, err = cli("export", tmp_path / "probe", "--json")
    assert code == 0, out + err
    (exported,) = json.loads(out)["files"].values()
    assert exported["top1_agreement"] == 1.0 and exported["reference"] == "probe"
    code, out, err = cli("predict", tmp_path / "probe", *bees, "--format", "json", "--backend", "onnx")
    assert code == 0 and [r["label"] for r in json.loads(out)] == labels


def test_tflite_backbone_gives_embeddings(labels, tmp_path):
    pytest.importorskip("ai_edge_litert")
    from imgrec.models import load_model
    from imgrec.models.importer import ImportOptions, import_model

    tflite = _model("mobilenet-tflite", "mobilenet_v1_0.25_128_quant.tflite")
    model, _ = load_model(import_model(tflite, ImportOptions(classes=labels), tmp_path / "r"))
    emb = model.embed(np.zeros((2, 128, 128, 3), np.uint8))  # type: ignore[attr-defined]
    assert emb.shape == (2, 256) and np.isfinite(emb).all()
    assert "AvgPool" in model.embedding_layer  # type: ignore[attr-defined]

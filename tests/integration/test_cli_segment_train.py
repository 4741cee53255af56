"""``imgrec train`` / ``evaluate`` / ``export`` on a real mask set, end to end through the CLI: the
tiny U-Net trained 2 epochs on COCO128 photos with person and car masks (drawn from the COCO
polygons by PIL, independently of imgrec's readers); the run's figures, ``imgrec evaluate`` and
the export's gate agree."""

from __future__ import annotations

import json
import shutil

import pytest
from tests.segmentation_data import write_few_class_masks

pytest.importorskip("segmentation_models_pytorch")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from imgrec.cli.main import main

    root = tmp_path_factory.mktemp("segment")
    data = write_few_class_masks(root / "masks", ("person", "car"), n=16)
    code = main(["train", str(data), "--model", "unet-tiny", "--epochs", "2", "--image-size", "96", "--batch-size",
                 "4", "--val", "0.25", "--test", "0.25", "--dice-loss", "0.5", "--augment", "flip",
                 "--threads", "2", "--out", str(root / "run")])  # fmt: skip
    assert code == 0
    return data, root / "run"


def test_a_segmentation_run_has_its_figures_history_and_report(trained):
    _, run = trained
    meta = json.loads((run / "model.json").read_text())
    assert (meta["task"], meta["classes"]) == ("segment", ["background", "person", "car"])
    assert meta["preprocessing"]["resize_mode"] == "letterbox" and meta["preprocessing"]["size"] == 96
    assert meta["training"]["monitor"] == "val_miou" and meta["training"]["kept_weights"]["which"] == "best"
    assert json.loads((run / "config.json").read_text())["data_config"]["task"] == "segment"
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert len(history) == 2 and {"ce_loss", "dice_loss", "train_loss", "val_miou"} <= set(history[0])
    assert history[1]["train_loss"] < history[0]["train_loss"]
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    assert test["images"] == 4 and {"miou", "pixel_accuracy", "mean_dice", "boundary_f1"} <= set(test)
    assert test["confusion"]["labels"] == ["background", "person", "car"]
    assert sum(map(sum, test["confusion"]["matrix"])) == sum(v["pixels"] for v in test["per_class"].values())
    assert 0.0 < test["pixel_accuracy"] <= 1.0 and len(test["worst_images"]) == 4
    html = (run / "report.html").read_text()
    assert "Per class" in html and "Worst images" in html and "data:image/png;base64" in html


def test_evaluate_gives_the_runs_own_test_figures(cli, trained):
    _, run = trained
    code, out, err = cli("evaluate", run, "--format", "json")
    assert code == 0, out + err
    figures = json.loads(out)
    own = json.loads((run / "metrics.json").read_text())["test"]
    assert figures["images"] == own["images"]
    for key in ("miou", "pixel_accuracy", "mean_dice", "boundary_f1"):
        assert figures[key] == pytest.approx(own[key], abs=1e-6), key
    assert (run / "eval" / "test" / "report.html").is_file()


def test_export_passes_the_miou_gate_and_evaluates_alike(cli, trained, tmp_path):
    pytest.importorskip("onnxruntime")
    data, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    code, out, err = cli("export", copy, "--json")
    assert code == 0, out + err
    (figures,) = json.loads(out)["files"].values()
    own = json.loads((run / "metrics.json").read_text())
    assert figures["images"] == own["val"]["images"] and abs(figures["miou_drop_points"]) <= 0.5
    assert figures["reference_miou"] == pytest.approx(own["val"]["miou"], abs=1e-6)
    assert json.loads((copy / "model.json").read_text())["exports"]["onnx"]["miou_drop_points"] == figures[
        "miou_drop_points"
    ]
    code, out, err = cli("evaluate", copy, data, "--format", "json")  # model.onnx is now the run's backend
    assert code == 0, out + err
    onnx_eval = json.loads(out)
    code, out, _ = cli("evaluate", run, data, "--format", "json")
    torch_eval = json.loads(out)
    assert onnx_eval["images"] == torch_eval["images"] == 16
    assert abs(onnx_eval["miou"] - torch_eval["miou"]) <= 0.005


def test_a_segmenter_on_class_folders_is_refused(cli, tmp_path):
    from tests.conftest import make_image_folder

    folders = make_image_folder(tmp_path / "shapes", per_class=3)
    code, _, err = cli("train", folders, "--model", "unet-tiny", "--task", "classify", "--out", tmp_path / "a")
    assert code == 2 and "is a segmentation model" in err
    assert not (tmp_path / "a").exists()

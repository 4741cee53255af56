"""``imgrec train`` / ``evaluate`` / ``export`` on a real mask set, end to end through the CLI: the
tiny U-Net trained 2 epochs on COCO128 photos with person and car masks (drawn from the COCO
polygons by PIL, independently of imgrec's readers); the run's figures, ``imgrec evaluate`` and
the export's gate agree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
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


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """A copy of the trained run after ``imgrec export --json``, the figures it printed, and
    ``imgrec evaluate`` of the torch run on all 16 images."""
    import contextlib
    import io

    from imgrec.cli.main import main

    pytest.importorskip("onnxruntime")
    data, run = trained
    copy = Path(shutil.copytree(run, tmp_path_factory.mktemp("exported") / "run"))
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main(["export", str(copy), "--json"]) == 0
    (figures,) = json.loads(printed.getvalue())["files"].values()
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main(["evaluate", str(run), str(data), "--format", "json"]) == 0
    return copy, figures, json.loads(printed.getvalue())


def test_export_passes_the_miou_gate_and_evaluates_alike(cli, trained, exported):
    data, run = trained
    copy, figures, torch_eval = exported
    own = json.loads((run / "metrics.json").read_text())
    assert figures["images"] == own["val"]["images"] and abs(figures["miou_drop_points"]) <= 0.5
    assert figures["reference_miou"] == pytest.approx(own["val"]["miou"], abs=1e-6)
    assert json.loads((copy / "model.json").read_text())["exports"]["onnx"]["miou_drop_points"] == figures[
        "miou_drop_points"
    ]
    code, out, err = cli("evaluate", copy, data, "--format", "json")  # model.onnx is now the run's backend
    assert code == 0, out + err
    onnx_eval = json.loads(out)
    assert onnx_eval["images"] == torch_eval["images"] == 16
    assert abs(onnx_eval["miou"] - torch_eval["miou"]) <= 0.005


def test_benchmark_times_both_backends_and_scores_them_with_evaluates_miou(cli, trained, exported):
    """``imgrec benchmark`` on a segmenter: the model call of each backend timed, and with --data the
    mIoU that ``imgrec evaluate`` gives on the same images, the same for torch and ONNX."""
    data, _ = trained
    copy, _, torch_eval = exported
    quick = ("--iters", "2", "--seconds", "0.5", "--warmup", "1", "--batch", "1,2")
    code, out, err = cli("benchmark", copy, "--data", data, "--format", "json", *quick)
    assert code == 0, out + err
    result = json.loads(out)
    rows = result["rows"]
    assert [(r["backend"], r["batch"]) for r in rows] == [("torch", 1), ("torch", 2), ("onnx", 1), ("onnx", 2)]
    assert {r["metric"] for r in rows} == {"mIoU"} and all(r["accuracy"] is None for r in rows)
    assert all(r["images_per_s"] > 0 and r["p95_ms"] >= r["p50_ms"] for r in rows)
    miou = torch_eval["miou"]
    assert rows[0]["score"] == pytest.approx(miou, abs=1e-6) and abs(rows[2]["score"] - miou) <= 0.005
    assert result["images"] == f"16 labeled images from {data}"
    code, out, err = cli("benchmark", copy, "--backends", "onnx", *quick)  # random images: timed, no score
    assert code == 0 and "mIoU" in out and "random noise" in out, out + err


def test_export_check_passes_on_the_export_and_fails_on_an_edited_file(cli, exported, tmp_path):
    """``export --check`` runs the mIoU gate again: the file as exported passes; the same file with
    its last convolution edited to call every pixel "car" fails with the figures, exit 65."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    copy = Path(shutil.copytree(exported[0], tmp_path / "run"))
    code, out, err = cli("export", copy, "--check", "--json")
    assert code == 0, out + err
    assert json.loads(out)["files"]["onnx"]["miou_drop_points"] == exported[1]["miou_drop_points"]
    proto = onnx.load(str(copy / "model.onnx"))
    last = [n for n in proto.graph.node if n.op_type == "Conv"][-1]
    inits = {i.name: i for i in proto.graph.initializer}
    weight, bias = (numpy_helper.to_array(inits[name]) for name in last.input[1:3])
    bias = np.zeros_like(bias)
    bias[2] = 100.0
    inits[last.input[1]].CopyFrom(numpy_helper.from_array(np.zeros_like(weight), last.input[1]))
    inits[last.input[2]].CopyFrom(numpy_helper.from_array(bias, last.input[2]))
    onnx.save(proto, str(copy / "model.onnx"))
    code, out, err = cli("export", copy, "--check")
    assert code == 65, out + err
    assert "model.onnx fails its check" in err and "mIoU" in err and "export again" in err


def test_a_segmenter_on_class_folders_is_refused(cli, tmp_path):
    from tests.conftest import make_image_folder

    folders = make_image_folder(tmp_path / "shapes", per_class=3)
    code, _, err = cli("train", folders, "--model", "unet-tiny", "--task", "classify", "--out", tmp_path / "a")
    assert code == 2 and "is a segmentation model" in err
    assert not (tmp_path / "a").exists()

"""``imgrec segment``: prompts, boxes from an imported YOLOX-Nano run, everything; JSON RLE,
overlays and index PNGs; error rows and exit codes 0/2/65/66, no tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import shared_data_path
from tests.sam_helpers import save_state, save_tiny_sam, tiny_mobile_sam_state

from imgrec.cli.main import main

pytest.importorskip("torch")
pytest.importorskip("segment_anything")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save_tiny_sam(tmp_path_factory.mktemp("sam") / "tiny_sam.safetensors")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("000000000009.jpg", "000000000025.jpg"):
        shutil.copy(shared_data_path("coco128", "images", "train2017", name), folder / name)
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["segment", *map(str, args)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def test_points_and_box_json_save_and_masks(photos, weights, tmp_path, capsys) -> None:
    from imgrec.imaging.masks import load_mask

    photo = photos / "000000000009.jpg"
    code, out, err = run(capsys, photo, "--points", "320,240", "--points", "20,20:0", "--box", "100,100,500,450",
                         "--model", "sam", "--weights", weights, "--format", "json", "--save", tmp_path / "drawn",
                         "--masks", tmp_path / "masks")  # fmt: skip
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["image_size"] == [640, 480] and len(row["instances"]) == 1
    inst = row["instances"][0]
    assert inst["mask"]["size"] == [480, 640] and inst["prompt"] == 0 and -1.5 < inst["score"] < 1.5
    index = load_mask(tmp_path / "masks" / "000000000009.png").values
    assert index.shape == (480, 640) and int((index == 1).sum()) == inst["area"]
    assert (tmp_path / "drawn" / "000000000009.jpg").stat().st_size > 1000
    code, out, err = run(capsys, photo, "--box", "10,10,200,300", "--box", "300,50,640,480", "--weights", weights,
                         "--multimask")  # fmt: skip
    assert code == 0, err
    assert out.count("000000000009.jpg") == 6  # table: 2 boxes x 3 candidates


def test_everything_on_a_folder(photos, weights, capsys) -> None:
    code, out, err = run(capsys, photos, "--everything", "--points-per-side", "2", "--pred-iou-thresh", "0",
                         "--stability-score-thresh", "0", "--weights", weights, "--format", "json")  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)
    assert [Path(r["path"]).name for r in rows] == ["000000000009.jpg", "000000000025.jpg"]
    assert all(r["instances"] and "stability_score" in r["instances"][0] for r in rows)


def test_usage_errors_exit_2(photos, weights, capsys) -> None:
    photo = photos / "000000000009.jpg"
    cases = [
        (["--points", "320;240"], "Cannot read '320;240'"),
        (["--points", "3,2:7"], "must be 1 (object) or 0 (background)"),
        (["--box", "10,10,5,50"], "empty or inverted"),
        ([], "Say what to segment"),
        (["--points", "1,1", "--everything"], "Say what to segment"),
        (["--everything", "--conf", "0.3"], "--conf go(es) with --boxes-from"),
        (["--points", "1,1", "--box", "0,0,5,5", "--box", "1,1,9,9"], "Points and several boxes"),
    ]
    for extra, message in cases:
        code, _, err = run(capsys, photo, "--weights", weights, *extra)
        assert code == 2 and message in err.replace("\n", " "), (extra, err)


def test_prompt_outside_exits_2_missing_66_corrupt_65(photos, weights, capsys) -> None:
    photo = photos / "000000000009.jpg"
    code, out, _ = run(capsys, photo, "--points", "700,10", "--weights", weights, "--format", "json")
    (row,) = json.loads(out)
    assert code == 2 and row["error"]["code"] == "prompt_outside_image" and "640x480" in row["error"]["message"]
    code, out, _ = run(capsys, photos / "nope.jpg", "--points", "5,5", "--weights", weights, "--format", "json")
    assert code == 66 and json.loads(out)[0]["error"]["code"] == "not_found"
    (photos / "broken.jpg").write_bytes(photo.read_bytes()[:300])
    code, out, _ = run(capsys, photos, "--points", "5,5", "--weights", weights, "--format", "json")
    rows = {Path(r["path"]).name: r for r in json.loads(out)}
    assert code == 65 and "error" in rows["broken.jpg"] and rows["000000000025.jpg"]["instances"]


def test_wrong_weights_are_clear_errors(photos, weights, tmp_path, capsys) -> None:
    photo = photos / "000000000009.jpg"
    import torch
    from safetensors.torch import save_file

    save_file({"conv.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(2, 8)}, str(tmp_path / "r.safetensors"))
    code, _, err = run(capsys, photo, "--points", "5,5", "--weights", tmp_path / "r.safetensors")
    assert code == 65 and "not a Segment Anything checkpoint" in err.replace("\n", " ")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(weights.read_bytes()[:5000])
    code, _, err = run(capsys, photo, "--points", "5,5", "--weights", cut)
    assert code == 65 and "not a valid safetensors file" in err
    code, _, err = run(capsys, photo, "--points", "5,5", "--weights", tmp_path / "missing.pth")
    assert code == 66 and "SAM checkpoint not found" in err
    code, _, err = run(capsys, photo, "--points", "5,5")
    assert code == 2 and "--download" in err
    code, _, err = run(capsys, photo, "--points", "5,5", "--weights", weights, "--sam-type", "vit_l")
    assert code == 65 and "not vit_l" in err


@pytest.fixture(scope="module")
def yolox_run(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("det") / "yolox-nano"
    onnx = shared_data_path("models", "yolox-nano", "yolox_nano.onnx")
    names = shared_data_path("coco128", "coco80.names")
    code = main(["import", str(onnx), "--task", "detect", "--layout", "yolox", "--classes", str(names),
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    return out


def test_boxes_from_an_imported_yolox_run(photos, weights, yolox_run, capsys) -> None:
    photo = photos / "000000000009.jpg"
    assert main(["predict", str(yolox_run), str(photo), "--format", "json", "--conf", "0.3"]) == 0
    (detected,) = json.loads(capsys.readouterr().out)
    code, out, err = run(capsys, photo, "--boxes-from", yolox_run, "--conf", "0.3", "--weights", weights,
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    (row,) = json.loads(out)
    dets = detected["detections"]
    assert len(dets) >= 3 and len(row["instances"]) == len(dets)  # the bowls, the broccoli, the orange
    for inst, det in zip(row["instances"], dets, strict=True):
        assert inst["label"] == det["label"] and inst["detector_score"] == pytest.approx(det["score"], abs=1e-5)
        assert inst["mask"]["size"] == [480, 640] and 0 <= inst["box"][0] <= inst["box"][2] <= 640
    assert "bowl" in {i["label"] for i in row["instances"]}
    code, _, err = run(capsys, photo, "--boxes-from", yolox_run, "--classes", "unicorn", "--weights", weights)
    assert code == 2 and "Unknown class(es) 'unicorn'" in err


def test_a_mobilesam_checkpoint_takes_points_boxes_detections_and_everything(photos, yolox_run, tmp_path,
                                                                             capsys) -> None:  # fmt: skip
    weights = save_state(tiny_mobile_sam_state(), tmp_path / "mobile_sam.pt")
    photo = photos / "000000000009.jpg"
    code, out, err = run(capsys, photo, "--points", "320,240", "--box", "100,100,500,450", "--model", "sam",
                         "--weights", weights, "--format", "json")  # fmt: skip
    assert code == 0, err
    (row,) = json.loads(out)
    assert len(row["instances"]) == 1 and row["instances"][0]["mask"]["size"] == [480, 640]
    code, out, err = run(capsys, photo, "--box", "100,100,500,450", "--box", "10,10,200,300", "--weights", weights,
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    assert [i["prompt"] for i in json.loads(out)[0]["instances"]] == [0, 1]
    code, out, err = run(capsys, photo, "--boxes-from", yolox_run, "--conf", "0.3", "--weights", weights,
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    assert "bowl" in {i["label"] for i in json.loads(out)[0]["instances"]}
    code, out, err = run(capsys, photos, "--everything", "--points-per-side", "2", "--pred-iou-thresh", "0",
                         "--stability-score-thresh", "0", "--weights", weights, "--format", "json")  # fmt: skip
    assert code == 0, err
    assert [len(r["instances"]) > 0 for r in json.loads(out)] == [True, True]
    code, _, err = run(capsys, photo, "--points", "5,5", "--weights", weights, "--sam-type", "vit_b")
    assert code == 65 and "holds a TinyViT SAM" in err and "not vit_b" in err


def _png(path: Path, mask: np.ndarray) -> Path:
    Image.fromarray(mask).save(path)
    return path


def test_mask_prompt_from_a_png_is_the_python_apis(photos, weights, tmp_path, capsys) -> None:
    from imgrec.analyzers.segment import load_sam

    photo = photos / "000000000009.jpg"
    rough = np.zeros((480, 640), np.uint8)
    rough[100:300, 200:400] = 1  # an 8-bit gray PNG: nonzero = the object
    mask = _png(tmp_path / "rough.png", rough)
    code, out, err = run(capsys, photo, "--points", "320,240", "--mask", mask, "--weights", weights, "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    sam = load_sam(weights)
    sam.set_image(photo)
    expected = sam.predict(points=[(320, 240)], mask=rough != 0).to_dict()["instances"]
    assert [i["mask"] for i in row["instances"]] == [i["mask"] for i in expected]
    assert [i["score"] for i in row["instances"]] == [i["score"] for i in expected]
    code, out, err = run(capsys, photo, "--mask", mask, "--weights", weights, "--format", "json")  # a mask alone
    assert code == 0 and len(json.loads(out)[0]["instances"]) == 1, err


def test_wrong_size_empty_corrupt_and_lossy_masks_are_refused(photos, weights, tmp_path, capsys) -> None:
    photo = photos / "000000000009.jpg"
    small = _png(tmp_path / "small.png", np.ones((240, 320), np.uint8))
    code, out, _ = run(capsys, photo, "--points", "5,5", "--mask", small, "--weights", weights, "--format", "json")
    (row,) = json.loads(out)
    assert code == 2 and row["error"]["code"] == "mask_size_mismatch"
    assert "The mask is 320x240 but the image is 640x480" in row["error"]["message"]
    good = _png(tmp_path / "good.png", np.ones((480, 640), np.uint8))
    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[:60])
    Image.fromarray(np.full((480, 640, 3), 255, np.uint8)).save(tmp_path / "lossy.jpg")
    cases = [
        (small.with_name("empty.png"), 2, "has no nonzero pixel"),
        (broken, 65, "broken.png"),
        (tmp_path / "lossy.jpg", 65, "stored losslessly"),
        (tmp_path / "missing.png", 66, "missing.png"),
    ]
    _png(tmp_path / "empty.png", np.zeros((480, 640), np.uint8))
    for path, expected, message in cases:
        code, _, err = run(capsys, photo, "--points", "5,5", "--mask", path, "--weights", weights)
        assert code == expected and message in err.replace("\n", " "), (path.name, err)
    for extra, message in [(["--everything"], "Say what to segment"),
                           (["--box", "0,0,5,5", "--box", "1,1,9,9"], "A mask and several boxes")]:  # fmt: skip
        code, _, err = run(capsys, photo, "--mask", good, "--weights", weights, *extra)
        assert code == 2 and message in err.replace("\n", " "), (extra, err)


def test_negative_coordinates_are_values_not_options(photos, weights, capsys) -> None:
    """``--points -5,5`` (no ``=``) reaches the prompt check like ``--points=-5,5``: exit 2, the image's size."""
    photo = photos / "000000000009.jpg"
    for prompt in (["--points", "-5,5"], ["--points", "-5.5,5:0"], ["--box", "-10,-10,50,50"]):
        code, out, err = run(capsys, photo, *prompt, "--weights", weights, "--format", "json")
        (row,) = json.loads(out)
        assert code == 2 and row["error"]["code"] == "prompt_outside_image", (prompt, err)
        assert "640x480" in row["error"]["message"] and "expected one argument" not in err
    code, _, err = run(capsys, photo, "--points", "-5;5", "--weights", weights)
    assert code == 2 and "Cannot read '-5;5'" in err.replace("\n", " ")

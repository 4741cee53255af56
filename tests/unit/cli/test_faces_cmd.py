"""``imgrec faces detect|blur|evaluate``: JSON with landmarks, per-file error rows (exit 65), no tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from tests.conftest import shared_data_path

from imgrec.cli.main import main


def weights() -> str:
    return str(shared_data_path("models", "yunet", "face_detection_yunet_2023mar.onnx"))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(shared_data_path("faces-dlib", "faces", "2008_002506.jpg"), folder / "three.jpg")
    shutil.copy(shared_data_path("test-images", "owl.jpg"), folder / "owl.jpg")
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["faces", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_detect_json_has_boxes_and_landmarks_and_saves_drawings(photos, tmp_path, capsys) -> None:
    code, out, err = run(capsys, "detect", photos, "--weights", weights(), "--format", "json", "--save", tmp_path / "a")
    assert code == 0, err
    by_name = {Path(r["path"]).name: r for r in json.loads(out)}
    assert len(by_name["three.jpg"]["detections"]) == 3 and by_name["owl.jpg"]["detections"] == []
    face = by_name["three.jpg"]["detections"][0]
    assert face["label"] == "face" and len(face["landmarks"]) == 5 and len(face["box"]) == 4
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["owl.jpg", "three.jpg"]


def test_corrupt_and_huge_images_are_error_rows_exit_65(photos, capsys) -> None:
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    Image.new("RGB", (3000, 2000), (128, 128, 128)).save(photos / "huge.png")
    code, out, err = run(capsys, "detect", photos, "--weights", weights(), "--format", "json",
                         "--max-pixels", 4_000_000)  # fmt: skip
    assert code == 65 and "Traceback" not in out + err
    errors = {Path(r["path"]).name: r["error"]["code"] for r in json.loads(out) if "error" in r}
    assert errors == {"broken.jpg": "image_invalid", "huge.png": "image_too_large"}


def test_blur_writes_every_readable_image(photos, tmp_path, capsys) -> None:
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    code, out, err = run(capsys, "blur", photos, "--weights", weights(), "--out", tmp_path / "b", "--pixelate",
                         "--format", "json")  # fmt: skip
    assert code == 65 and "Traceback" not in out + err
    rows = {Path(r["path"]).name: r for r in json.loads(out)}
    assert rows["three.jpg"]["faces"] == 3 and rows["owl.jpg"]["faces"] == 0 and "error" in rows["broken.jpg"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["owl.jpg", "three.jpg"]


def test_evaluate_prints_ap_at_05(capsys) -> None:
    xml = shared_data_path("faces-dlib", "faces", "testing.xml")
    code, out, _ = run(capsys, "evaluate", xml, "--weights", weights(), "--format", "json")
    figures = json.loads(out)
    assert code == 0 and figures["map50"] > 0.99 and (figures["found"], figures["faces"]) == (25, 25)


def test_a_missing_weights_file_is_exit_66_without_traceback(photos, capsys) -> None:
    code, _, err = run(capsys, "detect", photos, "--weights", "/nonexistent.onnx")
    assert code == 66 and "not found" in err and "Traceback" not in err


def test_import_embed_then_evaluate_the_embedder_on_johns(tmp_path, capsys) -> None:
    from tests.embed_helpers import johns, mobilefacenet_file

    from imgrec.analyzers.faces import threshold_from_report

    code = main(["import", str(mobilefacenet_file()), "--task", "embed", "--norm", "imagenet", "--out",
                 str(tmp_path / "mfn")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "128-d, L2-normalized, cosine" in out and "arcface-112" in out
    assert main(["models", "--task", "embed", "--format", "json"]) == 0
    assert {m["model"] for m in json.loads(capsys.readouterr().out)} == {"dlib-resnet", "sface"}
    report = tmp_path / "report.json"
    code, out, err = run(capsys, "evaluate", johns(), "--embedder", tmp_path / "mfn", "--no-detect", "--out", report)
    assert code == 0, err
    assert "rank-1 (leave one out)" in out and "threshold_eer" in out and "1.0000 of 55 images" in out
    figures = json.loads(report.read_text())
    assert figures["rank1"] == 1.0 and threshold_from_report(report, embedder="mobilefacenet") > 0.5
    small = tmp_path / "ids"
    for person in ("John_Savage", "John_Shimkus"):
        (small / person).mkdir(parents=True)
        for f in sorted((johns() / person).glob("*.jpg"))[:3]:
            shutil.copy(f, small / person / f.name)
    code, out, _ = run(capsys, "evaluate", small, "--embedder", tmp_path / "mfn", "--detector-weights", weights(),
                       "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["aligned"] == 6 and json.loads(out)["detector"] == "yunet"


def test_embedder_options_are_checked(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "evaluate", "faces.xml", "--no-detect")
    assert code == 2 and "--embedder" in err
    code, _, err = run(capsys, "evaluate", tmp_path, tmp_path, "--embedder", "dlib-resnet")
    assert code == 2 and "one identity folder" in err
    code, _, err = run(capsys, "evaluate", tmp_path, "--embedder", "arcface")
    assert code == 2 and "Unknown face embedder 'arcface'" in err

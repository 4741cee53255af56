"""``imgrec import --task segment``, ``imgrec predict`` on segmentation runs (JSON RLE, table, CSV,
``--save`` overlays, ``--masks`` index PNGs) and ``imgrec cutout``, on real photos and real models."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.imported_segmenters import DEEPLAB, SELFIE, import_segmenter, photo, segmentation_file

from imgrec.cli.main import main

pytestmark = [pytest.mark.realdata]
mask_utils = pytest.importorskip("pycocotools.mask")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seg-runs")
    return {"selfie": import_segmenter(SELFIE, root / "selfie"), "deeplab": import_segmenter(DEEPLAB, root / "deeplab")}


def _cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_cli_prints_what_it_read(capsys, tmp_path):
    src = segmentation_file("selfie_segmentation_landscape.onnx")
    code, out, err = _cli(capsys, "import", src, "--task", "segment", "--classes", "background,person",
                          "--out", tmp_path / "run")  # fmt: skip
    assert code == 0, out + err
    assert "144x256 nhwc rgb (stretch)" in out and "sigmoid mask (nhwc)" in out
    code, _, err = _cli(capsys, "import", src, "--task", "segment", "--classes", "a,b,c", "--out", tmp_path / "bad")
    assert code == 2 and "2 classes" in err


def test_predict_json_is_rle_per_class_at_full_resolution(capsys, runs):
    code, out, err = _cli(capsys, "predict", runs["deeplab"], photo("pets.jpg"), photo("grace_hopper.bmp"),
                          "--format", "json")  # fmt: skip
    assert code == 0, out + err
    pets, grace = json.loads(out)
    assert pets["image_size"] == [512, 430] and grace["image_size"] == [512, 600]
    labels = {s["label"]: s for s in pets["segments"]}
    assert "dog" in labels and "background" not in labels  # pets.jpg: two dogs, as DeepLab sees it
    dog = labels["dog"]
    decoded = mask_utils.decode({"size": dog["rle"]["size"], "counts": dog["rle"]["counts"].encode()})
    assert decoded.shape == (430, 512) and int(decoded.sum()) == dog["area"] and dog["area"] > 0.1 * 512 * 430
    assert max(grace["segments"], key=lambda s: s["area"])["label"] == "person"


def test_predict_table_csv_save_and_masks(capsys, runs, tmp_path):
    image = photo("face.jpg")
    code, out, err = _cli(capsys, "predict", runs["selfie"], image, "--save", tmp_path / "ov", "--masks",
                          tmp_path / "mk")  # fmt: skip
    assert code == 0, out + err
    assert "person" in out and "512x355" in out and "wrote 1 overlay" in out and "wrote 1 mask" in out
    mask = np.asarray(Image.open(tmp_path / "mk" / "face.png"))
    assert mask.shape == (355, 512) and set(np.unique(mask).tolist()) == {0, 1}
    overlay = np.asarray(Image.open(tmp_path / "ov" / "face.jpg")).astype(int)
    original = np.asarray(Image.open(image)).astype(int)
    tinted = np.abs(overlay - original).mean(axis=2) > 20
    assert tinted[mask == 1].mean() > 0.5 and tinted[mask == 0].mean() < 0.05
    code, out, _ = _cli(capsys, "predict", runs["selfie"], image, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    share = {r["label"]: float(r["share"]) for r in rows}
    assert code == 0 and share["person"] > 0.3 and share["person"] + share["background"] == pytest.approx(1.0)
    assert int(next(r for r in rows if r["label"] == "person")["pixels"]) == int((mask == 1).sum())


def test_inputs_of_the_same_name_do_not_overwrite_each_others_outputs(capsys, runs, tmp_path):
    import shutil

    for sub, name in (("a", "face.jpg"), ("b", "owl.jpg")):
        (tmp_path / "in" / sub).mkdir(parents=True)
        shutil.copy(photo(name), tmp_path / "in" / sub / "x.jpg")
    sizes = {"x": (355, 512), "x-2": Image.open(photo("owl.jpg")).size[::-1]}
    code, out, err = _cli(capsys, "predict", runs["selfie"], tmp_path / "in", "--masks", tmp_path / "mk")
    assert code == 0 and "wrote 2 mask" in out, out + err
    assert {p.stem: np.asarray(Image.open(p)).shape for p in (tmp_path / "mk").iterdir()} == sizes
    code, out, err = _cli(capsys, "cutout", tmp_path / "in", "--out", tmp_path / "cut", "--model", runs["selfie"])
    assert code == 0 and "x-2.png" in out, out + err
    assert {p.stem: np.asarray(Image.open(p)).shape[:2] for p in (tmp_path / "cut").iterdir()} == sizes
    (tmp_path / "taken.json").write_text("{}")
    code, _, err = _cli(capsys, "predict", runs["selfie"], photo("face.jpg"), "--masks", tmp_path / "taken.json")
    assert code == 73 and "taken.json is a file; expected a folder there" in err.replace("\n", " "), err


def test_overlays_and_cutouts_decode_within_the_predictions_limits(tmp_path):
    """--max-pixels above the default let a 72-megapixel photo be predicted, then --save, --masks and
    cutout failed on it ('the limit is 64.0 megapixels'): the full image was decoded with the defaults."""
    from imgrec.cli.segment_output import full_image
    from imgrec.errors import ImageTooLargeError
    from imgrec.imaging import DecodeLimits
    from imgrec.types import ItemError

    image = photo("face.jpg")
    r = ItemError(code="x", message="", path=str(image))  # anything with the path of its input
    assert full_image(r, {}).shape == (355, 512, 3)
    with pytest.raises(ImageTooLargeError, match=r"the limit is 0\.0 megapixels"):
        full_image(r, {}, DecodeLimits(max_pixels=100))
    with pytest.raises(ImageTooLargeError):
        full_image(r, {str(image): image.read_bytes()}, DecodeLimits(max_pixels=100))


def test_predict_options_of_other_tasks_are_refused(capsys, runs):
    image = photo("face.jpg")
    for flags, word in ((["--conf", "0.3"], "--conf"), (["--top-k", "3"], "--top-k"), (["--classes", "unicorn"],
                        "Unknown class"), (["--format", "coco"], "coco")):  # fmt: skip
        code, _, err = _cli(capsys, "predict", runs["deeplab"], image, *flags)
        assert code == 2 and word in err, err


def test_predict_bad_inputs_are_error_rows_and_exit_codes(capsys, runs, tmp_path):
    good = photo("face.jpg")
    (tmp_path / "trunc.jpg").write_bytes(good.read_bytes()[:3000])
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    bad = [tmp_path / "text.jpg", tmp_path / "empty.png", tmp_path / "trunc.jpg"]
    code, out, _ = _cli(capsys, "predict", runs["selfie"], good, *bad, "--format", "json")
    rows = json.loads(out)
    assert code == 65 and "segments" in rows[0]
    assert [r["error"]["code"] for r in rows[1:]] == ["unsupported_media_type"] * 2 + ["image_invalid"]
    code, out, _ = _cli(capsys, "predict", runs["selfie"], good, tmp_path / "absent.jpg", "--format", "json")
    assert code == 66 and len(json.loads(out)) == 2


def _face_boxes(image: Path) -> np.ndarray:
    from imgrec import faces

    weights = segmentation_file("selfie_segmentation.tflite").parents[1] / "yunet" / "face_detection_yunet_2023mar.onnx"
    (found,) = faces.detect(image, weights=weights)
    boxes = found.boxes
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[area >= 0.5 * area.max()]  # the people in front (face.jpg: two more, cut by the edges)


@pytest.mark.parametrize("name", ["face.jpg", "grace_hopper.bmp"])
def test_cutout_keeps_the_faces_and_drops_the_corners(capsys, tmp_path, name):
    image = photo(name)
    weights = segmentation_file(SELFIE)
    code, out, err = _cli(capsys, "cutout", image, "--out", tmp_path / "cut", "--weights", weights)
    assert code == 0, out + err
    rgba = np.asarray(Image.open(tmp_path / "cut" / f"{image.stem}.png"))
    original = np.asarray(Image.open(image).convert("RGB"))
    assert rgba.shape == (*original.shape[:2], 4) and np.array_equal(rgba[..., :3], original)
    alpha = rgba[..., 3].astype(int)
    boxes = _face_boxes(image)
    assert len(boxes) >= 1
    for x1, y1, x2, y2 in boxes.astype(int):
        assert alpha[(y1 + y2) // 2, (x1 + x2) // 2] > 200
    h, w = alpha.shape
    corners = [alpha[:h // 10, :w // 10], alpha[:h // 10, -w // 10:]]  # the top corners are background
    assert all(c.mean() < 60 for c in corners)
    soft = ((alpha > 10) & (alpha < 245)).mean()
    assert 0.0 < soft < 0.2  # soft edges, not a blurred whole


def test_cutout_with_a_run_classes_threshold_and_errors(capsys, runs, tmp_path):
    images = [photo("pets.jpg"), tmp_path / "broken.jpg"]
    images[1].write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    code, out, err = _cli(capsys, "cutout", *images, "--out", tmp_path / "cut", "--model", runs["deeplab"],
                          "--classes", "dog", "--feather", "0")  # fmt: skip
    assert code == 65 and "image_invalid" in out, out + err
    alpha = np.asarray(Image.open(tmp_path / "cut" / "pets.png"))[..., 3]
    assert set(np.unique(alpha).tolist()) == {0, 255} and 0.1 < (alpha == 255).mean() < 0.3
    code, _, err = _cli(capsys, "cutout", images[0], "--out", tmp_path / "x", "--model", runs["deeplab"],
                        "--classes", "unicorn")  # fmt: skip
    assert code == 2 and "Unknown class" in err


def test_cutout_without_a_model_says_which_file_to_pass(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("IMGREC_HOME", str(tmp_path / "home"))
    code, _, err = _cli(capsys, "cutout", photo("face.jpg"), "--out", tmp_path / "cut")
    assert code == 2 and "--weights selfie_segmentation.tflite" in err and "--download" in err
    assert not (tmp_path / "cut").exists()
    code, _, err = _cli(capsys, "cutout", photo("face.jpg"), "--out", tmp_path / "cut", "--weights", tmp_path / "no")
    assert code == 66

"""analyzers.faces (imgrec.faces): detection scored on faces-dlib, blurring files, alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import shared_data_path

import imgrec
from imgrec.analyzers.faces import align, blur_files, evaluate_faces, face_detector, face_options
from imgrec.errors import UnknownNameError, UsageError
from imgrec.types import ItemError


@pytest.fixture(scope="module")
def yunet():
    return face_detector("yunet", weights=shared_data_path("models", "yunet", "face_detection_yunet_2023mar.onnx"))


def test_yunet_finds_every_annotated_face_of_faces_dlib(yunet) -> None:
    faces = shared_data_path("faces-dlib", "faces")
    r = evaluate_faces([faces / "testing.xml", faces / "training.xml"], predictor=yunet)
    assert (r["images"], r["faces"], r["found"]) == (9, 43, 43)
    assert r["map50"] > 0.99 and r["bad_files"] == []


def test_detect_through_imgrec_faces_and_align_each_face(yunet) -> None:
    path = shared_data_path("faces-dlib", "faces", "2008_002506.jpg")
    (faces,) = imgrec.faces.detect(str(path), predictor=yunet)
    assert len(faces) == 3 and all(len(d.landmarks) == 5 for d in faces.detections)
    image = imgrec.imaging.load_image(path)
    crops = [align(image, d) for d in faces.detections]
    assert all(c.aligned and c.image.shape == (112, 112, 3) for c in crops)
    for c, d in zip(crops, faces.detections, strict=True):  # the eyes land on the template's eyes
        eyes = np.asarray(d.landmarks[:2]) @ c.matrix[:, :2].T + c.matrix[:, 2]
        np.testing.assert_allclose(eyes, imgrec.faces.TEMPLATES["arcface-112"].points[:2], atol=4)


def test_unknown_detectors_and_misplaced_weights_are_refused() -> None:
    with pytest.raises(UnknownNameError, match="yunet"):
        face_detector("yunett")
    with pytest.raises(UsageError, match="no weights"):
        face_detector("dlib-hog", weights="x.onnx")


def test_blur_files_hides_the_faces_keeps_the_rest_and_reports_bad_files(yunet, tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    photo = imgrec.imaging.load_image(shared_data_path("faces-dlib", "faces", "2008_002506.jpg"))
    Image.fromarray(photo).save(src / "sub" / "three.png")
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(src / "nobody.bmp")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    items = [(str(p), str(src)) for p in sorted(src.rglob("*.*"))]
    done = blur_files(items, tmp_path / "out", yunet, face_options("yunet"))
    errors = [r for r in done if isinstance(r, ItemError)]
    assert [Path(e.path).name for e in errors] == ["broken.jpg"] and errors[0].code == "image_invalid"
    written = {Path(r.out).relative_to(tmp_path / "out").as_posix(): r for r in done if not isinstance(r, ItemError)}
    assert sorted(written) == ["nobody.png", "sub/three.png"] and len(written["nobody.png"].faces) == 0
    out = np.asarray(Image.open(tmp_path / "out" / "sub" / "three.png"))
    hidden = np.zeros(photo.shape[:2], bool)
    for d in written["sub/three.png"].faces.detections:
        x1, y1, x2, y2 = d.box
        mx, my = 0.25 * (x2 - x1), 0.25 * (y2 - y1)
        hidden[int(max(0, y1 - my)) : int(np.ceil(y2 + my)), int(max(0, x1 - mx)) : int(np.ceil(x2 + mx))] = True
        inner = (slice(int(y1), int(y2)), slice(int(x1), int(x2)))
        assert np.abs(out[inner].astype(int) - photo[inner]).mean() > 10  # the face itself is changed
    rows, cols = np.nonzero(~hidden)
    np.testing.assert_array_equal(out[rows, cols], photo[rows, cols])  # lossless PNG: the rest is identical
    (again,) = imgrec.faces.detect(out, predictor=yunet)
    assert len(again) == 0  # no face left to find
    assert (np.asarray(Image.open(tmp_path / "out" / "nobody.png")) == 90).all()

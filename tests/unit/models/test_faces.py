"""The face detectors on real photos (faces-dlib, test-images) and their weights handling."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import shared_data_path

from imgrec.data.imglab import read_imglab
from imgrec.errors import DataError, MissingInputError, ModelFileError, UsageError
from imgrec.imaging import load_image
from imgrec.inference import Predictor
from imgrec.models import create_model
from imgrec.tasks.boxes import box_iou

PHOTO = "2008_002506.jpg"


def yunet_file() -> Path:
    return shared_data_path("models", "yunet", "face_detection_yunet_2023mar.onnx")


@pytest.fixture(scope="module")
def yunet() -> Predictor:
    return Predictor(create_model("yunet", ["face"], weights=yunet_file()))


def annotated(name: str) -> np.ndarray:
    faces = shared_data_path("faces-dlib", "faces")
    for xml in ("testing.xml", "training.xml"):
        ds = read_imglab(faces / xml)
        for src, t in zip(ds.sources, ds.targets or [], strict=True):
            if Path(src).name == name:
                return t.boxes
    raise AssertionError(name)


def opencv_yunet(image: np.ndarray, conf: float = 0.6) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    det = cv2.FaceDetectorYN.create(str(yunet_file()), "", (w, h), conf, 0.3, 5000)
    _, faces = det.detect(np.ascontiguousarray(image[..., ::-1]))
    faces = np.zeros((0, 15), np.float32) if faces is None else faces
    return np.concatenate([faces[:, :2], faces[:, :2] + faces[:, 2:4], faces[:, 4:14]], axis=1)


@pytest.mark.parametrize("name", [PHOTO, "2008_002470.jpg", "2009_004587.jpg", "2007_007763.jpg"])
def test_yunet_matches_opencvs_face_detector_yn(yunet: Predictor, name: str) -> None:
    """Same file, same 640 x 480 frame: the same faces, boxes and landmarks within 2 px."""
    import cv2

    photo = load_image(shared_data_path("faces-dlib", "faces", name))
    frame = np.asarray(cv2.resize(photo, (640, 480), interpolation=cv2.INTER_LINEAR))
    (ours,) = yunet.predict(frame, conf=0.6, iou=0.3)
    theirs = opencv_yunet(frame)
    assert len(ours) == len(theirs) >= 1
    iou = box_iou(ours.boxes, theirs[:, :4])
    pairs = iou.argmax(axis=1)
    assert sorted(pairs.tolist()) == list(range(len(theirs)))
    np.testing.assert_allclose(ours.boxes, theirs[pairs, :4], atol=2.0)
    points = np.array([d.landmarks for d in ours.detections]).reshape(len(ours), 10)
    np.testing.assert_allclose(points, theirs[pairs, 4:], atol=2.0)


def test_yunet_finds_the_annotated_faces_at_any_size(yunet: Predictor) -> None:
    path = shared_data_path("faces-dlib", "faces", PHOTO)
    gt = annotated(PHOTO)
    (faces,) = yunet.predict(str(path), conf=0.6)
    assert len(faces) == 3 and (box_iou(gt, faces.boxes).max(axis=1) > 0.5).all()
    assert all(d.score > 0.85 for d in faces.detections)
    photo = load_image(path)
    for factor in (0.5, 6.0):  # 250 x 188 and 3000 x 2250: resized into 640, mapped back
        big = np.asarray(Image.fromarray(photo).resize((round(500 * factor), round(375 * factor))))
        (scaled,) = yunet.predict(big, conf=0.6)
        assert len(scaled) == 3 and (box_iou(gt * factor, scaled.boxes).max(axis=1) > 0.5).all()


def test_an_exif_rotated_photo_gives_upright_faces(yunet: Predictor, tmp_path: Path) -> None:
    upright = Image.open(shared_data_path("faces-dlib", "faces", PHOTO))
    exif = Image.Exif()
    exif[0x0112] = 6  # the pixels are stored turned left; viewers turn them right
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "rotated.jpg", quality=95, exif=exif.tobytes())
    (faces,) = yunet.predict(str(tmp_path / "rotated.jpg"), conf=0.6)
    assert faces.image_size == (500, 375) and len(faces) == 3
    assert (box_iou(annotated(PHOTO), faces.boxes).max(axis=1) > 0.5).all()


def test_an_image_without_faces_is_an_empty_result(yunet: Predictor) -> None:
    (none,) = yunet.predict(str(shared_data_path("test-images", "owl.jpg")), conf=0.6)
    assert len(none) == 0 and none.image_size[0] > 0


@pytest.mark.parametrize("name", ["ultraface", "ultraface-slim"])
def test_ultraface_finds_the_three_faces_without_landmarks(name: str) -> None:
    file = {"ultraface": "version-RFB-320.onnx", "ultraface-slim": "version-slim-320.onnx"}[name]
    model = create_model(name, ["face"], weights=shared_data_path("models", "ultraface", file))
    assert model.io.input_hw == (240, 320) and model.preprocessing.size == 320
    (faces,) = Predictor(model).predict(str(shared_data_path("faces-dlib", "faces", PHOTO)), conf=0.7, iou=0.3)
    assert len(faces) == 3 and (box_iou(annotated(PHOTO), faces.boxes).max(axis=1) > 0.5).all()
    assert all(d.landmarks is None for d in faces.detections)


@pytest.mark.parametrize("name", ["dlib-hog", "dlib-cnn"])
def test_dlib_detectors_give_faces_with_five_landmarks(name: str) -> None:
    pytest.importorskip("dlib")
    model = create_model(name, ["face"], upsample=0)  # the faces here are 90-110 px: no doubling needed
    (faces,) = Predictor(model).predict(str(shared_data_path("faces-dlib", "faces", PHOTO)), conf=0.5)
    assert len(faces) == 3 and (box_iou(annotated(PHOTO), faces.boxes).max(axis=1) > 0.5).all()
    for d in faces.detections:
        (lx, ly), (rx, ry), (_nx, ny), (mlx, mly), (mrx, mry) = d.landmarks
        x1, _y1, x2, y2 = d.box
        assert x1 - 10 <= lx < rx <= x2 + 10 and max(ly, ry) < ny < min(mly, mry) <= y2 + 10
        assert mlx < mrx


def test_haar_is_refused_clearly_where_opencv_has_no_cascades() -> None:
    import cv2

    from imgrec.errors import DependencyError

    if hasattr(cv2, "CascadeClassifier"):
        (faces,) = Predictor(create_model("haar", ["face"])).predict(
            str(shared_data_path("faces-dlib", "faces", PHOTO)), conf=0.5)  # fmt: skip
        assert len(faces) >= 3 and (box_iou(annotated(PHOTO), faces.boxes).max(axis=1) > 0.4).all()
    else:
        with pytest.raises(DependencyError, match="opencv-python-headless<5"):
            create_model("haar", ["face"])


def test_imported_yunet_and_ultraface_files_give_the_same_faces(yunet: Predictor, tmp_path: Path) -> None:
    from imgrec.models.importer import ImportOptions, import_model

    photo = str(shared_data_path("faces-dlib", "faces", PHOTO))
    run = import_model(yunet_file(), ImportOptions(task="detect", layout="yunet", classes=["face"]), tmp_path / "y")
    (a,), (b,) = Predictor.from_run(run).predict(photo, conf=0.6), yunet.predict(photo, conf=0.6)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    assert a.detections[0].landmarks == b.detections[0].landmarks
    rfb = shared_data_path("models", "ultraface", "version-RFB-320.onnx")
    run = import_model(rfb, ImportOptions(task="detect", layout="ultraface", classes=["face"]), tmp_path / "u")
    (u,) = Predictor.from_run(run).predict(photo, conf=0.7, iou=0.3)
    assert len(u) == 3


def test_weights_files_are_checked() -> None:
    with pytest.raises(MissingInputError, match="not found"):
        create_model("yunet", ["face"], weights="/nonexistent/yunet.onnx")
    with pytest.raises(UsageError, match="one class"):
        create_model("yunet", ["cat", "dog"], weights=yunet_file())
    with pytest.raises(UsageError, match="640 px"):
        create_model("yunet", ["face"], weights=yunet_file(), image_size=320)
    with pytest.raises(ModelFileError, match=r"takes \[1, 3, 240, 320\] and gives 2 outputs"):
        create_model("yunet", ["face"], weights=shared_data_path("models", "ultraface", "version-RFB-320.onnx"))
    with pytest.raises(ModelFileError, match="ONNX Runtime"):
        create_model("ultraface", ["face"], weights=shared_data_path("faces-dlib", "faces", "testing.xml"))


@contextmanager
def serving(payload: bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/face_detection_yunet_2023mar.onnx"
    finally:
        server.shutdown()
        thread.join()


def test_without_weights_the_official_file_is_downloaded_once_and_sha256_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    from imgrec.models import faces

    monkeypatch.setenv("IMGREC_HOME", str(tmp_path))
    for key in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    payload = yunet_file().read_bytes()
    with serving(payload) as url:
        monkeypatch.setitem(faces.FACE_FILES, "yunet", dataclasses.replace(faces.FACE_FILES["yunet"], url=url))
        model = create_model("yunet", ["face"])
        assert model.path.parent == tmp_path / "weights" and model.path.read_bytes() == payload
        bad = dataclasses.replace(faces.FACE_FILES["yunet"], url=url + "?v=2", sha256="0" * 64)
        monkeypatch.setitem(faces.FACE_FILES, "yunet", bad)
        with pytest.raises(DataError, match="sha256"):
            create_model("yunet", ["face"])
    assert len(list((tmp_path / "weights").iterdir())) == 1  # the mismatching download was not kept


def test_a_pretrained_face_detector_is_not_trained() -> None:
    from imgrec.data.boxes import BoxTarget
    from imgrec.data.dataset import ImageDataset
    from imgrec.errors import ConfigError
    from imgrec.training.detect_api import check_detection_pair

    ds = ImageDataset.for_detection(["face"], ["a.jpg"], [BoxTarget.from_lists([[0, 0, 5, 5]], [0])])
    with pytest.raises(ConfigError, match="cannot train"):
        check_detection_pair(ds, "yunet")


def test_offline_without_weights_says_to_pass_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imgrec.models import faces

    monkeypatch.setenv("IMGREC_HOME", str(tmp_path))
    dead = dataclasses.replace(faces.FACE_FILES["yunet"], url="http://127.0.0.1:9/face_detection_yunet_2023mar.onnx")
    monkeypatch.setitem(faces.FACE_FILES, "yunet", dead)
    with pytest.raises(MissingInputError, match=r"give the file itself: weights=FILE") as err:
        create_model("yunet", ["face"])
    worded = str(err.value.for_option("--detector-weights"))
    assert "--detector-weights FILE (the file is face_detection_yunet" in worded

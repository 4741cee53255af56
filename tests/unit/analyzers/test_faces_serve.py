"""A served face detector answers its landmarks, in original pixels, like Predictor.predict."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import shared_data_path

pytestmark = [pytest.mark.realdata]
pytest.importorskip("onnxruntime")
pytest.importorskip("fastapi")


def test_serve_returns_face_landmarks() -> None:
    from fastapi.testclient import TestClient

    from imgrec.analyzers.faces import face_detector
    from imgrec.serve import ServeConfig, create_app

    predictor = face_detector("yunet", weights=shared_data_path("models", "yunet", "face_detection_yunet_2023mar.onnx"))
    image = shared_data_path("faces-dlib", "faces", "2008_002506.jpg")
    expected = predictor.predict(image)[0]
    assert len(expected.detections) == 3
    with TestClient(create_app({"yunet": predictor}, ServeConfig())) as client:
        r = client.post("/v1/models/yunet/predict", files=[("files", ("f.jpg", image.read_bytes(), "image/jpeg"))])
    assert r.status_code == 200, r.text
    (entry,) = r.json()["predictions"]
    got = [d["landmarks"] for d in entry["detections"]]
    assert all(len(points) == 5 for points in got)
    np.testing.assert_allclose(got, [d.landmarks for d in expected.detections], atol=0.01)

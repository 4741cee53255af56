"""Every bad input of the HTTP error contract, and what error bodies never contain."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.serve.helpers import (
    FailingClassifier,
    jpeg_bytes,
    make_predictor,
    png_bytes,
    png_header_claiming,
    truncated_jpeg,
)

import imgrec

PREDICT = "/v1/models/bright/predict"
SRC_DIR = str(Path(imgrec.__file__).resolve().parent)


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == r.headers["x-request-id"]
    assert body["error"]["message"]
    assert "Traceback" not in r.text and SRC_DIR not in r.text and 'File "' not in r.text
    return body["error"]


def _one(name: str, data: bytes, ctype: str = "application/octet-stream") -> dict:
    return {"file": (name, data, ctype)}


def test_oversize_upload_is_413_from_content_length(make_client):
    client = make_client(max_upload_bytes=2000)
    r = client.post(PREDICT, content=jpeg_bytes(size=(300, 300)), headers={"Content-Type": "image/jpeg"})
    err = _error(r, 413, "payload_too_large")
    assert "2000 bytes" in err["message"]


def test_a_text_file_is_415(client):
    err = _error(
        client.post(PREDICT, files=_one("notes.txt", b"just some text\n", "text/plain")), 415, "unsupported_media_type"
    )
    assert "notes.txt" in err["message"]


def test_a_body_that_is_neither_multipart_nor_an_image_is_415(client):
    _error(client.post(PREDICT, json={"image": "cat.jpg"}), 415, "unsupported_media_type")


def test_a_disallowed_but_real_format_is_415(make_client):
    client = make_client(allowed_formats=("JPEG",))
    _error(client.post(PREDICT, files=_one("a.png", png_bytes(), "image/png")), 415, "unsupported_media_type")


def test_a_truncated_jpeg_is_422_image_invalid(client):
    _error(client.post(PREDICT, files=_one("cut.jpg", truncated_jpeg(), "image/jpeg")), 422, "image_invalid")


def test_a_png_claiming_100k_by_100k_pixels_is_422_image_too_large(client):
    r = client.post(PREDICT, files=_one("bomb.png", png_header_claiming(100_000, 100_000), "image/png"))
    _error(r, 422, "image_too_large")


def test_max_pixels_is_configurable(make_client):
    client = make_client(max_pixels=1000)
    _error(client.post(PREDICT, files=_one("a.png", png_bytes(size=(40, 30)), "image/png")), 422, "image_too_large")


def test_unknown_model_is_404_with_suggestion(client):
    err = _error(client.post("/v1/models/brigth/predict", files=_one("a.png", png_bytes())), 404, "not_found")
    assert "'bright'" in err["message"]
    _error(client.get("/v1/models/brigth"), 404, "not_found")


def test_unknown_route_is_404_and_wrong_method_405(client):
    _error(client.get("/v2/anything"), 404, "not_found")
    err = _error(client.put("/v1/models"), 405, "method_not_allowed")
    assert "GET" in err["message"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"files": {"picture": ("a.png", png_bytes(), "image/png")}},
        {"data": {"file": "not a file"}, "files": {"other": ("x", b"x", "text/plain")}},
        {"content": b"", "headers": {"Content-Type": "image/png"}},
    ],
    ids=["wrong-field", "text-field", "empty-raw-body"],
)
def test_missing_image_is_422_validation_error(client, kwargs):
    _error(client.post(PREDICT, **kwargs), 422, "validation_error")


def test_malformed_multipart_is_400(client):
    headers = {"Content-Type": "multipart/form-data"}  # no boundary
    _error(client.post(PREDICT, content=b"--x\r\n", headers=headers), 400, "bad_request")


def test_too_many_files_is_400(make_client):
    client = make_client(max_images_per_request=2)
    files = [("files", (f"{i}.png", png_bytes(), "image/png")) for i in range(3)]
    _error(client.post(PREDICT, files=files), 400, "bad_request")


@pytest.mark.parametrize("query", ["top_k=0", "top_k=1000", "top_k=two", "threshold=1.5"])
def test_bad_query_values_are_422_validation_error_in_the_contract_shape(client, query):
    err = _error(client.post(f"{PREDICT}?{query}", files=_one("a.png", png_bytes())), 422, "validation_error")
    assert query.split("=")[0] in err["message"]


def test_a_mixed_batch_answers_200_with_one_error_entry(client):
    files = [
        ("files", ("good.png", png_bytes(250), "image/png")),
        ("files", ("broken.jpg", truncated_jpeg(), "image/jpeg")),
        ("files", ("good2.jpg", jpeg_bytes(), "image/jpeg")),
    ]
    r = client.post(PREDICT, files=files)
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert [p["filename"] for p in preds] == ["good.png", "broken.jpg", "good2.jpg"]
    assert preds[0]["label"] == "light" and "label" in preds[2]
    assert preds[1]["error"]["code"] == "image_invalid" and "label" not in preds[1]
    metrics = client.get("/metrics").text
    assert 'imgrec_images_total{model="bright",outcome="error"} 1.0' in metrics
    assert 'imgrec_errors_total{code="image_invalid"} 1.0' in metrics


def test_a_model_bug_is_a_generic_500_without_traceback_or_path(make_client, caplog):
    client = make_client({"bright": make_predictor(FailingClassifier)}, raise_server_exceptions=False)
    r = client.post(PREDICT, files=_one("a.png", png_bytes(), "image/png"))
    err = _error(r, 500, "internal_error")
    assert "weights missing" not in r.text and "tests" not in err["message"]
    assert err["request_id"] in caplog.text  # the details went to the log, under the request id


def test_not_ready_before_the_lifespan_started():
    from fastapi.testclient import TestClient

    from imgrec.serve import create_app

    client = TestClient(create_app({"bright": make_predictor()}))  # no `with`: lifespan not run
    r = client.get("/readyz")
    _error(r, 503, "not_ready")
    assert r.headers["retry-after"] == "1"
    _error(client.post(PREDICT, files=_one("a.png", png_bytes())), 503, "not_ready")
    assert client.get("/healthz").status_code == 200

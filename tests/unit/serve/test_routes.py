from __future__ import annotations

import pytest
from tests.unit.serve.helpers import jpeg_bytes, make_predictor, png_bytes


def _files(*items: tuple[str, bytes, str], field: str = "files") -> list:
    return [(field, item) for item in items]


def test_predict_one_multipart_file_returns_label_top_k_and_request_fields(client):
    r = client.post("/v1/models/bright/predict?top_k=2", files={"file": ("white.png", png_bytes(250), "image/png")})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "bright" and body["latency_ms"] >= 0
    assert body["request_id"] == r.headers["x-request-id"]
    (pred,) = body["predictions"]
    assert pred["filename"] == "white.png" and pred["label"] == "light"
    assert [c["label"] for c in pred["top_k"]] == ["light", "dark"]
    assert pred["score"] == pred["top_k"][0]["score"] > 0.9


def test_predict_many_files_keeps_upload_order(client):
    files = _files(
        ("a.png", png_bytes(5), "image/png"),
        ("b.jpg", jpeg_bytes(), "image/jpeg"),
        ("c.png", png_bytes(250), "image/png"),
    )
    preds = client.post("/v1/models/bright/predict", files=files).json()["predictions"]
    assert [p["filename"] for p in preds] == ["a.png", "b.jpg", "c.png"]
    assert preds[0]["label"] == "dark" and preds[2]["label"] == "light"


def test_predict_raw_image_body(client):
    headers = {"Content-Type": "image/png", "X-Filename": "C:\\photos\\night.png"}
    r = client.post("/v1/models/bright/predict", content=png_bytes(3), headers=headers)
    assert r.status_code == 200
    assert r.json()["predictions"][0] | {"top_k": None} == {
        "filename": "night.png",
        "label": "dark",
        "score": pytest.approx(0.988, abs=1e-3),
        "top_k": None,
    }


def test_top_k_defaults_from_config_and_is_capped_by_the_class_count(make_client):
    client = make_client(top_k_default=1)
    pred = client.post("/v1/models/bright/predict", files={"file": ("a.png", png_bytes(), "image/png")}).json()
    assert len(pred["predictions"][0]["top_k"]) == 1
    pred = client.post("/v1/models/bright/predict?top_k=50", files={"file": ("a.png", png_bytes(), "image/png")})
    assert len(pred.json()["predictions"][0]["top_k"]) == 2


def test_threshold_turns_an_unsure_label_into_unknown(client):
    r = client.post(
        "/v1/models/bright/predict?threshold=0.95", content=png_bytes(128), headers={"Content-Type": "image/png"}
    )
    pred = r.json()["predictions"][0]
    assert pred["label"] == "unknown" and pred["score"] < 0.95


def test_file_names_are_reduced_to_base_names(client):
    files = {"file": ("../../etc/dir\\photo.png", png_bytes(), "image/png")}
    assert client.post("/v1/models/bright/predict", files=files).json()["predictions"][0]["filename"] == "photo.png"


def test_models_list_and_detail(make_client):
    client = make_client({"bright": make_predictor(), "other": make_predictor()})
    listed = client.get("/v1/models").json()["models"]
    assert [m["name"] for m in listed] == ["bright", "other"]
    assert listed[0] == {
        "name": "bright",
        "architecture": "brightness",
        "family": "classical",
        "task": "classify",
        "num_classes": 2,
        "image_size": 16,
    }
    detail = client.get("/v1/models/other").json()
    assert detail["classes"] == ["dark", "light"]
    assert detail["preprocessing"]["size"] == 16
    assert detail["metrics"] == {"test": {"accuracy": 0.9, "macro_f1": 0.8}}


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok", "models": ["bright"]}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"] == ["bright"]


def test_metrics_are_prometheus_text_from_the_app_registry(client):
    client.post("/v1/models/bright/predict", files={"file": ("a.png", png_bytes(), "image/png")})
    client.get("/v1/models/nope")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'imgrec_http_requests_total{method="POST",route="/v1/models/{name}/predict",status="200"} 1.0' in text
    assert 'imgrec_images_total{model="bright",outcome="predicted"} 1.0' in text
    assert 'imgrec_batch_size_count{model="bright"} 1.0' in text
    assert 'imgrec_errors_total{code="not_found"} 1.0' in text
    assert 'imgrec_queue_depth{model="bright"} 0.0' in text
    assert "imgrec_http_request_duration_seconds_bucket" in text


def test_two_apps_do_not_share_metrics(make_client):
    first, second = make_client(), make_client()
    first.get("/healthz")
    assert 'route="/healthz"' in first.get("/metrics").text
    assert 'route="/healthz"' not in second.get("/metrics").text


def test_request_id_is_echoed_or_generated(client):
    r = client.get("/v1/models", headers={"X-Request-ID": "trace-42.a"})
    assert r.headers["x-request-id"] == "trace-42.a"
    assert r.headers["server-timing"].startswith("app;dur=")
    bad = client.get("/v1/models", headers={"X-Request-ID": "no spaces <allowed>"})
    assert bad.headers["x-request-id"] != "no spaces <allowed>" and len(bad.headers["x-request-id"]) == 32
    err = client.get("/v1/models/nope", headers={"X-Request-ID": "abc"})
    assert err.json()["error"]["request_id"] == "abc" == err.headers["x-request-id"]


def test_openapi_documents_routes_tags_bodies_and_errors(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/models", "/v1/models/{name}", "/v1/models/{name}/predict", "/healthz", "/readyz", "/metrics"} <= set(
        spec["paths"]
    )
    predict = spec["paths"]["/v1/models/{name}/predict"]["post"]
    assert predict["tags"] == ["predict"]
    assert set(predict["requestBody"]["content"]) == {"multipart/form-data", "image/*"}
    assert {"400", "404", "413", "415", "422", "503"} <= set(predict["responses"])
    assert predict["responses"]["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    names = {p["name"] for p in predict["parameters"]}
    assert names == {"name", "top_k", "threshold", "conf", "iou", "max_det", "classes", "masks"}
    assert "examples" in spec["components"]["schemas"]["PredictResponse"]
    assert "deadline_exceeded" in spec["info"]["description"]


def test_web_page_and_its_assets_are_served_without_a_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-auth="false"' in page.text and 'id="file-input"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset, kind in (("/static/app.css", "text/css"), ("/static/app.js", "javascript")):
        r = client.get(asset)
        assert r.status_code == 200 and kind in r.headers["content-type"]
    everything = page.text + client.get("/static/app.css").text + client.get("/static/app.js").text
    assert "http://" not in everything and "https://" not in everything and "//cdn" not in everything

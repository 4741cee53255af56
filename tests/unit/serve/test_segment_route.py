"""``imgrec serve`` with a segmentation run: RLE masks (and index PNGs on request) in the
original image's pixels, the schema in /openapi.json, the error contract (422, never 500)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from tests.imported_segmenters import SELFIE, import_segmenter, photo
from tests.unit.serve.helpers import make_predictor, truncated_jpeg

from imgrec.inference import Predictor
from imgrec.serve import ServeConfig, create_app

pytestmark = [pytest.mark.realdata]
mask_utils = pytest.importorskip("pycocotools.mask")


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> Predictor:
    return Predictor.from_run(import_segmenter(SELFIE, tmp_path_factory.mktemp("runs") / "selfie"))


@pytest.fixture
def client(predictor):
    app = create_app({"selfie": predictor, "bright": make_predictor()}, ServeConfig())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _post(client, data: bytes, query: str = "", name: str = "face.jpg"):
    return client.post(f"/v1/models/selfie/predict{query}", files=[("files", (name, data, "image/jpeg"))])


def test_masks_as_rle_and_png_equal_the_predictor(client, predictor):
    image = photo("face.jpg")
    (expected,) = predictor.predict(image)
    r = _post(client, image.read_bytes(), "?masks=png")
    assert r.status_code == 200, r.text
    (entry,) = r.json()["predictions"]
    assert entry["filename"] == "face.jpg" and entry["image_size"] == [512, 355]
    (person,) = entry["segments"]
    assert (person["label"], person["class_id"]) == ("person", 1) and 0.8 < person["score"] <= 1.0
    rle = mask_utils.decode({"size": person["rle"]["size"], "counts": person["rle"]["counts"].encode()})
    np.testing.assert_array_equal(rle, expected.mask == 1)
    assert person["area"] == int((expected.mask == 1).sum())
    png = np.asarray(Image.open(io.BytesIO(base64.b64decode(entry["mask_png"]))))
    np.testing.assert_array_equal(png, expected.mask)
    plain = _post(client, image.read_bytes()).json()["predictions"][0]
    assert "mask_png" not in plain and plain["segments"] == entry["segments"]


def test_threshold_and_listing(client):
    low = _post(client, photo("face.jpg").read_bytes(), "?threshold=0.05").json()["predictions"][0]
    high = _post(client, photo("face.jpg").read_bytes(), "?threshold=0.95").json()["predictions"][0]
    assert low["segments"][0]["area"] > high["segments"][0]["area"]
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["selfie"]["task"] == "segment" and models["selfie"]["image_size"] == 256


def test_errors_follow_the_contract(client):
    bad = _post(client, truncated_jpeg())
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "image_invalid"
    for query in ("?conf=0.3", "?classes=unicorn", "?threshold=2"):
        r = _post(client, photo("face.jpg").read_bytes(), query)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (query, r.text)
    r = client.post("/v1/models/bright/predict?masks=png", content=photo("face.jpg").read_bytes(),
                    headers={"content-type": "image/jpeg"})  # fmt: skip
    assert r.status_code == 422 and "segmentation" in r.json()["error"]["message"]
    mixed = client.post("/v1/models/selfie/predict", files=[("files", ("a.jpg", photo("face.jpg").read_bytes(),
                        "image/jpeg")), ("files", ("b.jpg", truncated_jpeg(), "image/jpeg"))])  # fmt: skip
    a, b = mixed.json()["predictions"]
    assert mixed.status_code == 200 and a["segments"] and b["error"]["code"] == "image_invalid"


def test_openapi_lists_the_segmentation_schema(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"ImageSegmentation", "SegmentOut", "RleOut", "ImageInstances"} <= set(schemas)
    params = {p["name"] for p in spec["paths"]["/v1/models/{name}/predict"]["post"]["parameters"]}
    assert "masks" in params
    assert "segment" in client.get("/docs").text.lower()

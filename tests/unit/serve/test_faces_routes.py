"""The face routes through the HTTP app (YuNet + MobileFaceNet, a SQLite store in tmp_path, real
johns crops and faces-dlib photos): every route, the error contract, API keys, an embed run on
the predict route, and concurrent enroll/search from two app instances sharing one database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.conftest import shared_data_path
from tests.embed_helpers import import_mobilefacenet, johns, yunet_file

from imgrec.serve import ServeConfig, create_app

pytestmark = [pytest.mark.realdata]
pytest.importorskip("onnxruntime")
pytest.importorskip("sqlalchemy")
THRESHOLD = 0.36  # MobileFaceNet's threshold_eer on johns


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    from imgrec.analyzers.faces import face_detector, face_embedder

    run = import_mobilefacenet(tmp_path_factory.mktemp("mfn") / "mobilefacenet")
    return face_detector("yunet", weights=yunet_file()), face_embedder(run)


def face_service(models: tuple, db: Path, served: str = "staff"):
    from imgrec.analyzers.faces import FaceRecognizer
    from imgrec.serve.faces import FaceService
    from imgrec.store import open_store

    return FaceService(open_store(db), FaceRecognizer(*models), served)


@pytest.fixture
def client(models, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app({}, ServeConfig(), faces=face_service(models, tmp_path / "db"))
    with TestClient(app) as c:
        yield c


def crop(person: str, i: int) -> bytes:
    return sorted((johns() / person).glob("*.jpg"))[i].read_bytes()


def files(*images: bytes) -> list:
    return [("files", (f"{k}.jpg", data, "image/jpeg")) for k, data in enumerate(images)]


def error(r) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def test_every_route_from_create_to_delete(client: TestClient) -> None:
    r = client.post("/v1/collections", json={"name": "staff", "threshold": THRESHOLD})
    assert r.status_code == 201, r.text
    assert (r.json()["embedder"], r.json()["dim"], r.json()["faces"]) == ("mobilefacenet", 128, 0)
    r = client.post("/v1/collections/staff/faces", data={"person": "John Savage"},
                    files=files(*(crop("John_Savage", i) for i in range(3))))  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 3 and [i["status"] for i in r.json()["images"]] == ["added"] * 3
    assert r.json()["images"][0]["filename"] == "0.jpg" and len(r.json()["images"][0]["boxes"][0]) == 4
    raw = client.post("/v1/collections/staff/faces?person=John%20Shimkus", content=crop("John_Shimkus", 0),
                      headers={"Content-Type": "image/jpeg"})  # fmt: skip
    assert raw.status_code == 200 and raw.json()["added"] == 1
    assert [c["faces"] for c in client.get("/v1/collections").json()["collections"]] == [4]
    assert client.get("/v1/collections/staff").json()["faces"] == 4
    persons = client.get("/v1/collections/staff/persons").json()["persons"]
    assert [(p["name"], p["faces"]) for p in persons] == [("John Savage", 3), ("John Shimkus", 1)]
    found = client.post("/v1/collections/staff/search?top_k=2", files=files(crop("John_Savage", 6))).json()
    (face,) = found["faces"]
    assert face["label"] == "John Savage" and face["similarity"] > THRESHOLD and len(face["landmarks"]) == 5
    assert [m["person"] for m in face["matches"]] == ["John Savage", "John Shimkus"] and found["threshold"] == THRESHOLD
    owl = shared_data_path("test-images", "owl.jpg").read_bytes()
    none = client.post("/v1/collections/staff/search", files=files(owl))
    assert none.status_code == 200 and none.json()["faces"] == []
    group = shared_data_path("faces-dlib", "faces", "2008_002506.jpg").read_bytes()
    det = client.post("/v1/faces/detect", files=files(group, owl)).json()["predictions"]
    assert [len(p["detections"]) for p in det] == [3, 0] and all(len(d["landmarks"]) == 5 for d in det[0]["detections"])
    gone = client.delete("/v1/collections/staff/persons/John Savage")
    assert gone.status_code == 200 and gone.json()["removed_faces"] == 3
    again = client.post("/v1/collections/staff/search", files=files(crop("John_Savage", 6))).json()["faces"][0]
    assert again["label"] == "unknown"
    assert client.delete("/v1/collections/staff").json() == {"collection": "staff", "deleted_faces": 1}
    assert error(client.get("/v1/collections/staff")) == (404, "not_found")


def test_client_mistakes_get_the_contract_codes(client: TestClient, models) -> None:
    assert client.post("/v1/collections", json={"name": "staff", "threshold": THRESHOLD}).status_code == 201
    r = client.get("/v1/collections/staf/persons")
    assert error(r) == (404, "not_found") and "Did you mean 'staff'" in r.json()["error"]["message"]
    assert error(client.post("/v1/collections", json={"name": "staff", "threshold": 0.4})) == (409, "conflict")
    assert error(client.post("/v1/collections", json={"name": "x", "threshold": 7})) == (422, "validation_error")
    no_threshold = client.post("/v1/collections", json={"name": "x"})  # an imported embedder has no default
    assert error(no_threshold) == (400, "bad_request") and "threshold" in no_threshold.json()["error"]["message"]
    corrupt = b"\xff\xd8\xff\xe0" + bytes(64)
    assert error(client.post("/v1/collections/staff/search", files=files(corrupt))) == (422, "image_invalid")
    assert error(client.post("/v1/collections/staff/faces", files=files(crop("John_Simm", 0)))) == (
        422, "validation_error")  # fmt: skip
    two = files(crop("John_Simm", 0), corrupt)
    bad = client.post("/v1/collections/staff/faces", data={"person": "Simm"}, files=two)
    assert bad.status_code == 200 and [i["status"] for i in bad.json()["images"]] == ["added", "error"]
    assert error(client.post("/v1/collections/staff/search", files=files(crop("John_Simm", 0), corrupt))) == (
        400, "bad_request")  # fmt: skip
    assert error(client.post("/v1/collections/staff/search?top_k=0", files=files(corrupt)))[0] == 422
    assert error(client.delete("/v1/collections/staff/persons/Nobody")) == (404, "not_found")
    assert error(client.post("/v1/faces/detect", content=b"text", headers={"Content-Type": "text/plain"})) == (
        415, "unsupported_media_type")  # fmt: skip
    client.app.state.faces.store.collections.create("dlib", embedder="dlib-resnet", dim=128, threshold=0.9)
    r = client.post("/v1/collections/dlib/search", files=files(crop("John_Simm", 1)))
    assert error(r) == (409, "conflict") and "'dlib-resnet'" in r.json()["error"]["message"]


def test_api_keys_guard_the_face_routes(models, tmp_path: Path) -> None:
    app = create_app({}, ServeConfig(api_keys=("k1",)), faces=face_service(models, tmp_path / "db"))
    with TestClient(app) as c:
        assert error(c.get("/v1/collections")) == (401, "auth_required")
        assert error(c.post("/v1/faces/detect", files=files(crop("John_Simm", 0)))) == (401, "auth_required")
        assert error(c.get("/v1/collections", headers={"Authorization": "Bearer nope"})) == (403, "forbidden")
        assert c.get("/v1/collections", headers={"Authorization": "Bearer k1"}).json()["served"] == "staff"
        paths = c.get("/openapi.json").json()["paths"]
    assert {"/v1/faces/detect", "/v1/collections", "/v1/collections/{collection}", "/v1/collections/{collection}/faces",
            "/v1/collections/{collection}/persons", "/v1/collections/{collection}/persons/{person}",
            "/v1/collections/{collection}/search"} <= set(paths)  # fmt: skip
    assert "409" in paths["/v1/collections"]["post"]["responses"]


def test_an_embed_run_answers_its_vectors_on_the_predict_route(models) -> None:
    _, embedder = models
    image = crop("John_Savage", 0)
    (expected,) = embedder.predictor.predict(image)
    with TestClient(create_app({"mfn": embedder.predictor}, ServeConfig())) as c:
        r = c.post("/v1/models/mfn/predict", files=files(image))
        assert r.status_code == 200, r.text
        (entry,) = r.json()["predictions"]
        assert (entry["embedder"], entry["dim"]) == ("mobilefacenet", 128)
        np.testing.assert_allclose(entry["embedding"], expected.vector, atol=1e-6)
        assert error(c.post("/v1/models/mfn/predict?conf=0.5", files=files(image))) == (422, "validation_error")
        assert c.get("/v1/models/mfn").json()["task"] == "embed"


def test_two_workers_enroll_and_search_one_sqlite_collection_at_once(models, tmp_path: Path) -> None:
    """Two app instances (two stores on one file, as two server processes have) and 6 threads:
    every enrollment lands, searches see consistent rows, the file passes SQLite's check."""
    db = tmp_path / "db"
    apps = [create_app({}, ServeConfig(workers_threads=3), faces=face_service(models, db)) for _ in range(2)]
    persons = ["John_Savage", "John_Shimkus", "John_Simm", "John_Salley"]
    failures: list[str] = []
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        assert a.post("/v1/collections", json={"name": "staff", "threshold": THRESHOLD}).status_code == 201
        clients = [a, b]

        def enroll(k: int) -> None:
            c, person = clients[k % 2], persons[k]
            for i in range(3):
                r = c.post("/v1/collections/staff/faces", data={"person": person}, files=files(crop(person, i)))
                if r.status_code != 200 or r.json()["added"] != 1:
                    failures.append(f"enroll {person} {i}: {r.status_code} {r.text[:200]}")

        def search(k: int) -> None:
            for i in range(4):
                r = clients[k % 2].post("/v1/collections/staff/search", files=files(crop(persons[i], 8)))
                if r.status_code != 200:
                    failures.append(f"search: {r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=enroll, args=(k,)) for k in range(4)]
        threads += [threading.Thread(target=search, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert failures == []
        listed = b.get("/v1/collections/staff/persons").json()["persons"]
        assert sorted((p["name"], p["faces"]) for p in listed) == [(p, 3) for p in sorted(persons)]
        assert a.get("/v1/collections/staff").json()["faces"] == 12
        for i, person in enumerate(persons):
            r = clients[i % 2].post("/v1/collections/staff/search", files=files(crop(person, 9))).json()
            assert r["faces"][0]["label"] == person
    import sqlalchemy as sa

    with sa.create_engine(f"sqlite:///{db / 'imgrec.db'}").connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert conn.exec_driver_sql("SELECT count(*) FROM faces").scalar() == 12

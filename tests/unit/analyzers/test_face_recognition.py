"""Detect -> align -> embed -> match a collection, on real photos and crops (YuNet + MobileFaceNet,
a SQLite store in tmp_path): enroll / identify / verify, hostile inputs, clustering, evaluation."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import shared_data_path
from tests.embed_helpers import import_mobilefacenet, johns, yunet_file

from imgrec.analyzers.faces import (
    FaceRecognizer,
    cluster_faces,
    embed_faces,
    evaluate_embedder,
    face_detector,
    face_embedder,
    threshold_from_report,
)
from imgrec.errors import ConflictError, DataError, InvalidImageError, ModelFileError, UnknownNameError, UsageError
from imgrec.imaging import load_image
from imgrec.tasks.boxes import box_iou

PHOTO = "2008_002506.jpg"  # three faces, 90 to 110 px
THRESHOLD = 0.36  # MobileFaceNet's threshold_eer on johns (tests below measure it)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory):
    return face_embedder(import_mobilefacenet(tmp_path_factory.mktemp("mfn") / "run"))


@pytest.fixture(scope="module")
def detector():
    return face_detector("yunet", weights=yunet_file())


@pytest.fixture
def recognizer(detector, embedder) -> FaceRecognizer:
    return FaceRecognizer(detector, embedder)


@pytest.fixture
def store(tmp_path: Path):
    pytest.importorskip("sqlalchemy")
    from imgrec.store import open_store

    s = open_store(tmp_path / "db")
    yield s
    s.close()


def face_crops(tmp_path: Path) -> tuple[np.ndarray, list[Path], np.ndarray]:
    """The photo, one JPEG per face (its box grown by 60% per side), and the faces' boxes."""
    photo = load_image(shared_data_path("faces-dlib", "faces", PHOTO))
    (faces,) = face_detector("yunet", weights=yunet_file()).predict(photo, conf=0.6, iou=0.3)
    files = []
    for i, (x1, y1, x2, y2) in enumerate(faces.boxes):
        m = 0.6 * max(x2 - x1, y2 - y1)
        box = (max(0, x1 - m), max(0, y1 - m), min(photo.shape[1], x2 + m), min(photo.shape[0], y2 + m))
        files.append(tmp_path / f"face{i}.jpg")
        Image.fromarray(photo).crop(tuple(round(v) for v in box)).save(files[-1], quality=95)
    return photo, files, faces.boxes


def test_face_embedder_by_name_or_run_and_its_refusals(embedder, tmp_path: Path) -> None:
    assert (embedder.name, embedder.dim, embedder.template, embedder.size) == ("mobilefacenet", 128, "arcface-112", 112)
    with pytest.raises(UnknownNameError, match="dlib-resnet"):
        face_embedder("dlib-resnett")
    with pytest.raises(UsageError, match="drop weights"):
        face_embedder(embedder.predictor.run_dir, weights=yunet_file())
    with pytest.raises(UsageError, match="drop --embedder-weights"):
        face_embedder(embedder.predictor.run_dir, weights=yunet_file(), weights_option="--embedder-weights")
    from imgrec.models.importer import ImportOptions, import_model

    run = import_model(yunet_file(), ImportOptions(task="detect", layout="yunet", classes=["face"]), tmp_path / "y")
    with pytest.raises(UsageError, match="not a face embedder"):
        face_embedder(run)


def test_embed_faces_aligns_every_face_of_a_photo(detector, embedder) -> None:
    path = shared_data_path("faces-dlib", "faces", PHOTO)
    faces = embed_faces(str(path), detector, embedder)
    assert len(faces) == 3 and all(f.aligned and f.crop.shape == (112, 112, 3) for f in faces)
    assert all(f.embedding.path == str(path) and f.embedding.embedder == "mobilefacenet" for f in faces)
    (largest,) = embed_faces(path.read_bytes(), detector, embedder, all_faces=False)
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert largest.box == faces[int(np.argmax(areas))].box
    sims = np.stack([f.embedding.vector for f in faces]) @ largest.embedding.vector
    assert sims.max() > 0.999 and np.sort(sims)[-2] < 0.6  # the same face again; the others are other people
    owl = str(shared_data_path("test-images", "owl.jpg"))
    assert embed_faces(owl, detector, embedder) == []
    (whole,) = embed_faces(owl, detector, embedder, fallback=True)
    assert whole.detection is None and not whole.aligned and whole.to_dict()["box"] is None


def test_enroll_identify_verify_round_trip(recognizer: FaceRecognizer, store, tmp_path: Path) -> None:
    photo, crops, boxes = face_crops(tmp_path)
    staff = store.collections.create("staff", embedder="mobilefacenet", dim=128, threshold=THRESHOLD)
    for i, crop in enumerate(crops):
        report = recognizer.enroll(staff, f"person{i}", [crop])
        assert [r.status for r in report.images] == ["added"] and len(report.added) == 1
    assert staff.size() == 3 and [p.name for p in staff.persons()] == ["person0", "person1", "person2"]

    mirrored = np.ascontiguousarray(photo[:, ::-1])  # another view: the faces turned the other way
    found = recognizer.identify(staff, mirrored, top_k=2)
    assert len(found) == 3
    for face in found:
        x1, y1, x2, y2 = face.detection.box
        unmirrored = np.array([[photo.shape[1] - x2, y1, photo.shape[1] - x1, y2]], np.float32)
        who = int(box_iou(unmirrored, boxes).argmax())
        assert face.label == f"person{who}" and face.similarity > 0.8 and face.aligned
        assert len(face.matches) == 2 and face.matches[1].similarity < face.similarity
    assert json.dumps([f.to_dict() for f in found])

    same = recognizer.verify(crops[0], np.ascontiguousarray(load_image(crops[0])[:, ::-1]), threshold=THRESHOLD)
    other = recognizer.verify(crops[0], crops[1], threshold=THRESHOLD)
    assert same.same and same.similarity > 0.8 and not other.same and other.similarity < THRESHOLD


def test_enroll_is_idempotent_and_says_why_it_skips(recognizer: FaceRecognizer, store, tmp_path: Path) -> None:
    _, crops, _ = face_crops(tmp_path)
    staff = store.collections.create("staff", embedder="mobilefacenet", dim=128, threshold=THRESHOLD)
    first = recognizer.enroll(staff, "ada", [crops[0]])
    owl = shared_data_path("test-images", "owl.jpg")
    corrupt = crops[1].read_bytes()[:2000]
    again = recognizer.enroll(staff, "ada", [crops[0], str(owl), corrupt, crops[1]])
    assert [r.status for r in again.images] == ["already_enrolled", "no_face", "error", "added"]
    assert again.images[0].face_ids == first.added and again.images[1].message == "no face found"
    assert again.images[2].source is None and "image" in again.images[2].message
    assert len(again.added) == 1 and staff.size() == 2
    nothing = recognizer.enroll(staff, "bob", [str(owl)])
    assert nothing.added == () and staff.size() == 2 and [p.name for p in staff.persons()] == ["ada"]
    with pytest.raises(ConflictError, match="already enrolled"):
        recognizer.enroll(staff, "bob", [crops[0]])
    assert staff.size() == 2
    other = store.collections.create("dlib", embedder="dlib-resnet", dim=128, threshold=0.9)
    with pytest.raises(ConflictError, match="not comparable"):
        recognizer.enroll(other, "ada", [crops[0]])


def test_hostile_inputs_to_identify_and_verify(recognizer: FaceRecognizer, store) -> None:
    staff = store.collections.create("staff", embedder="mobilefacenet", dim=128, threshold=THRESHOLD)
    owl = str(shared_data_path("test-images", "owl.jpg"))
    assert recognizer.identify(staff, owl) == []
    with pytest.raises(InvalidImageError):
        recognizer.identify(staff, b"\xff\xd8\xff\xe0 truncated jpeg")
    with pytest.raises(DataError, match="No face found in the second image") as err:
        recognizer.verify(str(shared_data_path("faces-dlib", "faces", PHOTO)), owl, threshold=0.4)
    assert err.value.code == "no_face"
    with pytest.raises(UsageError, match="cosine similarity"):
        recognizer.verify(owl, owl, threshold=2.0)


def test_cluster_johns_crops_into_five_persons(detector, embedder) -> None:
    files = sorted(johns().glob("*/*.jpg"))
    found = cluster_faces([str(f) for f in files] + ["missing.jpg"], detector, embedder, THRESHOLD, fallback=True)
    assert len(found.groups) == 5 and [len(g) for g in found.groups] == [11] * 5
    assert all(len({Path(f.source).parent.name for f in g}) == 1 for g in found.groups)
    assert [e.code for e in found.errors] == ["not_found"]
    assert len(cluster_faces([str(f) for f in files[:4]], detector, embedder, 0.99).groups) == 4


def test_evaluate_embedder_on_johns(detector, embedder, tmp_path: Path) -> None:
    r = evaluate_embedder(embedder, johns(), detector=None)
    assert (r["images"], r["persons"], r["aligned"], r["fallback"]) == (55, 5, 0, 55)
    assert (r["genuine_pairs"], r["impostor_pairs"]) == (5 * 55, 55 * 54 // 2 - 5 * 55)
    assert r["rank1"] == 1.0 and r["auc"] > 0.99 and r["eer"] < 0.06 and 0.5 < r["threshold_eer"] < 0.85
    assert 0.8 < r["tar_at_far"]["0.01"] <= 1.0 and len(r["roc"]["fpr"]) == len(r["roc"]["threshold"]) <= 200
    small = tmp_path / "ids"
    for person in ("John_Salley", "John_Simm"):
        (small / person).mkdir(parents=True)
        for f in sorted((johns() / person).glob("*.jpg"))[:3]:
            (small / person / f.name).write_bytes(f.read_bytes())
    (small / "John_Simm" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nothing")
    aligned = evaluate_embedder(embedder, small, detector=detector)
    assert aligned["aligned"] == 6 and aligned["rank1"] == 1.0 and aligned["auc"] == 1.0
    assert [Path(b["source"]).name for b in aligned["bad_files"]] == ["broken.jpg"]
    assert threshold_from_report(aligned, embedder="mobilefacenet") == aligned["threshold_eer"]
    (tmp_path / "r.json").write_text(json.dumps({**aligned, "embedder": "sface"}))
    with pytest.raises(ModelFileError, match="not 'mobilefacenet'"):
        threshold_from_report(tmp_path / "r.json", embedder="mobilefacenet")


def test_crops_are_kept_as_jpeg_blobs(recognizer: FaceRecognizer, store, tmp_path: Path) -> None:
    _, crops, _ = face_crops(tmp_path)
    staff = store.collections.create("staff", embedder="mobilefacenet", dim=128, threshold=THRESHOLD)
    recognizer.enroll(staff, "ada", [crops[0]])
    blobs = [p for p in (tmp_path / "db" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1 and Image.open(io.BytesIO(blobs[0].read_bytes())).size == (112, 112)

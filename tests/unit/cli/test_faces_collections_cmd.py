"""``imgrec faces collections|enroll|identify|verify|list|remove|delete|cluster`` on real face crops
(faces-dlib/johns) with YuNet + MobileFaceNet and a SQLite store in tmp_path: exit codes, JSON
shapes, the recorded embedder, hostile inputs, and never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import shared_data_path
from tests.embed_helpers import johns, mobilefacenet_file, tiny_onnx, yunet_file

from imgrec.cli.main import main

pytestmark = [pytest.mark.realdata]
pytest.importorskip("onnxruntime")
THRESHOLD = "0.36"  # MobileFaceNet's threshold_eer on johns (benchmarks/README.md)


@pytest.fixture(scope="module")
def mfn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MobileFaceNet imported as an embed run (ImageNet mean/std, as measured in the benchmarks)."""
    from tests.embed_helpers import import_mobilefacenet

    return import_mobilefacenet(tmp_path_factory.mktemp("mfn") / "mobilefacenet")


def crops(person: str, which: slice) -> list[str]:
    return [str(p) for p in sorted((johns() / person).glob("*.jpg"))[which]]


def faces(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["faces", *map(str, args)])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, out.out, out.err


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "db"


@pytest.fixture
def staff(mfn: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A collection 'staff' of MobileFaceNet with John Savage and John Shimkus (3 crops each)."""
    code, out, err = faces(capsys, "collections", "create", "staff", "--embedder", mfn, "--threshold", THRESHOLD,
                           "--db", db, "--format", "json")  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    assert (record["name"], record["embedder"], record["dim"], record["faces"]) == ("staff", "mobilefacenet", 128, 0)
    assert record["embedder_source"] == str(mfn.resolve()) and len(record["fingerprint"]) == 64
    for person in ("John_Savage", "John_Shimkus"):
        code, _, err = faces(capsys, "enroll", "staff", person.replace("_", " "), *crops(person, slice(0, 3)),
                             "--weights", yunet_file(), "--db", db)  # fmt: skip
        assert code == 0, err
    return db


def test_enroll_then_identify_names_each_person_without_repeating_the_embedder(staff, tmp_path, capsys) -> None:
    queries = crops("John_Savage", slice(5, 7)) + crops("John_Shimkus", slice(5, 6)) + crops("John_Simm", slice(0, 1))
    code, out, err = faces(capsys, "identify", "staff", *queries, "--top-k", 2, "--weights", yunet_file(),
                           "--db", staff, "--format", "json", "--save", tmp_path / "ann")  # fmt: skip
    assert code == 0, err
    results = json.loads(out)
    labels = [[f["label"] for f in r["faces"]] for r in results]
    assert labels == [["John Savage"], ["John Savage"], ["John Shimkus"], ["unknown"]]
    face = results[0]["faces"][0]
    assert set(face) >= {"box", "score", "landmarks", "aligned", "label", "similarity", "matches"}
    best, second = face["matches"]
    assert best["similarity"] > float(THRESHOLD) > second["similarity"]
    assert face["matches"][0]["known"] and not face["matches"][1]["known"]
    assert results[3]["faces"][0]["similarity"] < float(THRESHOLD)  # the stranger's best match stays under
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == sorted({Path(q).stem + ".jpg" for q in queries})
    code, out, _ = faces(capsys, "identify", "staff", queries[0], "--weights", yunet_file(), "--db", staff)
    assert code == 0 and "John Savage" in out and "threshold 0.36" in out


def test_list_remove_and_delete(staff, capsys) -> None:
    code, out, _ = faces(capsys, "list", "staff", "--db", staff, "--format", "json")
    listed = json.loads(out)
    persons = [(p["name"], p["faces"]) for p in listed["persons"]]
    assert code == 0 and persons == [("John Savage", 3), ("John Shimkus", 3)]
    code, out, _ = faces(capsys, "collections", "list", "--db", staff, "--format", "json")
    assert code == 0 and [(c["name"], c["faces"]) for c in json.loads(out)] == [("staff", 6)]
    code, _, err = faces(capsys, "remove", "staff", "John Savag", "--db", staff)
    assert code == 2 and "Did you mean 'John Savage'" in err
    code, out, _ = faces(capsys, "remove", "staff", "John Savage", "--db", staff, "--format", "json")
    assert code == 0 and json.loads(out)["removed_faces"] == 3
    code, out, _ = faces(capsys, "list", "staff", "--db", staff, "--format", "json")
    assert [p["name"] for p in json.loads(out)["persons"]] == ["John Shimkus"]
    code, _, err = faces(capsys, "delete", "staff", "--db", staff)  # no terminal to ask: refused
    assert code == 2 and "--yes" in err
    code, _, _ = faces(capsys, "delete", "staff", "--yes", "--db", staff)
    code2, out, _ = faces(capsys, "collections", "list", "--db", staff, "--format", "json")
    assert (code, code2, json.loads(out)) == (0, 0, [])


def test_enroll_reports_each_image_and_exits_65_for_bad_ones(staff, tmp_path, capsys) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    owl = shared_data_path("test-images", "owl.jpg")  # no face
    again, new = crops("John_Savage", slice(0, 1)), crops("John_Savage", slice(3, 4))
    code, out, err = faces(capsys, "enroll", "staff", "John Savage", *again, *new, owl, broken,
                           "--weights", yunet_file(), "--db", staff, "--format", "json")  # fmt: skip
    assert code == 65, err
    report = json.loads(out)
    assert [r["status"] for r in report["images"]] == ["already_enrolled", "added", "no_face", "error"]
    assert report["added"] == 1 and "image_invalid" in report["images"][3]["message"]
    code, _, err = faces(capsys, "enroll", "staff", "John Savage", tmp_path / "nope.jpg", "--weights", yunet_file(),
                         "--db", staff)  # fmt: skip
    assert code == 66 and "not found" in err


def test_unknown_names_and_conflicts_are_messages(staff, mfn, tmp_path, capsys) -> None:
    one = crops("John_Simm", slice(0, 1))
    code, _, err = faces(capsys, "identify", "staf", *one, "--db", staff)
    assert code == 2 and "No face collection named 'staf'" in err and "Did you mean 'staff'" in err
    code, _, err = faces(capsys, "collections", "create", "staff", "--embedder", mfn, "--threshold", 0.4, "--db", staff)
    assert code == 2 and "already exists" in err
    code, _, err = faces(capsys, "collections", "create", "other", "--embedder", mfn, "--db", staff)
    assert code == 2 and "--threshold-from" in err  # an imported embedder has no default threshold
    tiny = tmp_path / "tiny"
    assert main(["import", str(tiny_onnx(tmp_path / "tiny.onnx")), "--task", "embed", "--out", str(tiny)]) == 0
    code, _, err = faces(capsys, "enroll", "staff", "Simm", *one, "--embedder", tiny, "--weights", yunet_file(),
                         "--db", staff)  # fmt: skip
    assert code == 2 and "holds embeddings of 'mobilefacenet'" in err and "'tiny'" in err
    other = tmp_path / "mfn-arcface"  # the same file and name, fed another way: vectors not comparable
    assert main(["import", str(mobilefacenet_file()), "--task", "embed", "--norm", "arcface", "--out", str(other)]) == 0
    code, _, err = faces(capsys, "identify", "staff", *one, "--embedder", other, "--weights", yunet_file(),
                         "--db", staff)  # fmt: skip
    assert code == 2 and "fingerprint" in err and "not comparable" in err


def test_database_problems_are_messages(staff, tmp_path, capsys) -> None:
    with sa.create_engine(f"sqlite:///{staff / 'imgrec.db'}").begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    code, _, err = faces(capsys, "collections", "list", "--db", staff)
    assert code == 73 and "newer imgrec" in err
    code, _, err = faces(capsys, "collections", "list", "--db", "postgresql://nobody@127.0.0.1:1/imgrec")
    assert code == 73 and "Cannot open the database" in err
    code, _, err = faces(capsys, "list", "x", "--db", "mysql://h/db")
    assert code == 2 and "Unsupported database URL" in err


def test_the_recorded_embedder_is_loaded_and_a_moved_run_is_named(mfn, db, tmp_path, capsys) -> None:
    moved = tmp_path / "moved"
    import shutil

    shutil.copytree(mfn, moved)
    assert faces(capsys, "collections", "create", "c", "--embedder", moved, "--threshold", 0.4, "--db", db)[0] == 0
    shutil.rmtree(moved)
    code, _, err = faces(capsys, "identify", "c", *crops("John_Simm", slice(0, 1)), "--db", db)
    assert code == 66 and "not there any more" in err and "--embedder RUN" in err
    code, _, err = faces(capsys, "identify", "c", *crops("John_Simm", slice(0, 1)), "--embedder", mfn,
                         "--weights", yunet_file(), "--db", db, "--format", "json")  # fmt: skip
    assert code == 0, err  # the same model from its other folder: same fingerprint, accepted


def test_threshold_from_a_report(mfn, db, tmp_path, capsys) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"embedder": "mobilefacenet", "threshold_eer": 0.4123}))
    code, out, _ = faces(capsys, "collections", "create", "r", "--embedder", mfn, "--threshold-from", report,
                         "--db", db, "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["threshold"] == 0.4123
    report.write_text(json.dumps({"embedder": "dlib-resnet", "threshold_eer": 0.9}))
    code, _, err = faces(capsys, "collections", "create", "s", "--embedder", mfn, "--threshold-from", report,
                         "--db", db)  # fmt: skip
    assert code == 65 and "not 'mobilefacenet'" in err


def test_verify_same_and_different_persons(mfn, capsys) -> None:
    a, b = crops("John_Savage", slice(0, 2))
    (c,) = crops("John_Shimkus", slice(0, 1))
    common = ("--embedder", mfn, "--threshold", THRESHOLD, "--weights", yunet_file(), "--format", "json")
    code, out, _ = faces(capsys, "verify", a, b, *common)
    same = json.loads(out)
    assert code == 0 and same["same"] and same["similarity"] > 0.5 and same["embedder"] == "mobilefacenet"
    code, out, _ = faces(capsys, "verify", a, c, *common)
    assert code == 0 and not json.loads(out)["same"] and json.loads(out)["similarity"] < 0.2
    code, _, err = faces(capsys, "verify", a, shared_data_path("test-images", "owl.jpg"), *common)
    assert code == 65 and "No face found in the second image" in err
    code, _, err = faces(capsys, "verify", a, b, "--embedder", mfn, "--weights", yunet_file())
    assert code == 2 and "--threshold" in err


def test_cluster_writes_one_folder_per_person(mfn, tmp_path, capsys) -> None:
    photos = crops("John_Savage", slice(0, 3)) + crops("John_Simm", slice(0, 2)) + crops("John_Salley", slice(0, 3))
    out_dir = tmp_path / "groups"
    code, out, err = faces(capsys, "cluster", *photos, "--out", out_dir, "--embedder", mfn, "--threshold", THRESHOLD,
                           "--weights", yunet_file(), "--format", "json")  # fmt: skip
    assert code == 0, err
    groups = [sorted(Path(f).name for f in g["files"]) for g in json.loads(out)["folders"]]
    expected = [sorted(Path(p).name for p in photos[i:j]) for i, j in ((0, 3), (5, 8), (3, 5))]
    assert sorted(groups) == sorted(expected) and len(groups[2]) == 2  # largest first
    assert sorted(p.name for p in out_dir.iterdir()) == ["person-1", "person-2", "person-3"]
    written = out_dir / "person-3" / Path(photos[3]).name
    assert written.read_bytes() == Path(photos[3]).read_bytes()


def test_serve_faces_and_evaluate_on_an_embedder_say_what_to_do(staff, mfn, capsys) -> None:
    code = main(["serve", "--faces", "staf", "--db", str(staff), "--detector-weights", str(yunet_file())])
    err = capsys.readouterr().err
    assert code == 2 and "Did you mean 'staff'" in err and "Traceback" not in err
    code = main(["serve"])
    assert code == 2 and "Nothing to serve" in capsys.readouterr().err
    code = main(["evaluate", str(mfn), str(johns())])
    err = capsys.readouterr().err
    assert code == 2 and f"imgrec faces evaluate --embedder {mfn}" in err and "Traceback" not in err

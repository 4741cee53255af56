"""The whole face-collection flow through the CLI on real crops: create -> enroll -> identify ->
remove -> the person is gone, from the answers and from the bytes of the database files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.embed_helpers import import_mobilefacenet, johns, yunet_file

from imgrec.cli.main import main

pytestmark = [pytest.mark.realdata]
pytest.importorskip("onnxruntime")


def file_bytes(db: Path) -> bytes:
    """The SQLite file and its write-ahead log, as on disk."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


def run(capsys: pytest.CaptureFixture[str], *args: object) -> dict | list:
    code = main(["faces", *map(str, args), "--format", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_create_enroll_identify_remove_leaves_no_trace(tmp_path: Path, capsys) -> None:
    mfn, home = import_mobilefacenet(tmp_path / "mobilefacenet"), tmp_path / "home"
    db = home / "imgrec.db"
    models = ("--weights", yunet_file(), "--db", home)
    savage, shimkus = (sorted((johns() / p).glob("*.jpg")) for p in ("John_Savage", "John_Shimkus"))
    run(capsys, "collections", "create", "staff", "--embedder", mfn, "--threshold", 0.36, "--db", home)
    assert run(capsys, "enroll", "staff", "Zelda Quixote", *savage[:4], *models)["added"] == 4
    assert run(capsys, "enroll", "staff", "John Shimkus", *shimkus[:4], *models)["added"] == 4
    (found,) = run(capsys, "identify", "staff", savage[7], *models)
    assert found["faces"][0]["label"] == "Zelda Quixote"

    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        rows = conn.execute(sa.text("SELECT f.embedding, f.crop_sha256 FROM faces f JOIN persons p ON "
                                    "p.id = f.person_id WHERE p.name = 'Zelda Quixote'")).all()  # fmt: skip
    vectors, crops = [bytes(r[0]) for r in rows], [r[1] for r in rows]
    blobs = [home / "blobs" / sha[:2] / sha for sha in crops]
    before = file_bytes(db)
    assert len(vectors) == 4 and all(v in before for v in vectors) and b"Zelda Quixote" in before  # can fail
    assert all(b.is_file() for b in blobs)

    assert run(capsys, "remove", "staff", "Zelda Quixote", "--db", home)["removed_faces"] == 4
    (again,) = run(capsys, "identify", "staff", savage[7], *models)
    assert again["faces"][0]["label"] == "unknown"
    assert [p["name"] for p in run(capsys, "list", "staff", "--db", home)["persons"]] == ["John Shimkus"]
    after = file_bytes(db)
    assert not any(v in after for v in vectors) and b"Zelda Quixote" not in after
    assert not any(b.exists() for b in blobs)

"""Privacy: after remove_person / delete no embedding, crop or row survives, not even in the SQLite files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sqlalchemy as sa

from imgrec.store import FaceSource, open_store
from imgrec.store.blobs import sha256_hex

EMB = "toy-embedder"
DIM = 32


def marked_embedding(seed: int) -> np.ndarray:
    """A vector whose float32 bytes are unlikely anywhere else in the file."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, DIM).astype(np.float32)


def file_bytes(db: Path) -> bytes:
    """The database file and its write-ahead log, as on disk."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


def enroll_two(store, crop: bytes) -> tuple[np.ndarray, np.ndarray]:
    c = store.collections.create("staff", embedder=EMB, dim=DIM, threshold=0.5)
    zelda, other = marked_embedding(1), marked_embedding(2)
    src = FaceSource.of_image(b"zelda photo", box=(1, 1, 9, 9), crop=crop)
    c.enroll("zelda-quixotic", zelda, embedder=EMB, sources=[src])
    c.enroll("other", other, embedder=EMB)
    return zelda, other


def test_remove_person_leaves_no_bytes_in_the_sqlite_files(tmp_path):
    db = tmp_path / "imgrec.db"
    with open_store(db) as store:
        zelda, other = enroll_two(store, crop=b"zelda crop jpeg")
        crop_file = store.blobs.path(sha256_hex(b"zelda crop jpeg"))
        before = file_bytes(db)
        assert zelda.tobytes() in before and b"zelda-quixotic" in before  # the check can fail
        assert crop_file.exists()
        store.collections.get("staff").remove_person("zelda-quixotic")
        after = file_bytes(db)
        assert zelda.tobytes() not in after
        assert b"zelda-quixotic" not in after
        assert sha256_hex(b"zelda photo").encode() not in after
        assert other.tobytes() in after  # the other person is still there
        assert not crop_file.exists()


def test_delete_collection_leaves_no_bytes(tmp_path):
    db = tmp_path / "imgrec.db"
    with open_store(db) as store:
        zelda, other = enroll_two(store, crop=b"zelda crop png")
        store.collections.delete("staff")
        after = file_bytes(db)
        for gone in (zelda.tobytes(), other.tobytes(), b"zelda-quixotic", b"staff"):
            assert gone not in after
        assert list(store.blobs.all()) == []


def test_shared_crop_file_stays_while_another_face_names_it(store):
    c = store.collections.create("staff", embedder=EMB, dim=DIM, threshold=0.5)
    c.enroll("a", marked_embedding(3), embedder=EMB, sources=[FaceSource.of_image(b"p1", crop=b"same crop")])
    c.enroll("b", marked_embedding(4), embedder=EMB, sources=[FaceSource.of_image(b"p2", crop=b"same crop")])
    c.remove_person("a")
    assert store.blobs.exists(sha256_hex(b"same crop"))
    c.remove_person("b")
    assert not store.blobs.exists(sha256_hex(b"same crop"))


def test_remove_person_removes_every_row_on_both_databases(store):
    c = store.collections.create("staff", embedder=EMB, dim=DIM, threshold=0.5)
    c.enroll("zelda", np.stack([marked_embedding(5), marked_embedding(6)]), embedder=EMB)
    c.remove_person("zelda")
    with store.reading() as conn:
        counts = [conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in ("faces", "persons")]
    assert counts == [0, 0] and c.size() == 0

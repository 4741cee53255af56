"""open_store: locations, pragmas, migrations run on open, the newer-schema refusal."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from imgrec.errors import StoreError, StoreVersionError, UsageError
from imgrec.store import open_store
from imgrec.store.migrate import head_revision
from imgrec.store.paths import data_home, resolve_location


def test_default_location_is_the_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("IMGREC_HOME", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home"
    with open_store() as store:
        assert store.location.sqlite_file == tmp_path / "home" / "imgrec.db"
        assert store.blobs.root == tmp_path / "home" / "blobs"
    assert (tmp_path / "home" / "imgrec.db").is_file()
    monkeypatch.delenv("IMGREC_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_home() == tmp_path / "xdg" / "imgrec"


def test_locations():
    assert resolve_location("sqlite:////srv/faces.db").sqlite_file.as_posix() == "/srv/faces.db"
    loc = resolve_location("postgres://me@db/imgrec", blobs="/srv/blobs")
    assert (loc.url, loc.dialect) == ("postgresql+psycopg://me@db/imgrec", "postgresql")
    assert loc.blobs.as_posix() == "/srv/blobs"
    for bad in ("mysql://x/y", "sqlite://", "sqlite:///:memory:"):
        with pytest.raises(UsageError):
            resolve_location(bad)


def test_sqlite_pragmas(tmp_path):
    with open_store(tmp_path) as store, store.reading() as conn:
        names = ("journal_mode", "foreign_keys", "secure_delete", "busy_timeout")
        got = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in names}
    assert got == {"journal_mode": "wal", "foreign_keys": 1, "secure_delete": 1, "busy_timeout": 30000}


def test_migrations_run_once_and_stamp_head(db_url, blobs_dir):
    with open_store(db_url, blobs=blobs_dir) as store, store.reading() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        tables = set(sa.inspect(conn).get_table_names())
    assert {"collections", "persons", "faces", "alembic_version"} <= tables
    with open_store(db_url, blobs=blobs_dir) as again:
        again.collections.create("x", embedder="e", dim=2, threshold=0.5)
        assert [c.name for c in again.collections.list()] == ["x"]


def test_a_newer_database_is_refused(db_url, blobs_dir):
    with open_store(db_url, blobs=blobs_dir) as store, store.writing() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreVersionError, match=r"revision 9999.*newer imgrec.*Expected revision 0003") as err:
        open_store(db_url, blobs=blobs_dir)
    assert isinstance(err.value, StoreError) and err.value.code == "store_too_new"


def test_not_a_database(tmp_path):
    bad = tmp_path / "imgrec.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="Cannot open the database"):
        open_store(bad)


def test_unreachable_postgres(tmp_path):
    with pytest.raises(StoreError, match="Cannot open the database"):
        open_store(f"postgresql://nobody@/nothing?host={tmp_path}&connect_timeout=2", blobs=tmp_path)


def test_import_opens_nothing(tmp_path, monkeypatch):
    import importlib
    import sys

    monkeypatch.setenv("IMGREC_HOME", str(tmp_path / "never"))
    for mod in [m for m in sys.modules if m.startswith("imgrec.store")]:
        monkeypatch.delitem(sys.modules, mod)
    for name in ("engine", "collections", "search", "enroll", "migrate", "schema"):
        importlib.import_module(f"imgrec.store.{name}")
    assert not (tmp_path / "never").exists()


def test_imgrec_db_names_the_default_database(monkeypatch, tmp_path):
    monkeypatch.setenv("IMGREC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IMGREC_DB", str(tmp_path / "elsewhere" / "faces.db"))
    with open_store() as store:
        assert store.location.sqlite_file == tmp_path / "elsewhere" / "faces.db"
    assert resolve_location("/given").sqlite_file.as_posix() == "/given/imgrec.db"  # an explicit place wins


def test_a_0001_database_is_upgraded_and_keeps_its_collections(tmp_path):
    """A database made by the previous schema gains the embedder identity columns, empty."""
    from alembic import command
    from alembic.config import Config

    from imgrec.store.migrate import MIGRATIONS

    db = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(sa.text("INSERT INTO collections (name, embedder, dim, threshold, size, revision, created) "
                             "VALUES ('old', 'e', 2, 0.5, 0, 0, '2024-01-01 00:00:00')"))  # fmt: skip
    engine.dispose()
    with open_store(db) as store:
        (info,) = store.collections.list()
        assert (info.name, info.fingerprint, info.source, info.weights) == ("old", None, None, None)
        c = store.collections.get("old")
        # nothing recorded to check against
        assert c.enroll("ada", [1.0, 0.0], embedder="e", fingerprint="anything").added == (1,)

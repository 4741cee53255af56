"""The store's tests run on SQLite and on PostgreSQL (a throwaway server, when one is installed).

Without PostgreSQL binaries the PostgreSQL cases skip with the reason, except under CI=true,
where they must run (``.ci/run`` installs Debian's package).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.store.pg_server import TempPostgres, find_bindir

from imgrec.store import Store, open_store

_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[TempPostgres]:
    """A PostgreSQL server for the session; skipped (failed under CI=true) when not installed."""
    bindir = find_bindir()
    if bindir is None:
        reason = "PostgreSQL is not installed (no initdb/pg_ctl in PATH or /usr/lib/postgresql/*/bin)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; it is required under CI=true")
        pytest.skip(reason)
    server = TempPostgres(bindir).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh store lives: a folder (SQLite) or a new database on the test server."""
    if request.param == "sqlite":
        return str(tmp_path / "home")
    server: TempPostgres = request.getfixturevalue("postgres")
    return server.create_database(f"t{os.getpid()}_{next(_numbers)}")


@pytest.fixture
def blobs_dir(tmp_path: Path) -> Path:
    """The blob folder of the store under test."""
    return tmp_path / "blobs"


@pytest.fixture
def store(db_url: str, blobs_dir: Path) -> Iterator[Store]:
    """An open, migrated store on each database."""
    opened = open_store(db_url, blobs=blobs_dir)
    yield opened
    opened.close()

"""A throwaway PostgreSQL server for tests: initdb into a temp dir, listen on a Unix socket there.

Binaries are looked for in ``$IMGREC_TEST_PG_BIN``, then ``PATH``, then
``/usr/lib/postgresql/*/bin`` (newest first). PostgreSQL refuses to run as root, so under root
the server runs as the ``postgres`` user (created by Debian's package), in a folder it owns.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    candidates = []
    if os.environ.get("IMGREC_TEST_PG_BIN"):
        candidates.append(Path(os.environ["IMGREC_TEST_PG_BIN"]))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def version(p: Path) -> int:
        m = re.search(r"postgresql/(\d+)/", str(p))
        return int(m.group(1)) if m else 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


class TempPostgres:
    """One server process; ``url(db)`` gives SQLAlchemy-style URLs for ``open_store``."""

    user = "imgrec"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="imgrec-pg-"))  # short: a socket path has a length limit
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' user to run PostgreSQL as") from None
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        cmd = [*self.prefix, str(self.bindir / args[0]), *args[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr}{done.stdout}{log}")

    def start(self) -> TempPostgres:
        """initdb (trust auth, user ``imgrec``), then start on a socket in the temp dir."""
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses='' -c unix_socket_directories={self.dir} -c fsync=off -c max_connections=60"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
        return self

    def stop(self) -> None:
        """Stop the server (immediately) and remove its folder."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self, db: str = "postgres") -> psycopg.Connection:
        """An autocommit admin connection."""
        return psycopg.connect(host=str(self.dir), user=self.user, dbname=db, autocommit=True)

    def url(self, db: str) -> str:
        """``postgresql://imgrec@/DB?host=SOCKETDIR``."""
        return f"postgresql://{self.user}@/{db}?host={self.dir}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def has_vector(self) -> bool:
        """Whether the pgvector extension is installed on this server."""
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is not None

"""Faults with real processes: kill -9 during enrollment, several processes enrolling and searching at once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from tests.unit.store.worker import BATCH, DIM, EMB, embeddings

import imgrec
from imgrec.store import open_store

WORKER = Path(__file__).with_name("worker.py")
REPO = Path(__file__).resolve().parents[3]


def spawn(*args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(imgrec.__file__).parents[1]), str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def read_until(proc: subprocess.Popen, wanted: str, timeout_s: float = 60.0) -> list[str]:
    """Lines from the worker until one equals ``wanted`` (fails on timeout or exit)."""
    lines: list[str] = []
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.strip())
            if lines[-1] == wanted:
                return lines
    finally:
        timer.cancel()
    pytest.fail(f"worker ended before {wanted!r}: {lines} {proc.stderr.read()}")  # type: ignore[union-attr]


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]


def check_consistent(url: str, blobs: Path) -> int:
    """Whole batches only, sizes that agree, every crop row with its file, a searchable collection."""
    with open_store(url, blobs=blobs) as store:
        c = store.collections.get("staff")
        persons = [p for p in c.persons() if p.name != "after-crash"]
        assert all(p.faces == BATCH for p in persons), persons
        with store.reading() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM faces")).scalar()
            crops = conn.execute(sa.text("SELECT crop_sha256 FROM faces WHERE crop_sha256 IS NOT NULL")).scalars().all()
            if store.dialect == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        extra = 1 if any(p.name == "after-crash" for p in c.persons()) else 0
        assert c.size() == rows == BATCH * len(persons) + extra
        assert all(store.blobs.exists(sha) for sha in crops)
        if persons:
            first = c.search(embeddings(0, BATCH)[0], embedder=EMB, top_k=1)[0]
            assert (first.person, round(first.similarity, 4)) == ("p0", 1.0)
        c.enroll("after-crash", np.ones(DIM), embedder=EMB)  # still writable
        return len(persons)


def test_kill9_inside_a_commit_loses_only_that_batch(db_url, blobs_dir):
    proc = spawn("slow-commit", db_url, str(blobs_dir), "2")
    lines = read_until(proc, "IN_COMMIT 2")
    kill9(proc)
    assert lines[:2] == ["COMMITTED 0", "COMMITTED 1"]
    assert check_consistent(db_url, blobs_dir) == 2
    with open_store(db_url, blobs=blobs_dir) as store:
        orphans = store.collect_garbage(min_age_s=0)
        assert len(orphans) == BATCH  # batch 2's crops were written before its rows, which never committed
        assert check_consistent(db_url, blobs_dir) == 2


@pytest.mark.parametrize("seed", [0, 1])
def test_kill9_at_a_random_moment(db_url, blobs_dir, seed):
    proc = spawn("forever", db_url, str(blobs_dir))
    read_until(proc, "COMMITTED 1")
    time.sleep(random.Random(seed).uniform(0.05, 0.5))
    kill9(proc)
    assert check_consistent(db_url, blobs_dir) >= 2


def test_processes_enroll_and_search_at_once(db_url, blobs_dir):
    workers, each = 4, 15
    procs = [spawn("mixed", db_url, str(blobs_dir), str(w), str(each)) for w in range(workers)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip() == "DONE", err
    with open_store(db_url, blobs=blobs_dir) as store:
        c = store.collections.get("staff")
        assert c.size() == workers * each * 2
        assert sorted(p.name for p in c.persons()) == sorted(f"w{w}-{j}" for w in range(workers) for j in range(each))
        assert all(p.faces == 2 for p in c.persons())


def test_threads_share_one_store(store):
    from concurrent.futures import ThreadPoolExecutor

    c = store.collections.create("staff", embedder=EMB, dim=DIM, threshold=0.5)

    def work(i: int) -> str:
        c.enroll(f"t{i}", embeddings(i, 2), embedder=EMB)
        return c.search(embeddings(i, 2)[1], embedder=EMB, top_k=1)[0].person

    with ThreadPoolExecutor(max_workers=6) as pool:
        found = list(pool.map(work, range(30)))
    assert found == [f"t{i}" for i in range(30)]
    assert c.size() == 60

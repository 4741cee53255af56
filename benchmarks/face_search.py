"""Face search latency in collections of synthetic embeddings: SQLite (numpy), PostgreSQL exact and HNSW.

For each size, enrolls N random unit vectors (128-d by default) through ``FaceCollection.enroll``
(persons of ``--per-person`` faces), then times ``search`` for queries that are noisy copies
of enrolled faces: the first search (SQLite/bytea: loading the matrix), then the median and
95th percentile of the warm ones, top-5 faces and top-5 persons. On PostgreSQL with pgvector it
also times ``build_index()`` (HNSW, after the bulk load) and the index's recall@1 / @5 against
the exact answer.

PostgreSQL: ``--pg URL`` (an empty database you may write), or by default a throwaway server
started like the tests do (tests/unit/store/pg_server.py; ``IMGREC_TEST_PG_BIN`` picks the
binaries, e.g. an installation with pgvector).

Usage:
    .venv/bin/python benchmarks/face_search.py                          # 10k and 1M, all backends
    .venv/bin/python benchmarks/face_search.py --sizes 10000 100000 --backends sqlite
    .venv/bin/python benchmarks/face_search.py --sizes 1000000 --backends sqlite --queries 30   # ~3 min, ~2 GB
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.unit.store.pg_server
from common import peak_rss_mb, print_machine

EMB = "synthetic"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--per-person", type=int, default=1000, help="faces per enrolled person (one enroll call each)")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--pg", default=None, help="postgresql://... (default: a throwaway server)")
    return p.parse_args()


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    m = rng.normal(size=(n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def load(collection, n: int, dim: int, per_person: int) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(0)
    faces = np.empty((n, dim), np.float32)
    start = time.perf_counter()
    for i in range(0, n, per_person):
        batch = unit(rng, min(per_person, n - i), dim)
        faces[i : i + len(batch)] = batch
        collection.enroll(f"p{i // per_person}", batch, embedder=EMB)
    return faces, time.perf_counter() - start


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000, out


def latency(collection, queries: np.ndarray, **kw) -> dict[str, float]:
    first, _ = timed(lambda: collection.search(queries[0], embedder=EMB, **kw))
    warm = [timed(lambda q=q: collection.search(q, embedder=EMB, **kw))[0] for q in queries[1:]]
    p95 = float(np.percentile(warm, 95))
    return {"first_ms": round(first, 1), "median_ms": round(statistics.median(warm), 2), "p95_ms": round(p95, 2)}


def after_write(collection, rng: np.random.Generator, dim: int, exact: bool | None) -> dict[str, float]:
    """The first search after enrolling 10 more faces (blob stores: the cache appends them), next to
    the first search after a removal (the cache reads the whole collection again)."""
    extra = unit(rng, 10, dim)
    collection.enroll("late", extra, embedder=EMB)
    grown, found = timed(lambda: collection.search(extra[3], embedder=EMB, top_k=1, exact=exact))
    assert found[0].person == "late"
    collection.remove_person("late")
    reread, _ = timed(lambda: collection.search(extra[3], embedder=EMB, top_k=1, exact=exact))
    return {"after_enroll_ms": round(grown, 1), "after_remove_ms": round(reread, 1)}


def ids(collection, q: np.ndarray, exact: bool) -> list[int]:
    return [m.face_id for m in collection.search(q, embedder=EMB, top_k=5, per_person=False, exact=exact)]


def recall(collection, queries: np.ndarray) -> dict[str, float]:
    at1 = at5 = 0.0
    for q in queries:
        truth, got = ids(collection, q, True), ids(collection, q, False)
        at1 += got[:1] == truth[:1]
        at5 += len(set(got) & set(truth)) / len(truth)
    return {"recall@1": round(at1 / len(queries), 3), "recall@5": round(at5 / len(queries), 3)}


def run_one(store, n: int, args: argparse.Namespace) -> None:

    c = store.collections.create(f"bench-{n}", embedder=EMB, dim=args.dim, threshold=0.5, index=False)
    faces, load_s = load(c, n, args.dim, args.per_person)
    rng = np.random.default_rng(1)
    picks = faces[rng.integers(0, n, args.queries)]
    queries = picks + rng.normal(scale=0.02, size=picks.shape).astype(np.float32)
    kind = f"{store.dialect}/{store.vectors}"
    print(f"\n{kind} N={n:,}: enroll {load_s:.1f} s ({n / load_s:,.0f} faces/s)")
    exact = True if store.vectors == "pgvector" else None
    print("  exact, top-5 faces:  ", latency(c, queries, top_k=5, per_person=False, exact=exact))
    print("  exact, top-5 persons:", latency(c, queries, top_k=5, per_person=True, exact=exact))
    print("  after one more enroll:", after_write(c, rng, args.dim, exact))
    if store.vectors == "pgvector":
        build_s, _ = timed(c.build_index)
        print(f"  HNSW build: {build_s / 1000:.1f} s (m=16, ef_construction=64)")
        print("  HNSW, top-5 faces:   ", latency(c, queries, top_k=5, per_person=False, exact=False))
        print("  HNSW, top-5 persons: ", latency(c, queries, top_k=5, per_person=True, exact=False))
        print("  HNSW vs exact:       ", recall(c, queries))
    store.collections.delete(c.name)
    print(f"  peak RSS so far {peak_rss_mb():,.0f} MB")


def pg_url(args: argparse.Namespace, stack: list) -> str:
    if args.pg:
        return args.pg
    from tests.unit.store.pg_server import TempPostgres, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL binaries found; pass --pg URL or --backends sqlite")
    server = TempPostgres(bindir).start()
    stack.append(server)
    print(f"  postgresql: throwaway server from {bindir}")
    return server.create_database("bench")


def main() -> None:
    args = parse_args()
    from imgrec.store import open_store

    print("machine:")
    print_machine()
    servers: list = []
    try:
        for backend in args.backends.split(","):
            where = tempfile.mkdtemp(prefix="imgrec-bench-")
            url = pg_url(args, servers) if backend == "postgresql" else where
            try:
                with open_store(url, blobs=Path(where) / "blobs") as store:
                    for n in args.sizes:
                        run_one(store, n, args)
            finally:
                shutil.rmtree(where, ignore_errors=True)
    finally:
        for server in servers:
            server.stop()
    print(f"\npeak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

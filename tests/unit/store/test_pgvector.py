"""PostgreSQL specifics: the embedding column (pgvector or bytea), the per-collection HNSW index, its use."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from imgrec.store import open_store
from imgrec.store.vectors import has_hnsw_index, index_name

EMB = "toy-embedder"


@pytest.fixture
def pg_store(postgres, tmp_path):
    store = open_store(postgres.create_database(f"pgv_{tmp_path.name[-20:].lower()}"), blobs=tmp_path / "blobs")
    yield store
    store.close()


@pytest.fixture
def vector_store(postgres, pg_store):
    if not postgres.has_vector():
        pytest.skip("the pgvector extension is not installed on this PostgreSQL (the bytea path is tested instead)")
    return pg_store


def column_type(store) -> str:
    with store.reading() as conn:
        sql = "SELECT udt_name FROM information_schema.columns WHERE table_name = 'faces' AND column_name = 'embedding'"
        return conn.execute(sa.text(sql)).scalar()


def test_embedding_column_follows_the_extension(postgres, pg_store):
    want = "pgvector" if postgres.has_vector() else "blob"
    assert pg_store.vectors == want
    assert column_type(pg_store) == ("vector" if want == "pgvector" else "bytea")


def test_each_collection_gets_an_hnsw_index_dropped_with_it(vector_store):
    c = vector_store.collections.create("staff", embedder=EMB, dim=8, threshold=0.5)
    bulk = vector_store.collections.create("bulk", embedder=EMB, dim=8, threshold=0.5, index=False)
    with vector_store.reading() as conn:
        assert has_hnsw_index(conn, c.info.id) and not has_hnsw_index(conn, bulk.info.id)
        definition = conn.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": index_name(c.info.id)}
        ).scalar()
    assert "hnsw" in definition and "vector_cosine_ops" in definition and f"collection_id = {c.info.id}" in definition
    bulk.build_index()
    vector_store.collections.delete("staff")
    with vector_store.reading() as conn:
        assert not has_hnsw_index(conn, c.info.id) and has_hnsw_index(conn, bulk.info.id)


def plan_of_search(store, c, query, exact: bool) -> str:
    """EXPLAIN of the statements a search sends (its SET LOCALs included)."""
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        c.search(query, embedder=EMB, top_k=3, exact=exact)
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    with store.engine.connect() as conn, conn.begin():
        for statement, params in sent:
            if statement.startswith("SET LOCAL"):
                conn.exec_driver_sql(statement)
            elif "<=>" in statement:
                return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params))
    raise AssertionError(f"no search statement among {sent}")


def test_search_goes_through_the_index_unless_exact(vector_store):
    rng = np.random.default_rng(0)
    c = vector_store.collections.create("staff", embedder=EMB, dim=16, threshold=0.5)
    faces = rng.normal(size=(3000, 16)).astype(np.float32)
    for i in range(0, 3000, 500):
        c.enroll(f"p{i}", faces[i : i + 500], embedder=EMB)
    with vector_store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE faces")
    assert index_name(c.info.id) in plan_of_search(vector_store, c, faces[7], exact=False)
    assert index_name(c.info.id) not in plan_of_search(vector_store, c, faces[7], exact=True)
    for i in (7, 1234, 2999):
        for exact in (True, False):
            hit = c.search(faces[i], embedder=EMB, top_k=1, per_person=False, exact=exact)[0]
            assert (hit.person, round(hit.similarity, 5)) == (f"p{i // 500 * 500}", 1.0)

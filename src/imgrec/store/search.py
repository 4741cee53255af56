"""Cosine search over one collection: numpy over a cached matrix, or pgvector SQL.

Blob stores (SQLite; PostgreSQL without pgvector) load the collection's embeddings once,
L2-normalized, and keep them in ``Store.cache`` until the collection's revision changes
(every enroll and remove bumps it, from any process); a search is one matrix-vector product
and a partial sort. When faces were only added since (``removals`` unchanged, the same
collection), only the faces with a larger id are read and appended, and the count must then
equal the collection's ``size`` (a transaction that took an id earlier but committed later
forces a full read): a million-face collection is not read again after every enrollment.
The state and the new rows are read in one snapshot (REPEATABLE READ on PostgreSQL, whose
default READ COMMITTED would let a face committed in between stand in for an older one).
pgvector stores search in SQL with the ``<=>`` cosine-distance operator:
exact (index scans off) for collections under ``EXACT_MAX`` faces or when asked, otherwise
through the collection's HNSW index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from imgrec.store import vectors
from imgrec.store.engine import Store
from imgrec.store.records import CollectionInfo, Match
from imgrec.store.schema import Collection, Face, Person

EXACT_MAX = 20_000  # below this many faces an exact scan is as fast as the index, and exact
CANDIDATES_PER_PERSON = 16  # faces fetched per wanted person before keeping each person's best
EF_SEARCH_MAX = 1000  # pgvector's limit for hnsw.ef_search


@dataclass(frozen=True)
class Matrix:
    """A collection's faces as of one revision: ids, person ids, unit-norm embeddings."""

    revision: int
    face_ids: np.ndarray
    person_ids: np.ndarray
    unit: np.ndarray
    names: dict[int, str]
    removals: int = 0
    created: object = None


@dataclass(frozen=True)
class State:
    """What tells a cached :class:`Matrix` whether and how it is out of date."""

    revision: int
    removals: int
    size: int
    created: object


def _state(conn: sa.Connection, info: CollectionInfo) -> State:
    cols = (Collection.revision, Collection.removals, Collection.size, Collection.created)
    row = conn.execute(sa.select(*cols).where(Collection.id == info.id)).first()
    if row is None:
        return State(-1, -1, 0, None)
    return State(int(row[0]), int(row[1]), int(row[2]), row[3])


def _names(conn: sa.Connection, info: CollectionInfo) -> dict[int, str]:
    rows = conn.execute(sa.select(Person.id, Person.name).where(Person.collection_id == info.id))
    return {int(i): str(n) for i, n in rows}


def _names_of(conn: sa.Connection, person_ids: np.ndarray) -> dict[int, str]:
    wanted = sorted({int(i) for i in person_ids})
    if not wanted:
        return {}
    rows = conn.execute(sa.select(Person.id, Person.name).where(Person.id.in_(wanted)))
    return {int(i): str(n) for i, n in rows}


def _faces(
    conn: sa.Connection, info: CollectionInfo, after: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(face ids, person ids, unit embeddings)`` of the collection's faces (with id > ``after``)."""
    stmt = sa.select(Face.id, Face.person_id, Face.embedding).where(Face.collection_id == info.id)
    if after is not None:
        stmt = stmt.where(Face.id > after)
    ids, pids, blobs = [], [], []
    for fid, pid, blob in conn.execute(stmt.order_by(Face.id)):
        ids.append(fid)
        pids.append(pid)
        blobs.append(bytes(blob))
    unit = vectors.normalize(vectors.from_blob(blobs, info.dim)) if blobs else np.zeros((0, info.dim), np.float32)
    return np.asarray(ids, np.int64), np.asarray(pids, np.int64), unit


def load_matrix(conn: sa.Connection, info: CollectionInfo, state: State) -> Matrix:
    """Read a blob collection's faces (one snapshot) into a :class:`Matrix`."""
    ids, pids, unit = _faces(conn, info)
    return Matrix(state.revision, ids, pids, unit, _names(conn, info), state.removals, state.created)


def _grown(conn: sa.Connection, info: CollectionInfo, old: Matrix, state: State) -> Matrix | None:
    """``old`` with the faces added since, or None when faces were removed (or it cannot tell)."""
    if old.removals != state.removals or old.created != state.created or not len(old.face_ids):
        return None
    ids, pids, unit = _faces(conn, info, after=int(old.face_ids[-1]))
    if len(old.face_ids) + len(ids) != state.size:
        return None
    names = {**old.names, **_names_of(conn, np.setdiff1d(pids, list(old.names)))}
    return Matrix(
        state.revision, np.concatenate([old.face_ids, ids]), np.concatenate([old.person_ids, pids]),
        np.concatenate([old.unit, unit]), names, state.removals, state.created,
    )  # fmt: skip


def cached_matrix(store: Store, info: CollectionInfo) -> Matrix:
    """The collection's matrix: as cached while its revision stands, grown by the faces added
    since when none were removed, otherwise read again."""
    with store.reading() as conn:
        if store.dialect == "postgresql":  # the state and the rows from one snapshot (see the module doc)
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        state = _state(conn, info)
        cached = store.cache.get(info.id)
        if isinstance(cached, Matrix) and cached.revision == state.revision and cached.created == state.created:
            return cached
        grown = _grown(conn, info, cached, state) if isinstance(cached, Matrix) else None
        matrix = grown if grown is not None else load_matrix(conn, info, state)
    store.cache[info.id] = matrix
    return matrix


def _best_per_person(
    face_ids: np.ndarray, person_ids: np.ndarray, sims: np.ndarray, k: int, per_person: bool
) -> list[int]:
    """Positions of the hits to keep: sorted by similarity, one per person when asked, at most k."""
    order = np.argsort(-sims, kind="stable")
    if not per_person:
        return [int(i) for i in order[:k]]
    kept, seen = [], set()
    for i in order:
        pid = int(person_ids[i])
        if pid not in seen:
            seen.add(pid)
            kept.append(int(i))
            if len(kept) == k:
                break
    return kept


def _matches(info: CollectionInfo, hits: tuple, names: dict[int, str], k: int, per_person: bool) -> list[Match]:
    face_ids, person_ids, sims = hits
    keep = _best_per_person(face_ids, person_ids, sims, k, per_person)
    return [
        Match(
            face_id=int(face_ids[i]),
            person=names.get(int(person_ids[i]), ""),
            similarity=float(sims[i]),
            known=bool(sims[i] >= info.threshold),
        )
        for i in keep
    ]


def numpy_search(store: Store, info: CollectionInfo, query: np.ndarray, k: int, per_person: bool) -> list[Match]:
    """Exact cosine over the cached matrix."""
    m = cached_matrix(store, info)
    sims = vectors.scores(m.unit, query)
    want = k * CANDIDATES_PER_PERSON if per_person else k
    top = vectors.top_k(sims, want)
    found = _matches(info, (m.face_ids[top], m.person_ids[top], sims[top]), m.names, k, per_person)
    if per_person and len(found) < k and top.size < sims.size:  # many faces of few persons: look at all
        found = _matches(info, (m.face_ids, m.person_ids, sims), m.names, k, per_person)
    return found


def _pg_hits(conn: sa.Connection, info: CollectionInfo, query: np.ndarray, limit: int | None, exact: bool) -> tuple:
    """``(face ids, person ids, similarities, {person id: name})`` of the nearest faces."""
    if exact:
        conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
    else:
        conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {max(40, min(limit or 0, EF_SEARCH_MAX))}")
    emb = sa.cast(Face.embedding, vectors.vector_type(info.dim))
    dist = emb.op("<=>", return_type=sa.Float)(vectors.vector_param("q", info.dim))
    # The collection id is written into the SQL (an int from the database) so that the planner
    # can match the partial index's predicate even with a prepared statement.
    near = (
        sa.select(Face.id, Face.person_id, dist.label("distance"))
        .where(Face.collection_id == sa.literal_column(str(int(info.id))))
        .order_by(dist)
        .limit(limit)
        .subquery()
    )
    stmt = sa.select(near, Person.name).join(Person, Person.id == near.c.person_id).order_by(near.c.distance)
    rows = conn.execute(stmt, {"q": query}).all()
    face_ids = np.asarray([r[0] for r in rows], np.int64)
    person_ids = np.asarray([r[1] for r in rows], np.int64)
    sims = 1.0 - np.asarray([r[2] for r in rows], np.float64)
    return face_ids, person_ids, sims, {int(r[1]): str(r[3]) for r in rows}


def pgvector_search(
    store: Store, info: CollectionInfo, query: np.ndarray, k: int, per_person: bool, exact: bool | None
) -> list[Match]:
    """Cosine search in SQL (``<=>``), exact or through the HNSW index."""
    with store.reading() as conn:
        if exact is None:
            size = conn.execute(sa.select(Collection.size).where(Collection.id == info.id)).scalar() or 0
            exact = size < EXACT_MAX
        limit = k * CANDIDATES_PER_PERSON if per_person else k
        *hits, names = _pg_hits(conn, info, query, limit, exact)
        if per_person and exact and len(hits[0]) == limit and len(set(hits[1].tolist())) < k:
            *hits, names = _pg_hits(conn, info, query, None, True)  # many faces of few persons: look at all
    return _matches(info, tuple(hits), names, k, per_person)


def search_faces(
    store: Store, info: CollectionInfo, query: np.ndarray, k: int, per_person: bool, exact: bool | None
) -> list[Match]:
    """The ``k`` best matches for one (checked) query vector."""
    if store.vectors == "pgvector":
        return pgvector_search(store, info, query, k, per_person, exact)
    return numpy_search(store, info, query, k, per_person)

"""Enrollment and hard deletion of faces, one database transaction each.

Enroll writes the crops first (blob files, atomically), then, in one write transaction, the
person, the face rows and the collection's new size and revision: killed at any point, the
collection has all of the call's faces or none of them. The same source image and box enrolled
again is a no-op; enrolled for another person it is a conflict.

Deletion removes the rows, then the crop files no row names any more, then scrubs the
database files (``Store.scrub``), so no embedding, crop or row survives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import sqlalchemy as sa

from imgrec.errors import ConflictError, UnknownNameError, did_you_mean
from imgrec.store import vectors
from imgrec.store.blobs import sha256_hex
from imgrec.store.engine import Store
from imgrec.store.records import CollectionInfo, EnrollResult, FaceSource
from imgrec.store.schema import Collection, Face, Person, faces_table, utcnow

T = TypeVar("T")
RETRIES = 3


def _retry(fn: Callable[[], T]) -> T:
    """Run a transaction again when a concurrent one inserted the same key first (PostgreSQL)."""
    for attempt in range(RETRIES):
        try:
            return fn()
        except sa.exc.IntegrityError:
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def person_id(conn: sa.Connection, info: CollectionInfo, name: str, *, create: bool) -> int:
    """The id of person ``name`` in the collection (created when asked), else UnknownNameError."""
    stmt = sa.select(Person.id).where(Person.collection_id == info.id, Person.name == name)
    found = conn.execute(stmt).scalar()
    if found is not None:
        return int(found)
    if not create:
        names = conn.execute(sa.select(Person.name).where(Person.collection_id == info.id)).scalars()
        raise UnknownNameError(f"No person {name!r} in collection {info.name!r}." + did_you_mean(name, names))
    row = {"collection_id": info.id, "name": name, "created": utcnow()}
    return int(conn.execute(sa.insert(Person).returning(Person.id), row).scalar_one())


def _existing(conn: sa.Connection, info: CollectionInfo, sources: Sequence[FaceSource]) -> dict[tuple, tuple]:
    """``{(sha256, box): (face id, person name)}`` for the sources already enrolled."""
    shas = sorted({s.sha256 for s in sources})
    stmt = (
        sa.select(Face.source_sha256, Face.box, Face.id, Person.name)
        .join(Person, Person.id == Face.person_id)
        .where(Face.collection_id == info.id, Face.source_sha256.in_(shas))
    )
    return {(r[0], r[1]): (int(r[2]), r[3]) for r in conn.execute(stmt)}


def _conflict(info: CollectionInfo, person: str, source: FaceSource, owner: str) -> ConflictError:
    where = f"box {source.box_key}" if source.box else "the whole image"
    return ConflictError(
        f"The face of image {source.sha256[:12]}... ({where}) is already enrolled in collection "
        f"{info.name!r} as {owner!r}; received it for {person!r}. Remove it from {owner!r} first "
        "(remove_person) if the label was wrong."
    )


def _insert_faces(conn: sa.Connection, store: Store, info: CollectionInfo, pid: int, rows: list[dict]) -> list[int]:
    if not rows:
        return []
    table = vectors.pgvector_faces() if store.vectors == "pgvector" else faces_table()
    stmt = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
    now = utcnow()
    params = [{"collection_id": info.id, "person_id": pid, "created": now, **r} for r in rows]
    return [int(i) for i in conn.execute(stmt, params).scalars()]


def _row(store: Store, vector: np.ndarray, source: FaceSource, crop: str | None) -> dict:
    value = vector if store.vectors == "pgvector" else vectors.to_blob(vector)
    return {"source_sha256": source.sha256, "box": source.box_key, "crop_sha256": crop, "embedding": value}


def bump(conn: sa.Connection, info: CollectionInfo, added: int) -> None:
    """Record ``added`` faces (negative: removed) and a new revision for the collection; a
    removal also counts in ``removals`` (search caches then read the collection again)."""
    conn.execute(
        sa.update(Collection)
        .where(Collection.id == info.id)
        .values(
            size=Collection.size + added,
            revision=Collection.revision + 1,
            removals=Collection.removals + (1 if added < 0 else 0),
        )
    )


def _enroll_tx(
    store: Store, info: CollectionInfo, person: str, matrix: np.ndarray, sources: list[FaceSource], crops: list
) -> EnrollResult:
    with store.writing() as conn:
        pid = person_id(conn, info, person, create=True)
        existing = _existing(conn, info, sources)
        for source in sources:
            owner = existing.get((source.sha256, source.box_key))
            if owner is not None and owner[1] != person:
                raise _conflict(info, person, source, owner[1])
        new = [i for i, s in enumerate(sources) if (s.sha256, s.box_key) not in existing]
        ids = _insert_faces(conn, store, info, pid, [_row(store, matrix[i], sources[i], crops[i]) for i in new])
        if ids:
            bump(conn, info, len(ids))
    old = tuple(existing[(s.sha256, s.box_key)][0] for s in sources if (s.sha256, s.box_key) in existing)
    fresh = iter(ids)
    each = tuple(existing[k][0] if k in existing else next(fresh) for k in ((s.sha256, s.box_key) for s in sources))
    return EnrollResult(person, tuple(ids), old, each)


def _dedupe(matrix: np.ndarray, sources: list[FaceSource]) -> tuple[np.ndarray, list[FaceSource]]:
    seen: dict[tuple[str, str], int] = {}
    for i, s in enumerate(sources):
        seen.setdefault((s.sha256, s.box_key), i)
    keep = sorted(seen.values())
    return matrix[keep], [sources[i] for i in keep]


def _put_crops(store: Store, sources: list[FaceSource]) -> tuple[list[str | None], list[str]]:
    """Write the crops (before their rows commit); return each face's crop sha and the new files."""
    crops: list[str | None] = []
    fresh: list[str] = []
    for s in sources:
        if s.crop is None:
            crops.append(None)
            continue
        sha = sha256_hex(s.crop)
        if not store.blobs.exists(sha):
            fresh.append(sha)
        crops.append(store.blobs.put(s.crop))
    return crops, fresh


def enroll_faces(
    store: Store, info: CollectionInfo, person: str, matrix: np.ndarray, sources: list[FaceSource]
) -> EnrollResult:
    """Add ``matrix``'s rows (checked by the caller) as faces of ``person``: crops first, then one transaction."""
    keys = [(s.sha256, s.box_key) for s in sources]
    matrix, sources = _dedupe(matrix, sources)
    crops, fresh = _put_crops(store, sources)
    try:
        result = _retry(lambda: _enroll_tx(store, info, person, matrix, sources, crops))
    except BaseException:
        delete_unreferenced(store, fresh)  # a refused or failed call leaves no crop behind
        raise
    by_key = dict(zip(((s.sha256, s.box_key) for s in sources), result.face_ids, strict=True))
    return dataclasses.replace(result, face_ids=tuple(by_key[k] for k in keys))


def delete_unreferenced(store: Store, shas: Sequence[str]) -> None:
    """Delete those of the blobs ``shas`` that no face row names."""
    wanted = sorted({s for s in shas if s})
    if not wanted:
        return
    with store.reading() as conn:
        used = set(conn.execute(sa.select(Face.crop_sha256).where(Face.crop_sha256.in_(wanted))).scalars())
    for sha in wanted:
        if sha not in used:
            store.blobs.delete(sha)


def _crops_of(conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[str]:
    stmt = sa.select(Face.crop_sha256).where(where, Face.crop_sha256.is_not(None)).distinct()
    return [str(s) for s in conn.execute(stmt).scalars()]


def remove_person_faces(store: Store, info: CollectionInfo, name: str) -> int:
    """Hard-delete a person: their faces' rows, the person row, their crops; returns the faces removed."""
    with store.writing() as conn:
        pid = person_id(conn, info, name, create=False)
        crops = _crops_of(conn, Face.person_id == pid)
        removed = conn.execute(sa.delete(Face).where(Face.person_id == pid)).rowcount
        conn.execute(sa.delete(Person).where(Person.id == pid))
        bump(conn, info, -removed)
    delete_unreferenced(store, crops)
    store.scrub()
    return int(removed)


def delete_collection_rows(store: Store, info: CollectionInfo) -> None:
    """Hard-delete a collection: faces, persons, the collection row, its index, its crops."""
    with store.writing() as conn:
        crops = _crops_of(conn, Face.collection_id == info.id)
        if store.vectors == "pgvector":
            vectors.drop_hnsw_index(conn, info.id)
        conn.execute(sa.delete(Face).where(Face.collection_id == info.id))
        conn.execute(sa.delete(Person).where(Person.collection_id == info.id))
        conn.execute(sa.delete(Collection).where(Collection.id == info.id))
    store.cache.pop(info.id, None)
    delete_unreferenced(store, crops)
    store.scrub()

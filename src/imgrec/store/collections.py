"""Face collections: named sets of persons and their face embeddings, searched by cosine.

A collection records the embedder that made its embeddings, their dimension and the
similarity threshold under which a match is "unknown". Enrolling or searching with another
embedder or dimension is refused (:class:`~imgrec.errors.ConflictError`): vectors from two
embedders are not comparable.

Example:
    >>> import tempfile, numpy as np
    >>> from imgrec.store import open_store
    >>> store = open_store(tempfile.mkdtemp())
    >>> staff = store.collections.create("staff", embedder="toy-embedder", dim=3, threshold=0.8)
    >>> staff.enroll("ada", [[1.0, 0.0, 0.0]], embedder="toy-embedder").added
    (1,)
    >>> [(m.label, round(m.similarity, 2)) for m in staff.search([0.9, 0.1, 0.0], embedder="toy-embedder")]
    [('ada', 0.99)]
    >>> staff.search([0.0, 1.0, 0.0], embedder="toy-embedder")[0].label
    'unknown'
    >>> store.collections.delete("staff"); store.collections.list()
    []
    >>> store.close()
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from imgrec.errors import ConflictError, UnknownNameError, UsageError, did_you_mean
from imgrec.store import enroll, search, vectors
from imgrec.store.blobs import sha256_hex
from imgrec.store.engine import Store
from imgrec.store.records import CollectionInfo, EnrollResult, FaceSource, Match, PersonInfo, check_name
from imgrec.store.schema import Collection, Face, Person, utcnow

MAX_DIM = 16_000  # pgvector's limit for a vector
MAX_HNSW_DIM = 2_000  # pgvector's limit for an HNSW index
MAX_TOP_K = 1_000


def _info(row: Any) -> CollectionInfo:
    return CollectionInfo(
        id=int(row.id),
        name=row.name,
        embedder=row.embedder,
        dim=int(row.dim),
        threshold=float(row.threshold),
        size=int(row.size),
        created=row.created,
        fingerprint=row.embedder_fingerprint,
        source=row.embedder_source,
        weights=row.embedder_weights,
    )


def _check_spec(embedder: str, dim: int, threshold: float) -> None:
    if not isinstance(embedder, str) or not embedder.strip():
        raise UsageError(f"Expected the embedder's name (a non-empty string), received {embedder!r}.")
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
        raise UsageError(f"Expected an embedding dimension from 1 to {MAX_DIM}, received {dim!r}.")
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold) or not -1 <= threshold <= 1:
        raise UsageError(f"Expected a cosine-similarity threshold from -1 to 1, received {threshold!r}.")


def _check_identity(fingerprint: str | None, source: str | None, weights: str | None) -> None:
    if fingerprint is not None and (not isinstance(fingerprint, str) or not 1 <= len(fingerprint) <= 64):
        raise UsageError(f"Expected the embedder's fingerprint as a string of 1 to 64 characters (a sha256 "
                         f"hex digest), received {fingerprint!r}.")  # fmt: skip
    for what, value in (("source", source), ("weights", weights)):
        if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 1000):
            raise UsageError(f"Expected the embedder's {what} as a string of 1 to 1000 characters, received "
                             f"{value!r}.")  # fmt: skip


class Collections:
    """The face collections of a store: ``store.collections``.

    Args:
        store: an open :class:`~imgrec.store.engine.Store`.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(
        self, name: str, *, embedder: str, dim: int, threshold: float, index: bool = True,
        fingerprint: str | None = None, source: str | None = None, weights: str | None = None,
    ) -> FaceCollection:  # fmt: skip
        """Create an empty collection.

        Args:
            name: unique in the store.
            embedder: the name of the model whose embeddings it will hold.
            dim: their dimension.
            threshold: cosine similarity from which a match is a known person.
            index: on PostgreSQL with pgvector, create the collection's HNSW index now (it is
                then kept up to date by every insert); False to bulk-load first and
                ``build_index()`` after.
            fingerprint: what tells this embedder from another of the same name (the sha256 of
                its file and preprocessing); enroll and search then refuse vectors given with
                another fingerprint.
            source: where the embedder is loaded from (a registered name or a run folder).
            weights: the embedder's weights file, when it needs one.

        Raises:
            ConflictError: a collection of that name exists.
        """
        check_name(name, "collection")
        _check_spec(embedder, dim, threshold)
        _check_identity(fingerprint, source, weights)
        row = {"name": name, "embedder": embedder, "dim": dim, "threshold": float(threshold),
               "embedder_fingerprint": fingerprint, "embedder_source": source, "embedder_weights": weights}  # fmt: skip
        try:
            with self.store.writing() as conn:
                if conn.execute(sa.select(Collection.id).where(Collection.name == name)).first():
                    raise ConflictError(f"A collection named {name!r} already exists in {self.store.where}.")
                new = {**row, "size": 0, "revision": 0, "removals": 0, "created": utcnow()}
                cid = conn.execute(sa.insert(Collection).returning(Collection.id), new).scalar_one()
                if index and self.store.vectors == "pgvector" and dim <= MAX_HNSW_DIM:
                    vectors.create_hnsw_index(conn, cid, dim)
        except sa.exc.IntegrityError:  # created by another process at the same moment
            raise ConflictError(f"A collection named {name!r} already exists in {self.store.where}.") from None
        return self.get(name)

    def get(self, name: str) -> FaceCollection:
        """The collection ``name``; UnknownNameError (with close names) when there is none."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(Collection).where(Collection.name == name)).first()
        if row is None:
            raise UnknownNameError(
                f"No face collection named {name!r} in {self.store.where}."
                + did_you_mean(name, [c.name for c in self.list()])
            )
        return FaceCollection(self.store, _info(row))

    def list(self) -> list[CollectionInfo]:
        """Every collection's record, by name."""
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(Collection).order_by(Collection.name)).all()
        return [_info(r) for r in rows]

    def delete(self, name: str) -> None:
        """Hard-delete a collection: every row, embedding and crop of it."""
        enroll.delete_collection_rows(self.store, self.get(name).info)


class FaceCollection:
    """One collection: enroll faces of persons, remove persons, search by cosine similarity."""

    def __init__(self, store: Store, info: CollectionInfo) -> None:
        self.store = store
        self.info = info

    def __repr__(self) -> str:
        i = self.info
        return f"FaceCollection({i.name!r}, embedder={i.embedder!r}, dim={i.dim}, threshold={i.threshold})"

    @property
    def name(self) -> str:
        """The collection's name."""
        return self.info.name

    def _check_embedder(self, embedder: str, matrix: Any, fingerprint: str | None = None) -> np.ndarray:
        i = self.info
        if embedder != i.embedder:
            raise ConflictError(
                f"Collection {i.name!r} holds embeddings of {i.embedder!r} (dimension {i.dim}); "
                f"received embeddings of {embedder!r}. Embeddings of different models are not "
                f"comparable: embed the faces with {i.embedder!r}, or use another collection."
            )
        if fingerprint is not None and i.fingerprint is not None and fingerprint != i.fingerprint:
            made = f" (loaded from {i.source})" if i.source else ""
            raise ConflictError(
                f"Collection {i.name!r} holds embeddings of {i.embedder!r}{made} whose model file and "
                f"preprocessing have fingerprint {i.fingerprint[:12]}...; received embeddings of an "
                f"{embedder!r} with fingerprint {fingerprint[:12]}...: another file or input "
                "normalization under the same name, whose vectors are not comparable. Use the "
                "collection's own embedder, or another collection."
            )
        shape = np.shape(matrix)
        if len(shape) not in (1, 2) or shape[-1] != i.dim:
            raise ConflictError(
                f"Collection {i.name!r} holds {i.dim}-dimensional embeddings of {i.embedder!r}; "
                f"received an array of shape {tuple(shape)}. Expected (N, {i.dim}) or ({i.dim},)."
            )
        return vectors.check_embeddings(matrix, i.dim)

    def enroll(
        self, person: str, embeddings: Any, *, embedder: str, sources: Sequence[FaceSource] | None = None,
        fingerprint: str | None = None,
    ) -> EnrollResult:  # fmt: skip
        """Enroll faces of ``person`` (created when new), all or none.

        Args:
            person: the person's name.
            embeddings: ``(N, dim)`` (or one ``(dim,)``) float vectors.
            embedder: the name of the model that made them; must be the collection's.
            sources: one :class:`FaceSource` per embedding (image sha256, box, crop). A face
                whose image and box are enrolled already is skipped (idempotent). Without
                sources each embedding's own bytes stand for its image.
            fingerprint: the embedder's fingerprint; refused when the collection records another.

        Raises:
            ConflictError: another embedder, fingerprint or dimension, or a face enrolled for
                another person.
        """
        check_name(person, "person")
        matrix = self._check_embedder(embedder, embeddings, fingerprint)
        if sources is None:
            sources = [FaceSource(sha256_hex(vectors.to_blob(v))) for v in matrix]
        if len(sources) != len(matrix):
            raise UsageError(f"Expected one source per embedding ({len(matrix)}), received {len(sources)}.")
        return enroll.enroll_faces(self.store, self.info, person, matrix, list(sources))

    def remove_person(self, person: str) -> int:
        """Hard-delete ``person``: rows, embeddings and crops; returns how many faces went."""
        return enroll.remove_person_faces(self.store, self.info, person)

    def search(
        self, embedding: Any, *, embedder: str, top_k: int = 5, per_person: bool = True, exact: bool | None = None,
        fingerprint: str | None = None,
    ) -> list[Match]:  # fmt: skip
        """The ``top_k`` closest faces by cosine similarity, best first.

        Args:
            embedding: one ``(dim,)`` query vector.
            embedder: the model that made it; must be the collection's.
            top_k: how many matches (1 to 1000).
            per_person: keep each person's best face only (so ``top_k`` persons).
            exact: pgvector only: True scans every face, False goes through the HNSW index;
                None picks the index for collections of 20,000 faces or more.
            fingerprint: the embedder's fingerprint; refused when the collection records another.
        """
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise UsageError(f"Expected top_k from 1 to {MAX_TOP_K}, received {top_k!r}.")
        query = self._check_embedder(embedder, embedding, fingerprint)
        if len(query) != 1:
            raise UsageError(f"Expected one query embedding ({self.info.dim},), received {len(query)}.")
        return search.search_faces(self.store, self.info, query[0], top_k, per_person, exact)

    def persons(self) -> list[PersonInfo]:
        """The persons, by name, with their face counts."""
        faces = sa.func.count(Face.id)
        stmt = (
            sa.select(Person.name, faces, Person.created)
            .outerjoin(Face, Face.person_id == Person.id)
            .where(Person.collection_id == self.info.id)
            .group_by(Person.id, Person.name, Person.created)
            .order_by(Person.name)
        )
        with self.store.reading() as conn:
            return [PersonInfo(n, int(c), t) for n, c, t in conn.execute(stmt)]

    def size(self) -> int:
        """How many faces are enrolled."""
        with self.store.reading() as conn:
            return int(conn.execute(sa.select(Collection.size).where(Collection.id == self.info.id)).scalar() or 0)

    def build_index(self) -> None:
        """PostgreSQL with pgvector: create the HNSW index (after a bulk load). A no-op elsewhere."""
        if self.store.vectors != "pgvector" or self.info.dim > MAX_HNSW_DIM:
            return
        with self.store.writing() as conn:
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
            vectors.create_hnsw_index(conn, self.info.id, self.info.dim)

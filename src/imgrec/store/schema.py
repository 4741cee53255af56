"""The store's tables as SQLAlchemy 2.0 models; Alembic migrations (``migrations/``) create them.

``faces.embedding`` is declared here as a blob (float32, little-endian); on PostgreSQL with
the pgvector extension the migration makes it a ``vector`` column instead (see
``vectors.py``). ``faces.collection_id`` repeats the person's collection so that a search
filters one column and PostgreSQL can hold one partial HNSW index per collection.

Example:
    >>> sorted(Base.metadata.tables)
    ['collections', 'faces', 'persons']
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL ids are 64-bit.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> datetime:
    """Timezone-aware now, for ``created`` columns."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of the store's models."""


class Collection(Base):
    """A named set of persons whose faces were embedded by one embedder."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    embedder: Mapped[str] = mapped_column(sa.String(200))
    # sha256 of the embedder's file + preprocessing (None: not recorded, collections made before)
    embedder_fingerprint: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    embedder_source: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)  # name or run folder
    embedder_weights: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)  # a weights file given
    dim: Mapped[int] = mapped_column(sa.Integer)
    threshold: Mapped[float] = mapped_column(sa.Float)
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # faces enrolled
    revision: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # bumped by every write
    removals: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")  # writes that deleted faces
    created: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Person(Base):
    """One identity in a collection."""

    __tablename__ = "persons"
    __table_args__ = (sa.UniqueConstraint("collection_id", "name", name="uq_persons_collection_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    collection_id: Mapped[int] = mapped_column(sa.ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Face(Base):
    """One enrolled face: its embedding, where it came from, and its crop (a blob's sha256)."""

    __tablename__ = "faces"
    __table_args__ = (
        sa.UniqueConstraint("collection_id", "source_sha256", "box", name="uq_faces_source_box"),
        sa.Index("ix_faces_collection_id", "collection_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    collection_id: Mapped[int] = mapped_column(sa.ForeignKey("collections.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(sa.ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    embedding: Mapped[bytes] = mapped_column(sa.LargeBinary)
    source_sha256: Mapped[str] = mapped_column(sa.String(64))
    box: Mapped[str] = mapped_column(sa.String(100))  # "x1 y1 x2 y2" in source pixels, "" = whole image
    crop_sha256: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    created: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


def faces_table() -> sa.Table:
    """The ``faces`` Table (typed for Core statements)."""
    return cast(sa.Table, Face.__table__)

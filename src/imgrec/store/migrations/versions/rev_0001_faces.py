"""Face collections: collections, persons, faces.

On PostgreSQL the ``vector`` extension is created when the server has it (and the user may);
``faces.embedding`` is then a ``vector`` column (no fixed dimension: collections differ, each
gets its own partial index), else a ``bytea`` blob of float32.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def _embedding_type() -> sa.types.TypeEngine:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _create_vector_extension(bind):
        from pgvector.sqlalchemy import VECTOR

        return VECTOR()
    return sa.LargeBinary()


def _create_vector_extension(bind: sa.Connection) -> bool:
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
    if available is None:
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError:  # no privilege: keep bytea blobs
        return False
    return True


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("created", Stamp, nullable=False),
    )
    op.create_table(
        "persons",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("collection_id", BigId, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created", Stamp, nullable=False),
        sa.UniqueConstraint("collection_id", "name", name="uq_persons_collection_name"),
    )
    op.create_index("ix_persons_collection_id", "persons", ["collection_id"])
    op.create_table(
        "faces",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("collection_id", BigId, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("person_id", BigId, sa.ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
        sa.Column("embedding", _embedding_type(), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("box", sa.String(100), nullable=False),
        sa.Column("crop_sha256", sa.String(64), nullable=True),
        sa.Column("created", Stamp, nullable=False),
        sa.UniqueConstraint("collection_id", "source_sha256", "box", name="uq_faces_source_box"),
    )
    op.create_index("ix_faces_collection_id", "faces", ["collection_id", "id"])
    op.create_index("ix_faces_person_id", "faces", ["person_id"])
    op.create_index("ix_faces_crop_sha256", "faces", ["crop_sha256"])


def downgrade() -> None:
    op.drop_table("faces")
    op.drop_table("persons")
    op.drop_table("collections")

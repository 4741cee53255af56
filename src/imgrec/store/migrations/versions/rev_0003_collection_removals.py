"""Collections count their removals, so a search cache can tell "faces were only added".

``revision`` moves with every write. A process that holds a collection's embeddings in memory
(numpy search on SQLite, or PostgreSQL without pgvector) used to read the whole collection again
after any write: about 19 s at a million faces. With ``removals`` (bumped by every write that
deletes faces) unchanged, the cache reads only the faces with a larger id than it holds.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("removals", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("removals")

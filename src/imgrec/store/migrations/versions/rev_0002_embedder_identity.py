"""Collections record where their embedder comes from and a fingerprint of it.

``embedder`` (the model's name) is not enough to tell two embedders apart: two different files
imported under one name, or one file imported with two input normalizations, give vectors that
are not comparable. ``embedder_fingerprint`` (sha256 of the model file + its preprocessing)
lets the store refuse them; ``embedder_source`` (a registered name or a run folder) and
``embedder_weights`` (a weights file, when one was given) let commands on a collection load its
embedder without being told again. All three are empty for collections made before.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("embedder_fingerprint", sa.String(64), nullable=True))
        batch.add_column(sa.Column("embedder_source", sa.String(1000), nullable=True))
        batch.add_column(sa.Column("embedder_weights", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("embedder_weights")
        batch.drop_column("embedder_source")
        batch.drop_column("embedder_fingerprint")

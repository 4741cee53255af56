"""Alembic environment of the store's migrations.

imgrec runs it itself (``imgrec.store.migrate``), handing over an open connection in
``config.attributes["connection"]``; no ``alembic.ini`` is needed. Importing this module
outside Alembic does nothing.
"""

from __future__ import annotations

from alembic import context

from imgrec.store.schema import Base


def run_online() -> None:
    """Run the pending migrations on the connection imgrec passed in."""
    config = context.config
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if getattr(context, "config", None) is not None:  # only when Alembic runs this file
    run_online()

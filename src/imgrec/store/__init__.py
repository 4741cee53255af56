"""The store: imgrec's database (SQLAlchemy; a SQLite file by default, PostgreSQL by URL) and blobs.

Layer 2 (beside ``imaging``). Importing it opens nothing; ``open_store`` does::

    from imgrec.store import open_store, FaceSource
    store = open_store()                       # $IMGREC_HOME or ~/.local/share/imgrec
    store = open_store("postgresql://me@db/imgrec")
    staff = store.collections.create("staff", embedder="arcface-r50", dim=512, threshold=0.35)
    staff.enroll("ada", embeddings, embedder="arcface-r50", sources=[FaceSource.of_image(jpeg, box)])
    staff.search(query, embedder="arcface-r50", top_k=3)

Modules: ``paths`` (data directory, URLs), ``engine`` (``open_store``, ``Store``), ``migrate``
(Alembic, run on open), ``schema`` (models), ``blobs`` (content-addressed files),
``vectors`` (float32 blobs, pgvector, HNSW), ``collections`` (``FaceCollection``),
``enroll`` and ``search`` (their transactions and queries), ``records`` (returned types).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "open_store": "imgrec.store.engine",
    "Store": "imgrec.store.engine",
    "data_home": "imgrec.store.paths",
    "Collections": "imgrec.store.collections",
    "FaceCollection": "imgrec.store.collections",
    "FaceSource": "imgrec.store.records",
    "Match": "imgrec.store.records",
    "EnrollResult": "imgrec.store.records",
    "CollectionInfo": "imgrec.store.records",
    "PersonInfo": "imgrec.store.records",
    "BlobStore": "imgrec.store.blobs",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'imgrec.store' has no attribute {name!r}")
    from imgrec.errors import require

    require("sqlalchemy", "store")
    return getattr(importlib.import_module(_LAZY[name]), name)

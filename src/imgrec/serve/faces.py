"""Faces behind the API (``imgrec serve --faces staff``): the store, a face detector, the
served collection's embedder, and how their work runs.

The model work (decode, detect, align, embed) runs in the service's worker threads, one call
at a time under :attr:`FaceService.model_lock` (the detector's and the embedder's runtimes are
shared; dlib's is not thread-safe); the database work (enroll, search, remove) runs beside it in
the same threads without that lock: the store's transactions (SQLite WAL + ``BEGIN IMMEDIATE``
+ busy timeout, or PostgreSQL) keep concurrent writers, in this process or in other server
workers, from corrupting a collection or losing rows.

Example:
    >>> # faces = FaceService.open("staff", db="/srv/imgrec", detector_weights="yunet.onnx")
    >>> # app = create_app([], ServeConfig(), faces=faces)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from imgrec.errors import ImgrecError

T = TypeVar("T")


class FaceService:
    """What the face routes share.

    Args:
        store: an open :class:`~imgrec.store.Store`.
        recognizer: the detector + embedder (:class:`~imgrec.analyzers.faces.FaceRecognizer`).
        served: the collection named at start (the web page's default).
        detector_name: the detector's registered name (for answers).
    """

    def __init__(self, store: Any, recognizer: Any, served: str, detector_name: str = "yunet") -> None:
        self.store, self.recognizer, self.served, self.detector_name = store, recognizer, served, detector_name
        self.model_lock = threading.Lock()

    @classmethod
    def open(
        cls, collection: str, *, db: str | Path | None = None, detector: str = "yunet",
        detector_weights: str | Path | None = None, embedder: str | Path | None = None,
        embedder_weights: str | Path | None = None, threads: int | None = None,
    ) -> FaceService:  # fmt: skip
        """Open the store, check ``collection`` exists and load its embedder and the detector.

        Raises:
            UnknownNameError: no such collection (close names listed).
            StoreError: the database cannot be opened.
        """
        from imgrec.analyzers.faces import FaceRecognizer, collection_embedder, face_detector
        from imgrec.store import open_store

        store = open_store(db)
        try:
            info = store.collections.get(collection).info
            emb = collection_embedder(info, embedder=embedder, weights=embedder_weights, threads=threads,
                                      weights_option="--embedder-weights")  # fmt: skip
            det = face_detector(detector, weights=detector_weights, threads=threads,
                                weights_option="--detector-weights")  # fmt: skip
        except BaseException:
            store.close()
            raise
        return cls(store, FaceRecognizer(det, emb), collection, detector)

    @property
    def embedder(self) -> Any:
        return self.recognizer.embedder

    def with_models(self, fn: Callable[[], T]) -> T:
        """Run model work (detect, embed) alone: one call at a time."""
        with self.model_lock:
            return fn()

    def collection(self, name: str) -> Any:
        """The collection ``name`` (UnknownNameError -> 404)."""
        return self.store.collections.get(name)

    def close(self) -> None:
        self.store.close()


def collection_out(info: Any) -> dict[str, Any]:
    """A collection's record as the API answers it."""
    return {"name": info.name, "embedder": info.embedder, "dim": info.dim, "threshold": info.threshold,
            "faces": info.size, "created": info.created.isoformat()}  # fmt: skip


def item_error(exc: ImgrecError, filename: str | None) -> dict[str, Any]:
    return {"filename": filename, "error": {"code": exc.code, "message": exc.message}}

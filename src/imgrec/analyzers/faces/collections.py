"""Face collections and their embedders: make a collection for an embedder (recording its name,
dimension, fingerprint and where it loads from) and load a collection's own embedder back.

A collection's vectors are comparable only with vectors of the very embedder that made them,
so the collection records it: ``embedder`` (the model's name), ``fingerprint``
(:attr:`FaceEmbedder.fingerprint`: the model file's sha256 and how it is fed), ``source`` (a
registered name or a run folder) and ``weights`` (a file given for ``sface``). Enrolling into
or searching a collection then needs no ``--embedder``: :func:`collection_embedder` loads the
recorded one, and the store refuses any other (:class:`~imgrec.errors.ConflictError`).

Example:
    >>> default_threshold("dlib-resnet"), default_threshold("sface")
    (0.92, 0.363)
    >>> default_threshold("mobilefacenet") is None
    True
    >>> # staff = create_collection(open_store(), "staff", face_embedder("dlib-resnet"))
    >>> # emb = collection_embedder(staff.info)                      # dlib-resnet, loaded again
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgrec.analyzers.faces.embedders import EMBEDDERS, FaceEmbedder, face_embedder
from imgrec.errors import UsageError

# Cosine thresholds of the registered embedders: dlib-resnet's threshold_eer on faces-dlib/johns
# (benchmarks/README.md; its vectors sit in a narrow cone), SFace's from OpenCV's FaceRecognizerSF.
DEFAULT_THRESHOLDS = {"dlib-resnet": 0.92, "sface": 0.363}


def default_threshold(embedder: str) -> float | None:
    """The threshold a collection of a registered embedder gets when none is given (None: none known)."""
    return DEFAULT_THRESHOLDS.get(embedder)


def create_collection(store: Any, name: str, embedder: FaceEmbedder, threshold: float | None = None) -> Any:
    """Create a face collection for ``embedder`` in ``store``.

    Args:
        store: an open :class:`~imgrec.store.Store`.
        name: the collection's name (unique in the store).
        embedder: the embedder whose vectors it will hold; its name, dimension, fingerprint,
            source and weights file are recorded.
        threshold: the cosine similarity from which a match is a known person (None: the
            registered embedder's :data:`DEFAULT_THRESHOLDS` entry; an imported one has none:
            measure it with ``evaluate_embedder`` and pass its ``threshold_eer``).

    Raises:
        UsageError: no threshold given for an embedder without a default.
        ConflictError: a collection of that name exists.
    """
    if threshold is None:
        threshold = default_threshold(embedder.name)
    if threshold is None:
        raise UsageError(
            f"No threshold for a collection of {embedder.name!r}: imgrec knows default thresholds only for "
            f"{', '.join(DEFAULT_THRESHOLDS)}. Measure it (imgrec faces evaluate --embedder ... --out report.json) "
            "and pass --threshold-from report.json, or --threshold T (a cosine similarity)."
        )
    return store.collections.create(
        name, embedder=embedder.name, dim=embedder.dim, threshold=float(threshold), fingerprint=embedder.fingerprint,
        source=embedder.source, weights=embedder.weights,
    )  # fmt: skip


def collection_embedder(
    info: Any, *, embedder: str | Path | None = None, weights: str | Path | None = None, threads: int | None = None,
    weights_option: str = "weights=FILE",
) -> FaceEmbedder:  # fmt: skip
    """The embedder of a collection: the one it records, or ``embedder`` when given (the store
    refuses it later if it is not the collection's).

    Args:
        info: the collection's :class:`~imgrec.store.CollectionInfo` (``FaceCollection.info``).
        embedder: a registered name or run folder to use instead of the recorded one.
        weights: a weights file to use instead of the recorded one (``sface``).
        threads: CPU threads for its math.
        weights_option: how the caller gives ``weights``, for messages.

    Raises:
        UsageError: the collection records no loadable embedder and none is given.
        MissingInputError: the recorded run folder is gone.
    """
    recorded = embedder is None
    weights = weights if weights is not None else info.weights if recorded else None
    if embedder is None:
        embedder = info.source or (info.embedder if info.embedder in EMBEDDERS else None)
    if embedder is None:
        raise UsageError(
            f"Collection {info.name!r} holds embeddings of {info.embedder!r} but does not record where that "
            "embedder is loaded from (it was made through the Python API). Give it: --embedder RUN (the folder "
            f"of the `imgrec import FILE --task embed` run named {info.embedder!r})."
        )
    if weights is not None and not Path(weights).is_file() and weights == info.weights:
        from imgrec.errors import MissingInputError

        raise MissingInputError(f"Collection {info.name!r} was made with the weights file {weights}, which is gone. "
                                f"Give the file again: {weights_option.split('=')[0]} FILE.")  # fmt: skip
    if recorded and str(embedder) not in EMBEDDERS and not Path(embedder).is_dir():
        from imgrec.errors import MissingInputError

        raise MissingInputError(f"The embedder of collection {info.name!r} is the run {embedder}, which is not "
                                "there any more. Give its new place: --embedder RUN.")  # fmt: skip
    return face_embedder(embedder, weights=weights, threads=threads, weights_option=weights_option)

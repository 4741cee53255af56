"""Group faces by person when nobody is enrolled: agglomerative clustering of the embeddings.

Algorithm: scikit-learn's ``AgglomerativeClustering`` with average linkage on cosine distance
(``1 - cosine similarity``), cut at ``1 - threshold``, without a number of clusters. Why:

- no number of persons to guess (k-means needs one);
- average linkage joins two groups only when their faces are similar *on average*; connected
  components of the graph "cosine >= threshold" (single linkage) would let one ambiguous face
  (a profile, a blurred one) chain two persons into one group;
- the threshold means what it means everywhere in imgrec: a cosine similarity, so a
  collection's threshold (or ``threshold_eer`` from the embedder's evaluation) can be reused.

It holds the pairwise distances in memory: fine for thousands of faces (10,000 faces: 400 MB).

Example:
    >>> v = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.1, 0.99]], np.float32)
    >>> cluster_vectors(v, threshold=0.9).tolist()
    [0, 0, 1, 1]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from imgrec.analyzers.faces.embedders import EmbeddedFace, FaceEmbedder, embed_faces
from imgrec.errors import ImgrecError, UsageError
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits
from imgrec.inference import Predictor
from imgrec.inference.predictor import ImageInput, as_inputs
from imgrec.tasks.embed import l2_normalize
from imgrec.types import ItemError


def cluster_vectors(vectors: Any, threshold: float) -> np.ndarray:
    """Cluster labels ``(N,)`` of embeddings, numbered by group size (0: the largest group;
    ties by first appearance): average linkage, joined while cosine similarity >= ``threshold``."""
    if not -1.0 <= float(threshold) <= 1.0:
        raise UsageError(f"threshold is a cosine similarity in [-1, 1]; received {threshold}.")
    x = l2_normalize(vectors) if len(np.asarray(vectors)) else np.zeros((0, 1), np.float32)
    if len(x) < 2:
        return np.zeros(len(x), np.int64)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                    distance_threshold=max(1e-9, 1.0 - float(threshold)))  # fmt: skip
    raw = model.fit_predict(x.astype(np.float64))
    sizes = np.bincount(raw)
    first = np.array([np.flatnonzero(raw == k)[0] for k in range(len(sizes))])
    order = np.lexsort((first, -sizes))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[raw].astype(np.int64)


@dataclass(frozen=True, eq=False)
class ClusteredFace:
    """One face and where it came from: ``source`` (the path, or ``"#i"`` for the i-th input)."""

    source: str
    face: EmbeddedFace

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, **self.face.to_dict()}


@dataclass(frozen=True)
class FaceClusters:
    """Faces grouped by person, the largest group first, and the inputs that could not be read."""

    groups: tuple[tuple[ClusteredFace, ...], ...]
    threshold: float
    errors: tuple[ItemError, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "groups": [[f.to_dict() for f in g] for g in self.groups],
                "errors": [e.to_dict() for e in self.errors]}  # fmt: skip


def cluster_faces(
    images: ImageInput | Iterable[ImageInput], detector: Predictor | str, embedder: FaceEmbedder, threshold: float,
    *, all_faces: bool = True, fallback: bool = False, options: dict[str, Any] | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> FaceClusters:  # fmt: skip
    """Detect, align and embed the faces of ``images``, then group them by person (:func:`cluster_vectors`).

    Args:
        images: paths, bytes, RGB arrays or PIL images.
        detector: a face detector's Predictor or name.
        embedder: the embedder.
        threshold: the cosine similarity from which faces are one person (the collection's,
            or the embedder's ``threshold_eer``).
        all_faces: every face of each image (False: the largest).
        fallback: an image without a detected face is taken whole as one face (face crops).
        options: the detector's options.
        limits: decode limits; an unreadable image becomes an error entry.
    """
    found: list[ClusteredFace] = []
    errors: list[ItemError] = []
    for i, item in enumerate(as_inputs(images)):
        name = str(item) if isinstance(item, str) or hasattr(item, "__fspath__") else f"#{i}"
        try:
            faces = embed_faces(item, detector, embedder, all_faces=all_faces, fallback=fallback, options=options,
                                limits=limits)  # fmt: skip
        except ImgrecError as exc:
            if isinstance(exc, UsageError):
                raise
            errors.append(ItemError(code=exc.code, message=str(exc), path=name))
            continue
        found += [ClusteredFace(name, f) for f in faces]
    labels = cluster_vectors(np.array([f.face.embedding.vector for f in found]), threshold) if found else np.zeros(0)
    groups = [tuple(f for f, k in zip(found, labels, strict=True) if k == g) for g in range(len(set(labels.tolist())))]
    return FaceClusters(tuple(groups), float(threshold), tuple(errors))

"""``embed``: one vector per image (a face crop, usually), L2-normalized, compared by cosine.

Embedder backends (dlib, ONNX) return raw float32 rows (:meth:`imgrec.models.base.Embedder.embed`);
this task does what is common to all of them: check the rows are finite, L2-normalize them and
wrap each in an :class:`Embedding` that names the embedder (vectors of two embedders are not
comparable, so the name travels with the vector). Since the vectors have unit length, their
cosine similarity is their dot product (:func:`cosine`).

Example:
    >>> (e,) = EMBED.postprocess([np.array([3.0, 4.0])], [None], ["a.jpg"], [], {"embedder": "toy"})
    >>> e.vector.tolist(), e.dim, e.embedder
    ([0.6000000238418579, 0.800000011920929], 2, 'toy')
    >>> round(cosine(e.vector, [1.0, 0.0]), 4)
    0.6
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imgrec.errors import ModelFileError, UsageError
from imgrec.tasks.base import Task, register_task
from imgrec.transforms.frame import Geometry


@dataclass(frozen=True, eq=False)
class Embedding:
    """One image's embedding.

    Attributes:
        vector: float32 ``(dim,)``, L2-normalized (unit length; all zeros only when the
            model gave a zero vector, which has no direction).
        embedder: the name of the model that made it (a collection accepts its own embedder's only).
        path: where the image came from, when it came from a file.
    """

    vector: np.ndarray
    embedder: str
    path: str | None = None

    @property
    def dim(self) -> int:
        """The vector's length."""
        return int(self.vector.shape[0])

    def similarity(self, other: Embedding | np.ndarray) -> float:
        """Cosine similarity with another embedding (or unit vector) of the same embedder."""
        if isinstance(other, Embedding) and other.embedder != self.embedder:
            raise UsageError(f"Cannot compare an embedding of {self.embedder!r} with one of {other.embedder!r}: "
                             "vectors of different embedders are not comparable.")  # fmt: skip
        return cosine(self.vector, other.vector if isinstance(other, Embedding) else other)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: path, embedder, dim and the vector (floats rounded to 7 decimals)."""
        return {"path": self.path, "embedder": self.embedder, "dim": self.dim,
                "embedding": [round(float(v), 7) for v in self.vector]}  # fmt: skip


def l2_normalize(rows: Any) -> np.ndarray:
    """float32 ``(N, D)`` rows scaled to unit length (zero rows stay zero).

    Raises:
        ModelFileError: a row holds NaN or infinity (the model file is broken).
    """
    x = np.asarray(rows, np.float32)
    x = x.reshape(len(x), -1) if x.ndim != 1 else x[None]
    if not np.isfinite(x).all():
        raise ModelFileError("The embedder gave NaN or infinite values; its file or its input normalization is wrong.")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def cosine(a: Any, b: Any) -> float:
    """Cosine similarity of two vectors (1: same direction, 0: unrelated, -1: opposite)."""
    x, y = l2_normalize(np.asarray(a, np.float32)[None]), l2_normalize(np.asarray(b, np.float32)[None])
    if x.shape != y.shape:
        raise UsageError(f"Cannot compare vectors of dimensions {x.shape[1]} and {y.shape[1]}.")
    return float(np.einsum("ij,ij->", x, y))


class EmbedTask(Task):
    """Embedding: one L2-normalized vector per image (``Embedder`` models)."""

    name, aliases = "embed", ("embedding",)
    description = "who or what an image resembles: one unit vector per image, compared by cosine"
    batch_size = 32

    def options(self, *, embedder: str | None = None, **other: Any) -> dict[str, Any]:
        given = {k: v for k, v in other.items() if v is not None}
        if given:
            raise UsageError(f"Option(s) {', '.join(sorted(given))} do not apply to embed models; they take none.")
        return {"embedder": embedder or ""}

    def model_options(self, model: Any) -> dict[str, Any]:
        return {"embedder": str(model.name)}

    def forward(self, model: Any, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, int(model.dim)), np.float32)
        return np.asarray(model.embed(batch), np.float32).reshape(len(batch), -1)

    def postprocess(
        self, raw: Sequence[Any], geometries: Sequence[Geometry | None], names: Sequence[str | None],
        classes: Sequence[str], options: Mapping[str, Any],
    ) -> list[Embedding]:  # fmt: skip
        if len(names) == 0:
            return []
        rows = l2_normalize(np.stack([np.asarray(r, np.float32).reshape(-1) for r in raw]))
        embedder = str(options.get("embedder") or "")
        return [Embedding(row, embedder, name) for row, name in zip(rows, names, strict=True)]


EMBED = register_task(EmbedTask())

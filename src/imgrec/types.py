"""Typed results shared by every backend: predictions and per-item errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

UNKNOWN = "unknown"


@dataclass(frozen=True)
class ClassScore:
    """One class and its probability."""

    label: str
    score: float


@dataclass(frozen=True)
class Prediction:
    """The prediction for one image.

    Attributes:
        label: the predicted class, or ``"unknown"`` when the top score is under the
            threshold the caller asked for.
        score: probability of the top class (even when ``label`` is ``"unknown"``; the class
            itself is :attr:`top_class`).
        top_k: the best classes, best first.
        path: where the image came from, when it came from a file.
    """

    label: str
    score: float
    top_k: tuple[ClassScore, ...] = ()
    path: str | None = None

    @property
    def is_unknown(self) -> bool:
        return self.label == UNKNOWN

    @property
    def top_class(self) -> str:
        """The most probable class, named even when ``label`` is ``"unknown"``."""
        return self.top_k[0].label if self.top_k else self.label

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "label": self.label,
            "score": round(self.score, 6),
            "top_class": self.top_class,
            "top_k": [{"label": c.label, "score": round(c.score, 6)} for c in self.top_k],
        }


@dataclass(frozen=True)
class ItemError:
    """An input that could not be predicted; the others in the batch still are."""

    code: str
    message: str
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "error": {"code": self.code, "message": self.message}}


@dataclass
class History:
    """Per-epoch training figures, appended by the training loop."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

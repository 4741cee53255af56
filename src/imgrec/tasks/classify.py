"""``classify``: one class per image; raw outputs are probability rows, results are :class:`Prediction`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from imgrec.errors import UsageError
from imgrec.tasks.base import Task, register_task
from imgrec.transforms.frame import Geometry
from imgrec.types import UNKNOWN, ClassScore, Prediction


class ClassifyTask(Task):
    """Image classification (``predict_proba`` models)."""

    name, aliases = "classify", ("classification",)
    description = "what an image shows: one class per image, top-k probabilities"

    def options(self, *, top_k: int = 1, threshold: float | None = None, **other: Any) -> dict[str, Any]:
        _refuse(other, self.name)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise UsageError(f"top_k must be an integer >= 1; received {top_k!r}.")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise UsageError(f"threshold must be a probability in [0, 1]; received {threshold}.")
        return {"top_k": top_k, "threshold": threshold}

    def forward(self, model: Any, batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_proba(batch), dtype=np.float32)

    def postprocess(
        self, raw: Sequence[Any], geometries: Sequence[Geometry], names: Sequence[str | None],
        classes: Sequence[str], options: Mapping[str, Any],
    ) -> list[Prediction]:  # fmt: skip
        proba = np.asarray(raw, np.float32).reshape(len(names), len(classes))
        return to_predictions(proba, classes, names, options.get("top_k", 1), options.get("threshold"))


def to_predictions(
    proba: np.ndarray, classes: Sequence[str], names: Sequence[str | None], top_k: int = 1,
    threshold: float | None = None,
) -> list[Prediction]:  # fmt: skip
    """Probability rows -> predictions (top-k; ``unknown`` under ``threshold``)."""
    k = min(top_k, len(classes))
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    preds = []
    for row, idx, name in zip(proba, order, names, strict=True):
        top = tuple(ClassScore(classes[j], float(row[j])) for j in idx)
        label = top[0].label if threshold is None or top[0].score >= threshold else UNKNOWN
        preds.append(Prediction(label=label, score=top[0].score, top_k=top, path=name))
    return preds


def _refuse(other: Mapping[str, Any], task: str) -> None:
    given = {k: v for k, v in other.items() if v is not None}
    if given:
        raise UsageError(f"Option(s) {', '.join(sorted(given))} do not apply to {task} models.")


CLASSIFY = register_task(ClassifyTask())

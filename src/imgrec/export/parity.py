"""Compare an exported model with its source on real images, and the gates that use the figures."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from imgrec.errors import ModelFileError, UsageError
from imgrec.evaluation import predict_batches
from imgrec.evaluation.classify import ProbaModel
from imgrec.export.samples import Samples


@dataclass
class Parity:
    """How closely a candidate model follows a reference on the same prepared images.

    Attributes:
        images: how many images were compared.
        max_abs_error: largest absolute difference of any class probability.
        top1_agreement: fraction of images whose top class is the same.
        reference_ms: reference latency per image (milliseconds, batches of ``batch_size``).
        candidate_ms: candidate latency per image.
        reference_accuracy: reference top-1 accuracy, when the images are labeled.
        candidate_accuracy: candidate top-1 accuracy, when the images are labeled.
        source: where the images came from.
    """

    images: int
    max_abs_error: float
    top1_agreement: float
    reference_ms: float
    candidate_ms: float
    reference_accuracy: float | None
    candidate_accuracy: float | None
    source: str

    @property
    def accuracy_drop(self) -> float | None:
        """Reference minus candidate accuracy, in percentage points (None without labels)."""
        if self.reference_accuracy is None or self.candidate_accuracy is None:
            return None
        return 100.0 * (self.reference_accuracy - self.candidate_accuracy)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["accuracy_drop_points"] = None if self.accuracy_drop is None else round(self.accuracy_drop, 4)
        return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in d.items()}

    def figures(self) -> str:
        """One line with every figure, for messages."""
        acc = ""
        if self.accuracy_drop is not None:
            acc = (f", accuracy {self.reference_accuracy:.2%} -> {self.candidate_accuracy:.2%} "
                   f"(drop {self.accuracy_drop:.2f} points)")
        return (f"top-1 agreement {self.top1_agreement:.2%}, max abs probability error "
                f"{self.max_abs_error:.3g}{acc}, {self.reference_ms:.2f} -> {self.candidate_ms:.2f} ms/image, "
                f"on {self.images} images from {self.source}")


def _timed(model: ProbaModel, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, float]:
    predict_batches(model, images[:1], 1)  # warm-up: first-call allocations, lazy init
    start = time.perf_counter()
    proba = predict_batches(model, images, batch_size)
    return proba, 1000.0 * (time.perf_counter() - start) / max(1, len(images))


def compare(reference: ProbaModel, candidate: ProbaModel, samples: Samples, batch_size: int = 32) -> Parity:
    """Run both models on ``samples`` and measure how far the candidate is from the reference."""
    ref, ref_ms = _timed(reference, samples.images, batch_size)
    cand, cand_ms = _timed(candidate, samples.images, batch_size)
    if ref.shape != cand.shape:
        raise ModelFileError(f"The export gives probabilities shaped {cand.shape}; the source gives {ref.shape}.")
    agree = float(np.mean(ref.argmax(1) == cand.argmax(1))) if len(ref) else 1.0
    acc = (lambda p: float(np.mean(p.argmax(1) == samples.labels))) if samples.labels is not None else None
    return Parity(
        images=len(ref), max_abs_error=float(np.abs(ref - cand).max()) if len(ref) else 0.0,
        top1_agreement=agree, reference_ms=ref_ms, candidate_ms=cand_ms,
        reference_accuracy=acc(ref) if acc else None, candidate_accuracy=acc(cand) if acc else None,
        source=samples.source,
    )


def check_fraction(name: str, value: float) -> None:
    """A threshold given as a fraction must lie in [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{name} must be a fraction in [0, 1] (0.99 = 99%); received {value}.")


def agreement_gate(parity: Parity, min_agreement: float, what: str, outcome: str) -> None:
    """Raise ModelFileError (exit 65) with every figure when top-1 agreement is too low.

    Args:
        parity: the figures.
        min_agreement: the least top-1 agreement that passes.
        what: the checked file, for the message.
        outcome: what happened to the file and what to do, for the message.
    """
    if parity.top1_agreement < min_agreement:
        raise ModelFileError(
            f"{what} failed the parity check: top-1 agreement {parity.top1_agreement:.2%} is below the required "
            f"{min_agreement:.2%}. Figures: {parity.figures()}. {outcome}",
            code="export_parity_failed",
        )


def drop_gate(parity: Parity, max_drop: float, what: str, outcome: str) -> float:
    """Raise ModelFileError when the accuracy drop (points) is over ``max_drop``; returns the drop.

    Without labels the drop is bounded by the disagreement rate (every changed top-1 could be a
    newly wrong answer), and that bound is what is gated.
    """
    drop = parity.accuracy_drop
    if drop is None:
        drop = 100.0 * (1.0 - parity.top1_agreement)
    if drop > max_drop:
        raise ModelFileError(
            f"{what} loses too much accuracy: {drop:.2f} points against the limit of {max_drop:.2f}. Figures: "
            f"{parity.figures()}. {outcome}",
            code="export_accuracy_drop",
        )
    return drop

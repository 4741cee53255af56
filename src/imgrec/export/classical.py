"""Which runs can become ONNX graphs, and the reason when one cannot.

Classical models are scikit-learn pipelines whose first step extracts hand-made features.
HOG, LBP, colour histograms and bags of visual words are computed by scikit-image, OpenCV and
numpy code with no ONNX operator equivalent, and an approximation would silently change the
predictions, so those runs are refused with the reason instead of being exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgrec.errors import UsageError

# feature part -> why it has no ONNX form
NOT_IN_ONNX = {
    "hog": "HOG (gradient orientation histograms with block normalization, computed by scikit-image)",
    "lbp": "LBP (local binary pattern codes and their histograms, computed by scikit-image)",
    "color": "HSV colour histograms (colour-space conversion and hard binning)",
    "bovw": "the bag of visual words (OpenCV SIFT descriptors assigned to k-means words)",
}


def feature_parts(model_name: str) -> list[str]:
    """The feature extractors of a registered classical model (``["hog", "pixels"]``)."""
    from imgrec.models.classical import RECIPES

    recipe = RECIPES.get(model_name)
    return recipe.features.split("+") if recipe is not None else []


def refuse_unexportable(run: Path, meta: dict[str, Any]) -> None:
    """Raise UsageError saying why the run cannot become an ONNX graph; return when it can."""
    family, name = str(meta.get("family")), str(meta.get("model"))
    if family in ("torch", "probe"):  # a probe's backbone and head are checked when it is loaded
        return
    if family == "onnx":
        raise UsageError(f"{run} already holds an ONNX model ({name}); there is nothing to export.")
    if family != "classical":
        raise UsageError(f"{run} holds a {family!r} model ({name}); only torch runs export to ONNX.")
    parts = feature_parts(name)
    blockers = [NOT_IN_ONNX[p] for p in parts if p in NOT_IN_ONNX]
    if blockers:
        raise UsageError(
            f"{run} holds the classical model {name!r}, which cannot be exported to ONNX: its feature "
            f"extraction ({'; '.join(blockers)}) has no ONNX equivalent, and an approximation would change "
            "the predictions. Use the run as it is (`imgrec predict`, `imgrec serve` run the scikit-learn "
            "pipeline directly), or train a deep model (e.g. --model cnn-bn) for an ONNX export.",
            code="not_exportable",
        )
    raise UsageError(
        f"{run} holds the classical model {name!r} (features: {', '.join(parts) or 'unknown'}); exporting "
        "scikit-learn pipelines to ONNX is not implemented. Use the run as it is, or train a deep model.",
        code="not_exportable",
    )

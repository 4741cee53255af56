"""Which classical runs can become ONNX graphs, and the one explanation when they cannot.

Classical models are scikit-learn pipelines whose first step extracts hand-made features.
HOG, LBP, colour histograms and bags of visual words are computed by scikit-image, OpenCV and
numpy code with no ONNX operator equivalent, and an approximation would silently change the
predictions. ``imgrec export`` refuses such runs and ``predict --backend onnx`` explains the
missing file with the same words (:func:`classical_onnx_reason`).
"""

from __future__ import annotations

from pathlib import Path

# feature part -> why it has no ONNX form
NOT_IN_ONNX = {
    "hog": "HOG (gradient orientation histograms with block normalization, computed by scikit-image)",
    "lbp": "LBP (local binary pattern codes and their histograms, computed by scikit-image)",
    "color": "HSV colour histograms (colour-space conversion and hard binning)",
    "bovw": "the bag of visual words (OpenCV SIFT descriptors assigned to k-means words)",
}


def feature_parts(model_name: str) -> list[str]:
    """The feature extractors of a registered classical model (``["hog", "pixels"]``).

    Example:
        >>> feature_parts("hog-pixels-svm")
        ['hog', 'pixels']
    """
    from imgrec.models.classical import RECIPES

    recipe = RECIPES.get(model_name)
    return recipe.features.split("+") if recipe is not None else []


def classical_onnx_reason(run: str | Path, model_name: str) -> str:
    """Why the classical run ``run`` (of model ``model_name``) has no ONNX export, and what to do.

    Example:
        >>> "no ONNX equivalent" in classical_onnx_reason("runs/hog-svm-1", "hog-svm")
        True
    """
    parts = feature_parts(model_name)
    blockers = [NOT_IN_ONNX[p] for p in parts if p in NOT_IN_ONNX]
    if blockers:
        return (
            f"{run} holds the classical model {model_name!r}, which cannot be exported to ONNX: its feature "
            f"extraction ({'; '.join(blockers)}) has no ONNX equivalent, and an approximation would change "
            "the predictions. Use the run as it is (`imgrec predict`, `imgrec serve` run the scikit-learn "
            "pipeline directly), or train a deep model (e.g. --model cnn-bn) for an ONNX export."
        )
    return (
        f"{run} holds the classical model {model_name!r} (features: {', '.join(parts) or 'unknown'}); exporting "
        "scikit-learn pipelines to ONNX is not implemented. Use the run as it is, or train a deep model."
    )

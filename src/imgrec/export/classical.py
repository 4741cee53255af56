"""Which runs can become ONNX graphs, and the reason when one cannot (see imgrec.models.exportable).

Classical models are scikit-learn pipelines whose first step extracts hand-made features.
HOG, LBP, colour histograms and bags of visual words are computed by scikit-image, OpenCV and
numpy code with no ONNX operator equivalent, and an approximation would silently change the
predictions, so those runs are refused with the reason instead of being exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgrec.errors import UsageError
from imgrec.models.exportable import NOT_IN_ONNX, classical_onnx_reason, feature_parts

__all__ = ["NOT_IN_ONNX", "feature_parts", "refuse_unexportable"]


def refuse_unexportable(run: Path, meta: dict[str, Any]) -> None:
    """Raise UsageError saying why the run cannot become an ONNX graph; return when it can."""
    family, name = str(meta.get("family")), str(meta.get("model"))
    if family in ("torch", "probe"):  # a probe's backbone and head are checked when it is loaded
        return
    if family == "onnx":
        raise UsageError(f"{run} already holds an ONNX model ({name}); there is nothing to export.")
    if family != "classical":
        raise UsageError(f"{run} holds a {family!r} model ({name}); only torch runs export to ONNX.")
    raise UsageError(classical_onnx_reason(run, name), code="not_exportable")

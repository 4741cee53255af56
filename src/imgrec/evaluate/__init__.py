"""Evaluation: metrics on arrays, ``evaluate(predictor, dataset)``, reports and leaderboards.

The package is also callable, ``imgrec.evaluate(predictor, dataset)`` being the same as
``imgrec.evaluate.evaluate(...)``: the public name and the subpackage are one object, so
which one Python imports first does not matter.

Example:
    >>> import numpy as np
    >>> from imgrec.evaluate import classification_metrics
    >>> classification_metrics([0, 1], np.eye(2), ["a", "b"])["accuracy"]
    1.0
"""

from __future__ import annotations

import sys
import types
from typing import Any

from imgrec.evaluate.compare import comparability_warnings, compare_runs
from imgrec.evaluate.detection import DetectionAccumulator
from imgrec.evaluate.detection.report import write_detection_report
from imgrec.evaluate.detection.run import DetectionResult, evaluate_detection
from imgrec.evaluate.diagnosis import Finding, diagnose
from imgrec.evaluate.evaluation import EvalResult, evaluate, evaluate_arrays, predict_batches
from imgrec.evaluate.metrics import accuracy, classification_metrics, macro_f1
from imgrec.evaluate.report import summarize, write_metrics_json, write_report

__all__ = [
    "DetectionAccumulator",
    "DetectionResult",
    "EvalResult",
    "Finding",
    "accuracy",
    "classification_metrics",
    "comparability_warnings",
    "compare_runs",
    "diagnose",
    "evaluate",
    "evaluate_arrays",
    "evaluate_detection",
    "macro_f1",
    "predict_batches",
    "summarize",
    "write_detection_report",
    "write_metrics_json",
    "write_report",
]


class _CallableModule(types.ModuleType):
    """Lets ``imgrec.evaluate(...)`` call :func:`evaluate` whether it names the function or
    this package."""

    def __call__(self, *args: Any, **kwargs: Any) -> EvalResult:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

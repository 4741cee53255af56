"""Evaluation: metrics on arrays, ``evaluate(predictor, dataset)``, reports and leaderboards.

``imgrec.evaluate(predictor, dataset)`` is :func:`imgrec.evaluation.evaluate`; it dispatches
on the predictor's task (an ``EvalResult`` for classifiers, a ``DetectionResult`` for
detectors, a ``SegmentationResult`` for segmenters, an ``InstanceResult`` for instance
segmenters). ``evaluate_run`` evaluates a finished run and writes its report.

Example:
    >>> import numpy as np
    >>> from imgrec.evaluation import classification_metrics
    >>> classification_metrics([0, 1], np.eye(2), ["a", "b"])["accuracy"]
    1.0
"""

from __future__ import annotations

from imgrec.evaluation.classify import EvalResult, evaluate_arrays, evaluate_classifier, predict_batches
from imgrec.evaluation.compare import comparability_warnings, compare_runs
from imgrec.evaluation.detection import DetectionAccumulator
from imgrec.evaluation.detection.report import write_detection_report
from imgrec.evaluation.detection.run import DetectionResult, evaluate_detection
from imgrec.evaluation.diagnosis import Finding, diagnose
from imgrec.evaluation.instance import InstanceResult, MaskAccumulator, evaluate_instances, write_instance_report
from imgrec.evaluation.metrics import accuracy, classification_metrics, macro_f1
from imgrec.evaluation.report import summarize, write_metrics_json, write_report
from imgrec.evaluation.runs import align_classes, evaluate, evaluate_run
from imgrec.evaluation.segmentation import SegmentationResult, evaluate_segmentation, write_segmentation_report

__all__ = [
    "DetectionAccumulator",
    "DetectionResult",
    "EvalResult",
    "Finding",
    "InstanceResult",
    "MaskAccumulator",
    "SegmentationResult",
    "accuracy",
    "align_classes",
    "classification_metrics",
    "comparability_warnings",
    "compare_runs",
    "diagnose",
    "evaluate",
    "evaluate_arrays",
    "evaluate_classifier",
    "evaluate_detection",
    "evaluate_instances",
    "evaluate_run",
    "evaluate_segmentation",
    "macro_f1",
    "predict_batches",
    "summarize",
    "write_detection_report",
    "write_instance_report",
    "write_metrics_json",
    "write_report",
    "write_segmentation_report",
]

"""Segmentation evaluation: pixel confusion matrix, IoU, mIoU, Dice, pixel accuracy and
boundary F1 (:class:`SegmentationAccumulator`); ``evaluate_segmentation`` runs a segmenter over a
``segment`` dataset through the Predictor's steps; ``write_segmentation_report``."""

from imgrec.evaluation.segmentation.accumulator import SegmentationAccumulator
from imgrec.evaluation.segmentation.report import write_segmentation_report
from imgrec.evaluation.segmentation.run import SegmentationResult, evaluate_segmentation

__all__ = ["SegmentationAccumulator", "SegmentationResult", "evaluate_segmentation", "write_segmentation_report"]

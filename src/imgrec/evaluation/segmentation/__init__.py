"""Segmentation evaluation: pixel confusion matrix, IoU, mIoU, Dice, pixel accuracy and
boundary F1 (:class:`SegmentationAccumulator`)."""

from imgrec.evaluation.segmentation.accumulator import SegmentationAccumulator

__all__ = ["SegmentationAccumulator"]

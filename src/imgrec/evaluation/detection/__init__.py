"""Detection evaluation: COCO metrics through pycocotools, with a detection confusion matrix
and per-image error counts (:class:`DetectionAccumulator`)."""

from imgrec.evaluation.detection.accumulator import DetectionAccumulator
from imgrec.evaluation.detection.coco import STAT_NAMES
from imgrec.evaluation.detection.matching import ImageMatch, match_image

__all__ = ["STAT_NAMES", "DetectionAccumulator", "ImageMatch", "match_image"]

"""Detection evaluation: COCO metrics through pycocotools, with a detection confusion matrix
and per-image error counts (:class:`DetectionAccumulator`)."""

from imgrec.evaluate.detection.accumulator import DetectionAccumulator
from imgrec.evaluate.detection.coco import STAT_NAMES
from imgrec.evaluate.detection.matching import ImageMatch, match_image

__all__ = ["STAT_NAMES", "DetectionAccumulator", "ImageMatch", "match_image"]

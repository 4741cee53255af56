"""Instance-segmentation evaluation: box AP (the detection figures, unchanged) next to mask AP
(pycocotools' ``segm`` evaluation, :class:`MaskAccumulator`); ``evaluate_instances`` runs an
instance segmenter over an ``instance`` dataset through the Predictor's steps;
``write_instance_report``."""

from imgrec.evaluation.instance.accumulator import MaskAccumulator
from imgrec.evaluation.instance.report import write_instance_report
from imgrec.evaluation.instance.run import InstanceResult, evaluate_instances

__all__ = ["InstanceResult", "MaskAccumulator", "evaluate_instances", "write_instance_report"]

"""Tasks: what a target and a result are for each recognition task, and how raw model outputs
become results (shared by every backend). ``get_task("detect")``, ``list_tasks()``."""

from imgrec.tasks.base import TASKS, Task, get_task, list_tasks, register_task
from imgrec.tasks.classify import CLASSIFY, ClassifyTask, to_predictions
from imgrec.tasks.detect import DETECT, BoxCandidates, Detection, Detections, DetectTask
from imgrec.tasks.detect_draw import draw_detections
from imgrec.tasks.embed import EMBED, Embedding, EmbedTask, cosine, l2_normalize
from imgrec.tasks.instance import INSTANCE, Instance, InstanceCandidates, Instances, InstanceTask
from imgrec.tasks.segment import SEGMENT, Segmentation, SegmentOutput, SegmentTask
from imgrec.tasks.segment_draw import cutout, draw_instances, draw_segmentation

__all__ = [
    "CLASSIFY",
    "DETECT",
    "EMBED",
    "INSTANCE",
    "SEGMENT",
    "TASKS",
    "BoxCandidates",
    "ClassifyTask",
    "DetectTask",
    "Detection",
    "Detections",
    "EmbedTask",
    "Embedding",
    "Instance",
    "InstanceCandidates",
    "InstanceTask",
    "Instances",
    "SegmentOutput",
    "SegmentTask",
    "Segmentation",
    "Task",
    "cosine",
    "cutout",
    "draw_detections",
    "draw_instances",
    "draw_segmentation",
    "get_task",
    "l2_normalize",
    "list_tasks",
    "register_task",
    "to_predictions",
]

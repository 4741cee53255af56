"""Tasks: what a target and a result are for each recognition task, and how raw model outputs
become results (shared by every backend). ``get_task("detect")``, ``list_tasks()``."""

from imgrec.tasks.base import TASKS, Task, get_task, list_tasks, register_task
from imgrec.tasks.classify import CLASSIFY, ClassifyTask, to_predictions
from imgrec.tasks.detect import DETECT, BoxCandidates, Detection, Detections, DetectTask
from imgrec.tasks.detect_draw import draw_detections

__all__ = [
    "CLASSIFY",
    "DETECT",
    "TASKS",
    "BoxCandidates",
    "ClassifyTask",
    "DetectTask",
    "Detection",
    "Detections",
    "Task",
    "draw_detections",
    "get_task",
    "list_tasks",
    "register_task",
    "to_predictions",
]

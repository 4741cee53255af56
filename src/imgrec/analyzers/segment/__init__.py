"""Promptable segmentation: Segment Anything (SAM) with points, boxes, a previous mask, boxes
from a detection run, or "everything". Also reached as ``imgrec.segment``; results are the
``instance`` task's :class:`~imgrec.tasks.instance.Instances` (RLE JSON, drawing, cut-outs shared).

Example:
    >>> import imgrec
    >>> imgrec.segment.SAM_TYPES
    ('vit_b', 'vit_l', 'vit_h')
    >>> # sam = imgrec.load_sam("sam_vit_b_01ec64.pth")        # or download=True
    >>> # sam.set_image("dog.jpg")
    >>> # sam.predict(points=[(320, 240)]).instances[0].mask()
    >>> # sam.predict(boxes=[(10, 10, 200, 300), (250, 40, 400, 300)])
    >>> # sam.everything("street.jpg", points_per_side=16)
"""

from imgrec.analyzers.segment.detect import detection_prompts, segment_detections
from imgrec.analyzers.segment.everything import EVERYTHING_DEFAULTS, everything_options
from imgrec.analyzers.segment.prompts import Prompt, parse_box, parse_point
from imgrec.analyzers.segment.sam import SamImage, SamSegmenter, load_sam, read_image
from imgrec.models.sam import SAM_FILES, SAM_TYPES, SamConfig

__all__ = [
    "EVERYTHING_DEFAULTS",
    "SAM_FILES",
    "SAM_TYPES",
    "Prompt",
    "SamConfig",
    "SamImage",
    "SamSegmenter",
    "detection_prompts",
    "everything_options",
    "load_sam",
    "parse_box",
    "parse_point",
    "read_image",
    "segment_detections",
]

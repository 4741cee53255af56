"""imgrec's own YOLO-style detector: one stage, anchor-free, trainable on the CPU.

A timm backbone (strides 8/16/32) -> FPN + PAN neck -> a decoupled head per level (class
logits; distances from the cell centre to the box sides), trained with a task-aligned
assigner (TOOD), BCE against the alignment targets and GIoU. Written here from the published
ideas (FCOS, YOLOX, TOOD); no code of any other YOLO implementation.

Registered as ``yolo-n`` (MobileNetV4-Conv-Small backbone, neck width 64, one conv per head
branch) and ``yolo-s`` (CSP-Darknet-S, width 96, two convs), task ``detect``, family
``torch``; runs load through ``torch_detect.load``, which looks the architecture up in
``torch_detect.ARCH_LOADERS``. Options (``--model-arg``): ``backbone=NAME`` (any timm CNN that
gives three feature levels), ``width=N``, ``head_convs=N``; ``pretrained``, ``weights=FILE``,
``backbone_weights=RUN|FILE`` (``imgrec train --backbone-weights``: a classification run of the
backbone's architecture).

Importing this package registers the models; it does not import torch or timm.

Example:
    >>> from imgrec.models import list_models
    >>> "yolo-n" in list_models(task="detect")
    True
"""

from __future__ import annotations

from imgrec.models.base import ModelSpec
from imgrec.models.registry import lazy, register_model
from imgrec.models.torch_detect import register_arch_loader
from imgrec.transforms.preprocess import IMAGENET_MEAN, IMAGENET_STD

_SPECS = {  # name: (what, params at 10 classes)
    "yolo-n": ("YOLO-style anchor-free detector, MobileNetV4-Small backbone (imgrec): fastest to train on CPU",
               1_810_000),
    "yolo-s": ("YOLO-style anchor-free detector, CSP-Darknet-S backbone (imgrec)", 4_420_000),
}  # fmt: skip


def _register() -> None:
    for name, (what, params) in _SPECS.items():
        register_model(ModelSpec(
            name=name, family="torch", description=what, default_size=320,
            build=lazy("imgrec.models.yolo.detector:build"), params=params, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            tags=("detect", "yolo", "anchor-free"), task="detect", default_lr=2e-3,
        ))  # fmt: skip
        register_arch_loader(name, lazy("imgrec.models.yolo.detector:load"))


_register()

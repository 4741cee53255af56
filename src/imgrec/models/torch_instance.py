"""torchvision's Mask R-CNN by name: instance segmentation behind the ``instance`` task.

``maskrcnn_resnet50_fpn_v2`` and ``maskrcnn_resnet50_fpn`` are torchvision's own builders (official
COCO weights with ``pretrained=True``); ``maskrcnn_mobilenet_v3_large_fpn`` is Mask R-CNN on
torchvision's MobileNetV3-Large FPN (the backbone of ``fasterrcnn_mobilenet_v3_large_fpn``), about
4x cheaper on a CPU; torchvision publishes no Mask R-CNN weights for it, so ``pretrained=True``
loads the COCO Faster R-CNN MobileNetV3 weights into the backbone, the RPN and the box head, and
the mask head starts fresh.

Everything else is :class:`~imgrec.models.torch_detect.TorchDetector`'s: the prepared uint8
batch, the transform pinned to the input size (boxes stay in input pixels), the opened score
threshold, ``weights`` / ``backbone_weights`` and the tunable sampling counts (``--model-arg``).
What differs is the output: :meth:`TorchInstanceSegmenter.segment_instances` runs the network's
stages itself and keeps each object's 28 x 28 mask over its box (what Mask R-CNN predicts), so
the ``instance`` task pastes the kept objects' masks straight into the original's pixels; the
network's own pasting would hold 300 full-size float maps per image. Training targets add
``masks``: one ``(K, S, S)`` uint8 map per image, in input pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from imgrec.models.torch_detect import MODEL_CLASSES, Arch, TorchDetector, register_archs

DETECTIONS_PER_IMAGE = 100  # COCO's max_det: each kept object costs a mask


def _maskrcnn_mobilenet(*, num_classes: int, weights: Any = None, weights_backbone: Any = None, **kwargs: Any) -> Any:
    """Mask R-CNN on MobileNetV3-Large FPN, with ``fasterrcnn_mobilenet_v3_large_fpn``'s anchors."""
    from torch import nn
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import mobilenet_backbone
    from torchvision.models.detection.mask_rcnn import MaskRCNN

    # Built untrained like torchvision's own builders without weights (then loaded, as they are):
    # trainable BatchNorm, every layer trainable. mobilenet_backbone's default, FrozenBatchNorm2d,
    # is for a pretrained body; on a fresh one it freezes 46 identity layers.
    backbone = mobilenet_backbone(backbone_name="mobilenet_v3_large", weights=None, fpn=True, trainable_layers=6,
                                  norm_layer=nn.BatchNorm2d)  # fmt: skip
    sizes = ((32, 64, 128, 256, 512),) * 3
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    return MaskRCNN(backbone, num_classes, rpn_anchor_generator=anchors, **kwargs)


HEADS = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")
ARCHS: dict[str, Arch] = {
    "maskrcnn_resnet50_fpn_v2": Arch(
        "maskrcnn_resnet50_fpn_v2", "MaskRCNN_ResNet50_FPN_V2_Weights", 640, HEADS,
        "Mask R-CNN, ResNet-50 FPN v2", 46_400_000, task="instance",
    ),
    "maskrcnn_resnet50_fpn": Arch(
        "maskrcnn_resnet50_fpn", "MaskRCNN_ResNet50_FPN_Weights", 640, HEADS, "Mask R-CNN, ResNet-50 FPN",
        44_400_000, task="instance",
    ),
    "maskrcnn_mobilenet_v3_large_fpn": Arch(
        "maskrcnn_mobilenet_v3_large_fpn", "FasterRCNN_MobileNet_V3_Large_FPN_Weights", 320,
        (*HEADS, "roi_heads.mask_head."), "Mask R-CNN, MobileNetV3 FPN", 21_600_000,
        task="instance", make=_maskrcnn_mobilenet,
    ),
}  # fmt: skip


class TorchInstanceSegmenter(TorchDetector):
    """A torchvision Mask R-CNN: boxes, classes, scores and a mask per object."""

    task = "instance"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.module.roi_heads.detections_per_img = DETECTIONS_PER_IMAGE
        self.batch_size = 8

    def segment_instances(self, batch: np.ndarray) -> list[Any]:
        """Candidates per image in input pixels, each mask ``(28, 28)`` over its box (probabilities)."""
        import torch

        self.module.eval()
        found: list[Any] = []
        with torch.inference_mode():
            for i in range(0, len(batch), self.batch_size):
                found += [_candidates(d) for d in self._stages(self.tensors(batch[i : i + self.batch_size]))]
        return found

    def _stages(self, tensors: list[Any]) -> list[dict[str, Any]]:
        """GeneralizedRCNN's forward without its last step (pasting the masks into the image)."""
        m = self.module
        images, _ = m.transform(tensors)
        features = m.backbone(images.tensors)
        proposals, _ = m.rpn(images, features)
        detections, _ = m.roi_heads(features, proposals, images.image_sizes)
        return list(detections)

    def detect(self, batch: np.ndarray) -> list[Any]:
        """Box candidates only (what a detection evaluation of this model reads)."""
        from imgrec.tasks.detect import BoxCandidates

        return [BoxCandidates(c.boxes, c.scores, c.labels) for c in self.segment_instances(batch)]

    def losses(self, batch: np.ndarray, targets: Sequence[Mapping[str, np.ndarray]]) -> dict[str, Any]:
        """Training losses for a batch and its targets (``boxes`` in input pixels, ``labels`` as
        imgrec class indices, ``masks`` ``(K, S, S)`` uint8 in input pixels)."""
        import torch

        self.module.train()
        tv = [{"boxes": torch.as_tensor(np.asarray(t["boxes"], np.float32).reshape(-1, 4), device=self.device),
               "labels": torch.as_tensor(np.asarray(t["labels"], np.int64) + 1, device=self.device),
               "masks": torch.as_tensor(np.asarray(t["masks"], np.uint8), device=self.device)}
              for t in targets]  # fmt: skip
        return dict(self.module(self.tensors(batch), tv))


def _candidates(d: Mapping[str, Any]) -> Any:
    from imgrec.tasks.instance import InstanceCandidates

    labels = d["labels"].cpu().numpy().astype(np.int64) - 1
    keep = labels >= 0
    masks = d["masks"][:, 0].float().cpu().numpy()
    return InstanceCandidates(
        d["boxes"].float().cpu().numpy()[keep],
        d["scores"].float().cpu().numpy()[keep],
        labels[keep],
        masks[keep],
        mask_frame="box",
    )


MODEL_CLASSES["instance"] = TorchInstanceSegmenter
register_archs(ARCHS, "instance")

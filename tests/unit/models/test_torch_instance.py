"""Mask R-CNN models: weights from a file (a Faster R-CNN file fills all but the mask head), the
options and sizes they refuse, and candidates that only the kept objects' masks are pasted from."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from imgrec.errors import ConfigError  # noqa: E402
from imgrec.models import create_model  # noqa: E402


def test_a_faster_rcnn_file_fills_backbone_rpn_and_box_head(tmp_path) -> None:
    """`pretrained` for the MobileNetV3 Mask R-CNN reads the Faster R-CNN COCO file: the same
    path with a local file shows every tensor but the mask head's comes from it."""
    from safetensors.torch import save_file

    torch.manual_seed(1)
    donor = create_model("fasterrcnn_mobilenet_v3_large_fpn", ["a", "b"], image_size=64)
    # torchvision's COCO file was trained with FrozenBatchNorm2d: no num_batches_tracked buffers
    state = {k: v.contiguous() for k, v in donor.module.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(state, str(tmp_path / "faster.safetensors"))
    torch.manual_seed(2)
    model = create_model("maskrcnn_mobilenet_v3_large_fpn", ["a", "b"], image_size=64,
                         weights=str(tmp_path / "faster.safetensors"))  # fmt: skip
    own = model.module.state_dict()
    for key in ("backbone.body.0.0.weight", "rpn.head.conv.0.0.weight", "roi_heads.box_predictor.cls_score.weight"):
        assert torch.equal(own[key], state[key]), key
    assert not any(k.startswith("roi_heads.mask_") for k in state)
    assert "roi_heads.mask_predictor.mask_fcn_logits.weight" in own


def test_an_untrained_mobilenet_body_trains_its_batchnorm_like_torchvisions() -> None:
    """As torchvision's builders without weights: BatchNorm2d everywhere (mobilenet_backbone's
    default FrozenBatchNorm2d would freeze 46 identity layers of a fresh body) and every layer trainable."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    model = create_model("maskrcnn_mobilenet_v3_large_fpn", ["a", "b"], image_size=64)
    kinds = [type(m) for m in model.module.backbone.modules()]
    assert FrozenBatchNorm2d not in kinds and kinds.count(torch.nn.BatchNorm2d) == 46
    assert all(p.requires_grad for p in model.module.backbone.parameters())


def test_another_class_count_keeps_a_fresh_head(tmp_path) -> None:
    from safetensors.torch import save_file

    donor = create_model("maskrcnn_mobilenet_v3_large_fpn", ["a", "b", "c", "d"], image_size=64)
    save_file({k: v.contiguous() for k, v in donor.module.state_dict().items()}, str(tmp_path / "w.safetensors"))
    model = create_model("maskrcnn_mobilenet_v3_large_fpn", ["a", "b"], image_size=64,
                         weights=str(tmp_path / "w.safetensors"))  # fmt: skip
    own, theirs = model.module.state_dict(), donor.module.state_dict()
    assert own["roi_heads.mask_predictor.mask_fcn_logits.weight"].shape[0] == 3  # 2 classes + background
    assert torch.equal(own["roi_heads.mask_head.0.0.weight"], theirs["roi_heads.mask_head.0.0.weight"])


def test_options_and_sizes_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown"):
        create_model("maskrcnn_mobilenet_v3_large_fpn", ["a"], image_size=64, anchors=3)
    with pytest.raises(ConfigError, match="at least 64"):
        create_model("maskrcnn_mobilenet_v3_large_fpn", ["a"], image_size=32)
    with pytest.raises(ConfigError, match="integer >= 1"):
        create_model("maskrcnn_resnet50_fpn_v2", ["a"], image_size=64, box_batch_size_per_image=0)
    tuned = create_model("maskrcnn_mobilenet_v3_large_fpn", ["a"], image_size=64, rpn_post_nms_top_n_train=50)
    assert tuned.module.rpn._post_nms_top_n["training"] == 50 and tuned.module.roi_heads.detections_per_img == 100


def test_detect_gives_the_same_boxes_as_the_instances() -> None:
    """A Mask R-CNN run evaluated as a detector reads the same boxes (no second forward path)."""
    torch.manual_seed(0)
    model = create_model("maskrcnn_mobilenet_v3_large_fpn", ["a", "b"], image_size=64)
    batch = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    (inst,), (det,) = model.segment_instances(batch), model.detect(batch)
    np.testing.assert_array_equal(inst.boxes, det.boxes)
    np.testing.assert_array_equal(inst.labels, det.labels)

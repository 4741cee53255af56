"""torchvision detectors: backbone weights from a classification run (offline transfer)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from imgrec.errors import ModelFileError  # noqa: E402
from imgrec.models import create_model, save_model  # noqa: E402


def test_a_resnet50_run_starts_the_resnet50_detector_backbone(tmp_path):
    from safetensors.torch import load_file

    run = save_model(create_model("resnet50", ["a", "b"], image_size=64), tmp_path / "r50")
    det = create_model("fasterrcnn_resnet50_fpn_v2", ["x"], image_size=96, backbone_weights=str(run))
    weights = load_file(str(run / "weights.safetensors"))
    state = det.module.state_dict()
    for key in ("conv1.weight", "layer3.2.bn1.running_mean", "layer4.0.downsample.0.weight"):
        assert torch.equal(state["backbone.body." + key], weights[key])


def test_a_backbone_of_another_architecture_is_refused_with_the_reason(tmp_path):
    run = save_model(create_model("cnn-small", ["a", "b"], image_size=32), tmp_path / "cnn")
    with pytest.raises(ModelFileError, match="another architecture"):
        create_model("fasterrcnn_resnet50_fpn_v2", ["x"], image_size=96, backbone_weights=str(run))


def test_sampling_counts_are_options_kept_in_the_run(tmp_path):
    from imgrec.errors import ConfigError
    from imgrec.models import load_model, save_model

    args = {"rpn_post_nms_top_n_train": 300, "box_batch_size_per_image": "64", "rpn_post_nms_top_n_test": 100}
    model = create_model("fasterrcnn_mobilenet_v3_large_fpn", ["a", "b"], image_size=96, **args)
    rpn, roi = model.module.rpn, model.module.roi_heads
    assert (rpn._post_nms_top_n["training"], rpn._post_nms_top_n["testing"]) == (300, 100)
    assert roi.fg_bg_sampler.batch_size_per_image == 64
    save_model(model, tmp_path / "run")
    loaded, meta = load_model(tmp_path / "run")
    assert meta["model_args"]["box_batch_size_per_image"] == 64
    assert loaded.module.rpn._post_nms_top_n["testing"] == 100
    with pytest.raises(ConfigError, match="topk_candidates"):
        create_model("ssdlite320_mobilenet_v3_large", ["a"], image_size=96, topk_candidates=5)
    with pytest.raises(ConfigError, match="rpn_batch_size_per_image must be an integer >= 1; received 0"):
        create_model("fasterrcnn_mobilenet_v3_large_fpn", ["a"], image_size=96, rpn_batch_size_per_image=0)

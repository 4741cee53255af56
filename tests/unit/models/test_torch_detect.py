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

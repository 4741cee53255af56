"""Segmentation models: names, sizes, and every way weights come in (smp's pinned encoder file from
a loopback server, torchvision's digest-named files, a whole-network file, a backbone run)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from tests.unit.models.test_torch_hub import server  # noqa: F401  (the loopback server fixture)

from imgrec.errors import ConfigError, ModelFileError, UnknownNameError
from imgrec.models import create_model, get_model_spec, hub, save_model

torch = pytest.importorskip("torch")
smp = pytest.importorskip("segmentation_models_pytorch")


def test_names_sizes_and_unknown_encoders() -> None:
    spec = get_model_spec("unet-efficientnet_b0")  # any timm architecture, through smp's tu- bridge
    assert (spec.task, spec.family, spec.tags) == ("segment", "torch", ("segment", "smp"))
    assert get_model_spec("fpn-resnet34").description.startswith("FPN, resnet34")
    with pytest.raises(UnknownNameError, match="unet-nosuchencoder"):
        get_model_spec("unet-nosuchencoder")
    with pytest.raises(ConfigError, match=r"multiple of 32.*Try 96"):
        create_model("unet-resnet18", ["bg", "x"], image_size=100)
    with pytest.raises(ConfigError, match="at least 2 classes"):
        create_model("unet-tiny", ["only"], image_size=64)
    with pytest.raises(ConfigError, match="unknown encoder_depth"):
        create_model("unet-tiny", ["bg", "x"], image_size=64, encoder_depth=4)


def test_pretrained_encoder_is_the_pinned_smp_file(server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # noqa: F811
    """``pretrained=True`` on an smp encoder downloads the file at the commit smp pins (served here
    on 127.0.0.1 through HF_ENDPOINT) and loads it into the encoder; nothing else is fetched."""
    from safetensors.torch import save_file

    from imgrec.models.segment_nets import encoder_url

    base, www, seen = server
    monkeypatch.setenv("HF_ENDPOINT", base)
    monkeypatch.setenv("IMGREC_HOME", str(tmp_path / "home"))
    torch.manual_seed(7)
    published = smp.Unet("resnet18", encoder_weights=None, classes=2).encoder.state_dict()
    url = encoder_url("resnet18")
    target = www / url[len(base) + 1 :]
    target.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in published.items()}, str(target))
    model = create_model("unet-resnet18", ["bg", "x"], image_size=64, pretrained=True)
    assert seen == ["/" + url[len(base) + 1 :]] and "/resolve/" in seen[0]
    torch.testing.assert_close(model.module.encoder.conv1.weight, published["conv1.weight"])
    torch.testing.assert_close(model.module.encoder.layer4[1].bn2.running_var, published["layer4.1.bn2.running_var"])


def test_digest_named_downloads_are_checked(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """torchvision's file names end in the first digits of their sha256 (how its weights are checked)."""
    base, www, _ = server
    monkeypatch.setenv("IMGREC_HOME", str(tmp_path / "home"))
    payload = b"weights" * 1000
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    (www / f"net-{prefix}.pth").write_bytes(payload)
    (www / "net-00000000.pth").write_bytes(payload)
    assert hub.download_prefixed(f"{base}/net-{prefix}.pth").read_bytes() == payload
    with pytest.raises(ModelFileError, match="sha256 prefix '00000000'"):
        hub.download_prefixed(f"{base}/net-00000000.pth")
    assert not list((tmp_path / "home" / "weights").glob("*00000000*"))
    with pytest.raises(ModelFileError, match="-<sha256 prefix>"):
        hub.download_prefixed(f"{base}/plain.pth")


def test_backbone_weights_from_a_classification_run(tmp_path: Path) -> None:
    classifier = create_model("resnet10t", ["a", "b"], image_size=32)
    run = save_model(classifier, tmp_path / "cls")
    model = create_model("unet-tiny", ["bg", "x"], image_size=64, backbone_weights=str(run))
    torch.testing.assert_close(model.module.encoder.model.conv1[0].weight, classifier.module.conv1[0].weight)
    other = save_model(create_model("cnn-small", ["a", "b"], image_size=28), tmp_path / "small")
    with pytest.raises(ModelFileError, match=r"another architecture.*resnet10t"):
        create_model("unet-tiny", ["bg", "x"], image_size=64, backbone_weights=str(other))


def test_a_weights_file_with_another_class_count_keeps_a_fresh_head(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(3)
    source = create_model("unet-tiny", ["bg", "a", "b", "c"], image_size=64)
    save_file(source.state_tensors(), str(tmp_path / "w.safetensors"))
    torch.manual_seed(4)
    model = create_model("unet-tiny", ["bg", "x"], image_size=64, weights=str(tmp_path / "w.safetensors"))
    torch.testing.assert_close(model.module.decoder.state_dict()["blocks.0.conv1.0.weight"],
                               source.module.decoder.state_dict()["blocks.0.conv1.0.weight"])  # fmt: skip
    head = model.module.segmentation_head[0].weight
    assert head.shape[0] == 2
    batch = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    assert model.segment(batch)[0].shape == (2, 64, 64)


def test_a_run_with_truncated_weights_is_a_model_file_error(tmp_path: Path) -> None:
    """safetensors' own error was no OSError/ValueError: `imgrec predict` said 'internal error'."""
    from imgrec.models import load_model

    run = save_model(create_model("unet-tiny", ["bg", "a"], image_size=32), tmp_path / "run")
    weights = Path(run) / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match=r"weights\.safetensors is not a valid safetensors file"):
        load_model(run)

"""TorchClassifier: building, predicting, saving/loading, transfer-learning weights, pretrained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from safetensors.torch import save_file  # noqa: E402

from imgrec.errors import ConfigError, MissingInputError, ModelFileError  # noqa: E402
from imgrec.models import (  # noqa: E402
    create_model,
    hub,
    load_model,
    save_model,
)
from imgrec.models.torch_classifier import TorchClassifier  # noqa: E402

CLASSES = ["a", "b", "c"]


def batch(n: int = 5, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_predict_proba_rows_sum_to_one_and_leave_eval_mode() -> None:
    m = create_model("cnn-bn", CLASSES, image_size=16)
    assert isinstance(m, TorchClassifier) and m.family == "torch"
    p = m.predict_proba(batch(300))  # more than one inner batch of 128
    assert p.shape == (300, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert not m.module.training
    assert m.predict(batch(2)).shape == (2,)


def test_grayscale_small_cnn_reads_one_channel() -> None:
    m = create_model("cnn-small", CLASSES, image_size=16, grayscale=True)
    assert m.in_chans == 1 and m.model_args == {"in_chans": 1}
    x = batch(2)
    gray = np.repeat(x[..., :1], 3, axis=3)
    np.testing.assert_allclose(m.predict_proba(x), m.predict_proba(gray))
    assert m.normalize(x).shape == (2, 1, 16, 16)


def test_normalize_uses_mean_and_std() -> None:
    m = create_model("resnet18", CLASSES, image_size=8)
    x = np.full((1, 8, 8, 3), 255, np.uint8)
    got = m.normalize(x)[0, :, 0, 0].numpy()
    want = (1.0 - np.array(m.preprocessing.mean)) / np.array(m.preprocessing.std)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_timm_resnet18_trains_at_a_small_size() -> None:
    m = create_model("resnet18", CLASSES, image_size=32)
    logits = m.module.train()(m.normalize(batch(2, 32)))
    assert logits.shape == (2, 3)
    logits.sum().backward()
    assert m.module.fc.weight.grad is not None
    assert {id(p) for p in m.head_parameters()} == {id(m.module.fc.weight), id(m.module.fc.bias)}


def test_safetensors_round_trip_gives_identical_probabilities(tmp_path: Path) -> None:
    m = create_model("cnn-bn", CLASSES, image_size=16, dropout=0.1)
    x = batch(4)
    with torch.no_grad():  # make BatchNorm statistics non-trivial
        for mod in m.module.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
    save_model(m, tmp_path)
    assert (tmp_path / "weights.safetensors").is_file()
    loaded, meta = load_model(tmp_path)
    assert meta["model_args"] == {"in_chans": 3, "dropout": 0.1}
    np.testing.assert_array_equal(loaded.predict_proba(x), m.predict_proba(x))


def test_loader_rejects_weights_of_another_architecture(tmp_path: Path) -> None:
    save_model(create_model("cnn-bn", CLASSES, image_size=16), tmp_path)
    small = create_model("cnn-small", CLASSES, image_size=16)
    save_file(small.state_tensors(), str(tmp_path / "weights.safetensors"))
    with pytest.raises(ModelFileError, match="does not match"):
        load_model(tmp_path)


def test_weights_from_pth_with_another_head(tmp_path: Path) -> None:
    donor = create_model("cnn-bn", [str(i) for i in range(10)], image_size=16)
    state = {f"module.{k}": v for k, v in donor.module.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "donor.pth")
    m = create_model("cnn-bn", CLASSES, image_size=16, weights=str(tmp_path / "donor.pth"))
    conv = "features.0.weight"
    assert torch.equal(m.module.state_dict()[conv], donor.module.state_dict()[conv])
    assert m.module.head.weight.shape == (3, 128 * 16)


def test_weights_from_safetensors_with_another_head(tmp_path: Path) -> None:
    donor = create_model("resnet18", ["x", "y"], image_size=32)
    save_file(donor.state_tensors(), str(tmp_path / "r18.safetensors"))
    m = create_model("resnet18", CLASSES, image_size=32, weights=str(tmp_path / "r18.safetensors"))
    assert torch.equal(m.module.conv1.weight, donor.module.conv1.weight)
    assert m.module.fc.out_features == 3


def test_rgb_stem_weights_fill_a_gray_net(tmp_path: Path) -> None:
    donor = create_model("cnn-bn", CLASSES, image_size=16)
    save_file(donor.state_tensors(), str(tmp_path / "rgb.safetensors"))
    m = create_model("cnn-bn", CLASSES, image_size=16, in_chans=1, weights=str(tmp_path / "rgb.safetensors"))
    want = donor.module.features[0].weight.sum(dim=1, keepdim=True)
    torch.testing.assert_close(m.module.features[0].weight, want)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"this is not a checkpoint", "not a PyTorch state dict"),
        ("list", "not a state dict"),
        ("module", "not a PyTorch state dict"),
        ("wrong-arch", "does not fit this architecture"),
    ],
)
def test_wrong_weights_file_raises_model_file_error(tmp_path: Path, content: object, match: str) -> None:
    path = tmp_path / "w.pth"
    if content == "list":
        torch.save([torch.zeros(2)], path)
    elif content == "module":  # a whole pickled module: refused, no code runs
        torch.save(torch.nn.Linear(2, 2), path)
    elif content == "wrong-arch":
        path = tmp_path / "w.safetensors"
        save_file(create_model("cnn-small", CLASSES, image_size=16).state_tensors(), str(path))
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(ModelFileError, match=match):
        create_model("cnn-bn", CLASSES, image_size=16, weights=str(path))


def test_weights_file_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError, match="not found"):
        create_model("cnn-bn", CLASSES, image_size=16, weights=str(tmp_path / "nope.pth"))
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"expected one of \.safetensors"):
        create_model("cnn-bn", CLASSES, image_size=16, weights=str(tmp_path / "w.txt"))


def test_unknown_and_conflicting_options_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="Unknown option"):
        create_model("cnn-bn", CLASSES, image_size=16, C=10)
    with pytest.raises(ConfigError, match="in_chans must be 1 or 3"):
        create_model("cnn-bn", CLASSES, image_size=16, in_chans=4)
    with pytest.raises(ConfigError, match="no published pretrained"):
        create_model("cnn-small", CLASSES, image_size=16, pretrained=True)
    with pytest.raises(ConfigError, match="either pretrained"):
        create_model("resnet18", CLASSES, image_size=32, pretrained=True, weights="w.pth")


def test_too_small_input_for_timm_model_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="larger image_size"):
        create_model("inception_v3", CLASSES, image_size=32)


def test_pretrained_offline_fails_fast_with_the_local_file_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    if hub.cached_pretrained("resnet18") is not None:
        pytest.skip("resnet18 weights are cached here; the offline path is not taken")
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens: like being offline
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(MissingInputError, match=r"weights=FILE \(CLI: --weights FILE\)"):
        create_model("resnet18", CLASSES, image_size=32, pretrained=True)


def test_freeze_backbone_and_head_split() -> None:
    m = create_model("cnn-bn", CLASSES, image_size=16)
    assert len(m.head_parameters()) == 2
    assert len(m.head_parameters()) + len(m.backbone_parameters()) == len(list(m.module.parameters()))
    m.freeze_backbone(True)
    assert not any(p.requires_grad for p in m.backbone_parameters())
    assert all(p.requires_grad for p in m.head_parameters())
    m.train_mode()
    assert m.module.head.training and not m.module.features[1].training
    m.freeze_backbone(False)
    assert all(p.requires_grad for p in m.module.parameters())


def test_pretrained_uses_a_cached_copy_through_timm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import timm

    published = timm.create_model("resnet18", num_classes=1000)  # stands in for the ImageNet file
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in published.state_dict().items()}, str(path))
    monkeypatch.setattr(hub, "cached_pretrained", lambda name: path if name == "resnet18" else None)
    m = create_model("resnet18", CLASSES, image_size=32, pretrained=True)
    assert torch.equal(m.module.conv1.weight, published.conv1.weight)
    assert m.module.fc.out_features == 3 and "pretrained" not in m.model_args

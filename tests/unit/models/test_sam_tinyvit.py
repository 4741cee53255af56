"""MobileSAM (TinyViT) checkpoints: upstream MobileSAM's tensor names and shapes map one to one
onto timm's TinyVit + segment-anything, the sizes are read from the shapes, a tiny TinyViT SAM
loads back with its outputs, and wrong or truncated files are clear ModelFileErrors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.sam_helpers import TINY_VIT, mobile_sam_name, save_state, tiny_mobile_sam, tiny_mobile_sam_state

from imgrec.errors import ModelFileError
from imgrec.models.sam import build_sam, check_sam_state, load_sam_model, sam_config
from imgrec.models.sam_tinyvit import MOBILE_SAM, TinyVitConfig, timm_key, timm_state

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")
pytest.importorskip("timm")

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "mobile_sam_keys.json"
HEAD = {"image_encoder.norm_head.weight", "image_encoder.norm_head.bias", "image_encoder.head.weight",
        "image_encoder.head.bias"}  # fmt: skip


@pytest.fixture(scope="module")
def upstream() -> dict[str, tuple[int, ...]]:
    """MobileSAM's own state-dict names and shapes (build_sam_vit_t), recorded from its code."""
    return {k: tuple(v) for k, v in json.loads(FIXTURE.read_text())["keys"].items()}


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory) -> Path:
    return save_state(tiny_mobile_sam_state(seed=1), tmp_path_factory.mktemp("mobilesam") / "tiny_mobile_sam.pt")


def test_upstream_mobilesam_maps_one_to_one_onto_the_model_built(upstream) -> None:
    state = {k: torch.empty(shape, device="meta") for k, shape in upstream.items()}
    check_sam_state(state, "mobile_sam.pt")
    config = sam_config(state)
    assert config.tiny_vit == MOBILE_SAM and config.variant == "mobilesam" and config.sam_type is None
    assert (config.img_size, config.prompt_dim, config.decoder_depth, config.multimask_outputs) == (1024, 256, 2, 3)
    with torch.device("meta"):
        own = build_sam(config).state_dict()
    renamed = timm_state(state)
    assert {k for k in upstream if timm_key(k) is None} == HEAD  # only the unused classifier is dropped
    assert len(renamed) == len(upstream) - len(HEAD)  # no two names meet
    assert set(renamed) == set(own)
    assert [k for k in own if tuple(own[k].shape) != tuple(renamed[k].shape)] == []
    with torch.device("meta"):
        encoder = build_sam(config).image_encoder
    assert sum(p.numel() for p in encoder.parameters()) == 5_743_892  # upstream's, without its classifier


def test_the_mapping_by_example() -> None:
    cases = {
        "image_encoder.patch_embed.seq.0.c.weight": "image_encoder.patch_embed.conv1.conv.weight",
        "image_encoder.layers.0.blocks.1.conv3.bn.running_var": "image_encoder.stages.0.blocks.1.conv3.bn.running_var",
        "image_encoder.layers.2.downsample.conv2.c.weight": "image_encoder.stages.3.downsample.conv2.conv.weight",
        "image_encoder.layers.3.blocks.1.attn.attention_biases": "image_encoder.stages.3.blocks.1.attn.attention_biases",  # noqa: E501
        "image_encoder.layers.1.blocks.0.local_conv.c.weight": "image_encoder.stages.1.blocks.0.local_conv.conv.weight",
        "image_encoder.neck.3.bias": "image_encoder.neck.3.bias",
        "mask_decoder.iou_token.weight": "mask_decoder.iou_token.weight",
    }
    assert {k: timm_key(k) for k in cases} == cases
    assert timm_key("image_encoder.layers.1.blocks.0.attn.attention_bias_idxs") is None


def test_tiny_tinyvit_sam_loads_with_its_sizes_and_outputs(tiny_pt) -> None:
    model, config = load_sam_model(tiny_pt)
    assert config.tiny_vit == TinyVitConfig(**TINY_VIT) and config.variant == "tinyvit"  # type: ignore[arg-type]
    assert (config.prompt_dim, config.decoder_mlp_dim, config.iou_head_hidden_dim) == (32, 64, 32)
    assert "TinyViT widths 8/16/24/32, depths 1/1/2/1" in config.describe()
    assert model.image_encoder.stages[3].downsample.conv2.conv.stride == (1, 1)  # MobileSAM's last merging
    reference = tiny_mobile_sam(seed=1)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 1024, 1024)).astype(np.float32))
    with torch.inference_mode():
        ours, theirs = model.image_encoder(x), reference.image_encoder(x)
    assert ours.shape == (1, 32, 64, 64)
    assert torch.equal(ours, theirs)


def test_safetensors_and_attention_bias_index_buffers_load(tmp_path) -> None:
    state = tiny_mobile_sam_state(seed=2)
    reference = tiny_mobile_sam(seed=2)
    idxs = {mobile_sam_name(f"image_encoder.{k}"): b for k, b in reference.image_encoder.named_buffers()
            if k.endswith("attention_bias_idxs")}  # fmt: skip
    assert len(idxs) == 4  # one per attention block
    model, _ = load_sam_model(save_state(state | idxs, tmp_path / "with_idxs.safetensors"))
    ours = model.state_dict()
    assert all(torch.equal(ours[timm_key(k)], v) for k, v in state.items() if timm_key(k))  # type: ignore[index]


def _edited(tiny_pt: Path, tmp_path: Path, name: str, edit) -> Path:
    state = dict(torch.load(tiny_pt, weights_only=True))
    edit(state)
    return save_state(state, tmp_path / name)


def test_wrong_and_truncated_mobilesam_files_are_clear_errors(tiny_pt, tmp_path) -> None:
    data = tiny_pt.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a PyTorch state dict that can be loaded safely"):
        load_sam_model(tmp_path / "cut.pt")
    path = _edited(tiny_pt, tmp_path, "no_fc2.pt", lambda s: s.pop("image_encoder.layers.1.blocks.0.mlp.fc2.bias"))
    with pytest.raises(ModelFileError, match=r"1 missing tensors \['image_encoder.stages.1.blocks.0.mlp.fc2.bias'\]"):
        load_sam_model(path)
    path = _edited(tiny_pt, tmp_path, "no_neck.pt", lambda s: s.pop("image_encoder.neck.0.weight"))
    with pytest.raises(ModelFileError, match=r"not a Segment Anything checkpoint: it lacks image_encoder.neck.0"):
        load_sam_model(path)


def _drop_stage(state: dict) -> None:
    for k in [k for k in state if k.startswith("image_encoder.layers.3.")]:
        del state[k]


@pytest.mark.parametrize(("edit", "message"), [
    (_drop_stage, r"shapes do not fit SAM's modules \(the TinyViT encoder has 3 stages .* expected 4"),
    (lambda s: s.update({"image_encoder.layers.2.blocks.0.attn.attention_biases": torch.zeros(2, 60)}),
     r"stage 2's attention bias table is 2 x 60"),
    (lambda s: s.update({"image_encoder.layers.3.blocks.0.attn.attention_biases": torch.zeros(3, 16)}),
     r"stage 3's attention bias table is 3 x 16: expected heads dividing its width 32"),
    (lambda s: s.update({"image_encoder.layers.2.blocks.1.attn.attention_biases": torch.zeros(4, 25)}),
     r"1 of another shape \['image_encoder.stages.2.blocks.1.attn.attention_biases'\]"),
    (lambda s: s.update({"image_encoder.neck.0.weight": torch.zeros(32, 24, 1, 1)}),
     r"of another shape \['image_encoder.neck.0.weight'\]"),
])  # fmt: skip
def test_sizes_that_do_not_fit_are_refused(tiny_pt, tmp_path, edit, message) -> None:
    with pytest.raises(ModelFileError, match=message):
        load_sam_model(_edited(tiny_pt, tmp_path, "edited.pt", edit))


def test_sam_type_is_for_vit_files(tiny_pt) -> None:
    with pytest.raises(ModelFileError, match=r"holds a TinyViT SAM \(TinyViT widths 8/16/24/32.*not vit_b"):
        load_sam_model(tiny_pt, sam_type="vit_b")

"""SAM checkpoints: the architecture read from the shapes, loading (.pth, safetensors), wrong and
truncated files refused with what they hold, the sha256-checked download (loopback server)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
from tests.sam_helpers import TINY, save_tiny_sam, tiny_sam

from imgrec.errors import DataError, ModelFileError, UsageError
from imgrec.models.sam import (
    STANDARD,
    SamFile,
    check_sam_state,
    fetch_sam_file,
    load_sam_model,
    sam_config,
    sam_weights,
)
from imgrec.models.sam_tinyvit import TINY_VIT_REQUIRED

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")


@pytest.fixture(scope="module")
def tiny_pth(tmp_path_factory) -> Path:
    return save_tiny_sam(tmp_path_factory.mktemp("sam") / "tiny_sam.pth")


@pytest.mark.parametrize("sam_type", ["vit_b", "vit_l", "vit_h"])
def test_official_architectures_are_read_from_their_shapes(sam_type) -> None:
    from segment_anything import sam_model_registry

    with torch.device("meta"):  # shapes only: no memory, no time
        state = sam_model_registry[sam_type]().state_dict()
    config = sam_config(state)
    assert config == STANDARD[sam_type] and config.sam_type == sam_type


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_tiny_sam_loads_back_with_the_same_weights_and_outputs(tmp_path, suffix) -> None:
    path = save_tiny_sam(tmp_path / f"tiny{suffix}", seed=3)
    model, config = load_sam_model(path)
    assert (config.embed_dim, config.depth, config.num_heads, config.img_size) == (64, 2, 2, 256)
    assert (config.window_size, config.global_attn_indexes, config.prompt_dim) == (4, (1,), 64)
    assert config.sam_type is None
    reference = tiny_sam(seed=3)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 256, 256)).astype(np.float32))
    with torch.inference_mode():
        ours, theirs = model.image_encoder(x), reference.image_encoder(x)
    assert ours.shape == (1, TINY["dim"], 16, 16)
    assert torch.equal(ours, theirs)


def test_sam_type_must_match_the_file(tiny_pth) -> None:
    with pytest.raises(ModelFileError, match=r"holds a non-standard ViT SAM \(ViT width 64.*not vit_b"):
        load_sam_model(tiny_pth, sam_type="vit_b")
    with pytest.raises(UsageError, match="Unknown SAM type 'vit_x'"):
        load_sam_model(tiny_pth, sam_type="vit_x")


def test_a_classifier_or_random_tensors_are_not_sam(tmp_path) -> None:
    from safetensors.torch import save_file

    from imgrec.models import create_model

    clf = create_model("cnn-small", ["a", "b"])
    torch.save(clf.module.state_dict(), tmp_path / "classifier.pth")
    with pytest.raises(ModelFileError, match=r"classifier\.pth is not a Segment Anything checkpoint: it lacks"):
        load_sam_model(tmp_path / "classifier.pth")
    save_file({"weight": torch.randn(4, 4), "bias": torch.zeros(4)}, str(tmp_path / "random.safetensors"))
    with pytest.raises(ModelFileError, match=r"not a Segment Anything checkpoint.*2 tensors such as bias, weight"):
        load_sam_model(tmp_path / "random.safetensors")


def test_sam2_hq_sam_and_hf_files_are_refused_by_name_mobilesam_is_not(tiny_pth) -> None:
    state = dict(torch.load(tiny_pth, weights_only=True))
    with pytest.raises(ModelFileError, match="SAM 2 checkpoint"):
        check_sam_state({**state, "image_encoder.trunk.patch_embed.proj.weight": torch.zeros(1)}, "sam2.pt")
    with pytest.raises(ModelFileError, match="HQ-SAM"):
        check_sam_state({**state, "mask_decoder.hf_token.weight": torch.zeros(1)}, "sam_hq.pth")
    with pytest.raises(ModelFileError, match="Hugging Face transformers SamModel"):
        check_sam_state({"vision_encoder.patch_embed.projection.weight": torch.zeros(1), **state}, "hf.safetensors")
    mobile = {k: v for k, v in state.items() if not k.startswith("image_encoder.")}
    mobile |= {k: torch.zeros(1) for k in TINY_VIT_REQUIRED}  # MobileSAM's layout: checked, then built
    check_sam_state(mobile, "mobile_sam.pt")
    mobile.pop("image_encoder.neck.0.weight")
    with pytest.raises(ModelFileError, match=r"mobile_sam.pt is not a Segment Anything checkpoint: it lacks image_enc"):
        check_sam_state(mobile, "mobile_sam.pt")


def test_truncated_and_edited_files_are_clear_errors(tmp_path, tiny_pth) -> None:
    data = tiny_pth.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a PyTorch state dict that can be loaded safely"):
        load_sam_model(tmp_path / "cut.pth")
    state = dict(torch.load(tiny_pth, weights_only=True))
    state.pop("mask_decoder.output_upscaling.0.weight")
    torch.save(state, tmp_path / "edited.pth")
    with pytest.raises(ModelFileError, match=r"1 missing tensors \['mask_decoder.output_upscaling.0.weight'\]"):
        load_sam_model(tmp_path / "edited.pth")


def test_a_pickled_object_is_not_executed(tmp_path) -> None:
    import pickle

    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(ModelFileError):
        load_sam_model(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


def test_weights_are_required_unless_download_is_asked(tmp_path) -> None:
    with pytest.raises(UsageError, match=r"--weights FILE .* or --download"):
        sam_weights(None)
    with pytest.raises(FileNotFoundError, match="SAM checkpoint not found"):
        sam_weights(tmp_path / "missing.pth")


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_download_is_checked_by_sha256_and_loads(server, tmp_path, monkeypatch) -> None:
    root, url = server
    monkeypatch.setenv("IMGREC_HOME", str(tmp_path / "home"))
    data = save_tiny_sam(root / "sam_tiny.pth").read_bytes()
    good = SamFile(url + "sam_tiny.pth", hashlib.sha256(data).hexdigest())
    path = fetch_sam_file(good)
    assert path.read_bytes() == data and path.parent == tmp_path / "home" / "weights"
    assert load_sam_model(path)[1].embed_dim == 64
    bad = SamFile(url + "sam_tiny.pth?again", "0" * 64)
    with pytest.raises(DataError, match=r"has sha256 .* but 0000"):
        fetch_sam_file(bad)
    assert sorted(p.name for p in (tmp_path / "home" / "weights").iterdir()) == [path.name]
    with pytest.raises(FileNotFoundError, match=r"HTTP 404.*or download .* yourself and pass --weights FILE"):
        fetch_sam_file(SamFile(url + "missing.pth", "0" * 64))

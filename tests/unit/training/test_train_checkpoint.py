"""Checkpoints: one atomic file restores weights, optimizer and random states exactly."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from imgrec.errors import ModelFileError  # noqa: E402
from imgrec.training import checkpoint as ckpt  # noqa: E402


def step(model, opt) -> None:
    x = model.normalize(np.random.default_rng(0).integers(0, 255, (4, 12, 12, 3), dtype=np.uint8))
    opt.zero_grad()
    model.module(x).sum().backward()
    opt.step()


def test_round_trip_restores_everything(tmp_path: Path, new_model) -> None:
    model = new_model()
    opt = torch.optim.AdamW(model.module.parameters(), lr=1e-3)
    step(model, opt)
    rng = np.random.default_rng(5)
    state = ckpt.TrainState(epoch=1, step=3, best_score=0.5, best_epoch=1, history=[{"epoch": 1, "lr": 0.1}])
    random.seed(7)
    ckpt.save_checkpoint(tmp_path, model, opt, state, rng)
    expected = (torch.rand(3), rng.random(3), random.random())
    readable = json.loads((tmp_path / "state.json").read_text())
    assert readable["train"]["best_score"] == 0.5 and readable["model"] == "cnn-bn"

    other = new_model(seed=1)
    opt2 = torch.optim.AdamW(other.module.parameters(), lr=1e-3)
    rng2 = np.random.default_rng(0)
    torch.manual_seed(123)
    assert ckpt.load_checkpoint(tmp_path, other, opt2, rng2) == state
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(rng2.random(3), expected[1]) and random.random() == expected[2]
    for a, b in zip(model.module.state_dict().values(), other.module.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for k in s1["state"]:
        assert all(torch.equal(s1["state"][k][n], s2["state"][k][n]) for n in s1["state"][k])


def test_torch_rng_is_restored(tmp_path: Path, new_model) -> None:
    model = new_model()
    opt = torch.optim.SGD(model.module.parameters(), lr=0.1, momentum=0.9)
    torch.manual_seed(3)
    ckpt.save_checkpoint(tmp_path, model, opt, ckpt.TrainState(), np.random.default_rng(0))
    want = torch.rand(4)
    torch.manual_seed(99)
    ckpt.load_checkpoint(tmp_path, model, opt, np.random.default_rng(0))
    assert torch.equal(torch.rand(4), want)


def test_best_weights_round_trip(tmp_path: Path, new_model) -> None:
    model, other = new_model(), new_model(seed=1)
    assert not ckpt.load_best(tmp_path, other)
    ckpt.save_best(tmp_path, model)
    assert ckpt.load_best(tmp_path, other)
    assert torch.equal(other.module.head.weight, model.module.head.weight)


def test_damaged_checkpoint_is_a_model_file_error(tmp_path: Path, new_model) -> None:
    model = new_model()
    opt = torch.optim.SGD(model.module.parameters(), lr=0.1)
    (tmp_path / ckpt.LAST).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ModelFileError, match="not a readable imgrec checkpoint"):
        ckpt.load_checkpoint(tmp_path, model, opt, np.random.default_rng(0))

"""A NaN loss stops training at once, with the reason and the fix."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from imgrec.errors import ConfigError
from imgrec.training import loop


def test_a_nan_validation_loss_stops_training(tmp_path, tiny_data, new_model, tiny_cfg, monkeypatch) -> None:
    train, val = tiny_data
    real = loop.evaluate_split
    seen: list[int] = []

    def nan_loss(model, images):  # the model's outputs overflow on the validation images
        seen.append(1)
        return {**real(model, images), "val_loss": float("nan")}

    monkeypatch.setattr(loop, "evaluate_split", nan_loss)
    with pytest.raises(ConfigError, match=r"validation loss is nan after epoch 1.*Training was stopped"):
        loop.fit_torch(new_model(), train, val, tiny_cfg(epochs=3), run_dir=tmp_path)
    assert seen == [1]  # no second epoch
    assert not (tmp_path / "history.json").exists()

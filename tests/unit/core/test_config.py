from __future__ import annotations

import pytest

from imgrec.config import DataConfig, TrainConfig, load_yaml, parse_overrides
from imgrec.errors import ConfigError, MissingInputError


def test_from_dict_coerces_strings_from_the_command_line():
    cfg = TrainConfig.from_dict({"epochs": "3", "lr": "0.01", "pretrained": "true", "dropout": "none"})
    assert (cfg.epochs, cfg.lr, cfg.pretrained, cfg.dropout) == (3, 0.01, True, None)


def test_unknown_key_is_an_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        TrainConfig.from_dict({"epoch": 3})


def test_literal_values_are_checked():
    with pytest.raises(ConfigError, match="adamw"):
        TrainConfig.from_dict({"optimizer": "adam"})


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"lr": -1}, {"label_smoothing": 1.0}, {"epochs": "x"}])
def test_invalid_values_are_refused(bad):
    with pytest.raises(ConfigError):
        TrainConfig.from_dict(bad)


def test_data_fractions_must_leave_training_data():
    with pytest.raises(ConfigError, match="sum below 1"):
        DataConfig.from_dict({"val": 0.5, "test": 0.5})


def test_every_field_says_why():
    assert all(TrainConfig.describe().values())
    assert all(DataConfig.describe().values())


def test_replace_validates_and_dict_round_trips():
    cfg = TrainConfig().replace(epochs=2, model_args={"C": 10})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 4\n")
    assert load_yaml(path) == {"train": {"epochs": 4}}
    assert parse_overrides(["a=1", "b = x"]) == {"a": "1", "b": "x"}
    with pytest.raises(ConfigError):
        parse_overrides(["novalue"])
    with pytest.raises(MissingInputError):
        load_yaml(tmp_path / "missing.yaml")
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(path)

"""Train flags come from TrainConfig: every field is on the command line, typed, with its why."""

from __future__ import annotations

import dataclasses

from imgrec.cli.main import build_parser
from imgrec.cli.run_cmds import build_configs
from imgrec.config import TrainConfig


def _train(*argv: str):
    return build_parser().parse_args(["train", "data", *argv])


def test_every_train_config_field_has_a_flag_with_its_help():
    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith("train"))
    dests = {a.dest: a for a in train._actions}
    for f in dataclasses.fields(TrainConfig):
        if f.name == "model_args":
            continue
        assert f.name in dests, f.name
        if f.name not in ("model", "pretrained"):
            assert str(f.metadata["why"]).split(";")[0][:20] in (dests[f.name].help or ""), f.name


def test_flags_are_typed_and_reach_the_config():
    cfg, dcfg = build_configs(_train("--epochs", "3", "--mosaic", "0.5", "--threads", "2", "--no-amp",
                                     "--monitor", "val_map", "--split-seed", "7", "--val", "0.2"))  # fmt: skip
    assert (cfg.epochs, cfg.mosaic, cfg.num_threads, cfg.amp, cfg.monitor) == (3, 0.5, 2, False, "val_map")
    assert (dcfg.seed, dcfg.val) == (7, 0.2)
    defaults, _ = build_configs(_train())
    assert defaults == TrainConfig()  # flags not given leave the dataclass defaults


def test_every_command_prints_its_help(capsys):
    """argparse formats help strings with %: a config's why with a bare % broke `train --help`."""
    import pytest

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        with pytest.raises(SystemExit) as done:
            sub.parse_args(["--help"])
        assert done.value.code == 0, name
    assert "40% of free memory" in capsys.readouterr().out

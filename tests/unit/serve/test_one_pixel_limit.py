"""One pixel limit: the CLI's decode default is the service's default, set by one flag in both."""

from __future__ import annotations

import argparse

from imgrec.cli import predict_cmd, serve_cmd
from imgrec.imaging import DEFAULT_LIMITS
from imgrec.serve import ServeConfig


def _parse(command: str, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="imgrec")
    sub = parser.add_subparsers()
    serve_cmd.register(sub)
    predict_cmd.register(sub)
    return parser.parse_args([command, *argv])


def test_serve_defaults_to_the_decode_limits_of_the_cli():
    cfg = ServeConfig()
    assert cfg.max_pixels == DEFAULT_LIMITS.max_pixels
    assert cfg.decode_limits.max_pixels == DEFAULT_LIMITS.max_pixels


def test_max_pixels_is_one_flag_on_serve_and_predict():
    served = ServeConfig.from_dict(serve_cmd._overrides(_parse("serve", "runs/a", "--max-pixels", "1000")))
    assert served.decode_limits.max_pixels == 1000
    assert predict_cmd.decode_limits(_parse("predict", "runs/a", "x.png", "--max-pixels", "1000")).max_pixels == 1000
    assert predict_cmd.decode_limits(_parse("predict", "runs/a", "x.png")) == DEFAULT_LIMITS
    default = ServeConfig.from_dict(serve_cmd._overrides(_parse("serve", "runs/a")))
    assert default.max_pixels == DEFAULT_LIMITS.max_pixels

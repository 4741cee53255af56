"""``imgrec models``: fast (no torch), readable at 80 columns, and loud when nothing matches."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from imgrec.cli.main import main
from imgrec.cli.run_cmds import model_rows, models_table

SRC = str(Path(__file__).resolve().parents[3] / "src")


def _render(renderable, width: int = 80) -> str:
    buf = io.StringIO()
    Console(width=width, file=buf, color_system=None).print(renderable)
    return buf.getvalue()


def test_listing_and_building_the_table_imports_neither_torch_nor_timm(tmp_path):
    hub = tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "snapshots" / "abc"
    hub.mkdir(parents=True)
    (hub / "model.safetensors").write_bytes(b"x")
    code = (
        "import io, json, sys\n"
        "import imgrec\n"
        "from rich.console import Console\n"
        "from imgrec.cli.run_cmds import model_rows, models_table\n"
        "names = imgrec.list_models()\n"
        "rows = model_rows('*')\n"
        "Console(file=io.StringIO(), width=80).print(models_table(rows))\n"
        "print(json.dumps({'names': names, 'weights': {r[0]: r[5] for r in rows},\n"
        "                  'heavy': [m for m in ('torch', 'timm') if m in sys.modules]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_CACHE": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "t")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["heavy"] == []
    assert "resnet18" in got["names"] and "hog-svm" in got["names"]
    assert got["weights"]["resnet18"] == "cached"  # found in the cache without asking timm
    assert got["weights"]["resnet50"] == "download" and got["weights"]["hog-svm"] == "not needed"


def test_every_model_name_is_whole_on_one_line_at_80_columns():
    rows = model_rows("*")
    text = _render(models_table(rows))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in [r[0] for r in rows]:
        assert any(line.startswith(name + " ") for line in lines), name
    assert "swin_tiny_patch4_window7_224" in text and "…" not in text


def test_the_cli_keeps_names_whole_with_columns_80():
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "80"}
    cmd = [sys.executable, "-m", "imgrec", "models"]  # python -m imgrec: src/imgrec/__main__.py
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in ("swin_tiny_patch4_window7_224", "mobilenetv3_large_100", "hog-lbp-color-svm"):
        assert any(line.startswith(name + " ") for line in lines), name


def test_a_pattern_that_matches_nothing_says_so_and_exits_66(capsys):
    assert main(["models", "detr*"]) == 66
    err = capsys.readouterr().err
    assert "No model matches 'detr*'" in err and "--all" in err
    assert main(["models", "yolo*", "--task", "detect"]) == 0  # imgrec's own yolo-n / yolo-s


def test_a_near_miss_gets_close_names(capsys):
    assert main(["models", "rsnet*", "--format", "json"]) == 66
    err = capsys.readouterr().err
    assert "resnet18" in err and "Did you mean" in err

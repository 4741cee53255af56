"""Deep models through the CLI: seeded reproducibility, Ctrl-C then resume, the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.integration.conftest import run_subprocess

pytest.importorskip("torch")

FAST = ("--epochs", "3", "--batch-size", "16", "--image-size", "32", "--seed", "7", "--augment", "light")


def test_two_seeded_cpu_runs_give_identical_metrics(messy_folder, tmp_path, cli):
    for name in ("a", "b"):
        code, out, err = cli("train", messy_folder, "--model", "cnn-small", *FAST, "--out", tmp_path / name)
        assert code == 0, out + err
    metrics = [json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("a", "b")]
    assert metrics[0]["val"]["accuracy"] == metrics[1]["val"]["accuracy"]
    assert metrics[0]["val"]["log_loss"] == metrics[1]["val"]["log_loss"]
    history = json.loads((tmp_path / "a" / "history.json").read_text())
    rows = history["epochs"] if isinstance(history, dict) else history
    assert len(rows) == 3
    assert (tmp_path / "a" / "checkpoints").is_dir() and (tmp_path / "a" / "curves.png").is_file()


def test_ctrl_c_saves_and_exits_130_then_resume_finishes(messy_folder, tmp_path):
    out = tmp_path / "run"
    exe = Path(sys.executable).parent / "imgrec"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            str(exe),
            "train",
            str(messy_folder),
            "--model",
            "cnn-small",
            "--epochs",
            "10",
            "--batch-size",
            "8",
            "--image-size",
            "32",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        # A shell that runs the suite in the background (`cmd &`) leaves SIGINT ignored, and Python
        # keeps an ignored SIGINT: give the child the default so that Ctrl-C reaches it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list((out / "checkpoints").glob("last*")):
        time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    assert not (out / "model.json").exists()

    result = run_subprocess("train", "--resume", out, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    history = json.loads((out / "history.json").read_text())
    rows = history["epochs"] if isinstance(history, dict) else history
    assert [r["epoch"] for r in rows] == list(range(1, 11))
    assert (out / "model.json").is_file()


def test_demo_runs_offline_end_to_end(tmp_path, cli):
    code, out, err = cli("demo", "--out", tmp_path / "demo", "--epochs", "2")
    assert code == 0, out + err
    assert "leaderboard" in out and "report" in out
    reports = list((tmp_path / "demo" / "runs").glob("*/eval/test/report.html"))
    assert len(reports) == 1
    assert len(list((tmp_path / "demo" / "digits").iterdir())) == 10

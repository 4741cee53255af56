"""The console after train and evaluate: degenerate outcomes and the weights kept are said plainly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imgrec.cli.main import main
from imgrec.cli.run_cmds import print_run_summary
from imgrec.evaluation import EvalResult
from imgrec.evaluation.metrics import classification_metrics
from imgrec.training import Run
from imgrec.types import History

CLASSES = ["ants", "bees"]


def collapsed() -> EvalResult:
    y = np.array([0, 0, 0, 1, 1, 1])
    proba = np.tile(np.array([[0.3, 0.7]], np.float32), (6, 1))  # 'bees' for everything
    return EvalResult(classification_metrics(y, proba, CLASSES), y, proba, [f"{i}.jpg" for i in range(6)], [],
                      0.1, 1.0, CLASSES)


def test_train_summary_names_a_single_class_model_and_the_kept_epoch(tmp_path, capsys) -> None:
    kept = {"which": "best", "epoch": 2, "of": 3, "monitor": "val_accuracy", "value": 0.5}
    rows = [{"epoch": e, "train_loss": 0.7, "val_loss": 0.7} for e in (1, 2, 3)]
    run = Run(tmp_path, {"val": collapsed().metrics}, History(rows), [],
              {"family": "torch", "training": {"kept_weights": kept}})
    print_run_summary(run)
    out = capsys.readouterr().out
    assert "predicts a single class" in out and "'bees'" in out
    assert "Weights kept: epoch 2 of 3, the best by val_accuracy (0.5" in out


def test_evaluate_warns_on_screen_and_in_json(tmp_path, capsys, monkeypatch) -> None:
    import imgrec.evaluation as runs

    monkeypatch.setattr(runs, "evaluate_run", lambda run, data, top_k: (collapsed(), Path(tmp_path)))
    assert main(["evaluate", str(tmp_path)]) == 0
    assert "warning:" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path), "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"single_class"' in out and '"accuracy"' in out

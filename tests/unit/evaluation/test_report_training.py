"""The report's training section: only the options that applied, and which weights are kept."""

from __future__ import annotations

import re

from imgrec.config import TrainConfig
from imgrec.evaluation import write_report


def training_html(tmp_path, meta) -> str:
    html = write_report(tmp_path, meta=meta, results={}).read_text()
    return re.search(r'<section id="training">(.*?)</section>', html, re.S).group(1)


def test_a_classical_run_lists_no_torch_options(tmp_path) -> None:
    meta = {"model": "hog-svm", "family": "classical", "training": TrainConfig(model="hog-svm").to_dict()}
    html = training_html(tmp_path, meta)
    for torch_only in ("optimizer", "warmup_epochs", "amp", "augment", "lr", "epochs", "batch_size"):
        assert f"<td>{torch_only}</td>" not in html, torch_only
    assert "<td>model</td>" in html and "<td>image_size</td>" in html
    assert "fitted in one pass" in html and "single fit" in html


def test_a_torch_run_lists_everything_and_the_kept_epoch(tmp_path) -> None:
    kept = {"which": "best", "epoch": 7, "of": 10, "monitor": "val_accuracy", "value": 0.93}
    training = {**TrainConfig(model="cnn-small").to_dict(), "kept_weights": kept}
    html = training_html(tmp_path, {"model": "cnn-small", "family": "torch", "training": training})
    assert "<td>optimizer</td>" in html and "<td>warmup_epochs</td>" in html
    assert "Weights kept: epoch 7 of 10, the best by val_accuracy (0.93" in html
    assert "<td>kept_weights</td>" not in html  # said in words, not as a dict

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from imgrec.evaluation import EvalResult, evaluate, write_report
from imgrec.evaluation.metrics import classification_metrics
from imgrec.evaluation.report import collect_errors, primary_split, summarize
from imgrec.imaging import decode

EVIL = "<script>alert(1)</script>"
HISTORY = [
    {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e + 0.1, "train_accuracy": 0.5 + e / 10,
     "val_accuracy": 0.45 + e / 20}
    for e in range(1, 6)
]


class TagCollector(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _result(classes, seed=0, n=40, sources=None) -> EvalResult:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(classes), n)
    logits = rng.normal(size=(n, len(classes))) + 2.5 * np.eye(len(classes))[y]
    proba = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    srcs = sources or [f"/data/{EVIL}/img_{i}.png" for i in range(n)]
    return EvalResult(classification_metrics(y, proba, classes), y, proba, srcs,
                      [(f"/data/{EVIL}.jpg", f"cannot decode {EVIL}")], 0.5, 1.25, list(classes))


@pytest.fixture
def meta():
    return {
        "model": "centroid", "family": "classical", "classes": ["a", EVIL, "c"], "num_params": 12,
        "training": {"epochs": 5, "lr": 0.01, "note": EVIL},
        "data": {"name": "shapes", "root": f"/data/{EVIL}", "fingerprint": "abc123",
                 "split_sizes": {"train": 100, "val": 40, "test": 40},
                 "class_counts": {"a": 50, EVIL: 30, "c": 20},
                 "bad_files": [["/data/x.gif", "not an image"]]},
        "versions": {"python": "3.11", "numpy": "2.0"},
        "timing": {"train_seconds": 12.5},
    }


def test_report_is_self_contained_escaped_and_complete(tmp_path, meta):
    classes = ["a", EVIL, "c"]
    results = {"val": _result(classes, 1), "test": _result(classes, 2)}
    images = {i: np.full((16, 16, 3), 9 * i, np.uint8) for i in results["test"].confident_errors()}
    results["test"].error_images = images
    path = write_report(tmp_path / "run", meta=meta, results=results, history=HISTORY,
                        bad_files=[("/data/skipped.png", "too small")])
    assert path == tmp_path / "run" / "report.html"
    html = path.read_text(encoding="utf-8")

    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    parser = TagCollector()
    parser.feed(html)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    for _, attrs in parser.tags:
        for key in ("src", "href"):
            assert not re.match(r"\s*(https?:)?//", attrs.get(key) or ""), attrs
    imgs = [a for t, a in parser.tags if t == "img"]
    assert len(imgs) == 4  # curves, 2 confusion matrices, errors
    assert all(a["src"].startswith("data:image/png;base64,") for a in imgs)
    for section in ("summary", "training", "data", "curves", "classes", "confusion", "errors",
                    "environment", "timing"):
        assert f'id="{section}"' in html
    assert "/data/skipped.png" in html and "/data/x.gif" in html and "abc123" in html
    assert 'class="worst"' in html and "train_seconds" in html

    pngs = ("confusion_matrix.png", "confusion_matrix_normalized.png", "curves.png", "errors.png")
    for name in pngs:
        assert decode((tmp_path / "run" / name).read_bytes()).ndim == 3


def test_metrics_json_has_each_split_and_a_summary(tmp_path, meta):
    results = {"val": _result(["a", "b"], 3), "test": _result(["a", "b"], 4)}
    write_report(tmp_path, meta=meta, results=results, history=None)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert set(data) == {"val", "test", "summary"}
    assert data["test"]["accuracy"] == results["test"].accuracy
    assert data["test"]["confusion_matrix"] == results["test"].metrics["confusion_matrix"]
    assert data["val"]["bad_files"][0]["error"].startswith("cannot decode")
    assert data["summary"]["split"] == "test" and data["summary"]["ms_per_image"] == 1.25
    assert data["summary"]["splits"]["val"]["macro_f1"] == results["val"].macro_f1
    assert not (tmp_path / "curves.png").exists()  # no history, no curves


def test_overfitting_is_called_out(tmp_path, meta):
    history = [{"epoch": 1, "train_accuracy": 0.99, "val_accuracy": 0.7, "train_loss": 0.01,
                "val_loss": 1.5}, {"epoch": 2, "train_accuracy": 1.0, "val_accuracy": 0.7}]
    html = write_report(tmp_path, meta=meta, results={"val": _result(["a", "b"])},
                        history=history).read_text()
    assert "overfitting" in html


def test_error_gallery_reloads_originals_from_the_dataset(tmp_path, image_folder, shapes_model,
                                                           as_dataset):
    ds = as_dataset(image_folder)
    result = evaluate(shapes_model, ds)
    result.error_images = {}  # force reloading through dataset.load
    errors = collect_errors(result, ds, limit=5)
    assert errors and all(e.image is not None and e.image.shape == (48, 48, 3) for e in errors)
    assert [e.score for e in errors] == sorted((e.score for e in errors), reverse=True)
    assert all(e.true != e.pred for e in errors)
    write_report(tmp_path, meta={"model": "centroid"}, results={"test": result}, dataset=ds)
    assert (tmp_path / "errors.png").is_file()
    html = (tmp_path / "report.html").read_text()
    assert ds.fingerprint() in html  # data facts filled in from the dataset


def test_reports_without_any_evaluation_still_render(tmp_path):
    html = write_report(tmp_path, meta={}, results={}, history=HISTORY).read_text()
    assert "No evaluation was run" in html and (tmp_path / "curves.png").is_file()
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"summary": {}}


def test_primary_split_and_summary():
    r = _result(["a", "b"])
    assert primary_split({"val": r, "test": r}) == "test"
    assert primary_split({"val": r}) == "val" and primary_split({"holdout": r}) == "holdout"
    assert summarize({"val": r})["accuracy"] == r.accuracy

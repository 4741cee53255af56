"""Leaderboards across runs, read from model.json and metrics.json only (weights never load).

Figures are only comparable on the same images: each row says which data (fingerprint),
split and how many images it was scored on, and :func:`comparability_warnings` says when
the rows differ there.

Example:
    >>> # rows = compare_runs(["runs/hog-svm-1", "runs/resnet18-1"])
    >>> # rows[0]["run"], rows[0]["accuracy"], comparability_warnings(rows)
    >>> comparability_warnings([{"run": "a", "fingerprint": "f1", "split": "test", "images": 50},
    ...                         {"run": "b", "fingerprint": "f1", "split": "test", "images": 50}])
    []
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from imgrec.errors import ImgrecError, ModelFileError
from imgrec.models.artifact import read_meta, weight_bytes

METRICS_FILE = "metrics.json"
COLUMNS = ("run", "model", "family", "data", "fingerprint", "split", "images", "accuracy", "macro_f1",
           "train_seconds", "ms_per_image", "size_mb", "params")
# (row key, what differs, how one value reads)
SAME = (
    ("fingerprint", "data", "fingerprint {}"),
    ("split", "splits", "{}"),
    ("images", "numbers of images", "{} images"),
)


def compare_runs(run_dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """One leaderboard row per run, best accuracy first (runs without figures last).

    Each row has ``run, model, family``, ``data, fingerprint`` (the dataset's name and
    fingerprint), ``split`` (test when evaluated, else val) and ``images`` (how many it was
    scored on), ``accuracy, macro_f1, train_seconds, ms_per_image, size_mb`` (weight files on
    disk) and ``params``; unknown figures are None.

    Raises:
        MissingInputError: a run directory does not exist.
        ModelFileError: a directory is not a run, or its model.json/metrics.json is invalid.
    """
    rows = [_row(Path(d)) for d in run_dirs]
    return sorted(rows, key=lambda r: (r["accuracy"] is None, -(r["accuracy"] or 0.0)))


def _row(run: Path) -> dict[str, Any]:
    meta = read_meta(run)
    run = run if run.is_dir() else run.parent
    split, figures = _split_figures(_read_metrics(run), _mapping(meta.get("metrics")))
    timing, data = _mapping(meta.get("timing")), _mapping(meta.get("data"))
    return {
        "run": run.name,
        "path": str(run),
        "model": meta.get("model"),
        "family": meta.get("family"),
        "data": data.get("name"),
        "fingerprint": data.get("fingerprint"),
        "split": split,
        "images": _images(figures, data, split),
        "accuracy": _float(figures.get("accuracy")),
        "macro_f1": _float(figures.get("macro_f1")),
        "train_seconds": _float(timing.get("train_seconds")),
        "ms_per_image": _float(figures.get("ms_per_image")),
        "size_mb": round(_weights_bytes(run, meta) / 1e6, 3),
        "params": meta.get("num_params"),
    }


def comparability_warnings(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One sentence per way the rows were scored differently (data, split, image count)."""
    rows = list(rows)
    out = []
    for key, what, shown in SAME:
        groups: dict[str, list[str]] = {}
        for r in rows:
            value = "unknown" if r.get(key) is None else shown.format(r[key])
            groups.setdefault(value, []).append(str(r["run"]))
        if len(groups) > 1:
            listing = "; ".join(f"{value}: {', '.join(names)}" for value, names in groups.items())
            out.append(f"These runs were scored on different {what} ({listing}); "
                       "their figures are not comparable side by side.")
    return out


def _images(figures: Mapping[str, Any], data: Mapping[str, Any], split: str | None) -> int | None:
    """Images the figures were computed on: metrics.json's count, else the split's size."""
    n = figures.get("num_samples")
    if n is None and split is not None:
        n = _mapping(data.get("splits")).get(split)
    return int(n) if isinstance(n, (int, float)) and not isinstance(n, bool) else None


def _read_metrics(run: Path) -> dict[str, Any]:
    path = run / METRICS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"{path} is not valid JSON ({exc}). Delete it and re-run `imgrec evaluate` on the run."
        ) from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path} must hold a JSON object; received {type(data).__name__}.")
    return data


def _split_figures(
    metrics: Mapping[str, Any], summary: Mapping[str, Any]
) -> tuple[str | None, Mapping[str, Any]]:
    """The split to rank by and its figures: metrics.json first, then model.json's summary."""
    for source in (metrics, summary, _mapping(summary.get("splits"))):
        for split in ("test", "val"):
            figures = source.get(split)
            if isinstance(figures, Mapping):
                return split, figures
    if isinstance(summary.get("accuracy"), (int, float)):
        return summary.get("split"), summary
    return None, {}


def _weights_bytes(run: Path, meta: Mapping[str, Any]) -> int:
    if not isinstance(meta.get("files"), Mapping):
        return 0
    try:
        return weight_bytes(run, dict(meta))
    except ImgrecError:  # a damaged nested run (a probe's backbone): size unknown, the row stays
        return 0


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

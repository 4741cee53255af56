from __future__ import annotations

import numpy as np
import pytest

from imgrec.errors import MissingInputError, ModelFileError
from imgrec.evaluation import compare_runs, evaluate, write_metrics_json
from imgrec.models.artifact import save_model, update_meta


@pytest.fixture
def two_runs(tmp_path, image_folder, as_dataset, fit_model):
    """Two real runs written through the artifact format: 8 px and 32 px centroid models."""
    ds = as_dataset(image_folder)
    runs = []
    for name, size, seconds in (("tiny-1", 8, 0.5), ("small-1", 32, 2.0)):
        model = fit_model(ds, size=size)
        run = save_model(model, tmp_path / name, {"timing": {"train_seconds": seconds}})
        write_metrics_json(run, {"val": evaluate(model, ds.subset(range(1, 60, 2))),
                                 "test": evaluate(model, ds.subset(range(0, 60, 2)))})
        runs.append(run)
    return runs


def test_leaderboard_rows_sorted_by_accuracy(two_runs):
    rows = compare_runs(two_runs)
    assert {r["run"] for r in rows} == {"tiny-1", "small-1"}
    assert [r["accuracy"] for r in rows] == sorted((r["accuracy"] for r in rows), reverse=True)
    by_run = {r["run"]: r for r in rows}
    small = by_run["small-1"]
    assert small["split"] == "test" and small["model"] == "centroid"
    assert small["family"] == "classical"
    assert small["train_seconds"] == 2.0 and by_run["tiny-1"]["train_seconds"] == 0.5
    assert small["params"] == 3 * 8 * 8 * 3
    assert small["size_mb"] > 0 and small["ms_per_image"] > 0
    assert 0 <= small["macro_f1"] <= 1


def test_falls_back_to_val_and_to_the_model_json_summary(two_runs):
    tiny, small = two_runs
    (small / "metrics.json").write_text('{"val": {"accuracy": 0.5, "macro_f1": 0.4}}')
    (tiny / "metrics.json").unlink()
    figures = {"accuracy": 0.9, "macro_f1": 0.8}
    summary = {"split": "test", "accuracy": 0.9, "splits": {"test": figures}}
    update_meta(tiny, metrics=summary)
    rows = {r["run"]: r for r in compare_runs(two_runs)}
    assert rows["small-1"]["split"] == "val" and rows["small-1"]["accuracy"] == 0.5
    assert rows["tiny-1"]["split"] == "test" and rows["tiny-1"]["macro_f1"] == 0.8
    update_meta(tiny, metrics=None)
    rows = compare_runs(two_runs)
    assert rows[-1]["run"] == "tiny-1" and rows[-1]["accuracy"] is None  # no figures: last


def test_never_loads_weights(two_runs):
    for run in two_runs:  # a corrupt weight file must not matter: compare reads JSON only
        (run / "centroids.npz").write_bytes(b"garbage")
    assert len(compare_runs(two_runs)) == 2


def test_missing_or_invalid_runs_raise(tmp_path, two_runs):
    with pytest.raises(MissingInputError):
        compare_runs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match=r"model\.json is missing"):
        compare_runs([two_runs[0], tmp_path / "empty"])
    (two_runs[1] / "metrics.json").write_text("{not json")
    with pytest.raises(ModelFileError, match=r"metrics\.json is not valid JSON"):
        compare_runs(two_runs)


def test_centroid_runs_round_trip_sizes(two_runs):
    row = {r["run"]: r for r in compare_runs(two_runs)}["tiny-1"]
    expected = (two_runs[0] / "centroids.npz").stat().st_size / 1e6
    assert row["size_mb"] == pytest.approx(expected, abs=1e-3)
    assert np.isfinite(row["accuracy"])

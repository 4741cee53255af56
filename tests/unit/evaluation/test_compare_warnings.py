"""compare: each row says what it was scored on, and mixed data, splits or sizes are warned about."""

from __future__ import annotations

import pytest

from imgrec.evaluation import comparability_warnings, compare_runs, evaluate, write_metrics_json
from imgrec.models.artifact import save_model


@pytest.fixture
def make_run(tmp_path, image_folder, as_dataset, fit_model):
    """``make_run(name, fingerprint, split, n)``: a real centroid run scored on ``n`` images of ``split``."""
    ds = as_dataset(image_folder)
    model = fit_model(ds, size=8)

    def make(name: str, fingerprint: str, split: str, n: int):
        data = {"name": "shapes", "fingerprint": fingerprint, "splits": {"train": 60 - n, split: n}}
        run = save_model(model, tmp_path / name, {"data": data})
        write_metrics_json(run, {split: evaluate(model, ds.subset(range(n)))})
        return run

    return make


def test_rows_carry_the_fingerprint_split_and_image_count(make_run) -> None:
    row = compare_runs([make_run("a-1", "f" * 16, "test", 12)])[0]
    assert (row["data"], row["fingerprint"], row["split"], row["images"]) == ("shapes", "f" * 16, "test", 12)


def test_runs_scored_alike_get_no_warning(make_run) -> None:
    rows = compare_runs([make_run("a-1", "f" * 16, "test", 12), make_run("b-1", "f" * 16, "test", 12)])
    assert comparability_warnings(rows) == []


def test_different_data_splits_and_sizes_are_each_named(make_run) -> None:
    rows = compare_runs([
        make_run("a-1", "1" * 16, "test", 12),
        make_run("b-1", "2" * 16, "val", 30),
    ])
    warnings = comparability_warnings(rows)
    assert len(warnings) == 3
    assert "different data (" in warnings[0]
    assert "fingerprint 1111111111111111: a-1" in warnings[0] and "fingerprint 2222222222222222: b-1" in warnings[0]
    assert "different splits" in warnings[1] and "test: a-1" in warnings[1]
    assert "12 images: a-1" in warnings[2] and "30 images: b-1" in warnings[2]
    assert all("not comparable" in w for w in warnings)

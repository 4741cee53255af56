"""imgrec.evaluation.speed (the measurements behind `imgrec benchmark`), on the tiny exported run.

Lives here rather than in tests/unit/evaluate/ because it needs the exported run fixture.
"""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.errors import UsageError
from imgrec.evaluation.speed import benchmark_run, machine_info, random_images, time_calls
from imgrec.export import export_run


def test_time_calls_warms_up_then_stops_at_the_iteration_or_time_bound():
    calls: list[int] = []
    times = time_calls(lambda: calls.append(1), warmup=3, max_iters=5, max_seconds=60)
    assert len(times) == 5 and len(calls) == 8 and all(t >= 0 for t in times)
    calls.clear()
    assert len(time_calls(lambda: calls.append(1), warmup=0, max_iters=10**9, max_seconds=1e-9)) == 1


def test_benchmark_rows_per_backend_and_batch_with_accuracy(torch_run, shapes_data):
    export_run(torch_run, data=shapes_data)
    images = random_images(32, n=6)
    labels = np.arange(6) % 3
    result = benchmark_run(torch_run, ["torch", "onnx"], batch_sizes=(1, 3), images=images, labels=labels,
                           source="noise", warmup=1, max_iters=2, max_seconds=1.0)
    assert [(r.backend, r.batch) for r in result.rows] == [("torch", 1), ("torch", 3), ("onnx", 1), ("onnx", 3)]
    assert all(r.iterations == 2 and r.p95_ms >= r.p50_ms > 0 and r.model_mb > 0 for r in result.rows)
    acc = {r.backend: r.accuracy for r in result.rows}
    assert acc["torch"] == acc["onnx"]  # same predictions on the same images
    assert result.to_dict()["machine"]["logical_cores"] == machine_info()["logical_cores"]
    with pytest.raises(UsageError):
        benchmark_run(torch_run, ["onnx"], batch_sizes=(0,))

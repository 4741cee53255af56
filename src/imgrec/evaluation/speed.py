"""Inference speed per backend and batch size: p50/p95 latency, throughput, size, score.

Each backend is a :class:`~imgrec.inference.Predictor` loaded with ``Predictor.from_run(run,
backend=...)`` and timed through ``Predictor.forward`` on prepared batches, the model call that
``imgrec predict``, ``evaluate`` and ``serve`` make after decoding, for every task (class
probabilities, box candidates, mask logits, instance candidates). Every measurement starts with
warm-up calls and stops after ``max_iters`` calls or ``max_seconds``, whichever comes first.
The score is the task's headline figure on labeled data when given: top-1 accuracy
(classifiers), mIoU (semantic segmenters), mAP (detectors), mask mAP (instance segmenters),
each through the task's ``evaluate_*`` as ``imgrec evaluate`` computes it.

Example:
    >>> # result = benchmark_run("runs/resnet18-1", ["torch", "onnx"], batch_sizes=(1, 8))
    >>> # [(r.backend, r.batch, r.images_per_s) for r in result.rows]
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.data import ImageDataset
from imgrec.errors import UsageError
from imgrec.evaluation.classify import predict_batches
from imgrec.inference import Predictor
from imgrec.machine import physical_cores
from imgrec.models.artifact import weight_bytes


@dataclass
class SpeedRow:
    """One backend at one batch size.

    Attributes:
        backend: "torch", "classical", "onnx" or "onnx-int8".
        batch: images per call.
        p50_ms: median latency of one call (milliseconds).
        p95_ms: 95th percentile latency of one call.
        images_per_s: batch / mean call time.
        iterations: timed calls.
        model_mb: size of the backend's model file(s) on disk, in MB.
        accuracy: top-1 accuracy on the labeled data, when given (classifiers).
        score: the task's headline figure on the labeled data, when given (the accuracy of a classifier).
        metric: what ``score`` is ("accuracy", "mIoU", "mAP", "mask mAP").
    """

    backend: str
    batch: int
    p50_ms: float
    p95_ms: float
    images_per_s: float
    iterations: int
    model_mb: float
    accuracy: float | None = None
    score: float | None = None
    metric: str = "accuracy"


@dataclass
class SpeedResult:
    """Rows per backend and batch size, with the machine they were measured on."""

    run: str
    rows: list[SpeedRow]
    machine: dict[str, Any]
    images: str
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "images": self.images,
            "machine": self.machine,
            "settings": self.settings,
            "rows": [asdict(r) for r in self.rows],
        }


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """CPU model, logical and physical cores, the load average, and the threads each runtime uses."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "onnxruntime_threads": threads or physical_cores(),
        "platform": platform.platform(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    import sys

    if "torch" in sys.modules:  # only report torch when a torch backend was loaded
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


def time_calls(fn: Callable[[], Any], *, warmup: int = 2, max_iters: int = 30, max_seconds: float = 5.0) -> list[float]:
    """Seconds per call of ``fn`` after ``warmup`` calls; at least one, at most ``max_iters`` or ``max_seconds``."""
    for _ in range(max(0, warmup)):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + max_seconds
    while not times or (len(times) < max_iters and time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def model_bytes(predictor: Predictor) -> int:
    """Size of the file(s) the predictor's model was loaded from."""
    path = getattr(predictor.model, "path", None)
    if isinstance(path, Path) and path.is_file():
        return path.stat().st_size
    run = predictor.run_dir
    if run is None:
        return 0
    return weight_bytes(run, predictor.meta)


def _batch_of(images: np.ndarray, n: int) -> np.ndarray:
    reps = -(-n // len(images))
    return np.ascontiguousarray(np.concatenate([images] * reps)[:n]) if reps > 1 else images[:n]


def measure(
    predictor: Predictor,
    backend: str,
    images: np.ndarray,
    batch_sizes: Sequence[int],
    labels: np.ndarray | None,
    dataset: ImageDataset | None = None,
    **timing: Any,
) -> list[SpeedRow]:
    """Rows for one predictor: every batch size, plus its score when ``labels`` (classifiers) or a
    labeled ``dataset`` (the other tasks) are given."""
    metric, score = task_score(predictor, images, labels, dataset, max(batch_sizes))
    size_mb = round(model_bytes(predictor) / 1e6, 3)
    rows = []
    for b in batch_sizes:
        batch = _batch_of(images, b)
        times = np.asarray(time_calls(partial(predictor.forward, batch), **timing), dtype=np.float64)
        rows.append(
            SpeedRow(
                backend=backend,
                batch=b,
                p50_ms=round(1000 * float(np.percentile(times, 50)), 3),
                p95_ms=round(1000 * float(np.percentile(times, 95)), 3),
                images_per_s=round(b / float(times.mean()), 2),
                iterations=len(times),
                model_mb=size_mb,
                accuracy=score if metric == "accuracy" else None,
                score=score,
                metric=metric,
            )
        )
    return rows


METRICS = {"classify": "accuracy", "segment": "mIoU", "detect": "mAP", "instance": "mask mAP"}


def task_score(
    predictor: Predictor, images: np.ndarray, labels: np.ndarray | None, dataset: ImageDataset | None, batch: int
) -> tuple[str, float | None]:
    """The task's headline figure (name, value): a classifier's top-1 accuracy on ``images`` with
    ``labels``; another task's figure on ``dataset`` through its ``evaluate_*``; None without labels."""
    task = predictor.task.name
    metric = METRICS.get(task, "accuracy")
    if task == "classify" or task not in METRICS:
        if labels is None:
            return metric, None
        proba = predict_batches(predictor, images, batch)
        return metric, round(float(np.mean(proba.argmax(1) == labels)), 6)
    if dataset is None:
        return metric, None
    if task == "segment":
        from imgrec.evaluation.segmentation import evaluate_segmentation

        value = evaluate_segmentation(predictor, dataset, boundary=False).metrics["miou"]
    elif task == "instance":
        from imgrec.evaluation.instance import evaluate_instances

        value = evaluate_instances(predictor, dataset).metrics["mask_map"]
    else:
        from imgrec.evaluation.detection.run import evaluate_detection

        value = evaluate_detection(predictor, dataset).metrics["map"]
    return metric, round(float(value or 0.0), 6)


def random_images(size: int, n: int = 32, seed: int = 0) -> np.ndarray:
    """Seeded noise images ``(n, size, size, 3)`` (speed does not depend on the content)."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def benchmark_run(
    run_dir: str | Path,
    backends: Sequence[str],
    *,
    batch_sizes: Sequence[int] = (1, 8, 32),
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    dataset: ImageDataset | None = None,
    source: str = "random",
    warmup: int = 2,
    max_iters: int = 30,
    max_seconds: float = 5.0,
    threads: int | None = None,
) -> SpeedResult:
    """Time each backend of a run at each batch size.

    Args:
        run_dir: the run directory.
        backends: Predictor backends ("torch", "classical", "onnx", "onnx-int8", "auto").
        batch_sizes: images per call.
        images: prepared uint8 images to time (and score); default seeded noise.
        labels: class indices (the model's class order) of ``images``, for a classifier's accuracy.
        dataset: the labeled dataset ``images`` were prepared from, for the score of the other
            tasks (mIoU, mAP, mask mAP).
        source: how to name ``images`` in the result.
        warmup: untimed calls before each measurement.
        max_iters: the most timed calls per measurement.
        max_seconds: the most time per measurement (at least one call is timed).
        threads: CPU threads for each backend (see ``Predictor.from_run``); None: the defaults.
    """
    _check(backends, batch_sizes, warmup, max_iters, max_seconds)
    run = Path(run_dir)
    rows: list[SpeedRow] = []
    for backend in backends:
        predictor = Predictor.from_run(run, backend=backend, threads=threads)
        data = images if images is not None else random_images(predictor.preprocessing.size)
        rows += measure(predictor, backend, data, batch_sizes, labels, dataset, warmup=warmup, max_iters=max_iters,
                        max_seconds=max_seconds)  # fmt: skip
    settings = {"batch_sizes": list(batch_sizes), "warmup": warmup, "max_iters": max_iters, "max_seconds": max_seconds}
    return SpeedResult(str(run), rows, machine_info(threads), source, settings)


def _check(backends: Sequence[str], batch_sizes: Sequence[int], warmup: int, iters: int, seconds: float) -> None:
    if not backends:
        raise UsageError("Name at least one backend to benchmark (e.g. torch,onnx).")
    if not batch_sizes or min(batch_sizes) < 1:
        raise UsageError(f"Batch sizes must be integers >= 1; received {list(batch_sizes)}.")
    if warmup < 0 or iters < 1 or seconds <= 0:
        raise UsageError(
            f"Need warmup >= 0, max_iters >= 1 and max_seconds > 0; received {warmup}, {iters}, {seconds}."
        )

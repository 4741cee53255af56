"""The served models: a Predictor, its micro-batcher and admission count per model, one decode pool."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgrec.errors import UsageError, did_you_mean
from imgrec.inference import Predictor
from imgrec.serve.batching import MicroBatcher
from imgrec.serve.config import ServeConfig
from imgrec.serve.errors import ApiError, unavailable
from imgrec.serve.metrics import ServeMetrics

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    """One model behind the API.

    Attributes:
        name: the name in URLs.
        predictor: turns probabilities into predictions; its model answers batches.
        batcher: queues prepared images into model calls.
        admitted: images of requests in progress (decoding, queued or in the model).
    """

    name: str
    predictor: Predictor
    batcher: MicroBatcher
    admitted: int = 0

    def summary(self) -> dict[str, Any]:
        meta, model = self.predictor.meta, self.predictor.model
        return {
            "name": self.name,
            "architecture": str(meta.get("model", model.name)),
            "family": str(meta.get("family", model.family)),
            "task": self.predictor.task.name,
            "num_classes": len(self.predictor.classes),
            "image_size": self.predictor.preprocessing.size,
        }

    def detail(self) -> dict[str, Any]:
        meta = self.predictor.meta
        return {
            **self.summary(),
            "classes": list(self.predictor.classes),
            "preprocessing": self.predictor.preprocessing.to_dict(),
            "metrics": _figures(meta.get("metrics", {})),
            "num_params": meta.get("num_params") if isinstance(meta.get("num_params"), int) else None,
            "created": str(meta["created"]) if meta.get("created") else None,
        }


class Service:
    """Everything ``create_app`` serves; started and stopped by the app's lifespan."""

    def __init__(self, predictors: Mapping[str, Predictor], config: ServeConfig, metrics: ServeMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.models = {name: self._served(name, p) for name, p in predictors.items()}
        self.pool: ThreadPoolExecutor | None = None
        self.ready = False

    def _served(self, name: str, predictor: Predictor) -> ServedModel:
        cfg = self.config
        batcher = MicroBatcher(
            predictor.forward,
            max_batch_size=cfg.max_batch_size or predictor.batch_size,
            max_wait_ms=cfg.max_wait_ms,
            queue_size=cfg.queue_size,
            on_batch=self.metrics.batch_hook(name),
            name=name,
        )
        self.metrics.track_queue(name, lambda: batcher.depth)
        return ServedModel(name, predictor, batcher)

    async def start(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=self.config.workers_threads, thread_name_prefix="imgrec-decode")
        for served in self.models.values():
            await served.batcher.start()
        self.ready = True
        log.info("Serving %d model(s): %s", len(self.models), ", ".join(self.models))

    async def stop(self) -> None:
        """Refuse new work, let queued images finish (drain), release the threads."""
        self.ready = False
        for served in self.models.values():
            await served.batcher.stop(timeout=self.config.graceful_timeout_s)
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
        log.info("Model workers stopped.")

    def get(self, name: str) -> ServedModel:
        """The model called ``name``, or a 404 naming close matches."""
        served = self.models.get(name)
        if served is None:
            raise ApiError(
                404,
                "not_found",
                f"Unknown model {name!r}.{did_you_mean(name, self.models)} "
                f"Served models: {', '.join(self.models) or 'none'} (GET /v1/models).",
            )
        return served

    def check_capacity(self, served: ServedModel, count: int = 1) -> None:
        """Answer 503 now (not_ready / overloaded) when ``count`` more images cannot be taken."""
        if not self.ready or self.pool is None:
            raise unavailable("not_ready", "The service is starting or shutting down; retry shortly.", self.retry)
        if served.admitted + count > self.config.queue_size:
            raise unavailable(
                "overloaded",
                f"Model {served.name!r} has {served.admitted} images in progress (limit {self.config.queue_size}); "
                "retry after the Retry-After delay.",
                self.retry,
            )

    @contextmanager
    def admit(self, served: ServedModel, count: int) -> Iterator[None]:
        """Hold ``count`` of the model's ``queue_size`` slots for a request, or answer 503 now."""
        self.check_capacity(served, count)
        served.admitted += count
        try:
            yield
        finally:
            served.admitted -= count

    @property
    def retry(self) -> int:
        return self.config.retry_after_s


def load_predictors(
    runs: Sequence[str | Path] | Mapping[str, Predictor], threads: int | None = None, allow_none: bool = False
) -> dict[str, Predictor]:
    """Name -> Predictor: a mapping is used as given; run directories are named after their folder.

    ``threads`` goes to ``Predictor.from_run`` for run directories, and to the models of a
    mapping's predictors when it is not None (see ``ServeConfig.threads_per_model``).
    ``allow_none``: no model is fine (the app serves face collections only).
    """
    if isinstance(runs, Mapping):
        out = dict(runs)
        if threads is not None:
            for predictor in out.values():
                predictor.model.set_threads(threads)
    else:
        out = {}
        for run in runs:
            name = Path(run).resolve().name
            if name in out:
                raise UsageError(
                    f"Two runs are both named {name!r}; model names come from the run folder names. "
                    "Rename or copy one of the folders."
                )
            out[name] = Predictor.from_run(run, threads=threads)
    if not out and not allow_none:
        raise UsageError("No model to serve: give at least one run directory (runs/<model>-<n>), or --faces "
                         "COLLECTION.")  # fmt: skip
    return out


def _figures(metrics: Any) -> dict[str, Any]:
    """Numbers from model.json's metrics summary (one level of nesting per split)."""
    if not isinstance(metrics, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[str(key)] = value
        elif isinstance(value, Mapping):
            out[str(key)] = {
                str(k): v for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)
            }
    return out

"""Prometheus metrics of one app, in its own ``CollectorRegistry`` (never the global one)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServeMetrics:
    """The service's counters, histograms and gauges.

    Attributes:
        requests: HTTP requests by route template, method and status.
        latency: HTTP request seconds by route template.
        batch_size: images per model call, by model.
        model_seconds: seconds per model call, by model.
        images: images answered, by model and outcome (``predicted`` or ``error``).
        errors: error answers by code (request-level and per-image).
        queue_depth: images waiting for each model (read when scraped).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "imgrec_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "imgrec_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "imgrec_batch_size", "Images per model call", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.model_seconds = Histogram(
            "imgrec_model_call_seconds", "Seconds per model call", ["model"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.images = Counter("imgrec_images", "Images answered by model and outcome", ["model", "outcome"], registry=r)
        self.errors = Counter("imgrec_errors", "Error answers by code", ["code"], registry=r)
        self.queue_depth = Gauge("imgrec_queue_depth", "Images waiting per model", ["model"], registry=r)

    def track_queue(self, model: str, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the queue depth of ``model`` whenever metrics are scraped."""
        self.queue_depth.labels(model=model).set_function(depth)

    def batch_hook(self, model: str) -> Callable[[int, float], None]:
        """A ``MicroBatcher.on_batch`` callback recording batch size and model time."""
        sizes, seconds = self.batch_size.labels(model=model), self.model_seconds.labels(model=model)

        def record(size: int, secs: float) -> None:
            sizes.observe(size)
            seconds.observe(secs)

        return record

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

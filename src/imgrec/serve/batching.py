"""Dynamic micro-batching: images from concurrent requests share one model call.

One :class:`MicroBatcher` per model owns a bounded queue of prepared images and one asyncio
worker. The worker takes the oldest image, waits at most ``max_wait_ms`` (measured from when
that image arrived) for the batch to fill up to ``max_batch_size``, runs the model once in
its own thread (so one model call at a time per model, and the event loop stays free), and
hands every request its rows. A full queue refuses new work at once (503 ``overloaded``);
images whose request gave up (deadline, client gone) are dropped before the model call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], np.ndarray]
BatchHook = Callable[[int, float], None]


class QueueFull(Exception):
    """The batch queue cannot take the images of this request now."""


class NotRunning(Exception):
    """The batcher was not started, or is shutting down."""


@dataclass
class _Job:
    image: np.ndarray
    future: asyncio.Future[np.ndarray]
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Collects prepared images into batches for one model.

    Args:
        predict: ``(N, S, S, 3) uint8 -> (N, C) float32`` (e.g. ``Predictor.predict_proba``).
        max_batch_size: images per model call (1 = no batching).
        max_wait_ms: how long the first image of a batch waits for company.
        queue_size: images that may wait; more are refused with :class:`QueueFull`.
        on_batch: called with (batch size, model seconds) after each model call.
        name: for log messages and the model thread's name.

    Example:
        >>> import asyncio, numpy as np
        >>> async def demo():
        ...     b = MicroBatcher(lambda x: np.ones((len(x), 2), np.float32), max_batch_size=4)
        ...     await b.start()
        ...     rows = await b.submit([np.zeros((2, 2, 3), np.uint8)] * 3)
        ...     await b.stop()
        ...     return [r.tolist() for r in rows]
        >>> asyncio.run(demo())
        [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    """

    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch_size: int = 16,
        max_wait_ms: float = 5.0,
        queue_size: int = 256,
        on_batch: BatchHook | None = None,
        name: str = "model",
    ) -> None:
        self.predict = predict
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.queue_size = max(1, queue_size)
        self.on_batch = on_batch
        self.name = name
        self._pending: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False

    @property
    def depth(self) -> int:
        """Images waiting for the model now."""
        return len(self._pending)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._stopping

    async def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._task is not None:
            return
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imgrec-model-{self.name}")
        self._task = asyncio.create_task(self._work(), name=f"imgrec-batcher-{self.name}")

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Stop taking work, finish what is queued (drain), then stop the worker."""
        if self._task is None:
            return
        self._stopping = True
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            log.warning("Model %s: batch queue not drained within %.0f s; cancelling.", self.name, timeout or 0)
            self._task.cancel()
            self._fail_pending()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self._task, self._executor = None, None

    async def submit(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Queue all images of one request and wait for their probability rows.

        Raises:
            QueueFull: when the queue has no room for all of them (nothing is queued then).
            NotRunning: when the batcher is not started or is stopping.
        """
        futures = self.enqueue(images)
        try:
            return list(await asyncio.gather(*futures))
        finally:
            for fut in futures:  # a caller that gave up (deadline) frees its slots
                if not fut.cancel() and not fut.cancelled():
                    fut.exception()  # mark as retrieved: no "never retrieved" noise

    def enqueue(self, images: Sequence[np.ndarray]) -> list[asyncio.Future[np.ndarray]]:
        """Queue images now (all or none); returns one future per image."""
        if not self.running:
            raise NotRunning(f"The batcher of model {self.name!r} is not running.")
        if len(self._pending) + len(images) > self.queue_size:
            raise QueueFull(
                f"{len(self._pending)} images are waiting for model {self.name!r} (limit {self.queue_size})."
            )
        loop = asyncio.get_running_loop()
        jobs = [_Job(img, loop.create_future()) for img in images]
        self._pending.extend(jobs)
        assert self._wakeup is not None
        self._wakeup.set()
        return [j.future for j in jobs]

    async def _work(self) -> None:
        assert self._wakeup is not None
        while True:
            self._drop_abandoned()
            if not self._pending:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_for_company()
            batch = [self._pending.popleft() for _ in range(min(self.max_batch_size, len(self._pending)))]
            batch = [j for j in batch if not j.future.done()]
            if batch:
                await self._run(batch)

    async def _wait_for_company(self) -> None:
        assert self._wakeup is not None
        deadline = self._pending[0].arrived + self.max_wait
        while len(self._pending) < self.max_batch_size and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    async def _run(self, batch: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            proba = await loop.run_in_executor(self._executor, self.predict, np.stack([j.image for j in batch]))
            rows = list(zip(batch, proba, strict=True))
        except Exception as exc:  # a model failure fails its batch, not the worker
            log.exception("Model %s failed on a batch of %d images.", self.name, len(batch))
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - start)
        for job, row in rows:
            if not job.future.done():
                job.future.set_result(row)

    def _drop_abandoned(self) -> None:
        while self._pending and self._pending[0].future.done():
            self._pending.popleft()

    def _fail_pending(self) -> None:
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(NotRunning(f"Model {self.name!r} shut down before answering."))

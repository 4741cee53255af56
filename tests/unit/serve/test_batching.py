"""MicroBatcher on its own (asyncio), and micro-batching / overload through the app."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from tests.unit.serve.helpers import RecordingClassifier, make_predictor, png_bytes

from imgrec.serve.batching import MicroBatcher, NotRunning, QueueFull

PREDICT = "/v1/models/bright/predict"


class Gate:
    """A model function that records batch sizes and blocks while ``hold`` is set."""

    def __init__(self, hold: bool = False) -> None:
        self.calls: list[int] = []
        self.open = threading.Event()
        if not hold:
            self.open.set()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        assert self.open.wait(10)
        return batch.reshape(len(batch), -1)[:, :2].astype(np.float32)


def _img(v: int) -> np.ndarray:
    return np.full((2, 2, 3), v, np.uint8)


async def _until(cond, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.002)


def test_concurrent_submits_share_model_calls_and_get_their_own_rows():
    async def main():
        gate = Gate(hold=True)
        b = MicroBatcher(gate, max_batch_size=8, max_wait_ms=0, queue_size=64)
        await b.start()
        tasks = [asyncio.create_task(b.submit([_img(i)])) for i in range(10)]
        await _until(lambda: gate.calls)  # the first batch is in the (blocked) model
        await _until(lambda: b.depth == 10 - gate.calls[0])
        gate.open.set()
        rows = await asyncio.gather(*tasks)
        await b.stop()
        return gate.calls, rows

    calls, rows = asyncio.run(main())
    assert sum(calls) == 10 and len(calls) <= 3 and max(calls) == 8
    assert [int(r[0][0]) for r in rows] == list(range(10))


def test_batch_size_one_switches_batching_off():
    async def main():
        gate = Gate()
        b = MicroBatcher(gate, max_batch_size=1, max_wait_ms=50)
        await b.start()
        await asyncio.gather(*(b.submit([_img(i)]) for i in range(5)))
        await b.stop()
        return gate.calls

    assert asyncio.run(main()) == [1, 1, 1, 1, 1]


def test_waits_for_company_up_to_max_wait():
    async def main():
        gate = Gate()
        b = MicroBatcher(gate, max_batch_size=4, max_wait_ms=5000)
        await b.start()
        first = asyncio.create_task(b.submit([_img(1)]))
        await asyncio.sleep(0.05)
        assert gate.calls == []  # still waiting for more images
        await b.submit([_img(2), _img(3), _img(4)])  # fills the batch: runs at once
        await first
        await b.stop()
        return gate.calls

    assert asyncio.run(main()) == [4]


def test_full_queue_refuses_at_once_and_queues_nothing():
    async def main():
        gate = Gate(hold=True)
        b = MicroBatcher(gate, max_batch_size=1, max_wait_ms=0, queue_size=2)
        await b.start()
        running = asyncio.create_task(b.submit([_img(0)]))
        await _until(lambda: gate.calls)
        waiting = asyncio.create_task(b.submit([_img(1), _img(2)]))
        await _until(lambda: b.depth == 2)
        with pytest.raises(QueueFull):
            await b.submit([_img(3)])
        assert b.depth == 2
        gate.open.set()
        await asyncio.gather(running, waiting)
        await b.stop()
        return gate.calls

    assert asyncio.run(main()) == [1, 1, 1]


def test_stop_drains_queued_work_then_refuses_new_work():
    async def main():
        gate = Gate(hold=True)
        b = MicroBatcher(gate, max_batch_size=2, max_wait_ms=0)
        await b.start()
        tasks = [asyncio.create_task(b.submit([_img(i)])) for i in range(5)]
        await _until(lambda: gate.calls)
        stopping = asyncio.create_task(b.stop())
        await asyncio.sleep(0.01)
        with pytest.raises(NotRunning):
            await b.submit([_img(9)])
        gate.open.set()
        await stopping
        return await asyncio.gather(*tasks)

    rows = asyncio.run(main())
    assert [int(r[0][0]) for r in rows] == [0, 1, 2, 3, 4]


def test_abandoned_requests_are_dropped_before_the_model_call():
    async def main():
        gate = Gate(hold=True)
        b = MicroBatcher(gate, max_batch_size=8, max_wait_ms=0)
        await b.start()
        first = asyncio.create_task(b.submit([_img(0)]))
        await _until(lambda: gate.calls)
        given_up = asyncio.create_task(b.submit([_img(1), _img(2)]))
        kept = asyncio.create_task(b.submit([_img(3)]))
        await _until(lambda: b.depth == 3)
        given_up.cancel()
        await asyncio.sleep(0.01)
        gate.open.set()
        await asyncio.gather(first, kept)
        await b.stop()
        return gate.calls

    assert asyncio.run(main()) == [1, 1]


def test_a_model_error_fails_its_batch_but_not_the_worker():
    state = {"fail": True}

    def flaky(batch: np.ndarray) -> np.ndarray:
        if state.pop("fail", False):
            raise RuntimeError("boom")
        return np.ones((len(batch), 2), np.float32)

    async def main():
        b = MicroBatcher(flaky, max_batch_size=4, max_wait_ms=0)
        await b.start()
        with pytest.raises(RuntimeError, match="boom"):
            await b.submit([_img(0)])
        rows = await b.submit([_img(1)])
        await b.stop()
        return rows

    assert asyncio.run(main())[0].tolist() == [1.0, 1.0]


# ---- through the app -------------------------------------------------------------------


def _post(client, value: int = 200):
    return client.post(PREDICT, files={"file": (f"{value}.png", png_bytes(value), "image/png")})


def _metric(text: str, name: str) -> float:
    match = re.search(rf'^{re.escape(name)}{{model="bright"}} ([0-9.e+]+)$', text, re.M)
    assert match, name
    return float(match.group(1))


def test_concurrent_http_requests_are_micro_batched(make_client):
    predictor = make_predictor(RecordingClassifier, gated=True)
    model = predictor.model
    client = make_client({"bright": predictor}, max_batch_size=16, max_wait_ms=0)
    batcher = client.app.state.service.models["bright"].batcher
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(_post, client, v) for v in range(0, 240, 20)]
        assert model.entered.wait(10)
        deadline = time.monotonic() + 10
        while batcher.depth < 12 - sum(model.calls) and time.monotonic() < deadline:
            time.sleep(0.005)
        model.release.set()
        answers = [f.result() for f in futures]
    assert all(a.status_code == 200 for a in answers)
    assert [a.json()["predictions"][0]["filename"] for a in answers] == [f"{v}.png" for v in range(0, 240, 20)]
    assert sum(model.calls) == 12 and len(model.calls) < 12
    text = client.get("/metrics").text
    assert _metric(text, "imgrec_batch_size_sum") == 12
    assert _metric(text, "imgrec_batch_size_count") == len(model.calls)


def test_full_queue_answers_503_overloaded_with_retry_after_while_the_model_is_busy(make_client):
    predictor = make_predictor(RecordingClassifier, gated=True)
    model = predictor.model
    client = make_client({"bright": predictor}, max_batch_size=1, max_wait_ms=0, queue_size=2, retry_after_s=3)
    with ThreadPoolExecutor(2) as pool:
        busy = [pool.submit(_post, client) for _ in range(2)]
        service = client.app.state.service
        deadline = time.monotonic() + 10
        while service.models["bright"].admitted < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        refused = _post(client)  # answered while the model is still blocked: no waiting
        assert not model.release.is_set()
        model.release.set()
        assert all(f.result().status_code == 200 for f in busy)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "3"
    assert refused.json()["error"]["code"] == "overloaded"
    assert _post(client).status_code == 200  # capacity is back


def test_request_deadline_gives_503_deadline_exceeded(make_client):
    predictor = make_predictor(RecordingClassifier, gated=True)
    client = make_client({"bright": predictor}, request_timeout_s=0.2, max_wait_ms=0)
    r = _post(client)
    predictor.model.release.set()
    assert r.status_code == 503 and r.json()["error"]["code"] == "deadline_exceeded"
    assert "retry-after" in r.headers
    assert _post(client).status_code == 200


class StalledUpload:
    """ASGI ``receive``/``send`` of a client that sends one chunk of its body, then stalls."""

    def __init__(self) -> None:
        self.scope = {
            "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "path": PREDICT,
            "raw_path": PREDICT.encode(), "query_string": b"", "root_path": "", "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000), "headers": [(b"content-type", b"multipart/form-data; boundary=b")],
        }  # fmt: skip
        self.body_sent, self.disconnect = threading.Event(), threading.Event()
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if not self.body_sent.is_set():
            self.body_sent.set()
            return {"type": "http.request", "body": b"--b\r\n", "more_body": True}
        while not self.disconnect.is_set():
            await asyncio.sleep(0.005)
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def start(self, client):  # type: ignore[no-untyped-def]
        """Run the request on the app's event loop; returns a concurrent future."""
        return client.portal.start_task_soon(client.app, self.scope, self.receive, self.send)


def test_a_request_holds_its_slot_while_its_body_streams_in_so_the_next_gets_a_fast_503(make_client):
    client = make_client(queue_size=1)
    served = client.app.state.service.models["bright"]
    upload = StalledUpload()
    slow = upload.start(client)
    deadline = time.monotonic() + 10
    while (served.admitted < 1 or not upload.body_sent.is_set()) and time.monotonic() < deadline:
        time.sleep(0.005)  # admission comes before the first body chunk is read
    assert served.admitted == 1 and upload.body_sent.is_set()
    refused = _post(client)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "overloaded"
    upload.disconnect.set()
    slow.result(timeout=10)
    assert served.admitted == 0  # the slot comes back when the upload is abandoned
    assert _post(client).status_code == 200


def test_a_body_that_does_not_arrive_within_the_deadline_gets_408_and_frees_its_slot(make_client):
    client = make_client(queue_size=1, request_timeout_s=0.3)
    upload = StalledUpload()
    upload.start(client).result(timeout=10)  # ends on its own: the deadline, not the client, ends it
    start = next(m for m in upload.sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in upload.sent if m["type"] == "http.response.body")
    assert start["status"] == 408 and b'"request_timeout"' in body
    assert client.app.state.service.models["bright"].admitted == 0
    assert _post(client).status_code == 200


def test_micro_batches_follow_the_model_batch_size_unless_configured() -> None:
    from tests.conftest import BrightnessClassifier

    from imgrec.inference import Predictor
    from imgrec.serve.config import ServeConfig
    from imgrec.serve.metrics import ServeMetrics
    from imgrec.serve.service import Service
    from imgrec.transforms.preprocess import Preprocessing

    model = BrightnessClassifier("b", ["dark", "light"], Preprocessing(size=8))
    predictors = {"b": Predictor(model, batch_size=3)}
    assert Service(predictors, ServeConfig(), ServeMetrics()).models["b"].batcher.max_batch_size == 3
    assert Service(predictors, ServeConfig(max_batch_size=5), ServeMetrics()).models["b"].batcher.max_batch_size == 5

"""HTTP overhead of `imgrec serve`: p50 end-to-end latency minus p50 in-process model time.

One client sends single-image requests one after another (no concurrency, batching off), so
the difference between the client's latency and the same work done in-process
(decode + prepare + predict through ``Predictor``) is what HTTP, FastAPI, multipart parsing
and the batcher hand-off cost. In-process and HTTP blocks alternate against one running
server, both with the same model threads. Target: <= 5 ms.

Usage:
    .venv/bin/python benchmarks/serve_overhead.py [--model cnn-small --size 64 --requests 100 --rounds 4]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_machine
from serve_load import load_images, server, untrained_run


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def in_process(predictor, images: list[tuple[str, bytes]], n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(n):
        data = images[i % len(images)][1]
        start = time.perf_counter()
        predictor.predict_one(data, top_k=3)
        out.append(time.perf_counter() - start)
    return out


class StdlibClient:
    """A keep-alive ``http.client`` connection sending multipart uploads (little client-side cost)."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def post(self, url: str, name: str, data: bytes) -> tuple[int, str]:
        boundary = "imgrec-bench-boundary"
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: image/jpeg\r\n\r\n").encode()
        body = head + data + f"\r\n--{boundary}--\r\n".encode()
        self.conn.request("POST", url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        resp = self.conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("server-timing", "")

    def close(self) -> None:
        self.conn.close()


class HttpxClient:
    """The same requests through ``httpx.Client`` (more client-side work per request)."""

    def __init__(self, base: str) -> None:
        import httpx

        self.client, self.base = httpx.Client(timeout=30), base.rstrip("/")

    def post(self, url: str, name: str, data: bytes) -> tuple[int, str]:
        resp = self.client.post(self.base + url, files={"file": (name, data, "image/jpeg")})
        return resp.status_code, resp.headers.get("server-timing", "")

    def close(self) -> None:
        self.client.close()


def over_http(client, url: str, images: list[tuple[str, bytes]], n: int) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    """Client latencies and the in-app time the server reports (Server-Timing), in seconds."""
    out, app = [], []
    for i in range(n):
        name, data = images[i % len(images)]
        start = time.perf_counter()
        status, timing = client.post(url, name, data)
        out.append(time.perf_counter() - start)
        if status != 200:
            raise SystemExit(f"the server answered {status}")
        app.append(float(timing.split("dur=")[1]) / 1000.0)
    return out, app


def main() -> int:
    from imgrec.inference import Predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn-small")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--requests", type=int, default=100, help="requests per block")
    parser.add_argument("--rounds", type=int, default=4, help="alternating in-process / HTTP blocks")
    parser.add_argument("--threads", type=int, default=1, help="model threads, in-process and in the server")
    parser.add_argument("--images", help="folder of images (default: hymenoptera val photos)")
    parser.add_argument("--client", choices=("stdlib", "httpx"), default="stdlib", help="HTTP client library")
    args = parser.parse_args()
    print_machine()
    images = load_images(args.images, limit=32)
    with tempfile.TemporaryDirectory() as tmp:
        run = untrained_run(Path(tmp), args.model, args.size)
        predictor = Predictor.from_run(run, backend="torch", threads=args.threads)
        flags = ("--max-batch-size", "1", "--threads", str(args.threads))
        with server(run, *flags) as (base, _pid), contextlib.closing(CLIENTS[args.client](base)) as client:
            url = f"/v1/models/{run.name}/predict?top_k=3"
            in_process(predictor, images, 10), over_http(client, url, images, 10)  # warm-up
            local, remote, in_app = [], [], []
            for r in range(args.rounds):
                loc = in_process(predictor, images, args.requests)
                rem, app = over_http(client, url, images, args.requests)
                local, remote, in_app = local + loc, remote + rem, in_app + app
                print(f"round {r + 1}: in-process p50 {p50_ms(loc):.2f} ms, HTTP p50 {p50_ms(rem):.2f} ms, "
                      f"overhead {p50_ms(rem) - p50_ms(loc):.2f} ms")
    print(f"client: {args.client}")
    print(f"all rounds: in-process p50 {p50_ms(local):.2f} ms   over HTTP p50 {p50_ms(remote):.2f} ms")
    print(f"in-app p50 (Server-Timing) {p50_ms(in_app):.2f} ms")
    print(f"HTTP overhead (p50 end-to-end - p50 in-process): {p50_ms(remote) - p50_ms(local):.2f} ms  (target <= 5 ms)")
    print(f"transport share (p50 end-to-end - p50 in-app):    {p50_ms(remote) - p50_ms(in_app):.2f} ms")
    return 0


CLIENTS = {"stdlib": StdlibClient, "httpx": HttpxClient}

if __name__ == "__main__":
    raise SystemExit(main())

"""HTTP overhead of `imgrec serve`: p50 end-to-end latency minus p50 in-process model time.

One client sends single-image requests one after another (no concurrency, batching off), so
the difference between the client's latency and the same work done in-process
(decode + prepare + predict through ``Predictor``) is what HTTP, FastAPI, multipart parsing
and the batcher hand-off cost. Target: <= 5 ms.

Usage:
    .venv/bin/python benchmarks/serve_overhead.py [--model cnn-small --size 64 --requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_machine
from serve_load import load_images, server, untrained_run


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def in_process(run: Path, images: list[tuple[str, bytes]], n: int) -> list[float]:
    from imgrec.inference import Predictor

    predictor = Predictor.from_run(run, backend="torch")
    out = []
    for i in range(n):
        data = images[i % len(images)][1]
        start = time.perf_counter()
        predictor.predict_one(data, top_k=3)
        out.append(time.perf_counter() - start)
    return out


def over_http(run: Path, images: list[tuple[str, bytes]], n: int) -> tuple[list[float], list[float]]:
    """Client latencies and the in-app time the server reports (Server-Timing), in seconds."""
    import httpx

    out, app = [], []
    with server(run, "--max-batch-size", "1") as (base, _pid), httpx.Client(timeout=30) as client:
        url = f"{base}v1/models/{run.name}/predict?top_k=3"
        for i in range(n):
            name, data = images[i % len(images)]
            start = time.perf_counter()
            resp = client.post(url, files={"file": (name, data, "image/jpeg")})
            out.append(time.perf_counter() - start)
            resp.raise_for_status()
            app.append(float(resp.headers["server-timing"].split("dur=")[1]) / 1000.0)
    return out, app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn-small")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--images", help="folder of images (default: hymenoptera val photos)")
    args = parser.parse_args()
    print_machine()
    images = load_images(args.images, limit=32)
    with tempfile.TemporaryDirectory() as tmp:
        run = untrained_run(Path(tmp), args.model, args.size)
        in_process(run, images, 10)  # warm-up
        local = in_process(run, images, args.requests)
        remote, in_app = over_http(run, images, args.requests)
    print(f"in-process p50 {p50_ms(local):.2f} ms   over HTTP p50 {p50_ms(remote):.2f} ms")
    print(f"in-app p50 (Server-Timing) {p50_ms(in_app):.2f} ms")
    print(f"HTTP overhead (p50 end-to-end - p50 in-process): {p50_ms(remote) - p50_ms(local):.2f} ms  (target <= 5 ms)")
    print(f"transport share (p50 end-to-end - p50 in-app):    {p50_ms(remote) - p50_ms(in_app):.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

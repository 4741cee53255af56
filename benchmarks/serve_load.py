"""Load test of `imgrec serve`: throughput and latency with micro-batching on and off, then overload.

Starts the real server on loopback in a child process, drives it with a bounded number of
concurrent httpx clients for a bounded time, and prints requests/s, p50/p95/p99 latency and
errors by code. The overload phase offers ~3x the measured capacity (open loop) to a server
with a small queue and reports how fast the 503s come back (to the load generator and to a
separate curl probe), the time spent inside the app (Server-Timing) and the server's RSS.

Usage:
    .venv/bin/python benchmarks/serve_load.py                      # an untrained resnet18 at 96 px
    .venv/bin/python benchmarks/serve_load.py --run runs/resnet18-1 --images photos/ --duration 10

Note: clients and server share this machine's cores; figures are for loopback on this box.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, print_machine

SERVE = (
    "import argparse, sys\n"
    "from imgrec.cli import serve_cmd\n"
    "parser = argparse.ArgumentParser(prog='imgrec')\n"
    "serve_cmd.register(parser.add_subparsers())\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.func(args))\n"
)


EXTRA_FLAGS: list[str] = []  # flags every server gets (--threads)


@dataclass
class Stats:
    """What one load phase measured."""

    seconds: float = 0.0
    send_seconds: float = 0.0  # open loop: how long sending took (shows whether the client kept up)
    latencies: dict[int, list[float]] = field(default_factory=dict)  # status -> seconds
    server: dict[int, list[float]] = field(default_factory=dict)  # status -> seconds inside the app
    codes: Counter[str] = field(default_factory=Counter)

    def add(self, status: int, seconds: float, code: str, server_ms: float | None = None) -> None:
        self.latencies.setdefault(status, []).append(seconds)
        if server_ms is not None:
            self.server.setdefault(status, []).append(server_ms / 1000)
        self.codes[code] += 1

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def ok_rps(self) -> float:
        return len(self.latencies.get(200, [])) / max(self.seconds, 1e-9)


def percentiles_ms(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000, [50, 95, 99])
    return f"p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms"


# ---- server ------------------------------------------------------------------------------


@contextmanager
def server(run: Path, *flags: str) -> Iterator[tuple[str, int]]:
    """Start `imgrec serve` on a free loopback port; yields (base URL, pid); SIGTERM at the end."""
    cmd = [sys.executable, "-c", SERVE, "serve", str(run), "--port", "0", *EXTRA_FLAGS, *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = _read_url(proc)
        _wait_ready(base)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_url(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    found: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if m := re.search(r"at (http://[^ ]+/)", line):
                found.append(m.group(1))
                return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    if not found:
        proc.kill()
        raise SystemExit("the server did not start (no URL printed)")
    return found[0]


def _wait_ready(base: str, timeout: float = 120) -> None:
    import httpx

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(base + "readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server never became ready")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def rss_samples(pid: int, every_s: float = 0.5) -> Iterator[list[float]]:
    """The server's RSS (MB) every ``every_s`` seconds while the block runs."""
    samples: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            samples.append(rss_mb(pid))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


# ---- clients -----------------------------------------------------------------------------


async def _one(client, url: str, image: tuple[str, bytes], stats: Stats) -> None:
    import httpx

    start = time.perf_counter()
    try:
        r = await client.post(url, content=image[1], headers={"Content-Type": "application/octet-stream"})
        code = "ok" if r.status_code == 200 else r.json().get("error", {}).get("code", str(r.status_code))
        timing = re.search(r"dur=([0-9.]+)", r.headers.get("server-timing", ""))
        stats.add(r.status_code, time.perf_counter() - start, code, float(timing.group(1)) if timing else None)
    except httpx.HTTPError as exc:
        stats.add(0, time.perf_counter() - start, type(exc).__name__)


async def closed_loop(url: str, images: list[tuple[str, bytes]], clients: int, seconds: float, cap: int) -> Stats:
    """``clients`` workers each send one request after another until time or ``cap`` runs out."""
    import httpx

    stats, sent = Stats(), [0]
    end = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker(k: int) -> None:
            while time.perf_counter() < end and sent[0] < cap:
                sent[0] += 1
                await _one(client, url, images[(k + sent[0]) % len(images)], stats)

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        stats.seconds = time.perf_counter() - start
    return stats


async def open_loop(url: str, images: list[tuple[str, bytes]], rate: float, seconds: float, cap: int) -> Stats:
    """Offer ``rate`` requests/s regardless of answers (how overload really arrives)."""
    import httpx

    stats = Stats()
    total = min(cap, int(rate * seconds))
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(client, url, images[i % len(images)], stats)))
        stats.send_seconds = time.perf_counter() - start
        await asyncio.gather(*tasks)
        stats.seconds = time.perf_counter() - start
    return stats


# ---- inputs ------------------------------------------------------------------------------


def load_images(folder: str | None, limit: int = 64) -> list[tuple[str, bytes]]:
    """Encoded image files to send: --images, else real photos from ../shared/data, else shapes."""
    roots = [Path(folder)] if folder else [SHARED_DATA / "hymenoptera" / "val"]
    for root in roots:
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
        if files:
            print(f"images: {len(files)} files from {root}")
            return [(p.name, p.read_bytes()) for p in files]
    import io

    from PIL import Image

    print("images: 32 generated 96x96 PNGs (no image folder found)")
    rng = np.random.default_rng(0)
    out = []
    for i in range(32):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(buf, "PNG")
        out.append((f"{i}.png", buf.getvalue()))
    return out


def untrained_run(tmp: Path, model: str, size: int) -> Path:
    """A run with freshly initialised weights: serving speed does not depend on accuracy."""
    from imgrec.models import create_model, save_model

    print(f"building an untrained {model} run at {size} px ...")
    run = tmp / f"{model}-1"
    save_model(create_model(model, ["a", "b", "c", "d", "e"], image_size=size), run)
    return run


# ---- phases ------------------------------------------------------------------------------


def report(title: str, stats: Stats) -> None:
    ok = stats.latencies.get(200, [])
    print(f"\n{title}")
    print(f"  requests {stats.count} in {stats.seconds:.1f} s -> {stats.ok_rps():.1f} ok req/s")
    print(f"  latency (200)  {percentiles_ms(ok)}  (client-side)")
    print(f"  in-app  (200)  {percentiles_ms(stats.server.get(200, []))}  (Server-Timing)")
    print(f"  outcomes       {dict(stats.codes)}")


def batch_sizes(base: str) -> str:
    import httpx

    text = httpx.get(base + "metrics").text
    s = re.search(r"^imgrec_batch_size_sum\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    c = re.search(r"^imgrec_batch_size_count\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    if not (s and c and float(c.group(1))):
        return "-"
    return f"{float(s.group(1)) / float(c.group(1)):.2f} images per model call over {float(c.group(1)):.0f} calls"


def throughput_phases(run: Path, images, args) -> float:
    """Batching on, then off; returns the best ok req/s (the capacity estimate)."""
    best = 0.0
    modes = (("batching ON (max 16, wait 5 ms)", "16", "5"), ("batching OFF (max_batch_size=1)", "1", "0"))
    for title, size, wait in modes:
        with server(run, "--max-batch-size", size, "--max-wait-ms", wait, "--queue-size", "1024") as (base, _):
            url = base + f"v1/models/{run.name}/predict"
            asyncio.run(closed_loop(url, images, 4, 2.0, 50))  # warm-up
            stats = asyncio.run(closed_loop(url, images, args.concurrency, args.duration, args.max_requests))
            report(f"{title}: {args.concurrency} concurrent clients", stats)
            print(f"  batches        {batch_sizes(base)} (includes warm-up)")
            best = max(best, stats.ok_rps())
    return best


@contextmanager
def curl_probe(url: str, image: bytes, every_s: float = 0.25) -> Iterator[Stats]:
    """A separate light client (curl, its own process) timing one request every ``every_s``.

    The async load generator shares this machine's cores and queues on its own side, so its
    latencies overstate the server's; the probe shows what an ordinary client sees meanwhile.
    """
    stats, stop = Stats(), threading.Event()
    with tempfile.NamedTemporaryFile(suffix=".img") as tmp:
        tmp.write(image)
        tmp.flush()
        cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "--max-time", "60"]
        cmd += ["-H", "Content-Type: application/octet-stream", "--data-binary", f"@{tmp.name}", url]

        def loop() -> None:
            while not stop.wait(every_s):
                status, secs = subprocess.run(cmd, capture_output=True, text=True).stdout.split()
                stats.add(int(status), float(secs), status)

        thread = threading.Thread(target=loop, daemon=True)
        if shutil.which("curl"):
            thread.start()
        try:
            yield stats
        finally:
            stop.set()
            if thread.is_alive():
                thread.join(70)


def overload_phase(run: Path, images, capacity: float, args) -> None:
    rate = max(3.0 * capacity, 1.0)
    with server(run, "--max-batch-size", "16", "--max-wait-ms", "5", "--queue-size", "32") as (base, pid):
        url = base + f"v1/models/{run.name}/predict"
        asyncio.run(closed_loop(url, images, 4, 2.0, 50))
        before = rss_mb(pid)
        with curl_probe(url, images[0][1]) as probe, rss_samples(pid) as rss:
            stats = asyncio.run(open_loop(url, images, rate, args.duration, args.max_requests * 3))
        after = rss_mb(pid)
        half = max(1, len(rss) // 2)
        report(f"OVERLOAD: open loop at {rate:.0f} req/s (~3x capacity), queue_size 32", stats)
        print(f"  offered        {stats.count / max(stats.send_seconds, 1e-9):.0f} req/s actually sent")
        print(f"  503 latency    {percentiles_ms(stats.latencies.get(503, []))}  (client-side)")
        print(f"  503 in-app     {percentiles_ms(stats.server.get(503, []))}  (Server-Timing)")
        first, second = max(rss[:half], default=before), max(rss[half:], default=after)
        print(
            f"  server RSS     {before:.0f} MB before -> {after:.0f} MB after; peak {first:.0f} MB in the first "
            f"half of the phase, {second:.0f} MB in the second ({len(rss)} samples)"
        )
        print(f"  curl probe     {dict(probe.codes)} (status: count), one request every 0.25 s meanwhile")
        print(f"  probe 503      {percentiles_ms(probe.latencies.get(503, []))}")
        print(f"  probe 200      {percentiles_ms(probe.latencies.get(200, []))}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--run", help="run directory to serve (default: an untrained --model run)")
    p.add_argument("--model", default="resnet18", help="model for the default run")
    p.add_argument("--image-size", type=int, default=96, help="input size for the default run")
    p.add_argument("--images", help="folder of images to send (default: ../shared/data/hymenoptera/val)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per phase")
    p.add_argument("--max-requests", type=int, default=2000, help="cap on requests per closed-loop phase")
    p.add_argument("--threads", type=int, help="the server's --threads (model math threads; default: its own)")
    args = p.parse_args(argv)
    if args.threads:
        EXTRA_FLAGS[:] = ["--threads", str(args.threads)]
        print(f"server model threads: {args.threads}")
    print("machine:")
    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else untrained_run(Path(tmp), args.model, args.image_size)
        print(f"model: {run.name}")
        images = load_images(args.images)
        capacity = throughput_phases(run, images, args)
        overload_phase(run, images, capacity, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

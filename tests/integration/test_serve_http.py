"""`imgrec serve` for real: a uvicorn server in a child process on loopback, spoken to with httpx."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.conftest import make_image_folder
from tests.unit.serve.helpers import png_bytes, truncated_jpeg

from imgrec.config import TrainConfig

# Runs the `serve` subcommand exactly as `imgrec serve ...` does (parser + cmd_serve).
SERVE = (
    "import argparse, sys\n"
    "from imgrec.cli import serve_cmd\n"
    "parser = argparse.ArgumentParser(prog='imgrec')\n"
    "serve_cmd.register(parser.add_subparsers())\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.func(args))\n"
)
URL = re.compile(r"at (http://127\.0\.0\.1:\d+/)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A real hog-svm run trained on a tiny shapes folder (seconds)."""
    from imgrec.training import train

    root = tmp_path_factory.mktemp("serve") / "shapes"
    make_image_folder(root, per_class=10, seed=4)
    return train(root, TrainConfig(model="hog-svm"), out=root.parent / "runs" / "hog-svm-1").path


@contextmanager
def serve(*args: str, startup_s: float = 60) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start the server on a free loopback port; yields (base URL, process); stops it with SIGTERM."""
    cmd = [sys.executable, "-c", SERVE, "serve", *args, "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = _read_url(proc, startup_s)
        _wait_ready(base, startup_s)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _read_url(proc: subprocess.Popen[str], timeout: float) -> str:
    found: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = URL.search(line)
            if match:
                found.append(match.group(1))
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    if not found:
        proc.kill()
        raise AssertionError(f"server did not print its URL; stderr:\n{proc.stderr.read() if proc.stderr else ''}")
    return found[0]


def _wait_ready(base: str, timeout: float) -> None:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(base + "readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("server never became ready")


def _predict(base: str, model: str, files: list, **kwargs) -> httpx.Response:
    return httpx.post(f"{base}v1/models/{model}/predict", files=files, timeout=30, **kwargs)


def test_real_server_lists_predicts_batches_and_reports(run_dir):
    image = sorted((run_dir.parent.parent / "shapes" / "circle").glob("*.png"))[0]
    with serve(str(run_dir), "--max-wait-ms", "20") as (base, _):
        assert httpx.get(base + "healthz").json()["status"] == "ok"
        assert [m["name"] for m in httpx.get(base + "v1/models").json()["models"]] == ["hog-svm-1"]
        assert httpx.get(base).text.startswith("<!doctype html>")

        r = _predict(base, "hog-svm-1", [("files", (image.name, image.read_bytes(), "image/png"))], params={"top_k": 3})
        assert r.status_code == 200 and r.headers["x-request-id"] == r.json()["request_id"]
        pred = r.json()["predictions"][0]
        assert pred["label"] in {"circle", "square", "stripes"} and len(pred["top_k"]) == 3

        bad = _predict(base, "hog-svm-1", [("file", ("cut.jpg", truncated_jpeg(), "image/jpeg"))])
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "image_invalid"

        def one(i: int) -> httpx.Response:
            return _predict(base, "hog-svm-1", [("file", (f"{i}.png", png_bytes(15 * i), "image/png"))])

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(16)))
        assert [a.status_code for a in answers] == [200] * 16

        metrics = httpx.get(base + "metrics").text
        sizes = re.search(r'^imgrec_batch_size_sum\{model="hog-svm-1"\} ([0-9.]+)$', metrics, re.M)
        calls = re.search(r'^imgrec_batch_size_count\{model="hog-svm-1"\} ([0-9.]+)$', metrics, re.M)
        assert sizes and calls and float(sizes.group(1)) == 17 and float(calls.group(1)) <= 17


def test_sigterm_lets_the_request_in_flight_finish(run_dir, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# test key\nsecret-key-1\n", encoding="utf-8")
    auth = {"Authorization": "Bearer secret-key-1"}
    # a long batch wait keeps the request in flight for ~1.5 s, long enough to send SIGTERM meanwhile
    with serve(str(run_dir), "--max-wait-ms", "1500", "--api-key-file", str(keys)) as (base, proc):
        assert _predict(base, "hog-svm-1", [("file", ("a.png", png_bytes(), "image/png"))]).status_code == 401
        with ThreadPoolExecutor(1) as pool:
            files = [("file", ("a.png", png_bytes(), "image/png"))]
            pending = pool.submit(_predict, base, "hog-svm-1", files, headers=auth)
            _wait_for_queue(base, auth)
            proc.send_signal(signal.SIGTERM)
            answer = pending.result(timeout=30)
        assert answer.status_code == 200 and "label" in answer.json()["predictions"][0]
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.TransportError):
            httpx.get(base + "healthz", timeout=2)


def _wait_for_queue(base: str, auth: dict[str, str]) -> None:
    import time

    end = time.monotonic() + 20
    while time.monotonic() < end:
        text = httpx.get(base + "metrics", headers=auth, timeout=5).text
        if re.search(r'^imgrec_queue_depth\{model="hog-svm-1"\} 1\.0$', text, re.M):
            return
        time.sleep(0.02)
    raise AssertionError("the request never reached the batch queue")

"""A real HTTP server on 127.0.0.1 in a thread, with the answers the fetch tests need."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

STREAM_TOTAL = 50 * 1024 * 1024


def png_bytes(value: int = 230, size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (value,) * 3).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class ServerLog:
    hits: Counter = field(default_factory=Counter)
    streamed: int = 0
    stream_done: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    log: ServerLog

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.log.hits[self.path] += 1
        route = {
            "/img.png": lambda: self._send(200, png_bytes(), Content_Type="image/png"),
            "/page": lambda: self._send(200, b"<html>cat</html>", Content_Type="text/html; charset=utf-8"),
            "/loop": lambda: self._send(302, Location="/loop"),
            "/hop": lambda: self._send(301, Location="/img.png"),
            "/missing": lambda: self._send(404, b"no"),
            "/slow": self._slow,
            "/big-declared": self._big_declared,
            "/big-stream": self._big_stream,
        }.get(self.path, lambda: self._send(404))
        route()

    def _slow(self) -> None:
        time.sleep(3)
        self._send(200, png_bytes(), Content_Type="image/png")

    def _big_declared(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(STREAM_TOTAL))
        self.end_headers()
        self.wfile.write(png_bytes())

    def _big_stream(self) -> None:  # no Content-Length: the body runs until the server closes
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        chunk = b"\x89PNG\r\n\x1a\n" + bytes(64 * 1024 - 8)
        try:
            while self.log.streamed < STREAM_TOTAL:
                self.wfile.write(chunk)
                self.log.streamed += len(chunk)
        except OSError:
            pass
        finally:
            self.log.stream_done.set()


@contextmanager
def image_server() -> Iterator[tuple[str, ServerLog]]:
    """``(base_url, log)`` of a server answering the routes above until the block ends."""
    log = ServerLog()
    handler = type("Handler", (_Handler,), {"log": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()

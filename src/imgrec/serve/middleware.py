"""One pure ASGI middleware for every request: request id, body limit, metrics, the 500 boundary.

* ``X-Request-ID`` is echoed when the client sent a sane one, generated otherwise, stored in
  ``request.state.request_id`` and put on every response, with ``Server-Timing: app;dur=<ms>``
  (time spent in the app until the response started).
* The body limit is enforced while the body streams in: a ``Content-Length`` over the limit
  is refused before anything is read, and a chunked body is counted chunk by chunk, so a
  2 GB upload never sits in memory.
* Requests are counted by route template (not raw path: no label explosion) and status.
* An unexpected exception becomes a generic 500 in the error contract, logged with its
  traceback under the request id; the client never sees a traceback or a file path.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imgrec.serve.errors import INTERNAL_MESSAGE, error_response, payload_too_large
from imgrec.serve.metrics import ServeMetrics

log = logging.getLogger(__name__)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class BodyTooLarge(Exception):
    """Raised from ``receive`` when the streamed body passes the limit."""


def request_id_of(scope: Scope) -> str | None:
    state: dict[str, Any] = scope.get("state") or {}
    value = state.get("request_id")
    return str(value) if value else None


class ServeMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body: int, metrics: ServeMetrics) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status = {"code": 500, "started": False}
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.update(code=message["status"], started=True)
                timing = f"app;dur={(time.perf_counter() - start) * 1000:.1f}".encode()
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", rid.encode()),
                    (b"server-timing", timing),
                ]
            await send(message)

        try:
            await self._dispatch(scope, receive, send_with_id)
        except Exception:
            log.exception("Unhandled error in %s %s (request id %s)", scope["method"], scope["path"], rid)
            if status["started"]:
                raise
            await error_response(500, "internal_error", INTERNAL_MESSAGE, rid)(scope, receive, send_with_id)
            self.metrics.errors.labels(code="internal_error").inc()
        finally:
            self._observe(scope, int(status["code"]), time.perf_counter() - start)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            self.metrics.errors.labels(code="payload_too_large").inc()
            exc = payload_too_large(self.max_body)
            response = error_response(413, exc.code, exc.message, request_id_of(scope), {"Connection": "close"})
            await response(scope, receive, send)
            return
        await self.app(scope, _counting(receive, self.max_body), send)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        self.metrics.requests.labels(route=route, method=scope["method"], status=str(status)).inc()
        self.metrics.latency.labels(route=route).observe(seconds)


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(f"request body passed {limit} bytes")
        return message

    return wrapped


def _incoming_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if _SAFE_ID.match(text) else None
    return None


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

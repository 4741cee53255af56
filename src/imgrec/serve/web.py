"""The web page at ``/`` (plain HTML, CSS and JS shipped in the package; no CDN, no build step) and ``/docs``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from imgrec.serve.docs_page import HEADERS as DOCS_HEADERS
from imgrec.serve.docs_page import docs_page

STATIC_DIR = Path(__file__).resolve().parent / "static"
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@lru_cache(maxsize=2)
def _page(auth: bool) -> str:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return html.replace("{{AUTH}}", "true" if auth else "false")


def web_router(auth: bool) -> APIRouter:
    """``GET /``: the page, and ``GET /docs``: the API guide; they need no key, API calls do when ``auth`` is on."""
    router = APIRouter(tags=["web"])

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(_page(auth), headers=_SECURITY_HEADERS)

    @router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_page(request.app.openapi()), headers=DOCS_HEADERS)

    return router


def static_files() -> StaticFiles:
    """The page's CSS and JS, mounted at ``/static``."""
    return StaticFiles(directory=STATIC_DIR)

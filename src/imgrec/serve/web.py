"""The web page at ``/``: plain HTML, CSS and JS shipped in the package (no CDN, no build step)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

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
    """``GET /``: the page; it needs no key, its API calls do when ``auth`` is on."""
    router = APIRouter(tags=["web"])

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(_page(auth), headers=_SECURITY_HEADERS)

    return router


def static_files() -> StaticFiles:
    """The page's CSS and JS, mounted at ``/static``."""
    return StaticFiles(directory=STATIC_DIR)

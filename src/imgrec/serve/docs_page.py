"""``GET /docs``: the API explained on one self-contained page, built from the app's OpenAPI schema.

Swagger UI loads its scripts and styles from a CDN, which a self-hosted service must not call
out to. This page has no script and no external asset: a short guide, every route (method,
path, summary, parameters) read from ``app.openapi()`` at request time, and a link to
``/openapi.json`` for generated clients.
"""

from __future__ import annotations

from html import escape
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
code,pre{font:13px ui-monospace,monospace;background:#f3f4f7;border-radius:4px}
pre{padding:.75rem;overflow-x:auto}code{padding:0 .25rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #dde}
.m{font-weight:600;text-transform:uppercase;font-size:12px}
"""
GUIDE = """
<p>Send images to <code>POST /v1/models/{name}/predict</code> as multipart fields
<code>file</code> / <code>files</code>, or as the raw bytes of one image; the answer lists the
best classes of each image. <code>GET /v1/models</code> names the models served here.</p>
<pre>curl -s -F "files=@cat.jpg" -F "files=@dog.png" "$BASE/v1/models/NAME/predict?top_k=3"
curl -s --data-binary @cat.jpg -H "Content-Type: image/jpeg" "$BASE/v1/models/NAME/predict"</pre>
<p>The machine-readable description of every route, for clients and code generators, is
<a href="/openapi.json">/openapi.json</a>. The upload page is at <a href="/">/</a>.</p>
"""


def docs_page(schema: dict[str, Any]) -> str:
    """The HTML of ``/docs`` for an OpenAPI ``schema`` (as ``app.openapi()`` returns it)."""
    info = schema.get("info", {})
    title = escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
    rows = "\n".join(_row(path, method, op) for path, method, op in _operations(schema))
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title} · API</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n{GUIDE}\n<h2>Routes</h2>\n"
        f"<table><thead><tr><th>method</th><th>path</th><th>what it does</th></tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody></table>\n"
        f"<h2>About the API</h2>\n<pre>{escape(str(info.get('description', '')))}</pre>\n</body></html>\n"
    )


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    paths = schema.get("paths", {})
    return [(path, m, ops[m]) for path, ops in paths.items() for m in METHODS if m in ops]


def _row(path: str, method: str, op: dict[str, Any]) -> str:
    params = ", ".join(
        f"{p.get('name')} ({p.get('in')}): {p.get('description', '')}".rstrip(": ") for p in op.get("parameters", [])
    )
    extra = f"<br><small>{escape(params)}</small>" if params else ""
    summary = escape(op.get("summary") or op.get("description") or "")
    return f'<tr><td class="m">{method}</td><td><code>{escape(path)}</code></td><td>{summary}{extra}</td></tr>'

"""HTML building blocks for the self-contained run report: escaping, tables, the page shell.

Every value that reaches the page goes through :func:`esc` (class names and paths are user
data). Images are inlined as ``data:`` URIs and the CSS is inline: the page loads nothing.

Example:
    >>> table(["class"], [[esc("<b>")]])
    '<table><thead><tr><th>class</th></tr></thead><tbody><tr><td>&lt;b&gt;</td></tr></tbody></table>'
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any

CSS = """
:root { --fg: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #2e86c1;
        --bad: #c0392b; --badbg: #fdecea; --card: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto,
       "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: #fff; }
header { background: #102a43; color: #fff; padding: 20px 32px; }
header h1 { margin: 0; font-size: 22px; font-weight: 600; }
header p { margin: 4px 0 0; color: #bcccdc; font-size: 13px; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line);
      padding: 8px 32px; z-index: 1; font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 32px 48px; }
section { margin-top: 32px; }
h2 { font-size: 18px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; color: var(--muted); margin-bottom: 6px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: var(--card); border-radius: 8px; padding: 12px 16px; min-width: 150px; }
.card .v { font-size: 24px; font-weight: 600; }
.card .k { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--card); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.worst td { background: var(--badbg); }
tr.worst td:first-child { border-left: 3px solid var(--bad); }
.bar { display: inline-block; height: 9px; background: var(--accent); border-radius: 2px;
       vertical-align: middle; margin-right: 6px; }
tr.worst .bar { background: var(--bad); }
.note { color: var(--muted); font-size: 13px; }
.warn { background: #fff8e1; border-left: 3px solid #f0b429; padding: 8px 12px; }
.figs { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.figs img, section > img { max-width: 100%; height: auto; border: 1px solid var(--line);
                           border-radius: 4px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
              font-size: 12px; word-break: break-all; }
details summary { cursor: pointer; color: var(--accent); }
"""

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$css</style>
</head>
<body>
<header><h1>$title</h1><p>$subtitle</p></header>
<nav>$nav</nav>
<main>
$body
</main>
</body>
</html>
""")


def esc(value: Any) -> str:
    """HTML-escape anything (quotes included)."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int | None = 4) -> str:
    """A readable, escaped value: floats with ``digits`` decimals (None: 6 significant
    digits), None as a dash, containers as JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return esc(value)
    if isinstance(value, float):
        if digits is None or abs(value) >= 1e4:
            return esc(f"{value:.{digits or 6}g}")
        return esc(f"{value:.{digits}f}")
    if isinstance(value, (dict, list, tuple)):
        return f'<span class="mono">{esc(json.dumps(value, default=str))}</span>'
    return esc(value)


def pct(value: float | None) -> str:
    """``0.9321`` -> ``93.21%``."""
    return "—" if value is None else f"{100 * value:.2f}%"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
) -> str:
    """A table; ``headers`` are escaped here, cells must already be HTML (use :func:`esc`)."""
    cls = [' class="num"' if i in numeric else "" for i in range(len(headers))]
    head = "".join(f"<th{cls[i]}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        attr = f' class="{esc(row_classes[r])}"' if row_classes and row_classes[r] else ""
        cells = "".join(f"<td{cls[i] if i < len(cls) else ''}>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{attr}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def kv_table(data: Mapping[str, Any]) -> str:
    """Two columns: escaped key, formatted value."""
    if not data:
        return '<p class="note">Not recorded.</p>'
    return table(["key", "value"], [[esc(k), fmt(v, None)] for k, v in data.items()])


def cards(items: Sequence[tuple[str, str]]) -> str:
    """Big-number cards from ``(label, value)`` pairs (both escaped here)."""
    inner = "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div></div>'
        for k, v in items
    )
    return f'<div class="cards">{inner}</div>'


def png_img(data: bytes, alt: str, width: int | None = None) -> str:
    """An ``<img>`` with the PNG inlined as a base64 data URI."""
    size = f' width="{int(width)}"' if width else ""
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{esc(alt)}"{size}>'


def bar(value: float, width: int = 80) -> str:
    """An inline horizontal bar for a 0..1 value."""
    return f'<span class="bar" style="width:{max(0.0, min(1.0, value)) * width:.0f}px"></span>'


def section(anchor: str, title: str, body: str) -> str:
    """A titled section with an id for the navigation bar."""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document from ``(anchor, title, body_html)`` sections."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "\n".join(section(a, t, b) for a, t, b in sections)
    return PAGE.substitute(
        title=esc(title), subtitle=esc(subtitle), css=CSS, nav=nav, body=body
    )


NOTHING_MEASURED = '<p class="note">No validation or test images: nothing was measured.</p>'


def save_report(
    run_dir: str | Path, meta: Mapping[str, Any], results: Mapping[str, Any], sections: Sequence[tuple[str, str, str]],
    model_noun: str, report_noun: str,
) -> Path:  # fmt: skip
    """Write a task report's two files into ``run_dir``: ``metrics.json`` (each result's
    ``to_dict()`` by split) and ``report.html`` (``sections`` on one page, titled "<model> —
    <report_noun> report"); returns the report's path."""
    from imgrec.files import write_bytes_atomic, write_json_atomic

    run = Path(run_dir)
    write_json_atomic(run / "metrics.json", {name: r.to_dict() for name, r in results.items()})
    title = f"{meta.get('model', model_noun)} — {report_noun} report"
    html_text = page(title, f"{run.name} · {meta.get('data', {}).get('name', '')}", sections)
    path = run / "report.html"
    write_bytes_atomic(path, html_text.encode("utf-8"))
    return path

"""The report page: blocks of headings, paragraphs, lists, figures and tables, rendered as
`report.md` and as `report.html` (figures embedded)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from study.reporting.tables import markdown_table


HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}
img {{ max-width: 100%; }} code {{ background: #f3f3f3; padding: 0 .2em; }}
table {{ border-collapse: collapse; font-size: .82em; margin: 1em 0; display: block; overflow-x: auto; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .2em .4em; text-align: right; }}
th {{ white-space: normal; overflow-wrap: anywhere; vertical-align: bottom; }} td {{ white-space: nowrap; }}
th {{ border-bottom: 2px solid #999; }}
</style></head><body>
{body}
</body></html>
"""


def render_markdown(blocks: list[tuple]) -> str:
    parts = []
    for kind, *payload in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + payload[0])
        elif kind == "p":
            parts.append(payload[0])
        elif kind == "ul":
            parts.append("\n".join(f"- {item}" for item in payload[0]))
        elif kind == "img":
            parts.append(f"![{payload[1]}]({payload[0]})")
        elif kind == "table":
            parts.append(markdown_table(payload[0]))
    return "\n\n".join(parts) + "\n"


def render_html(blocks: list[tuple], folder: Path | None = None) -> str:
    """The page as one HTML file; with `folder`, its figures embedded (data: URLs), so the page shows
    them wherever it is opened: a browser, MLflow's artifact viewer, an e-mail attachment."""
    body = []
    for kind, *payload in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline_html(payload[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(payload[0])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline_html(item)}</li>" for item in payload[0]) + "</ul>")
        elif kind == "img":
            body.append(f'<figure><img src="{_embedded(folder, payload[0])}" alt="{html.escape(payload[1])}"></figure>')
        elif kind == "table":
            body.append(payload[0].to_html(index=False, border=0, escape=True))
    title = next(payload[0] for kind, *payload in blocks if kind == "h1")
    return HTML_PAGE.format(title=html.escape(title), body="\n".join(body))


def _embedded(folder: Path | None, link: str) -> str:
    path = folder / link if folder is not None else None
    if path is None or not path.is_file():
        return html.escape(link)
    kind = {"svg": "svg+xml", "jpg": "jpeg"}.get(path.suffix.lstrip("."), path.suffix.lstrip("."))
    return f"data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _inline_html(text: str) -> str:
    """The little Markdown the report's own text uses: `code`, **bold** and [links](href)."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)

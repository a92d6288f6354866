"""The compare report rendered: ``report.md`` (figures linked beside it) and a self-contained ``report.html``.

Both come from one list of blocks (:mod:`segdil.compare.report_blocks`), so they always say the same
thing; the HTML embeds every PNG as base64 and needs no other file.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

from segdil.atomic import write_text
from segdil.compare.report_blocks import Block, Bullets, Code, Figure, Heading, Para, Table


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _alignment(table: Table) -> str:
    return table.align or "l" + "r" * (len(table.headers) - 1)


def render_markdown(blocks: list[Block], base: Path) -> str:
    """Markdown with figures linked relative to ``base`` (the report's folder)."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Para):
            out.append(block.text)
        elif isinstance(block, Table):
            align = _alignment(block)
            out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            out.append("|" + "|".join(" ---: " if a == "r" else " --- " for a in align) + "|")
            out.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows)
        elif isinstance(block, Figure):
            rel = os.path.relpath(block.path, base).replace(os.sep, "/")
            out.append(f"![{block.caption}]({rel})\n\n*{block.caption}*")
        elif isinstance(block, Code):
            out.append("```\n" + block.text + "\n```")
        elif isinstance(block, Bullets):
            out.extend(f"- {item}" for item in block.items)
        out.append("")
    return "\n".join(out)


def _inline_html(text: str) -> str:
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(f"<code>{html.escape(p[1:-1])}</code>" if p.startswith("`") and p.endswith("`") and len(p) > 1 else _bold_html(p) for p in parts)


def _bold_html(text: str) -> str:
    pieces = text.split("**")
    if len(pieces) % 2 == 0:  # an unpaired ** stays as it is
        return html.escape(text)
    return "".join(f"<strong>{html.escape(p)}</strong>" if i % 2 else html.escape(p) for i, p in enumerate(pieces))


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
th { background: #f3f3f3; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""


def render_html(blocks: list[Block], title: str) -> str:
    """One self-contained HTML page: every figure embedded as a base64 PNG."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            out.append(f"<p>{_inline_html(block.text)}</p>")
        elif isinstance(block, Table):
            align = _alignment(block)
            out.append("<table><thead><tr>" + "".join(f'<th class="{a}">{html.escape(h)}</th>' for h, a in zip(block.headers, align)) + "</tr></thead><tbody>")
            out.extend("<tr>" + "".join(f'<td class="{a}">{_inline_html(c)}</td>' for c, a in zip(row, align)) + "</tr>" for row in block.rows)
            out.append("</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(Path(block.path).read_bytes()).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}"><figcaption>{_inline_html(block.caption)}</figcaption></figure>')
        elif isinstance(block, Code):
            out.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline_html(item)}</li>" for item in block.items) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_rendered(blocks: list[Block], out: Path) -> Path:
    """Write ``blocks`` as ``out/report.md`` and ``out/report.html``; returns the path of report.md."""
    out = Path(out)
    title = next((block.text for block in blocks if isinstance(block, Heading)), "segdil compare")
    write_text(out / "report.html", render_html(blocks, title))
    write_text(out / "report.md", render_markdown(blocks, out))
    return out / "report.md"

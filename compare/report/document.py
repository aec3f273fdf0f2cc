"""The report as a list of blocks, written once as Markdown and once as self-contained HTML.

Blocks: heading (with an optional anchor other blocks link to), paragraph, table, image (embedded
as a data: URI in HTML), preformatted text, list, and a box (a bordered aside; a quote in
Markdown). Inline, the text may use `code`, **bold** and [links](#anchor), nothing else.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass
class H:
    level: int
    text: str
    anchor: str = ""  # [text](#anchor) elsewhere links here


@dataclass
class P:
    text: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Img:
    path: Path
    caption: str


@dataclass
class Pre:
    text: str


@dataclass
class Ul:
    items: list[str]


@dataclass
class Box:
    """An aside: a bordered box in HTML, a quote in Markdown."""

    title: str
    items: list[str]


def image(path: Path | None, caption: str) -> list[Img]:
    """The plot as a block, or nothing when there was nothing to plot."""
    return [] if path is None else [Img(path, caption)]


Block = H | P | Table | Img | Pre | Ul | Box
LINK = re.compile(r"\[([^\]]+)\]\(#([\w-]+)\)")
FAILED = "FAILED:"  # a list or box item that starts so is a failed check: red in HTML, bold in Markdown


def _md_item(item: str) -> str:
    """A list item; a failed check in bold (in a list or a box alike)."""
    return f"- **{item}**" if item.startswith(FAILED) else f"- {item}"


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, H):
            if b.anchor:
                out.append(f'<a id="{b.anchor}"></a>\n')
            out.append(f"{'#' * b.level} {b.text}\n")
        elif isinstance(b, P):
            out.append(b.text + "\n")
        elif isinstance(b, Table):
            out.append("| " + " | ".join(b.headers) + " |")
            out.append("|" + "---|" * len(b.headers))
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in b.rows]
            out.append("")
        elif isinstance(b, Img):
            out.append(f"![{b.caption}]({b.path.name})\n\n*{b.caption}*\n")
        elif isinstance(b, Box):
            out += [f"> **{b.title}**", ">"] + [f"> {_md_item(item)}" for item in b.items] + [""]
        elif isinstance(b, Ul):
            out += [_md_item(item) for item in b.items] + [""]
        else:
            out.append("```\n" + b.text + "\n```\n")
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.9em;display:block;max-width:100%;overflow-x:auto}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2} tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;border:1px solid #ddd} figure{margin:1em 0} figcaption{font-size:0.85em;color:#555}
pre{background:#f6f6f6;padding:0.6em;overflow-x:auto;font-size:0.85em}
.unsafe{color:#b00;font-weight:bold} code{background:#f2f2f2;padding:0 3px}
.fail{color:#b00;font-weight:bold}
.box{border:1px solid #c9a227;background:#fffbea;padding:0.5em 1em;margin:1em 0}
.box ul{margin:0.3em 0}
"""


def _inline(text: str) -> str:
    """Escape, then turn `code` and **bold** into HTML (the only Markdown the report uses)."""
    parts = html.escape(text).split("`")
    for i in range(1, len(parts), 2):
        parts[i] = f"<code>{parts[i]}</code>"
    joined = "".join(parts)
    bold = joined.split("**")
    for i in range(1, len(bold), 2):
        bold[i] = f"<strong>{bold[i]}</strong>"
    return LINK.sub(r'<a href="#\2">\1</a>', "".join(bold))


def _li(item: str) -> str:
    css = ' class="fail"' if item.startswith(FAILED) else ""
    return f"<li{css}>{_inline(item)}</li>"


def to_html(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, H):
            anchor = f' id="{b.anchor}"' if b.anchor else ""
            body.append(f"<h{b.level}{anchor}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, P):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_inline(h)}</th>" for h in b.headers)
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Box):
            items = "".join(_li(item) for item in b.items)
            body.append(f'<aside class="box"><strong>{_inline(b.title)}</strong><ul>{items}</ul></aside>')
        elif isinstance(b, Ul):
            body.append("<ul>" + "".join(_li(item) for item in b.items) + "</ul>")
        elif isinstance(b, Img):
            data = base64.b64encode(b.path.read_bytes()).decode()
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b.caption)}">'
                f"<figcaption>{_inline(b.caption)}</figcaption></figure>"
            )
        else:
            body.append(f"<pre>{html.escape(b.text)}</pre>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )

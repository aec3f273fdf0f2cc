"""The document model: the same blocks as Markdown and as self-contained HTML."""

from __future__ import annotations

from compare.report.document import Box, H, P, Table, Ul, to_html, to_markdown

BLOCKS = [
    H(2, "Decision", "decision"),
    P("see [latency](#latency), `code` and **bold**"),
    Table(["a", "b|c"], [["1", "x|y"]]),
    Box("Caveats", ["dev server", "FAILED: noisy"]),
    Ul(["FAILED: a control came out clean", "fine"]),
    H(2, "Latency", "latency"),
]


def test_markdown_keeps_anchors_links_and_boxes() -> None:
    md = to_markdown(BLOCKS)
    assert '<a id="decision"></a>\n\n## Decision' in md
    assert "see [latency](#latency), `code` and **bold**" in md
    assert "| 1 | x\\|y |" in md
    assert "> **Caveats**" in md and "> - dev server" in md
    assert "> - **FAILED: noisy**" in md  # a failed check in a box is as loud as in a list
    assert "- **FAILED: a control came out clean**" in md


def test_html_links_to_anchors_and_escapes_the_rest() -> None:
    page = to_html([*BLOCKS, P("<script>x</script> [not a link](http://x)")], "t <t>")
    assert '<h2 id="decision">Decision</h2>' in page
    assert '<a href="#latency">latency</a>' in page and "<code>code</code>" in page
    assert '<aside class="box"><strong>Caveats</strong>' in page
    assert '<li class="fail">FAILED: a control came out clean</li>' in page
    assert '<ul><li>dev server</li><li class="fail">FAILED: noisy</li></ul></aside>' in page  # red in the box
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '<a href="http' not in page  # only in-page links
    assert "<title>t &lt;t&gt;</title>" in page

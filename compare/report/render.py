"""report.md, a self-contained report.html (plots embedded as data: URIs) and the PNG plots.

Everything is computed from results.json, so `python -m compare report results.json`
re-renders without re-running. The document is built once as a list of blocks
(compare.report.document) and written both as Markdown and as HTML: the decision page first
(compare.report.decision),
then the verdict and one section per question (speed, stress, operations).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compare.report.decision import decision_blocks
from compare.report.document import Block, H, Img, P, Ul, to_html, to_markdown
from compare.report.figures import num
from compare.report.operations import complexity_blocks, method_blocks
from compare.report.speed import breakdown_blocks, headline_blocks, host_blocks, sweep_blocks
from compare.report.stress import burst_blocks, consistency_blocks, disturb_blocks
from compare.report.summary import summary
from compare.report.verdict import verdict


def front_blocks(results: dict[str, Any]) -> list[Block]:
    """The title, how the run was made and on what machine, and a slowed inventory if any."""
    meta = results.get("meta", {})
    b: list[Block] = [H(1, "Outbox + RabbitMQ vs Temporal workflow: measured comparison")]
    b.append(
        P(
            f"Mode **{meta.get('mode')}**, seed {meta.get('seed')}, commit `{meta.get('git_commit')}`, "
            f"started {meta.get('started')} UTC, took {num(meta.get('duration_s'), ' s')}. Reproduce every "
            "figure with "
            f"`{meta.get('command')}` (same seed, same machine class); re-render with "
            "`python -m compare report results.json`."
        )
    )
    m = meta.get("machine", {})
    b.append(
        P(
            f"Machine: {m.get('cpu_model')} x {m.get('logical_cpus')} logical CPUs, {m.get('memory_gib')} "
            "GiB, "
            f"{m.get('platform')}, Python {m.get('python')}; load average at start "
            f"{m.get('load_avg_at_start')}."
        )
    )
    if delay := meta.get("inventory_delay_ms"):
        b.append(
            P(
                f"**A slow inventory service: every deduction took {num(delay, ' ms')} longer** "
                "(`--inventory-delay-ms`; the MQ consumer inside its transaction, the workflow's "
                "deduct activity at its start). The unsafe reference has no separate inventory "
                "step and was left out, so there are no ratios to it."
            )
        )
    return b


def build(results: dict[str, Any], out: Path) -> list[Block]:
    summ = summary(results)
    results["summary"] = summ
    results["verdict"] = verdict(results, summ)
    return [
        *front_blocks(results),
        *decision_blocks(results, summ),
        H(2, "Verdict", "verdict"),
        Ul(list(results["verdict"])),
        *headline_blocks(results, summ, out),
        *host_blocks(results, summ),
        *breakdown_blocks(results, out),
        *sweep_blocks(results, summ),
        *burst_blocks(results, out),
        *disturb_blocks(results, out),
        *consistency_blocks(results, out),
        *complexity_blocks(results),
        *method_blocks(results.get("meta", {})),
    ]


def render(results: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    blocks = build(results, out)
    md = out / "report.md"
    md.write_text(to_markdown(blocks))
    page = out / "report.html"
    page.write_text(to_html(blocks, "compare: outbox + RabbitMQ vs Temporal"))
    return [md, page, *(b.path for b in blocks if isinstance(b, Img))]

"""PNG plots from results.json (matplotlib, Agg backend: no display needed).

Each function takes the results dict and the output directory, writes one PNG and returns its
path, or None when the results hold no data for it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

# One colour per target, in every plot (lines, tick labels); nothing else is drawn in these colours.
COLORS = {"reference": "#7f7f7f", "mq": "#1f77b4", "workflow": "#d62728", "workflow-memory": "#ff9896"}
OTHER_TARGET = "#8c564b"  # a target this table does not know
LABELS = {
    "reference": "reference (UNSAFE)",
    "mq": "MQ (outbox + RabbitMQ + dedup)",
    "workflow": "Temporal workflow",
    "workflow-memory": "Temporal workflow, in-memory dev server (NOT durable)",
}
DPI = 100
# Colours for what is not a target (process groups, stages, fault windows): tab20 without the targets'.
PALETTE = tuple(
    hex_
    for hex_ in (to_hex(c) for c in plt.get_cmap("tab20").colors)
    if hex_ not in (*COLORS.values(), OTHER_TARGET)
)


def label(name: str) -> str:
    return LABELS.get(name, name)


def color(name: str) -> str:
    """The target's colour; a control column ("mq:no-dedup") takes its variant's."""
    return COLORS.get(name) or COLORS.get(name.split(":", 1)[0], OTHER_TARGET)


def wrapped(text: str, width: int = 22) -> str:
    """A tick label broken into lines, so that neighbours do not run into each other."""
    return "\n".join(textwrap.wrap(text, width)) or text


def color_ticks(labels: list[Any], names: list[str]) -> None:
    """Tick labels in their target's colour (the same colour as the target's lines elsewhere)."""
    for tick, name in zip(labels, names, strict=True):
        tick.set_color(color(name))


def _save(fig: Any, path: Path) -> Path:
    if fig.get_layout_engine() is None:  # a constrained figure (legend outside) lays itself out
        fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: t for n, t in results.get("targets", {}).items() if t.get("steps")}


def step_at(target: dict[str, Any], rate: float | None) -> dict[str, Any] | None:
    for step in target.get("steps", []):
        if rate is not None and step["offered_rate"] == rate:
            return step
    return None


def latency_cdf(results: dict[str, Any], out: Path, rate: float | None) -> Path | None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = False
    for name, t in _targets(results).items():
        step = step_at(t, rate)
        if step is None:
            continue
        for key, style, what in (("terminal", "-", "POST -> terminal"), ("accept", ":", "POST -> 202")):
            cdf = step[key]["cdf"]
            if cdf:
                xs, ys = zip(*cdf, strict=True)
                ax.plot(xs, ys, style, color=color(name), label=f"{label(name)}: {what}")
                drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("latency from the scheduled send time (ms, log scale)")
    ax.set_ylabel("fraction of orders")
    ax.set_title(f"Latency CDF at {rate:g} orders/s offered (open loop)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    return _save(fig, out / "latency_cdf.png")


def latency_vs_rate(results: dict[str, Any], out: Path) -> Path | None:
    targets = _targets(results)
    if not targets:
        return None
    bound = results.get("meta", {}).get("p99_bound_ms")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 5))
    top = 0.0
    for name, t in targets.items():
        # The first capacity search as lines (by rate, its last step at each rate: a confirmation
        # over the ladder step); every other step (repeats, later searches) as faint dots.
        last = {s["offered_rate"]: s for s in t["steps"] if s.get("search", 0) == 0}
        first = [last[r] for r in sorted(last)]
        later = [s for s in t["steps"] if all(s is not f for f in first)]
        rates = [s["offered_rate"] for s in first]
        top = max(top, *rates, *(s["offered_rate"] for s in later))
        for key, style in (("p50_ms", "o--"), ("p99_ms", "s-")):
            ax.plot(
                rates,
                [s["terminal"][key] for s in first],
                style,
                color=color(name),
                label=f"{label(name)} {key[:3]}",
            )
            if later:
                ax.plot(
                    [s["offered_rate"] for s in later],
                    [s["terminal"][key] for s in later],
                    style[0],
                    color=color(name),
                    alpha=0.4,
                )
        ax2.plot(rates, [s["completed_per_s"] for s in first], "o-", color=color(name), label=label(name))
        if later:
            ax2.plot(
                [s["offered_rate"] for s in later],
                [s["completed_per_s"] for s in later],
                "o",
                color=color(name),
                alpha=0.4,
            )
    if bound:
        ax.axhline(bound, color="black", lw=0.8, ls=":", label=f"p99 bound {bound:g} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (orders/s, log)")
    ax.set_ylabel("POST -> terminal latency (ms, log)")
    ax.set_title("Latency percentile vs offered rate")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    ax2.plot([0, top], [0, top], color="black", lw=0.6, ls=":", label="completed = offered")
    ax2.set_xlabel("offered rate (orders/s)")
    ax2.set_ylabel("completed orders/s")
    ax2.set_title("Sustained throughput vs offered rate")
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1)
    return _save(fig, out / "latency_vs_rate.png")


def _timeline_axes(ax: Any, ax_lat: Any, timeline: list[dict[str, Any]], color: str | None) -> None:
    ts = [b["t"] for b in timeline]
    ax.step(ts, [b["offered"] for b in timeline], where="post", color="black", lw=0.8, label="offered/s")
    ax.step(
        ts, [b["accepted"] for b in timeline], where="post", color="#2ca02c", lw=1, label="accepted (202)/s"
    )
    ax.step(ts, [b["completed"] for b in timeline], where="post", color=color, lw=1.5, label="completed/s")
    ax.set_ylabel("orders/s")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    acc = [(b["t"], b["accept_p99_ms"]) for b in timeline if b["accept_p99_ms"]]
    term = [(b["t"], b["terminal_p99_ms"]) for b in timeline if b["terminal_p99_ms"]]
    if acc:
        ax_lat.plot(*zip(*acc, strict=True), color="#2ca02c", label="p99 POST -> 202")
    if term:
        ax_lat.plot(*zip(*term, strict=True), color=color, label="p99 POST -> terminal")
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("ms (log), by send second")
    ax_lat.grid(True, which="both", alpha=0.3)
    ax_lat.legend(fontsize=7, loc="upper right")


def burst(results: dict[str, Any], out: Path, name: str) -> Path | None:
    data = results.get("targets", {}).get(name, {}).get("burst")
    if not data:
        return None
    fig, (ax, ax_b, ax_lat) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    _timeline_axes(ax, ax_lat, data["timeline"], color(name))
    samples = data["backlog"]
    ts = [s["t"] for s in samples]
    ax_b.plot(ts, [s["pending"] for s in samples], color="black", label="orders PENDING")
    if any(s.get("api_in_flight") is not None for s in samples):
        ax_b.plot(
            ts,
            [s.get("api_in_flight") or 0 for s in samples],
            color="#e377c2",
            lw=2,
            ls="--",
            label="unanswered at the API (client side)",
        )
    if any(s.get("outbox") is not None for s in samples):
        ax_b.plot(ts, [s.get("outbox") or 0 for s in samples], label="outbox rows (both dbs)")
    for key in sorted({k for s in samples for k in s.get("queues", {}) if not k.endswith("dlq")}):
        ax_b.plot(ts, [s["queues"].get(key, 0) for s in samples], label=f"queue {key} (ready)")
    if any(s.get("open_workflows") is not None for s in samples):
        ax_b.plot(ts, [s.get("open_workflows") or 0 for s in samples], label="open workflows")
    for key in sorted({k for s in samples for k in s.get("task_queues", {})}):
        ax_b.plot(
            ts, [s["task_queues"].get(key, 0) for s in samples], ls="--", label=f"task queue {key} backlog"
        )
    ax_b.set_ylabel("backlog")
    ax_b.grid(True, alpha=0.3)
    ax_b.legend(fontsize=7, loc="upper right")
    for a in (ax, ax_b, ax_lat):
        a.axvspan(data["lead_s"], data["lead_s"] + data["burst_s"], color="orange", alpha=0.15)
    if data.get("drain_s") is not None:
        ax_b.axvline(data["lead_s"] + data["burst_s"] + data["drain_s"], color="green", ls=":", lw=1)
    ax_lat.set_xlabel("seconds from the start (shaded: the burst)")
    shaving = (data.get("shaving") or {}).get("verdict")
    ax.set_title(
        f"{label(name)}: burst {data['peak_rate']:g}/s for {data['burst_s']:g} s over a base of "
        f"{data['base_rate']:g}/s" + (f"; peak shaving: {shaving}" if shaving else "")
    )
    return _save(fig, out / f"burst_{name}.png")


STAGE_COLORS = ("#2ca02c", "#9467bd", "#ff7f0e", "#17becf")  # none of them a target's


def breakdown(results: dict[str, Any], out: Path) -> Path | None:
    """Stacked bars: mean ms per stage, one bar per variant and rate."""
    bars = [
        (n, f"{wrapped(label(n), 18)}\n{bd['rate']:g}/s ({bd['label']})", bd)
        for n, t in results.get("targets", {}).items()
        for bd in t.get("breakdown") or []
        if bd.get("stages")
    ]
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(max(7, 2.2 * len(bars) + 3), 5))
    at = list(range(len(bars)))
    bottom = [0.0] * len(bars)
    stages = [s["stage"] for s in bars[0][2]["stages"]]
    tallest = max(1.0, max(bd["total"]["mean_ms"] or 0 for _, _, bd in bars))
    for k, stage in enumerate(stages):
        # A stage whose mean came out negative (published after deducted) is drawn as 0.
        values = [max(bd["stages"][k]["mean_ms"] or 0.0, 0.0) for _, _, bd in bars]
        ax.bar(at, values, bottom=bottom, label=stage, color=STAGE_COLORS[k % len(STAGE_COLORS)])
        for i, v in enumerate(values):
            if v >= 0.06 * tallest:
                ax.text(
                    i, bottom[i] + v / 2, f"{v:,.0f}", ha="center", va="center", fontsize=8, color="white"
                )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for i, (_, _, bd) in enumerate(bars):
        ax.text(i, bottom[i], f"{bd['total']['mean_ms']:,.0f} ms", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(at, [text for _, text, _ in bars], fontsize=9)
    color_ticks(ax.get_xticklabels(), [n for n, _, _ in bars])
    ax.set_ylabel("mean ms from the scheduled send time")
    ax.set_title("Latency breakdown per stage (means; the workflow's 'published' is 0 by design)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4)
    return _save(fig, out / "latency_breakdown.png")


def over_time(results: dict[str, Any], out: Path, name: str) -> Path | None:
    data = results.get("targets", {}).get(name, {}).get("disturb")
    if not data:
        return None
    fig, (ax, ax_lat) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    _timeline_axes(ax, ax_lat, data["timeline"], color(name))
    shades = ("#ff7f0e", "#9467bd")  # not a target's colour: the line in this plot is the target's
    for i, w in enumerate(data["windows"]):
        for a in (ax, ax_lat):
            a.axvspan(w["start"], max(w["end"], w["start"] + 0.3), color=shades[i % 2], alpha=0.15)
        ax.annotate(w["label"], (w["start"], ax.get_ylim()[1] * 0.92), fontsize=7, color=shades[i % 2])
    ax.set_title(f"{label(name)}: throughput and latency over time at {data['rate']:g}/s, faults shaded")
    ax_lat.set_xlabel("seconds from the start")
    return _save(fig, out / f"over_time_{name}.png")


def anomaly_matrix(results: dict[str, Any], out: Path) -> Path | None:
    faults = results.get("faults") or {}
    matrix = faults.get("matrix") or {}
    scenarios = sorted(matrix)
    if not scenarios:
        return None
    columns = sorted({c for row in matrix.values() for c in row})
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(columns) + 4), 0.45 * len(scenarios) + 1.5))
    values = [[matrix[s].get(c) for c in columns] for s in scenarios]

    def colour(col: str, v: int | None) -> tuple[float, float, float]:
        if v is None:
            return (0.93, 0.93, 0.93)  # not applicable / not run
        if ":" in col:  # a control: it MUST show anomalies
            return (0.99, 0.73, 0.52) if v > 0 else (1.0, 0.93, 0.45)  # caught / missed (yellow)
        return (0.78, 0.91, 0.75) if v == 0 else (0.97, 0.45, 0.40)  # consistent / anomaly

    ax.imshow([[colour(c, v) for c, v in zip(columns, row, strict=True)] for row in values], aspect="auto")
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            text = "n/a" if v is None else str(v)
            if v == 0 and ":" in columns[j]:
                text = "0 (missed!)"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(columns)), columns, rotation=20, ha="right", fontsize=8)
    color_ticks(ax.get_xticklabels(), columns)
    ax.set_yticks(range(len(scenarios)), scenarios, fontsize=8)
    ax.set_title(
        "Anomalies per scenario and variant (green: consistent; red: anomaly; "
        "controls x:y must show > 0 (orange), yellow: a control the scenario missed)",
        fontsize=9,
    )
    return _save(fig, out / "anomaly_matrix.png")


def resources(results: dict[str, Any], out: Path, rate: float | None) -> Path | None:
    rows = []
    for name, t in _targets(results).items():
        step = step_at(t, rate)
        if step is not None:
            rows.append((name, step["cpu_ms_per_order"]))
    if not rows:
        return None
    fig = cpu_figure(rows, rate)
    return _save(fig, out / "cpu_per_order.png")


def cpu_figure(rows: list[tuple[str, dict[str, float]]], rate: float | None) -> Any:
    """Horizontal stacked bars, one per target (its name on the left, wrapped, in its colour),
    one segment per process group; the legend under the axes, so nothing covers a bar."""
    groups = sorted({g for _, per in rows for g in per if g != "total"})
    fig, ax = plt.subplots(
        figsize=(9, 1.6 + 0.6 * len(rows) + 0.25 * (len(groups) // 4 + 1)), layout="constrained"
    )
    at = list(range(len(rows)))[::-1]  # the first target on top
    left = [0.0] * len(rows)
    for k, g in enumerate(groups):
        vals = [per.get(g, 0.0) for _, per in rows]
        ax.barh(at, vals, left=left, label=g, color=PALETTE[k % len(PALETTE)], height=0.6)
        left = [b + v for b, v in zip(left, vals, strict=True)]
    ax.set_yticks(at, [wrapped(label(n), 26) for n, _ in rows], fontsize=9)
    color_ticks(ax.get_yticklabels(), [n for n, _ in rows])
    ax.set_xlabel("CPU ms per completed order")
    ax.set_title(f"CPU per order by process at {num_rate(rate)} orders/s")
    fig.legend(fontsize=8, ncol=4, loc="outside lower center")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def num_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:g}"

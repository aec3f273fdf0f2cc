"""The speed sections: headline figures and their spread, host pressure, the per-stage breakdown,
the rate sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compare.bench.spread import Spread
from compare.report import plots
from compare.report.document import Block, H, P, Table, image
from compare.report.figures import fmt_ratio, ms, num, pct, pressure_cells, step_host, usage_rows
from compare.report.plots import label, step_at
from compare.report.summary import flag_text


def headline_blocks(results: dict[str, Any], summ: dict[str, Any], out: Path) -> list[Block]:
    """The headline table (medians at the common rate and at each max), the spread, the plots."""
    meta = results.get("meta", {})
    rate = summ["common_rate"]
    b: list[Block] = []
    b.append(H(2, "Headline figures", "headline"))
    b.append(
        P(
            "Latency is from the scheduled send time (open loop) to the order's terminal state "
            "(t_order.updated_at) "
            f"at the common rate **{num(rate)} orders/s** (the highest rate every target sustained). "
            "Sustainable = "
            f"p99 to terminal <= {num(meta.get('p99_bound_ms'))} ms, >= 99 % accepted and >= 99 % terminal "
            "in time (the bound: an order confirmed within a couple of seconds still reads as immediate to "
            "a shopper, and "
            "both designs answer 202 before the work is done, so the bound is on the whole flow). "
            "CPU and memory: role processes + their PostgreSQL backends + broker / Temporal server; the "
            "load generator "
            "and the local supervisor (replaced by compose/systemd in production) are excluded."
        )
    )
    rows = [_headline_row(name, r) for name, r in summ["targets"].items()]
    b.append(Table(_headline_headers(meta.get("repeat", 1)), rows))
    b += spread_blocks(results, summ)
    if "reference" in results.get("targets", {}):
        b.append(
            P(
                "**The reference is UNSAFE**: the same database writes done synchronously in the request, "
                "no messaging, "
                "no outbox, no dedup, no atomicity across the two databases (a crash between them loses or "
                "corrupts "
                "an order). It is only the lower bound on the cost of the work; ratios above are variant / "
                "reference."
            )
        )
    b += image(
        plots.latency_cdf(results, out, rate),
        f"Latency CDF at {num(rate)} orders/s, log axis (solid: to terminal; dotted: to 202).",
    )
    b += image(
        plots.latency_vs_rate(results, out),
        "Latency percentiles and completed throughput vs offered rate (lines: the first capacity search, "
        "its last step at each rate; faint dots: the other steps and searches).",
    )
    b += image(
        plots.resources(results, out, rate), f"CPU per completed order by process at {num(rate)} orders/s."
    )

    return b


def _headline_row(name: str, r: dict[str, Any]) -> list[str]:
    sus = r["max_sustainable_rate"]
    return [
        label(name),
        ("≥ " if r.get("capped_by_ladder") else "") + num(sus)
        if sus
        else ("failed: " + r["error"] if r.get("error") else "none"),
        num(r.get("peak_completed_per_s")),
        ms(r.get("p50_ms")),
        ms(r.get("p99_ms")),
        ms(r.get("p999_ms")),
        ms(r.get("accept_p99_ms")),
        f"{ms(r.get('deducted_p50_ms'))} / {ms(r.get('deducted_p99_ms'))}",
        num(r.get("cpu_ms_per_order_system")),
        num(r.get("cpu_ms_per_order_at_max")),
        num(r.get("peak_rss_mib")),
        fmt_ratio(r.get("throughput_ratio_to_reference")),
        fmt_ratio(r.get("p50_ratio_to_reference")),
        fmt_ratio(r.get("p99_ratio_to_reference")),
        flag_text(r["host_flags"]) or "ok",
    ]


def _headline_headers(n_runs: int) -> list[str]:
    return [
        "target",
        "max sustainable orders/s" + (f" (median of {n_runs})" if n_runs > 1 else ""),
        "peak completed/s",
        "p50",
        "p99",
        "p99.9",
        "p99 POST->202",
        "POST->stock deducted p50 / p99",
        "CPU ms/order",
        "CPU ms/order at own max",
        "peak RSS MiB",
        "throughput / ref",
        "p50 / ref",
        "p99 / ref",
        "host (outside load)",
    ]


def spread_blocks(results: dict[str, Any], summ: dict[str, Any]) -> list[Block]:
    n = results.get("meta", {}).get("repeat", 1)
    rate = summ["common_rate"]
    b: list[Block] = [
        P(
            f"Run-to-run spread over {n} capacity search{'es' if n != 1 else ''} per target "
            "(`--repeat N`; min / median / max; the headline figures above are the medians). "
            + (
                "**A single run**: no spread measured, so the verdict's comparisons rest on one run each."
                if n == 1
                else "A verdict line says one variant wins only when the two ranges do not overlap."
            )
        )
    ]
    rows = []
    for name, r in summ["targets"].items():
        sp = r.get("spread") or {}

        def cell(key: str, unit: str = "", sp: dict[str, Any] = sp) -> str:
            return Spread(**sp[key]).text(unit) if sp.get(key) else "-"

        rows.append(
            [
                label(name),
                cell("max_sustainable_rate", "/s"),
                cell("p50_ms", " ms"),
                cell("p99_ms", " ms"),
                cell("cpu_ms_per_order_system", " ms"),
            ]
        )
    b.append(
        Table(
            [
                "target",
                "max sustainable (confirmed)",
                f"p50 at {num(rate)}/s",
                f"p99 at {num(rate)}/s",
                f"CPU/order at {num(rate)}/s",
            ],
            rows,
        )
    )
    return b


def host_blocks(results: dict[str, Any], summ: dict[str, Any]) -> list[Block]:
    meta = results.get("meta", {})
    th = meta.get("pressure_thresholds")
    b: list[Block] = [H(2, "Host pressure", "host")]
    if not th:
        return [*b, P("Not recorded in this run (results from an older version).")]
    b.append(
        P(
            "Is the machine busy with something else? Before each capacity search the target stands idle "
            f"for {num(meta.get('config', {}).get('idle_window_s'), ' s')} and the host is read: CPU "
            "pressure (`/proc/pressure/cpu` some: share of the time a runnable task waited for a CPU), "
            "cores busy (`/proc/stat`), steal. Flagged when CPU pressure > "
            f"{th['idle_cpu_some_pct']:g} %, busy > {th['idle_busy_cores']:g} cores or steal > "
            f"{th['steal_pct']:g} %. During each step (the target itself makes CPU pressure there): steal "
            f"> {th['steal_pct']:g} %, or > {th['step_unattributed_cores']:g} cores busy that no process of "
            "the target or the load generator accounts for. io pressure and the load average are "
            "recorded, not judged. A flagged figure is published with its flag, not dropped."
        )
    )
    rows = []
    for name, t in results.get("targets", {}).items():
        for srch in t.get("searches", []):
            idle = srch.get("idle") or {}
            rows.append(
                [
                    label(name),
                    f"idle before search {srch['search'] + 1}",
                    *pressure_cells(idle),
                    "; ".join(idle.get("flags", [])) or "ok",
                ]
            )
        whole = t.get("host") or {}
        if whole:
            flags = summ["targets"].get(name, {}).get("host_flags") or {}
            rows.append(
                [
                    label(name),
                    f"whole target ({num(whole.get('wall_s'), ' s')}, under load)",
                    *pressure_cells(whole),
                    f"{flags.get('flagged_steps', 0)} of {flags.get('steps', 0)} steps flagged",
                ]
            )
    run = meta.get("host") or {}
    if run:
        rows.append(["whole run", f"{num(run.get('wall_s'), ' s')}", *pressure_cells(run), ""])
    b.append(
        Table(
            ["target", "window", "CPU some", "io some", "busy cores", "steal", "load avg 1m", "flags"], rows
        )
    )
    return b


def breakdown_blocks(results: dict[str, Any], out: Path) -> list[Block]:
    b: list[Block] = [H(2, "Latency breakdown per stage", "breakdown")]
    data = {
        n: [bd for bd in t.get("breakdown") or [] if bd.get("stages")]
        for n, t in results.get("targets", {}).items()
    }
    data = {n: v for n, v in data.items() if v}
    if not data:
        return [*b, P("Not in this run.")]
    polls = sorted(
        {bd["poll_interval_ms"] for v in data.values() for bd in v if bd.get("poll_interval_ms") is not None}
    )
    b.append(
        P(
            "One extra step per rate (a low rate, and half the found max sustainable rate), every order "
            "followed from its scheduled send time through: the 202 (client); published (MQ: the order's "
            "row gone from the orders database's outbox `t_local_msg`, i.e. the relay had the broker's "
            "confirm; read by polling the outbox during the step, "
            + (
                f"measured every {', '.join(f'{p:g}' for p in polls)} ms: resolution +/- half that"
                if polls
                else "resolution: the poll interval"
            )
            + "; workflow: **0 by design**, the workflow is started in Temporal before the 202); stock "
            "deducted (first `t_deduction_log` row); terminal (`t_order.updated_at`). The broker may "
            "deliver, and the consumer deduct, before the relay has the confirm: then published is taken "
            "as the deduction (the broker had the message by then; `confirm after deduction` counts "
            "those). Means add up to the mean POST -> terminal of the same orders (medians do not), so "
            "the bars stack means."
        )
    )
    rows = []
    for name, v in data.items():
        for bd in v:
            for stg in [*bd["stages"], bd["total"]]:
                rows.append(
                    [
                        label(name),
                        f"{bd['rate']:g}/s ({bd['label']})",
                        stg["stage"],
                        num(stg["mean_ms"]),
                        num(stg["p50_ms"]),
                        num(stg["p99_ms"]),
                        f"{bd['orders']} (+{bd['left_out']} left out)",
                        str(bd.get("confirm_after_deduction", 0))
                        if stg["stage"].endswith("published")
                        else "",
                    ]
                )
    headers = ["target", "rate", "stage", "mean ms", "p50 ms", "p99 ms", "orders", "confirm after deduction"]
    b.append(Table(headers, rows))
    b += image(
        plots.breakdown(results, out),
        "Where the time goes: mean ms per stage, stacked, per variant and rate (the total is the mean "
        "POST -> terminal).",
    )
    return b


def sweep_blocks(results: dict[str, Any], summ: dict[str, Any]) -> list[Block]:
    """Every capacity search's log and steps per target, and its resources at the common rate."""
    meta = results.get("meta", {})
    rate = summ["common_rate"]
    config = meta.get("config", {})
    b: list[Block] = []
    b.append(H(2, "Rate sweep", "rate-sweep"))
    b.append(
        P(
            "Capacity search per target: climb the ladder to the first failing rate, bisect between the "
            "last passing and the first failing rate until the gap is under "
            f"{pct(config.get('bisect_gap', 0.1))} of the rate, then run the found rate "
            "once more (confirm): it must pass again, else the search steps down and confirms there (each "
            "time by that gap, or to the next lower rate that passed when that is closer): a confirmed "
            "rate passed twice, or once with a rate above it passing once. "
            "`wait growth`: how much the wait for a terminal state rose across the step (a robust slope "
            "through the median wait of each half second of arrivals)"
            + (
                f"; a step fails when it means completion fell more than {pct(config['max_shortfall'])} "
                "short of the offered rate (a backlog building up, which a short step can end before p99 "
                "shows it). "
                if "max_shortfall" in config
                else " (this run's steps were not judged on it). "
            )
            + "A step that kept up (accepted, terminal, no backlog building) but missed the bound is "
            "repeated once. `host`: outside load "
            "during the step (steal; cores busy outside the target and the load generator)."
        )
    )
    for name, t in results.get("targets", {}).items():
        b += _target_sweep(name, t, rate)
    return b


def _target_sweep(name: str, t: dict[str, Any], rate: float | None) -> list[Block]:
    b: list[Block] = []
    b.append(H(3, label(name)))
    if t.get("error"):
        b.append(P(f"**Run failed:** {t['error']}"))
    if not t.get("steps"):
        return b
    for srch in t.get("searches", []):
        b.append(
            P(
                f"Search {srch['search'] + 1} ({num(srch.get('duration_s'), ' s')}): "
                + "; ".join(srch.get("log", []))
                + f" -> max sustainable **{num(srch.get('max_sustainable_rate'))}/s**"
                + ("" if srch.get("confirmed") else " (none confirmed)")
                + "."
            )
        )
    b.append(_steps_table(t))
    step = step_at(t, rate)
    if step is not None:
        b.append(P(f"Resources at {num(rate)} orders/s ({step['duration_s']:g} s + drain):"))
        b.append(
            Table(
                ["process group", "CPU s", "CPU ms/order", "peak RSS MiB", "processes", "note"],
                usage_rows(step),
            )
        )
    return b


def _steps_table(t: dict[str, Any]) -> Table:
    return Table(
        [
            "step",
            "offered/s",
            "sent",
            "accepted",
            "completed/s",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "wait growth",
            "stock deducted p50",
            "202 p99",
            "errors",
            "result",
            "host",
        ],
        [
            [
                s.get("kind", "ladder")
                + (f" #{s.get('search', 0) + 1}" if len(t.get("searches", [])) > 1 else ""),
                num(s["offered_rate"]),
                str(s["sent"]),
                str(s["accepted"]),
                num(s["completed_per_s"]),
                ms(s["terminal"]["p50_ms"]),
                ms(s["terminal"]["p90_ms"]),
                ms(s["terminal"]["p99_ms"]),
                ms(s["terminal"]["p999_ms"]),
                ms(s["terminal"]["max_ms"]),
                ms(s.get("backlog_growth_ms")),
                ms(s["deducted"]["p50_ms"]),
                ms(s["accept"]["p99_ms"]),
                str(s["errors"]),
                ("ok" if s["passed"] else s["why"])
                + (f" (repeated: 1st attempt {s['first_attempt']})" if s.get("first_attempt") else ""),
                step_host(s.get("host")),
            ]
            for s in t["steps"]
        ],
    )

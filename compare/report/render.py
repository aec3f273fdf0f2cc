"""report.md, a self-contained report.html (plots embedded as data: URIs) and the PNG plots.

Everything is computed from results.json, so `python -m compare report results.json`
re-renders without re-running. The document is built once as a list of blocks (heading,
paragraph, table, image, preformatted) and written both as Markdown and as HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compare.bench.burst import busiest
from compare.bench.spread import Spread, claim, spread
from compare.report import plots
from compare.report.document import Block, H, Img, P, Pre, Table, Ul, to_html, to_markdown
from compare.report.plots import label, step_at

# --------------------------------------------------------------------------- figures from the data


def ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"


def num(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:,.4g}{unit}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def common_rate(results: dict[str, Any]) -> float | None:
    """The highest offered rate every target sustained; else the lowest rate all of them ran."""
    targets = [t for t in results.get("targets", {}).values() if t.get("steps") and not t.get("sensitivity")]
    if not targets:
        return None
    passed = [{s["offered_rate"] for s in t["steps"] if s["passed"]} for t in targets]
    both = set.intersection(*passed)
    if both:
        return max(both)
    ran = set.intersection(*({s["offered_rate"] for s in t["steps"]} for t in targets))
    return min(ran) if ran else None


NOT_IN_TOTALS = ("load generator", "supervisor")  # the supervisor is the local stand-in for compose


def _rss_total(step: dict[str, Any]) -> float:
    return sum(u["peak_rss_mib"] for g, u in step["resources"].items() if g not in NOT_IN_TOTALS)


def _cpu_total(step: dict[str, Any]) -> float:
    per = step["cpu_ms_per_order"]
    return round(sum(v for g, v in per.items() if g not in (*NOT_IN_TOTALS, "total")), 3)


def searches_of(t: dict[str, Any]) -> list[int]:
    return sorted({s.get("search", 0) for s in t.get("steps", [])}) or [0]


def step_in(t: dict[str, Any], search: int, rate: float | None) -> dict[str, Any] | None:
    """The step of capacity search `search` at `rate` (a passing one first: a confirmation)."""
    found = [s for s in t.get("steps", []) if s.get("search", 0) == search and s["offered_rate"] == rate]
    return next((s for s in found if s["passed"]), found[0] if found else None)


def search_max_rates(t: dict[str, Any]) -> list[float | None]:
    if t.get("searches"):
        return [s.get("max_sustainable_rate") for s in t["searches"]]
    return [t.get("max_sustainable_rate")]


def target_spreads(t: dict[str, Any], rate: float | None) -> dict[str, Spread | None]:
    """Per capacity search: the max sustainable rate, and figures at the common rate and at each
    search's own max; min / median / max over the searches."""
    found = search_max_rates(t)
    # A search that confirmed nothing sustained no rung: 0/s, as long as another one found a rate.
    sus = spread([r or 0.0 for r in found]) if any(r is not None for r in found) else None
    at_rate = [step_in(t, i, rate) for i in searches_of(t)]
    at_rate = [s for s in at_rate if s is not None]
    at_max = []
    for i, r in zip(searches_of(t), found, strict=False):
        top = step_in(t, i, r) if r else None
        if top is not None:
            at_max.append(top)
    return {
        "max_sustainable_rate": sus,
        "p50_ms": spread(s["terminal"]["p50_ms"] for s in at_rate),
        "p99_ms": spread(s["terminal"]["p99_ms"] for s in at_rate),
        "p999_ms": spread(s["terminal"]["p999_ms"] for s in at_rate),
        "max_ms": spread(s["terminal"]["max_ms"] for s in at_rate),
        "accept_p50_ms": spread(s["accept"]["p50_ms"] for s in at_rate),
        "accept_p99_ms": spread(s["accept"]["p99_ms"] for s in at_rate),
        "deducted_p50_ms": spread(s["deducted"]["p50_ms"] for s in at_rate),
        "deducted_p99_ms": spread(s["deducted"]["p99_ms"] for s in at_rate),
        "cpu_ms_per_order": spread(s["cpu_ms_per_order"].get("total") for s in at_rate),
        "cpu_ms_per_order_system": spread(_cpu_total(s) for s in at_rate),
        "peak_rss_mib": spread(_rss_total(s) for s in at_rate),
        "cpu_ms_per_order_at_max": spread(_cpu_total(s) for s in at_max),
    }


def _kind(flag: str) -> str:
    return next((k for k in ("CPU pressure", "cores busy", "steal") if k in flag), flag)


def host_flags(t: dict[str, Any]) -> dict[str, Any]:
    """Outside load seen around a target's capacity searches: idle windows and flagged steps."""
    windows = [(s.get("idle") or {}).get("flags", []) for s in t.get("searches", [])]
    steps = [(s.get("host") or {}).get("flags", []) for s in t.get("steps", [])]
    return {
        "idle": sorted({f for w in windows for f in w}),
        "idle_windows": len(windows),
        "flagged_windows": sum(1 for w in windows if w),
        "idle_kinds": sorted({_kind(f) for w in windows for f in w}),
        "flagged_steps": sum(1 for s in steps if s),
        "steps": len(steps),
        "step_kinds": sorted({_kind(f) for s in steps for f in s}),
    }


def flag_text(flags: dict[str, Any]) -> str:
    """Short: how many idle windows and steps of a target were taken under outside load, and why."""
    parts = []
    if flags.get("flagged_windows"):
        parts.append(
            f"{flags['flagged_windows']} of {flags['idle_windows']} idle windows flagged "
            f"({', '.join(flags['idle_kinds'])})"
        )
    if flags.get("flagged_steps"):
        parts.append(
            f"{flags['flagged_steps']} of {flags['steps']} steps flagged ({', '.join(flags['step_kinds'])})"
        )
    return ", ".join(parts)


def summary(results: dict[str, Any]) -> dict[str, Any]:
    rate = common_rate(results)
    ref = results.get("targets", {}).get("reference")
    ref_step = step_at(ref, rate) if ref else None
    rows: dict[str, Any] = {}
    for name, t in results.get("targets", {}).items():
        step = step_at(t, rate) if t.get("steps") else None
        sus = t.get("max_sustainable_rate")
        spreads = target_spreads(t, rate)
        row: dict[str, Any] = {
            "max_sustainable_rate": sus,
            "capped_by_ladder": t.get("capped_by_ladder", False),
            "peak_completed_per_s": t.get("peak_completed_per_s"),
            "error": t.get("error"),
            "spread": {k: v.model_dump() if v else None for k, v in spreads.items()},
            "host_flags": host_flags(t),
        }

        def median(key: str, spreads: dict[str, Spread | None] = spreads) -> float | None:
            value = spreads.get(key)
            return round(value.median, 3) if value is not None else None

        if spreads["cpu_ms_per_order_at_max"] is not None:
            row["cpu_ms_per_order_at_max"] = median("cpu_ms_per_order_at_max")
            top = step_at(t, sus) if sus else None
            if top is not None:
                row["peak_rss_mib_at_max"] = round(_rss_total(top), 1)
        if step is not None:
            # every figure at the common rate: the median over the capacity searches
            skip = ("max_sustainable_rate", "cpu_ms_per_order_at_max")
            row.update({key: median(key) for key in spreads if key not in skip})
        if ref and name != "reference":
            row["throughput_ratio_to_reference"] = ratio(sus, ref.get("max_sustainable_rate"))
            ref_spreads = target_spreads(ref, rate)

            def ref_median(key: str, ref_spreads: dict[str, Spread | None] = ref_spreads) -> float | None:
                value = ref_spreads.get(key)
                return value.median if value is not None else None

            if step is not None and ref_step is not None:
                row["p50_ratio_to_reference"] = ratio(row["p50_ms"], ref_median("p50_ms"))
                row["p99_ratio_to_reference"] = ratio(row["p99_ms"], ref_median("p99_ms"))
                row["cpu_ratio_to_reference"] = ratio(
                    row["cpu_ms_per_order_system"], ref_median("cpu_ms_per_order_system")
                )
            row["cpu_at_max_ratio_to_reference"] = ratio(
                row.get("cpu_ms_per_order_at_max"), ref_median("cpu_ms_per_order_at_max")
            )
        rows[name] = row
    return {"common_rate": rate, "targets": rows}


def _claim(results_summary: dict[str, Any], key: str, lower_is_better: bool, what: str) -> str | None:
    """MQ vs workflow on one figure, by the spread rule; flags the outside load that touches it."""
    t = results_summary["targets"]
    a = t["mq"]["spread"].get(key)
    b = t["workflow"]["spread"].get(key)
    line = claim(
        "mq",
        Spread(**a) if a else None,
        "workflow",
        Spread(**b) if b else None,
        lower_is_better=lower_is_better,
        what=what,
        label=label,
    )
    if line is None:
        return None
    flagged = [f"{label(n)}: {flag_text(t[n]['host_flags'])}" for n in ("mq", "workflow")]
    flagged = [f for f in flagged if not f.endswith(": ")]
    if flagged:
        line += " **Host: measured under outside load** (" + "; ".join(flagged) + ")."
    return line


def disturb_claim(d: dict[str, Any]) -> str:
    """What the faults-under-load run shows; "no lost order" only when the client's 202s back it."""
    bad = {k: v for k, v in d["anomalies"].items() if v and k != "pending"}
    accepted, missing, pending = d.get("accepted"), d.get("accepted_missing"), d.get("accepted_pending")
    if accepted is None or missing is None or pending is None:
        lost = "lost orders not counted against the client's 202s (results from an older run)"
    elif missing or pending:
        lost = (
            f"{missing + pending} of {accepted} accepted orders lost ({missing} absent, {pending} "
            "still PENDING after the drain)"
        )
    else:
        lost = f"no lost order (all {accepted} accepted orders terminal)"
    if bad:
        return f"anomalies {bad}; {lost}."
    return f"no double deduction, {lost}."


def shaving_line(name: str, bu: dict[str, Any]) -> str:
    """The peak-shaving (削峰) claim for one variant, with the figures that decide it."""
    sh = bu["shaving"]
    where = ", ".join(
        f"{k} {v:,}" for k, v in sh["where_at_max"].items() if k not in ("accepted, not terminal",) and v
    )
    slowed = (
        f", consumption slowed by --inventory-delay-ms {bu['inventory_delay_ms']:g}"
        if bu.get("inventory_delay_ms")
        else ""
    )
    head = (
        f"Peak shaving (削峰), {label(name)}: **{sh['verdict']}**"
        + (f" ({'; '.join(sh['reasons'])})" if sh["reasons"] else "")
        + f" -- a {bu['burst_s']:g} s peak at {sh['peak_rate']:g}/s{slowed}, completed "
        f"{sh['peak_completed_per_s']:g}/s during it; {sh['accepted_share']:.1%} of its arrivals accepted, "
        f"POST -> 202 p99 {ms(sh['accept_p99_ms'])} (bar: 100 ms); "
    )
    return (
        head
        + f"at most {sh['behind_api_max']:,} orders accepted and not terminal"
        + (f" ({where})" if where else "")
        + f" vs at most {sh['api_in_flight_max']:,} unanswered at the API; drained "
        + (f"{sh['drain_s']:g} s after the peak." if sh["drain_s"] is not None else "NOT within the run.")
    )


def breakdown_line(results: dict[str, Any]) -> str | None:
    parts = []
    for name in ("mq", "workflow"):
        for bd in results.get("targets", {}).get(name, {}).get("breakdown") or []:
            if bd.get("stages"):
                means = " / ".join(num(s["mean_ms"]) for s in bd["stages"])
                parts.append(f"{label(name)} at {bd['rate']:g}/s: {means}")
    if not parts:
        return None
    return (
        "Where the time goes (mean ms per stage: POST -> 202 / -> published / -> stock deducted / "
        "-> terminal; the workflow publishes nothing: it starts before the 202): " + "; ".join(parts) + "."
    )


def host_line(results: dict[str, Any], summ: dict[str, Any]) -> str:
    th = results.get("meta", {}).get("pressure_thresholds") or {}
    flagged = [
        f"{label(n)}: {flag_text(r['host_flags'])}"
        for n, r in summ["targets"].items()
        if r["host_flags"]["idle"] or r["host_flags"]["flagged_steps"]
    ]
    if not th and not flagged:
        return "Host pressure: not recorded in this run."
    if flagged:
        return (
            "**Host: outside load flagged** -- " + "; ".join(flagged) + ". Those figures are marked in the "
            "tables; repeat on a quiet machine before believing them."
        )
    return (
        "Host: no outside load flagged (idle window before each search: CPU pressure <= "
        f"{th.get('idle_cpu_some_pct')} %, <= {th.get('idle_busy_cores')} cores busy; every step: steal "
        f"<= {th.get('steal_pct')} %, <= {th.get('step_unattributed_cores')} cores busy outside the target)."
    )


def verdict(results: dict[str, Any], summ: dict[str, Any]) -> list[str]:
    out: list[str] = []
    t = summ["targets"]
    rate = summ["common_rate"]
    if "mq" in t and "workflow" in t:
        mq, wf = t["mq"], t["workflow"]
        caps = " (the top of the rate ladder: the real limit is higher)"
        line = _claim(
            summ,
            "max_sustainable_rate",
            False,
            f"Max sustainable rate (orders/s with p99 <= {results['meta']['p99_bound_ms']:g} ms, confirmed)",
        )
        if line:
            out.append(line + (caps if mq.get("capped_by_ladder") or wf.get("capped_by_ladder") else ""))
        elif mq["max_sustainable_rate"] is None or wf["max_sustainable_rate"] is None:
            out.append(
                "Max sustainable rate: "
                + ", ".join(
                    f"{label(n)} {num(x['max_sustainable_rate'])}/s"
                    for n, x in (("mq", mq), ("workflow", wf))
                )
                + " (- = not even the lowest rate within the bound)."
            )
        for key, what in (("p50_ms", "median"), ("p99_ms", "p99")):
            line = _claim(summ, key, True, f"Latency POST -> terminal, {what} at {num(rate)}/s (ms)")
            if line:
                out.append(line)
        for key, what in (
            (
                "cpu_ms_per_order_system",
                f"CPU per order at {num(rate)}/s (ms, roles + dependencies; idle costs weigh at low rates)",
            ),
            ("cpu_ms_per_order_at_max", "CPU per order, each at its own max sustainable rate (ms)"),
            ("peak_rss_mib", "Peak memory (MiB, roles + dependencies)"),
        ):
            line = _claim(summ, key, True, what)
            if line:
                out.append(line)
        bm = results["targets"]["mq"].get("burst")
        bw = results["targets"]["workflow"].get("burst")
        if bm and bw:
            out.append(
                "Burst: p99 acceptance during the peak "
                f"{ms(bm['accept_peak']['p99_ms'])} (MQ, {bm['peak_rate']:g}/s) vs "
                f"{ms(bw['accept_peak']['p99_ms'])} "
                f"(workflow, {bw['peak_rate']:g}/s); backlog drained {num(bm['drain_s'], ' s')} vs "
                f"{num(bw['drain_s'], ' s')} "
                "after the peak (- = not within the run)"
                + (
                    f"; busiest during the MQ peak (cores): {busiest(bm['peak_cores'], top=3)}."
                    if bm.get("peak_cores")
                    else "."
                )
            )
        for name in ("mq", "workflow"):
            d = results["targets"][name].get("disturb")
            if d:
                rec = ", ".join(f"{w['label']}: {num(w['recovery_s'], ' s')}" for w in d["windows"])
                out.append(
                    f"{label(name)} under process faults at {d['rate']:g}/s: recovery {rec}; "
                    + disturb_claim(d)
                )
    for name in ("mq", "workflow"):
        bu = results["targets"].get(name, {}).get("burst") or {}
        if bu.get("shaving"):
            out.append(shaving_line(name, bu))
    if line := breakdown_line(results):
        out.append(line)
    out.append(host_line(results, summ))
    for name in ("mq", "workflow"):
        r = t.get(name, {})
        if r.get("throughput_ratio_to_reference") is not None or r.get("p50_ratio_to_reference") is not None:
            out.append(
                f"{label(name)} vs the UNSAFE reference: throughput "
                f"{fmt_ratio(r.get('throughput_ratio_to_reference'))}, "
                f"median latency {fmt_ratio(r.get('p50_ratio_to_reference'))}, p99 "
                f"{fmt_ratio(r.get('p99_ratio_to_reference'))}, "
                f"CPU per order {fmt_ratio(r.get('cpu_ratio_to_reference'))} "
                f"({fmt_ratio(r.get('cpu_at_max_ratio_to_reference'))} at each one's max rate) "
                "-- the price of the guarantees."
            )
    mem = t.get("workflow-memory")
    if mem and "workflow" in t:
        wf = t["workflow"]
        gain = ratio(mem.get("peak_completed_per_s"), wf.get("peak_completed_per_s"))
        out.append(
            "Sensitivity: the workflow variant on an in-memory Temporal dev server (nothing persisted, "
            f"NOT a durable setup) sustains {num(mem['max_sustainable_rate'])}/s"
            + (" (the top of the ladder)" if mem.get("capped_by_ladder") else "")
            + f" (peak {num(mem.get('peak_completed_per_s'))} completed/s) vs "
            f"{num(wf['max_sustainable_rate'])}/s (peak {num(wf.get('peak_completed_per_s'))}/s) with the "
            "SQLite file: "
            + (
                f"the dev server's persistence costs the workflow variant about {fmt_ratio(gain)} "
                "in throughput."
                if gain is not None and gain >= 1.2
                else "the dev server's persistence is not what limits the workflow variant here."
            )
        )
    faults = results.get("faults") or {}
    if faults.get("available"):
        for line in faults.get("verdict", []):
            out.append(line)
    else:
        out.append(f"Anomaly matrix: not in this run ({faults.get('note', 'no fault data')}).")
    comp = results.get("complexity", {})
    if "mq" in comp and "workflow" in comp:
        m, w = comp["mq"], comp["workflow"]
        out.append(
            "Complexity: "
            f"MQ {len(m['deployment']['app_services'])} app services + "
            f"{len(m['deployment']['dependencies'])} dependencies, "
            f"{m['code']['lines_by_class'].get('plumbing', 0)} lines of plumbing vs "
            f"{m['code']['lines_by_class'].get('business', 0)} of business code; "
            f"workflow {len(w['deployment']['app_services'])} + {len(w['deployment']['dependencies'])}, "
            f"{w['code']['lines_by_class'].get('plumbing', 0)} plumbing vs "
            f"{w['code']['lines_by_class'].get('business', 0)} business."
        )
    load = results["meta"].get("machine", {}).get("load_avg_at_start")
    out.append(
        f"Caveat: one {results['meta'].get('machine', {}).get('logical_cpus')}-CPU machine shared by the "
        "load generator, "
        f"both variants' processes and PostgreSQL/RabbitMQ (load average at start {load}, at end "
        f"{results['meta'].get('load_avg_at_end')}); differences under ~20 % are within run-to-run noise."
    )
    if "workflow" in results.get("targets", {}):
        store = results["meta"].get("temporal_store", "sqlite")
        out.append(
            f"Caveat: Temporal here is the single-binary dev server with {store} persistence "
            + (
                "(durable, one writer process); "
                if store == "sqlite"
                else "(NOTHING persisted: an upper bound, not a durable setup); "
            )
            + "a Temporal cluster on PostgreSQL or Cassandra scales differently "
            "(deploy/ has the compose setup). "
            "RabbitMQ and PostgreSQL here are the production servers, single node."
        )
    return out


# --------------------------------------------------------------------------- the document


def _usage_rows(step: dict[str, Any]) -> list[list[str]]:
    return [
        [
            g,
            f"{u['cpu_s']:.2f}",
            f"{step['cpu_ms_per_order'].get(g, 0):.2f}",
            f"{u['peak_rss_mib']:.0f}",
            str(u["processes"]),
            u.get("note", ""),
        ]
        for g, u in step["resources"].items()
    ]


def build(results: dict[str, Any], out: Path) -> tuple[list[Block], list[Path]]:
    meta = results.get("meta", {})
    summ = summary(results)
    results["summary"] = summ
    results["verdict"] = verdict(results, summ)
    rate = summ["common_rate"]
    targets = results.get("targets", {})
    pngs: list[Path] = []

    def img(path: Path | None, caption: str) -> list[Block]:
        if path is None:
            return []
        pngs.append(path)
        return [Img(path, caption)]

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
    b.append(H(2, "Verdict"))
    b.append(Ul(list(results["verdict"])))

    b.append(H(2, "Headline figures"))
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
    rows = []
    n_runs = meta.get("repeat", 1)
    for name, r in summ["targets"].items():
        sus = r["max_sustainable_rate"]
        rows.append(
            [
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
        )
    b.append(
        Table(
            [
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
            ],
            rows,
        )
    )
    b += _spread_blocks(results, summ)
    if "reference" in targets:
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
    b += img(
        plots.latency_cdf(results, out, rate),
        f"Latency CDF at {num(rate)} orders/s, log axis (solid: to terminal; dotted: to 202).",
    )
    b += img(
        plots.latency_vs_rate(results, out),
        "Latency percentiles and completed throughput vs offered rate (lines: the first capacity search, "
        "its last step at each rate; faint dots: the other steps and searches).",
    )
    b += img(
        plots.resources(results, out, rate), f"CPU per completed order by process at {num(rate)} orders/s."
    )

    b += _host_blocks(results, summ)
    b += _breakdown_blocks(results, out, img)

    b.append(H(2, "Rate sweep"))
    b.append(
        P(
            "Capacity search per target: climb the ladder to the first failing rate, bisect between the "
            "last passing and the first failing rate until the gap is under "
            f"{_pct(meta.get('config', {}).get('bisect_gap', 0.1))} of the rate, then run the found rate "
            "once more (confirm): it must pass again, else the search steps down to the next lower rate "
            "that passed. A step that kept up but missed the bound is repeated once. `host`: outside load "
            "during the step (steal; cores busy outside the target and the load generator)."
        )
    )
    for name, t in targets.items():
        b.append(H(3, label(name)))
        if t.get("error"):
            b.append(P(f"**Run failed:** {t['error']}"))
        if not t.get("steps"):
            continue
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
        b.append(
            Table(
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
                        ms(s["deducted"]["p50_ms"]),
                        ms(s["accept"]["p99_ms"]),
                        str(s["errors"]),
                        ("ok" if s["passed"] else s["why"])
                        + (
                            f" (repeated: 1st attempt {s['first_attempt']})" if s.get("first_attempt") else ""
                        ),
                        _step_host(s.get("host")),
                    ]
                    for s in t["steps"]
                ],
            )
        )
        step = step_at(t, rate)
        if step is not None:
            b.append(P(f"Resources at {num(rate)} orders/s ({step['duration_s']:g} s + drain):"))
            b.append(
                Table(
                    ["process group", "CPU s", "CPU ms/order", "peak RSS MiB", "processes", "note"],
                    _usage_rows(step),
                )
            )

    b.append(H(2, "Burst absorption"))
    b.append(
        P(
            "A burst of 3x the sustained rate for 10 s over a base of half of it (capped). The question "
            "the seed raises: "
            "does the asynchronous design keep accepting quickly while the backlog absorbs the peak, and "
            "how long until "
            "it has drained? Drained = PENDING orders back to <= max(5, 2x the pre-burst level)."
        )
    )
    brow = []
    for name, t in targets.items():
        bu = t.get("burst")
        if bu:
            brow.append(
                [
                    label(name),
                    f"{bu['base_rate']:g} / {bu['peak_rate']:g}",
                    str(bu["sent"]),
                    str(bu["accepted"]),
                    ms(bu["accept_peak"]["p50_ms"]),
                    ms(bu["accept_peak"]["p99_ms"]),
                    ms(bu["terminal"]["p99_ms"]),
                    str(bu["max_pending"]),
                    num(bu["drain_s"], " s"),
                ]
            )
    if brow:
        b.append(
            Table(
                [
                    "target",
                    "base / peak orders/s",
                    "sent",
                    "accepted",
                    "202 p50 (peak)",
                    "202 p99 (peak)",
                    "terminal p99",
                    "max backlog",
                    "drained after",
                ],
                brow,
            )
        )
    b += _shaving_blocks(targets)
    cpus = results["meta"].get("machine", {}).get("logical_cpus")
    busy = [
        f"{label(name)}: {busiest(t['burst']['peak_cores'], top=6)} "
        f"(all groups together {sum(t['burst']['peak_cores'].values()):.2f})"
        for name, t in targets.items()
        if t.get("burst", {}).get("peak_cores")
    ]
    if busy:
        b.append(
            P(
                f"Where the peak queued: CPU each process group kept busy during the peak, in cores "
                f"(the machine has {cpus}; the load generator runs on it too). A group near 1.0 is a "
                "single-threaded process at its limit; a total near the machine's cores means the "
                "machine itself was the limit. " + "; ".join(busy) + "."
            )
        )
    for name in targets:
        b += img(
            plots.burst(results, out, name),
            f"{label(name)}: burst, backlog and latency over time (shaded: the burst).",
        )

    b.append(H(2, "Faults under load"))
    b.append(
        P(
            "Steady load while the inventory-side process is SIGKILLed (the supervisor restarts it) and "
            "later the "
            "order-side process is paused (SIGSTOP, then SIGCONT). Recovery = from the end of the fault "
            "window until "
            "the PENDING backlog is back to its pre-fault level."
        )
    )
    drow = []
    for name, t in targets.items():
        d = t.get("disturb")
        if d:
            for w in d["windows"]:
                drow.append(
                    [
                        label(name),
                        w["label"],
                        f"{w['start']:.1f}-{w['end']:.1f} s",
                        num(w["recovery_s"], " s"),
                        ms(d["terminal"]["p99_ms"]),
                        ", ".join(f"{k} {v}" for k, v in d["anomalies"].items()),
                    ]
                )
    if drow:
        b.append(
            Table(
                [
                    "variant",
                    "fault",
                    "window",
                    "recovery",
                    "terminal p99 (whole run)",
                    "anomalies after drain",
                ],
                drow,
            )
        )
    for name in targets:
        b += img(
            plots.over_time(results, out, name),
            f"{label(name)}: throughput and latency over time, fault windows shaded.",
        )

    b.append(H(2, "Consistency under the fault catalogue"))
    faults = results.get("faults") or {}
    if not faults.get("available"):
        b.append(P(f"Not in this run: {faults.get('note', 'no data')}."))
    else:
        b.append(P(faults.get("description", "")))
        b += img(
            plots.anomaly_matrix(results, out), "Anomaly matrix: scenario x variant (controls included)."
        )
        if faults.get("table"):
            b.append(Table(faults["table"]["headers"], faults["table"]["rows"]))

    b += _complexity_blocks(results)
    b.append(H(2, "Method"))
    b.append(
        P(
            "Each target ran alone, one after the other, with fresh databases, queue and task-queue names "
            "and a free "
            "API port (`python -m <package> up --reset` as real processes under the supervisor); the "
            "workflow variant "
            f"got a private Temporal dev server ({meta.get('temporal_store', 'sqlite')} persistence). Load: "
            "open loop, arrivals evenly "
            "spaced at the "
            "offered rate and fixed before the run; an arrival that finds every connection busy waits and "
            "its latency "
            f"keeps counting. Orders: {meta.get('order_shape')}. Terminal and deduction times are read "
            "from the "
            "databases after each step; an order not terminal when the wait ends is recorded at the "
            "censored value. "
            "completed/s = the step's orders that became terminal / (time from the step's start until the "
            "last of them did), so a step that passes can show a little less than offered. "
            "Histograms: HdrHistogram, 3 significant digits. Resource use: psutil every 0.5 s on the role "
            "processes "
            "(from their pid files), the PostgreSQL backends of the target's databases, the RabbitMQ node "
            "(shared: "
            "includes any other load) and the private Temporal server."
        )
    )
    b.append(P("Configuration: `" + ", ".join(f"{k}={v}" for k, v in meta.get("config", {}).items()) + "`"))
    return b, pngs


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def _step_host(host: dict[str, Any] | None) -> str:
    if not host:
        return "-"
    figures = (
        f"steal {num(host.get('steal_pct'), ' %')}, {num(_other_cores(host))} cores outside, "
        f"CPU psi {num(host.get('cpu_some_pct'), ' %')}"
    )
    return ("**outside load**: " if host.get("flags") else "ok: ") + figures


def _other_cores(host: dict[str, Any]) -> float | None:
    busy, own = host.get("busy_cores"), host.get("own_cores")
    return None if busy is None or own is None else round(max(busy - own, 0.0), 2)


def _spread_blocks(results: dict[str, Any], summ: dict[str, Any]) -> list[Block]:
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


def _pressure_cells(p: dict[str, Any]) -> list[str]:
    """CPU and IO pressure, busy cores, steal, load: the host table's measurement columns."""
    return [
        num(p.get("cpu_some_pct"), " %"),
        num(p.get("io_some_pct"), " %"),
        num(p.get("busy_cores")),
        num(p.get("steal_pct"), " %"),
        num(p.get("load1")),
    ]


def _host_blocks(results: dict[str, Any], summ: dict[str, Any]) -> list[Block]:
    meta = results.get("meta", {})
    th = meta.get("pressure_thresholds")
    b: list[Block] = [H(2, "Host pressure")]
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
                    *_pressure_cells(idle),
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
                    *_pressure_cells(whole),
                    f"{flags.get('flagged_steps', 0)} of {flags.get('steps', 0)} steps flagged",
                ]
            )
    run = meta.get("host") or {}
    if run:
        rows.append(
            [
                "whole run",
                f"{num(run.get('wall_s'), ' s')}",
                num(run.get("cpu_some_pct"), " %"),
                num(run.get("io_some_pct"), " %"),
                num(run.get("busy_cores")),
                num(run.get("steal_pct"), " %"),
                num(run.get("load1")),
                "",
            ]
        )
    b.append(
        Table(
            ["target", "window", "CPU some", "io some", "busy cores", "steal", "load avg 1m", "flags"], rows
        )
    )
    return b


def _breakdown_blocks(results: dict[str, Any], out: Path, img: Any) -> list[Block]:
    b: list[Block] = [H(2, "Latency breakdown per stage")]
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
    b += img(
        plots.breakdown(results, out),
        "Where the time goes: mean ms per stage, stacked, per variant and rate (the total is the mean "
        "POST -> terminal).",
    )
    return b


def _shaving_blocks(targets: dict[str, Any]) -> list[Block]:
    rows = []
    for name, t in targets.items():
        bu = t.get("burst") or {}
        sh = bu.get("shaving")
        if not sh:
            continue
        rows.append(
            [
                label(name),
                f"**{sh['verdict']}**" + (f": {'; '.join(sh['reasons'])}" if sh["reasons"] else ""),
                f"{sh['peak_rate']:g} / {sh['peak_completed_per_s']:g}",
                f"{sh['accepted_share']:.1%}",
                ms(sh["accept_p99_ms"]),
                f"{sh['api_in_flight_max']:,}",
                f"{sh['behind_api_max']:,}",
                ", ".join(f"{k} {v:,}" for k, v in sh["where_at_max"].items()),
                num(sh["drain_s"], " s"),
            ]
        )
    if not rows:
        return []
    return [
        P(
            "Peak shaving (削峰), judged per variant: it HELD when a peak that outran completion (completed "
            "< 90 % of the offered peak) was still accepted (>= 99 % got a 202, p99 <= 100 ms), more "
            "orders waited behind the API (accepted, not terminal: outbox, queues, consumers, Temporal) "
            "than in front of it (due and unanswered), and the backlog drained. A peak that did not outrun "
            "completion did not exercise the claim (`--inventory-delay-ms` makes consumption the "
            "bottleneck)."
        ),
        Table(
            [
                "variant",
                "claim",
                "peak offered / completed per s",
                "accepted (peak)",
                "202 p99 (peak)",
                "max unanswered at the API",
                "max behind the API",
                "where, at that moment",
                "drained after",
            ],
            rows,
        ),
    ]


def _suite_recovery(results: dict[str, Any], variant: str) -> str:
    runs = (results.get("faults") or {}).get("runs") or []
    parts = [
        f"{r['scenario']} {num(r.get('converge_s'), ' s')}"
        for r in runs
        if r["variant"] == variant and not r.get("control") and r["status"] in ("pass", "fail")
    ]
    return ", ".join(parts) or "not run"


def _complexity_blocks(results: dict[str, Any]) -> list[Block]:
    comp = results.get("complexity") or {}
    targets = results.get("targets", {})
    b: list[Block] = [H(2, "Operational complexity (measured)")]
    names = [n for n in ("mq", "workflow") if n in comp]
    if not names:
        return [*b, P("No variant analysed.")]

    def cell(n: str, f: Any) -> str:
        try:
            return str(f(n))
        except (KeyError, TypeError):
            return "-"

    def tables(n: str) -> str:
        t = targets.get(n, {}).get("tables") or {}
        app = sum(len(v) for v in t.values())
        extra = ""
        if n == "workflow" and targets.get(n, {}).get("temporal_tables") is not None:
            extra = f" + {targets[n]['temporal_tables']} in Temporal's store (dev server SQLite)"
        if n == "mq" and targets.get(n, {}).get("broker_queues"):
            extra = f" + {len(targets[n]['broker_queues'])} broker queues"
        listed = "; ".join(k + ": " + ", ".join(v) for k, v in t.items())
        return f"{app} ({listed}){extra}"

    rows = [
        [
            "deployable app services (docker-compose.yml)",
            *[cell(n, lambda n: ", ".join(comp[n]["deployment"]["app_services"])) for n in names],
        ],
        [
            "one-shot init jobs",
            *[cell(n, lambda n: ", ".join(comp[n]["deployment"]["init_jobs"])) for n in names],
        ],
        [
            "dependencies",
            *[cell(n, lambda n: ", ".join(comp[n]["deployment"]["dependencies"])) for n in names],
        ],
        [
            "stateful services (named volumes)",
            *[cell(n, lambda n: ", ".join(comp[n]["deployment"]["stateful"])) for n in names],
        ],
        ["tables (from the run's information_schema)", *[cell(n, tables) for n in names]],
        [
            "lines: business",
            *[cell(n, lambda n: comp[n]["code"]["lines_by_class"].get("business", 0)) for n in names],
        ],
        [
            "lines: plumbing",
            *[cell(n, lambda n: comp[n]["code"]["lines_by_class"].get("plumbing", 0)) for n in names],
        ],
        [
            "lines: API adapter / wiring / controls",
            *[
                cell(
                    n,
                    lambda n: " / ".join(
                        str(comp[n]["code"]["lines_by_class"].get(k, 0))
                        for k in ("API adapter", "wiring", "controls")
                    ),
                )
                for n in names
            ],
        ],
        [
            "lines: unclassified modules",
            *[cell(n, lambda n: comp[n]["code"]["lines_by_class"].get("unclassified", 0)) for n in names],
        ],
        [
            "settings read (knobs)",
            *[
                cell(
                    n,
                    lambda n: (
                        f"{len(comp[n]['code']['settings_read'])}: "
                        + ", ".join(comp[n]["code"]["settings_read"])
                    ),
                )
                for n in names
            ],
        ],
        [
            "hard-coded knobs",
            *[cell(n, lambda n: ", ".join(comp[n]["code"]["hardcoded_knobs"]) or "none") for n in names],
        ],
        [
            "exception handlers in app code",
            *[cell(n, lambda n: comp[n]["code"]["except_handlers"]) for n in names],
        ],
        *[
            [
                f"{who}: {k}",
                *[cell(n, lambda n, k=k, key=key: comp[n]["code"][key][k]) for n in names],
            ]
            for who, key in (
                ("handled by app code", "app_failure_sites"),
                ("delegated to the platform", "platform_failure_sites"),
            )
            for k in comp[names[0]]["code"].get(key, {})
        ],
        [
            "left behind after the run (manual interventions)",
            *[
                cell(
                    n,
                    lambda n: ", ".join(
                        f"{k} {v}" for k, v in (targets[n].get("leftovers") or {}).items() if v is not None
                    ),
                )
                for n in names
            ],
        ],
        [
            "recovery per fault (under load)",
            *[
                cell(
                    n,
                    lambda n: ", ".join(
                        f"{w['label']} {num(w['recovery_s'], ' s')}" for w in targets[n]["disturb"]["windows"]
                    ),
                )
                for n in names
            ],
        ],
        [
            "recovery per fault (fault suite, after the last fault)",
            *[cell(n, lambda n: _suite_recovery(results, n)) for n in names],
        ],
        [
            "one order in flight: how to see it",
            *[cell(n, lambda n: targets[n]["operator_view"]["how"]) for n in names],
        ],
    ]
    b.append(Table(["", *[label(n) for n in names]], rows))
    if "common" in comp:
        c = comp["common"]["code"]
        b.append(
            P(
                f"Shared by both (common/): {c['total_lines']} lines (domain, deduction rule, "
                "repositories, API contract, supervisor, faults), not counted above."
            )
        )
    b.append(P("Module classification (compare/report/complexity.py MODULE_CATEGORY):"))
    mrows = [
        [mod["module"], mod["category"], str(mod["lines"])]
        for n in names
        for mod in comp[n]["code"]["modules"]
    ]
    b.append(Table(["module", "category", "lines"], mrows))
    for n in names:
        view = targets.get(n, {}).get("operator_view") or {}
        if view.get("output"):
            b.append(
                P(f"{label(n)}: following order `{view.get('order_id')}` with `{view.get('command', '')}`:")
            )
            b.append(Pre("\n".join(view["output"])))
    return b


def render(results: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    blocks, pngs = build(results, out)
    md = out / "report.md"
    md.write_text(to_markdown(blocks))
    page = out / "report.html"
    page.write_text(to_html(blocks, "compare: outbox + RabbitMQ vs Temporal"))
    return [md, page, *pngs]

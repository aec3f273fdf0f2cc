"""The verdict: one line per claim (who wins, by the spread rule; peak shaving; faults; caveats)."""

from __future__ import annotations

from typing import Any

from compare.bench.burst import busiest
from compare.bench.spread import Spread, claim
from compare.report.figures import fmt_ratio, ms, num, ratio
from compare.report.plots import label
from compare.report.summary import flag_text


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
    if "mq" in t and "workflow" in t:
        out += _speed_lines(results, summ) + _burst_lines(results)
    for name in ("mq", "workflow"):
        bu = results["targets"].get(name, {}).get("burst") or {}
        if bu.get("shaving"):
            out.append(shaving_line(name, bu))
    if line := breakdown_line(results):
        out.append(line)
    out.append(host_line(results, summ))
    out += _reference_lines(t) + _sensitivity_lines(t) + _fault_and_complexity_lines(results)
    return out + _caveat_lines(results)


def _speed_lines(results: dict[str, Any], summ: dict[str, Any]) -> list[str]:
    """MQ vs workflow on rate, latency, CPU and memory, each by the spread rule."""
    out: list[str] = []
    t = summ["targets"]
    rate = summ["common_rate"]
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
                f"{label(n)} {num(x['max_sustainable_rate'])}/s" for n, x in (("mq", mq), ("workflow", wf))
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
    return out


def _burst_lines(results: dict[str, Any]) -> list[str]:
    """The burst figures side by side, and what each variant did under process faults."""
    out: list[str] = []
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
                f"{label(name)} under process faults at {d['rate']:g}/s: recovery {rec}; " + disturb_claim(d)
            )
    return out


def _reference_lines(t: dict[str, Any]) -> list[str]:
    """Each variant against the UNSAFE reference: the price of the guarantees."""
    out: list[str] = []
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
    return out


def _sensitivity_lines(t: dict[str, Any]) -> list[str]:
    """The workflow variant on an in-memory Temporal: how much its store costs."""
    out: list[str] = []
    mem = t.get("workflow-memory")
    if mem and "workflow" in t:
        wf = t["workflow"]
        # the report's throughput is the max sustainable rate: a cost is claimed only when that
        # shows it (a higher peak of completions alone, e.g. while missing the latency bound, is not)
        gain = ratio(mem.get("max_sustainable_rate"), wf.get("max_sustainable_rate"))
        out.append(
            "Sensitivity: the workflow variant on an in-memory Temporal dev server (nothing persisted, "
            f"NOT a durable setup) sustains {num(mem['max_sustainable_rate'])}/s"
            + (" (the top of the ladder)" if mem.get("capped_by_ladder") else "")
            + f" (peak {num(mem.get('peak_completed_per_s'))} completed/s) vs "
            f"{num(wf['max_sustainable_rate'])}/s (peak {num(wf.get('peak_completed_per_s'))}/s) with the "
            "SQLite file: "
            + _store_cost(gain)
        )
    return out


def _store_cost(gain: float | None) -> str:
    if gain is None:
        return "not judged: a max sustainable rate is missing."
    if gain >= 1.2:
        cost = fmt_ratio(gain)
        return f"the dev server's persistence costs the workflow variant about {cost} in throughput."
    return "the dev server's persistence is not what limits the workflow variant here."


def _fault_and_complexity_lines(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
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
    return out


def _caveat_lines(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
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

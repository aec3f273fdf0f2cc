"""The sections on behaviour under stress: a burst (peak shaving), faults under load, and
consistency under the fault catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compare.bench.burst import busiest
from compare.report import plots
from compare.report.document import Block, H, P, Table, image
from compare.report.figures import ms, num
from compare.report.plots import label


def burst_blocks(results: dict[str, Any], out: Path) -> list[Block]:
    """A 3x peak: acceptance, backlog, drain, peak shaving judged, where the peak queued."""
    targets = results.get("targets", {})
    b: list[Block] = []
    b.append(H(2, "Burst absorption", "burst"))
    b.append(
        P(
            "A burst of 3x the sustained rate for 10 s over a base of half of it (capped). The question "
            "the seed raises: "
            "does the asynchronous design keep accepting quickly while the backlog absorbs the peak, and "
            "how long until "
            "it has drained? Drained = PENDING orders back to <= max(5, 2x the pre-burst level)."
        )
    )
    b += _burst_table(targets)
    b += shaving_blocks(targets)
    b += _peak_cores_blocks(results)
    for name in targets:
        b += image(
            plots.burst(results, out, name),
            f"{label(name)}: burst, backlog and latency over time (shaded: the burst).",
        )

    return b


def shaving_blocks(targets: dict[str, Any]) -> list[Block]:
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


def disturb_blocks(results: dict[str, Any], out: Path) -> list[Block]:
    """Steady load while processes are killed and paused: recovery per fault window."""
    targets = results.get("targets", {})
    b: list[Block] = []
    b.append(H(2, "Faults under load", "faults-under-load"))
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
        b += image(
            plots.over_time(results, out, name),
            f"{label(name)}: throughput and latency over time, fault windows shaded.",
        )

    return b


def consistency_blocks(results: dict[str, Any], out: Path) -> list[Block]:
    """The fault suite's anomaly matrix and table."""
    b: list[Block] = []
    b.append(H(2, "Consistency under the fault catalogue", "consistency"))
    faults = results.get("faults") or {}
    if not faults.get("available"):
        b.append(P(f"Not in this run: {faults.get('note', 'no data')}."))
    else:
        b.append(P(faults.get("description", "")))
        b += image(
            plots.anomaly_matrix(results, out), "Anomaly matrix: scenario x variant (controls included)."
        )
        if faults.get("table"):
            b.append(Table(faults["table"]["headers"], faults["table"]["rows"]))

    return b


def _peak_cores_blocks(results: dict[str, Any]) -> list[Block]:
    """Where the peak queued: the cores each process group kept busy during it."""
    targets = results.get("targets", {})
    cpus = results["meta"].get("machine", {}).get("logical_cpus")
    busy = [
        f"{label(name)}: {busiest(t['burst']['peak_cores'], top=6)} "
        f"(all groups together {sum(t['burst']['peak_cores'].values()):.2f})"
        for name, t in targets.items()
        if t.get("burst", {}).get("peak_cores")
    ]
    if not busy:
        return []
    return [
        P(
            f"Where the peak queued: CPU each process group kept busy during the peak, in cores "
            f"(the machine has {cpus}; the load generator runs on it too). A group near 1.0 is a "
            "single-threaded process at its limit; a total near the machine's cores means the "
            "machine itself was the limit. " + "; ".join(busy) + "."
        )
    ]


def _burst_table(targets: dict[str, Any]) -> list[Block]:
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
    if not brow:
        return []
    return [
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
    ]

"""The figures the verdict and the tables compare: per target, at the common rate and at its max,
medians over the capacity searches with their spread, and the host-pressure flags."""

from __future__ import annotations

from typing import Any

from compare.bench.spread import Spread, spread
from compare.report.figures import ratio
from compare.report.plots import step_at


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


def rss_total(step: dict[str, Any]) -> float:
    return sum(u["peak_rss_mib"] for g, u in step["resources"].items() if g not in NOT_IN_TOTALS)


def cpu_total(step: dict[str, Any]) -> float:
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
        "cpu_ms_per_order_system": spread(cpu_total(s) for s in at_rate),
        "peak_rss_mib": spread(rss_total(s) for s in at_rate),
        "cpu_ms_per_order_at_max": spread(cpu_total(s) for s in at_max),
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
                row["peak_rss_mib_at_max"] = round(rss_total(top), 1)
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

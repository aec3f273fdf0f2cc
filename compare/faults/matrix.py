"""The anomaly matrix and recovery times for the report, from the fault suite's own API.

The scenarios, the nemesis and the checker belong to the fault suite (compare.faults.runner and
compare.faults.scenario); this module only chooses which scenarios the benchmark runs, calls
`compare.faults.runner.run_scenarios` (private PostgreSQL / RabbitMQ / Temporal servers, every control
with the scenario that must expose it) and reshapes its JSON results into the matrix
(scenario x variant, controls as their own columns) and a table. When the suite is not
importable, or fails, the report says so instead of showing anything made up.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# A few scenarios per variant that together touch each layer: a clean run, a crash right after
# the order commit (both), a killed inventory-side process, a PostgreSQL restart.
QUICK_SCENARIOS = [
    "baseline",
    "crash-after_order_commit",
    "kill-inventory-consumer",
    "kill-inventory-worker",
    "restart-postgres",
]

COMPLETED = ("pass", "fail")  # a fault-suite run that ran to the checker's verdict


def column(result: dict[str, Any]) -> str:
    return f"{result['variant']}:{result['control']}" if result.get("control") else result["variant"]


def matrix(runs: list[dict[str, Any]]) -> dict[str, dict[str, int | None]]:
    """scenario -> column -> total anomalies (None: the run did not complete)."""
    out: dict[str, dict[str, int | None]] = {}
    for r in runs:
        total = sum(r.get("anomalies", {}).values()) if r["status"] in COMPLETED else None
        out.setdefault(r["scenario"], {})[column(r)] = total
    return out


def table(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for r in runs:
        anomalies = ", ".join(f"{k} {v}" for k, v in r.get("anomalies", {}).items()) or "none"
        expected = ", ".join(r.get("expected", [])) or "-"
        rows.append(
            [
                column(r),
                r["scenario"],
                r["status"].upper(),
                anomalies,
                expected,
                "-" if r.get("converge_s") is None else f"{r['converge_s']:.1f} s",
                f"{r.get('duration_s', 0):.0f} s",
                (r.get("note") or "")[:120],
            ]
        )
    headers = [
        "variant / control",
        "scenario",
        "status",
        "anomalies",
        "control must show",
        "recovery",
        "run",
        "note",
    ]
    return {"headers": headers, "rows": rows}


def verdict_lines(runs: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for variant in ("mq", "workflow"):
        real = [r for r in runs if r["variant"] == variant and not r.get("control")]
        if real:
            bad = [r for r in real if r["status"] != "pass"]
            rec = [r["converge_s"] for r in real if r.get("converge_s") is not None]
            lines.append(
                f"Fault suite, {variant}: {len(real) - len(bad)}/{len(real)} scenarios consistent"
                + (f" (not: {', '.join(r['scenario'] + ' ' + r['status'] for r in bad)})" if bad else "")
                + (f"; recovery after the last fault {min(rec):.1f}-{max(rec):.1f} s" if rec else "")
                + "."
            )
    controls = [r for r in runs if r.get("control")]
    if controls:
        failed = failed_controls(runs)
        line = (
            f"Controls (deliberately broken): {len(controls) - len(failed)}/{len(controls)} showed the "
            "anomalies they must"
        )
        if failed:  # starts with FAILED: the report draws it in red, `compare run` exits 1
            line = f"FAILED: {line}; NOT {', '.join(failed)}: the checker was not shown to fail there."
        else:
            line += " (the checker can fail)."
        lines.append(line)
    return lines


def failed_controls(runs: list[dict[str, Any]]) -> list[str]:
    """Controls that did not show what they must (clean, not applied, broken): "variant:control scenario"."""
    return [f"{column(r)} {r['scenario']}" for r in runs if r.get("control") and r["status"] != "pass"]


async def run_fault_matrix(
    variants: list[str], *, full: bool, seed: int, out: Path, progress: Callable[[str], None]
) -> dict[str, Any]:
    try:
        from compare.faults.runner import run_scenarios
        from compare.faults.scenario import catalogue
    except ImportError as exc:
        progress(f"fault suite not available ({exc}); the anomaly matrix is left out")
        return {"available": False, "note": f"the fault suite could not be imported: {exc}", "runs": []}
    if not variants:
        return {"available": False, "note": "no variant chosen", "runs": []}
    known = {s.name for s in catalogue()}
    names = ["all"] if full else [n for n in QUICK_SCENARIOS if n in known]
    orders = 200 if full else 60
    try:
        results = await run_scenarios(
            variants,
            names,
            seed=seed,
            orders=orders,
            out_dir=out / "faults",
            progress=lambda m: progress(f"fault suite: {m}"),
            controls=True,
        )
    except Exception as exc:  # the benchmark's figures stay valid; say why this part is missing
        note = f"the fault suite failed: {type(exc).__name__}: {exc}".splitlines()[0]
        progress(note)
        return {"available": False, "note": note, "runs": []}
    runs = [r.model_dump(mode="json") for r in results]
    return {
        "available": True,
        "description": (
            f"{len(runs)} fault-suite runs "
            f"({'the whole catalogue' if names == ['all'] else ', '.join(names)}; "
            f"{orders} orders each; seed {seed}) on private PostgreSQL / RabbitMQ / Temporal servers, "
            "each control with the scenario that must expose it. Cell = anomalies found by the checker after "
            "recovery (0 = consistent). Details per run in faults/<label>.json and its history."
        ),
        "scenarios": names,
        "runs": runs,
        "matrix": matrix(runs),
        "table": table(runs),
        "verdict": verdict_lines(runs),
    }

"""`python -m compare run` (benchmark + report) and `python -m compare report RESULTS.json`.

run: for the UNSAFE reference and each chosen variant, on this machine, one after the other:
a host-pressure idle window and a capacity search (ladder, bisection, confirmation), `--repeat`
times; the per-stage latency breakdown at a low and a high rate (variants); burst (peak
shaving), faults under load (variants), leftovers, tables and the view of one order; then the
fault suite's scenarios (anomaly matrix, recovery times); then the code analysis; then
results.json, report.md, report.html and the PNG plots in --out. Exit 1 when a
target broke or a control came out clean (its verdict line, in red, says which).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.settings import Settings
from compare.bench import pressure
from compare.bench.breakdown import measure_breakdown
from compare.bench.burst import burst, disturb
from compare.bench.capacity import FULL, QUICK, BenchConfig, search_capacity
from compare.bench.load import put_stock
from compare.bench.metrics import machine_info
from compare.faults.matrix import failed_controls, run_fault_matrix
from compare.report.complexity import analyse_package, deployment
from compare.targets.inspection import leftovers, operator_view, temporal_tables
from compare.targets.probes import postgres_maintenance
from compare.targets.stage import TARGETS, Staged, staged

ROOT = Path(__file__).resolve().parent.parent
# The workflow variant again on an in-memory Temporal dev server (rate sweep only): how much of its
# figures is the dev server's persistence. Not durable, so never a candidate, only a sensitivity.
SENSITIVITY = "workflow-memory"
DEPENDENCIES = {
    "mq": ("postgres", "rabbitmq"),
    "workflow": ("postgres", "temporal"),
    "reference": ("postgres",),
}


class Progress:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = int(time.monotonic() - self.t0)
        print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True)


def _config(args: argparse.Namespace) -> BenchConfig:
    cfg = (FULL if args.mode == "full" else QUICK).model_copy(update={"seed": args.seed})
    if args.p99_bound_ms is not None:
        cfg = cfg.model_copy(update={"p99_bound_ms": args.p99_bound_ms})
    if args.rates:
        cfg = cfg.model_copy(update={"rates": sorted(args.rates)})
    if args.step_s:
        cfg = cfg.model_copy(update={"step_s": args.step_s})
    if args.no_faults:
        cfg = cfg.model_copy(update={"fault_scenarios": False})
    return cfg


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


async def bench_target(
    name: str,
    cfg: BenchConfig,
    base: Settings,
    out: Path,
    keep: bool,
    progress: Progress,
    temporal_store: str = "sqlite",
    inventory_delay_ms: float | None = None,
    repeat: int = 1,
) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name, "unsafe": name == "reference", "error": None}
    sensitivity = name == SENSITIVITY
    variant = "workflow" if sensitivity else name
    store = "memory" if sensitivity else temporal_store
    if sensitivity:
        result["sensitivity"] = (
            "workflow variant, in-memory Temporal dev server (NOT durable): one capacity search only"
        )
        repeat = 1
    started = time.monotonic()
    host_before = pressure.snapshot()
    progress(
        f"{name}: starting (fresh databases, names, "
        f"port{f', private Temporal dev server ({store})' if variant == 'workflow' else ''})"
    )
    faults = TARGETS[variant].slow_deduction(inventory_delay_ms) if inventory_delay_ms else ""
    stage = staged(variant, base, out, keep=keep, temporal_store=store, label=name, faults=faults)
    try:
        async with stage as st:
            result["startup_s"] = round(time.monotonic() - started, 1)
            result["settings"] = {
                "db_prefix": st.settings.db_prefix,
                "api_port": st.settings.api_port,
                "temporal_address": st.settings.temporal_address if name == "workflow" else None,
                "run_dir": str(st.settings.run_dir),
            }
            await put_stock(st.base_url, cfg.skus, cfg.stock_per_sku)
            await _capacity(st, cfg, result, repeat, progress)
            sustained = result["max_sustainable_rate"]
            basis = sustained or min(cfg.rates)
            if not sensitivity and name != "reference":
                result["breakdown"] = await _breakdown(st, cfg, sustained, progress)
            if not sensitivity:
                await _after_sweep(st, cfg, result, basis, progress, inventory_delay_ms)
        if name == "workflow":
            result["temporal_tables"] = temporal_tables(st.settings.temporal_db_file)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        progress(f"{name}: FAILED: {result['error']}")
    result["host"] = pressure.between(host_before, pressure.snapshot()).model_dump()
    result["duration_s"] = round(time.monotonic() - started, 1)
    progress(f"{name}: done in {result['duration_s']:.0f} s")
    return result


async def _capacity(
    st: Staged, cfg: BenchConfig, result: dict[str, Any], repeat: int, progress: Progress
) -> None:
    """`repeat` capacity searches, each after an idle window that measures outside load."""
    result["steps"] = []
    result["searches"] = []
    for i in range(repeat):
        idle = await pressure.idle_window(cfg.idle_window_s)
        if idle.flags:
            progress(f"{st.title}: HOST under outside load before search {i + 1}: {'; '.join(idle.flags)}")
        started = time.monotonic()
        found = await search_capacity(st, cfg, progress, i)
        result["steps"] += [s.model_dump() for s in found.steps]
        result["searches"].append(
            {
                "search": i,
                "max_sustainable_rate": found.max_rate,
                "highest_passed": found.highest_passed,
                "confirmed": found.confirmed,
                "capped_by_ladder": found.capped_by_ladder,
                "log": found.log,
                "idle": idle.model_dump(),
                "duration_s": round(time.monotonic() - started, 1),
            }
        )
    found_rates = [s["max_sustainable_rate"] for s in result["searches"]]
    known = [r for r in found_rates if r is not None]
    # A search that confirmed nothing counts as 0/s in the median: it did not sustain any rung.
    result["max_sustainable_rate"] = statistics.median(r or 0.0 for r in found_rates) if known else None
    result["capped_by_ladder"] = any(s["capped_by_ladder"] for s in result["searches"])
    result["peak_completed_per_s"] = max((s["completed_per_s"] for s in result["steps"]), default=None)


async def _breakdown(
    st: Staged, cfg: BenchConfig, sustained: float | None, progress: Progress
) -> list[dict[str, Any]]:
    """The per-stage latency breakdown at a low rate and at half the found max (when higher)."""
    rates = [("low", cfg.breakdown_low_rate)]
    if sustained and sustained / 2 >= 1.5 * cfg.breakdown_low_rate:
        rates.append(("high", float(round(sustained / 2))))
    out = []
    for label_, rate in rates:
        try:
            out.append((await measure_breakdown(st, cfg, rate, label_, progress)).model_dump())
        except Exception as exc:  # a probe failing must not lose the run's other figures
            progress(f"{st.title}: breakdown at {rate:g}/s failed: {type(exc).__name__}: {exc}")
            out.append({"rate": rate, "label": label_, "error": f"{type(exc).__name__}: {exc}"})
    return out


async def _after_sweep(
    st: Staged,
    cfg: BenchConfig,
    result: dict[str, Any],
    basis: float,
    progress: Progress,
    inventory_delay_ms: float | None = None,
) -> None:
    """Burst, faults under load, leftovers, tables and the operator's view of one order."""
    name = st.name
    if name != "reference" or cfg.mode == "full":
        result["burst"] = (await burst(st, cfg, basis, progress, inventory_delay_ms)).model_dump()
    rate = max(round(basis * 0.5, 1), min(cfg.rates))
    disturbed = await disturb(st, cfg, rate, progress)
    result["disturb"] = disturbed.model_dump() if disturbed else None
    result["leftovers"] = await leftovers(st)
    result["tables"] = await st.stores.tables()
    if st.broker is not None:
        result["broker_queues"] = sorted(st.broker.queues.values())
    sample_order = f"burst-{1:07d}" if "burst" in result else f"r0s00-{1:07d}"
    try:
        result["operator_view"] = await operator_view(st, sample_order)
    except Exception as exc:
        result["operator_view"] = {"error": f"{type(exc).__name__}: {exc}"}


async def run_all(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    cfg = _config(args)
    progress = Progress()
    out: Path = args.out.resolve()
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    base = Settings()
    started = datetime.now(UTC)
    slowed = args.inventory_delay_ms is not None
    if slowed and not args.no_reference:
        progress("--inventory-delay-ms: the reference has no separate inventory step; left out")
    names = ([] if args.no_reference or slowed else ["reference"]) + list(args.variants)
    if "workflow" in names and args.temporal_store == "sqlite" and not args.no_sensitivity:
        names.append(SENSITIVITY)
    progress(
        f"compare run --{cfg.mode}: targets {', '.join(names)}; {args.repeat} capacity search(es) "
        f"each; output {out}"
    )
    host_before = pressure.snapshot()
    results: dict[str, Any] = {
        "meta": {
            "command": "python -m compare " + " ".join(shlex.quote(a) for a in argv),
            "mode": cfg.mode,
            "seed": cfg.seed,
            "repeat": args.repeat,
            "pressure_thresholds": {
                "idle_cpu_some_pct": pressure.IDLE_CPU_SOME_PCT,
                "idle_busy_cores": pressure.IDLE_BUSY_CORES,
                "steal_pct": pressure.STEAL_PCT,
                "step_unattributed_cores": pressure.STEP_UNATTRIBUTED_CORES,
            },
            "started": started.isoformat(timespec="seconds"),
            "git_commit": _git_commit(),
            "machine": machine_info(),
            "postgres": await postgres_maintenance(base),
            "config": cfg.model_dump(),
            "p99_bound_ms": cfg.p99_bound_ms,
            "temporal_store": args.temporal_store,
            "inventory_delay_ms": args.inventory_delay_ms,
            "order_shape": "1 line (70 %) or 2 lines (30 %) over "
            f"{cfg.skus} SKUs, quantity 1-3, stock {cfg.stock_per_sku:,} per SKU (no rejections)",
            "python": platform.python_version(),
        },
        "targets": {},
    }
    for name in names:
        results["targets"][name] = await bench_target(
            name,
            cfg,
            base,
            out,
            args.keep,
            progress,
            args.temporal_store,
            args.inventory_delay_ms,
            args.repeat,
        )
    if cfg.fault_scenarios:
        progress(
            "fault suite: "
            + ("the whole catalogue" if cfg.mode == "full" else "a few scenarios")
            + " + controls"
        )
        results["faults"] = await run_fault_matrix(
            list(args.variants), full=cfg.mode == "full", seed=cfg.seed, out=out, progress=progress
        )
    else:
        results["faults"] = {"available": False, "note": "skipped (--no-faults)", "runs": []}
    results["complexity"] = {
        v.name: {
            "code": analyse_package(ROOT, v.package).model_dump(),
            "deployment": deployment(ROOT, v.name, v.roles, DEPENDENCIES[v.name]).model_dump(),
        }
        for v in (TARGETS[n] for n in args.variants)
    }
    results["complexity"]["common"] = {"code": analyse_package(ROOT, "common").model_dump()}
    finished = datetime.now(UTC)
    results["meta"]["finished"] = finished.isoformat(timespec="seconds")
    results["meta"]["duration_s"] = round((finished - started).total_seconds(), 1)
    results["meta"]["host"] = pressure.between(host_before, pressure.snapshot()).model_dump()
    results["meta"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def run_command(args: argparse.Namespace) -> int:
    argv = sys.argv[1:] if sys.argv and sys.argv[0].endswith(("__main__.py", "compare")) else ["run"]
    from compare.report.render import render  # matplotlib: only for the commands that draw

    results = asyncio.run(run_all(args, argv))
    out: Path = args.out.resolve()
    files = render(results, out)  # adds the summary and verdict it computed
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {path} and {', '.join(f.name for f in files)} in {out}", file=sys.stderr)
    print(str(out / "report.html"))
    for line in results.get("verdict", []):
        if line.startswith("FAILED"):
            red = sys.stderr.isatty()
            print(f"\033[31m{line}\033[0m" if red else line, file=sys.stderr)
    return exit_status(results)


def exit_status(results: dict[str, Any]) -> int:
    """1 when a target broke or a control came out clean (the checker was not shown to fail)."""
    broken = any(t.get("error") is not None for t in results["targets"].values())
    return 1 if broken or failed_controls((results.get("faults") or {}).get("runs", [])) else 0


def report_command(args: argparse.Namespace) -> int:
    try:
        results = json.loads(args.results.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: cannot read {args.results}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(results, dict) or "targets" not in results:
        print(f"error: {args.results} is not a compare results.json (no 'targets')", file=sys.stderr)
        return 2
    from compare.report.render import render

    out = (args.out or args.results.parent).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files = render(results, out)
    print(f"wrote {', '.join(f.name for f in files)} in {out}", file=sys.stderr)
    return 0

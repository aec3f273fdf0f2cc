"""`python -m compare faults` and `python -m compare scenarios`.

    python -m compare scenarios
    python -m compare faults --variant mq|workflow|both --scenario NAME|all [--seed N] [--orders N]
                             [--out DIR] [--controls] [--external]

--scenario may be given several times. --variant also takes one control, e.g. mq:no-dedup.
--controls adds every control of the chosen variants (each with the scenario that must expose it).
--external uses the servers from the CC_* settings instead of private ones (no dependency restarts).
The exit code is 0 when every run passed, 1 when any failed or broke.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

from common.settings import Settings
from compare.runner import ScenarioResult, plan_cases, run_scenarios
from compare.sandbox import Sandbox
from compare.scenario import CONTROLS, catalogue


def register(sub: Any) -> None:
    faults = sub.add_parser("faults", help="run fault scenarios against the variants and check them")
    faults.add_argument("--variant", action="append", default=None,
                        help="mq, workflow, both, or a control such as mq:no-dedup (repeatable)")  # fmt: skip
    faults.add_argument(
        "--scenario", action="append", default=None, help="a scenario name or all (repeatable)"
    )
    faults.add_argument("--seed", type=int, default=1)
    faults.add_argument("--orders", type=int, default=200)
    faults.add_argument("--rate", type=float, default=None, help="orders offered per second (default 25)")
    faults.add_argument("--out", type=Path, default=Path("results/faults"))
    faults.add_argument("--controls", action="store_true", help="also run every control of the variants")
    faults.add_argument("--external", action="store_true", help="use the CC_* servers, not private ones")
    faults.add_argument("--recovery", type=float, default=60.0, help="seconds allowed to converge")
    faults.add_argument("--dry-run", action="store_true", help="list the runs, run nothing")
    faults.set_defaults(func=_faults)

    scenarios = sub.add_parser("scenarios", help="list the fault scenarios and what each threatens")
    scenarios.set_defaults(func=_scenarios)


def _variants(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or ["both"]:
        out += ["mq", "workflow"] if value == "both" else [value]
    return out


def _faults(args: argparse.Namespace) -> int:
    variants = _variants(args.variant)
    scenarios = args.scenario or ["all"]
    cases = plan_cases(variants, scenarios, controls=args.controls)
    if not cases:
        print("nothing to run: no scenario applies to these variants", file=sys.stderr)
        return 2
    if args.dry_run:
        for case in cases:
            print(case.label)
        return 0
    sandbox = None
    if args.external:
        s = Settings()
        sandbox = Sandbox.external(s.pg_url, s.amqp_url, s.temporal_address)
    print(
        f"{len(cases)} runs, seed {args.seed}, {args.orders} orders each; results in {args.out}/", flush=True
    )
    results = asyncio.run(
        run_scenarios(
            variants,
            scenarios,
            args.seed,
            args.orders,
            args.out,
            _print,
            controls=args.controls,
            sandbox=sandbox,
            recovery_s=args.recovery,
            rate=args.rate,
        )
    )
    print()
    print(summary_table(results))
    print(f"\nJSON: {args.out / 'faults.json'}")
    return 0 if all(r.status in ("pass", "skipped") for r in results) else 1


def _print(line: str) -> None:
    print(line, flush=True)


def summary_table(results: list[ScenarioResult]) -> str:
    """One screen: a row per run."""
    width = shutil.get_terminal_size((200, 40)).columns if sys.stdout.isatty() else 250
    header = f"{'variant':<26} {'scenario':<38} {'result':<7} {'conv s':>7}  anomalies"
    rows = [header, "-" * min(width, len(header) + 30)]
    for r in results:
        who = f"{r.variant}:{r.control}" if r.control else r.variant
        conv = f"{r.converge_s:.1f}" if r.converge_s is not None else ("-" if r.converged else "never")
        if r.status in ("skipped", "error"):
            conv = "-"
        anomalies = ", ".join(f"{k}={v}" for k, v in r.anomalies.items()) or "none"
        if r.control:
            anomalies += f"  (expects {'/'.join(r.expected)})"
        if r.status in ("error", "skipped") and r.note:
            anomalies = r.note
        rows.append(f"{who:<26} {r.scenario:<38} {r.status.upper():<7} {conv:>7}  {anomalies}"[:width])
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error", "skipped")}
    rows.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" (of {len(results)} runs)")
    return "\n".join(rows)


def _scenarios(_: argparse.Namespace) -> int:
    for s in catalogue():
        variants = ", ".join(sorted(s.plans))
        flags = " [private sandbox]" if s.destructive else ""
        print(f"{s.name}  ({variants}){flags}")
        print(textwrap.fill(s.description, 100, initial_indent="    ", subsequent_indent="    "))
        print(
            textwrap.fill(f"threatens: {s.threatens}", 100, initial_indent="    ", subsequent_indent="    ")
        )
    print("\ncontrols (deliberately broken, run with --controls or --variant VARIANT:CONTROL):")
    for c in CONTROLS:
        print(f"{c.variant}:{c.control}  -> {c.scenario}, must show {' or '.join(c.expect)}")
        print(textwrap.fill(c.why, 100, initial_indent="    ", subsequent_indent="    "))
    return 0

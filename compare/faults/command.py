"""`python -m compare faults` and `python -m compare scenarios` (arguments: compare.cli)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import textwrap
from pathlib import Path

from common.settings import Settings
from compare.faults.runner import ScenarioResult, plan_cases, run_scenarios
from compare.faults.scenario import CONTROLS, catalogue
from compare.targets.compose import ComposeError
from compare.targets.deployment import Deployment, DeploymentError, from_addresses, from_compose, wait_ready
from compare.targets.sandbox import Sandbox


def _variants(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or ["both"]:
        out += ["mq", "workflow"] if value == "both" else [value]
    return out


def faults_command(args: argparse.Namespace) -> int:
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
    target = "external" if args.external else args.target
    sandbox = None
    deployment = None
    try:
        if target == "external":
            s = Settings()
            sandbox = Sandbox.external(s.pg_url, s.amqp_url, s.temporal_address)
        elif target in ("compose", "addresses"):
            deployment = asyncio.run(_deployment(target, args, sorted({c.variant for c in cases})))
            print(deployment.describe(), flush=True)
    except (ValueError, DeploymentError, ComposeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
            deployment=deployment,
            recovery_s=args.recovery,
            rate=args.rate,
        )
    )
    print()
    print(summary_table(results))
    print(f"\nJSON: {args.out / 'faults.json'}")
    code = exit_code(results, allow_skips=args.allow_skips)
    if code and all(r.status in ("pass", "skipped") for r in results):
        print("runs were skipped: exit 1 (give --allow-skips where skips are expected)")
    return code


def exit_code(results: list[ScenarioResult], *, allow_skips: bool) -> int:
    """0 when every run passed (or was skipped, with allow_skips), else 1."""
    ok: tuple[str, ...] = ("pass", "skipped") if allow_skips else ("pass",)
    return 0 if all(r.status in ok for r in results) else 1


def per_variant(values: list[str] | None, variants: list[str], what: str) -> dict[str, str]:
    """VARIANT=VALUE pairs, or one bare VALUE when one variant is chosen."""
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if sep and name in ("mq", "workflow"):
            out[name] = rest
        elif (len(variants) == 1 and not sep) or (len(variants) == 1 and name not in ("mq", "workflow")):
            out[variants[0]] = value
        else:
            raise ValueError(f"{what} {value!r}: write VARIANT=VALUE (mq= or workflow=)")
    return out


async def _deployment(target: str, args: argparse.Namespace, variants: list[str]) -> Deployment:
    """The deployment named on the command line, checked to answer before any run starts."""
    if target == "compose":
        files = args.compose_file or [Path("docker-compose.yml")]
        deployment = await from_compose(files, variants, env_files=args.compose_env_file or [])
    else:
        urls = per_variant(args.api_url, variants, "--api-url")
        missing = [v for v in variants if v not in urls]
        if missing:
            raise ValueError(f"--target addresses needs --api-url for {', '.join(missing)}")
        run_dirs = {v: Path(d) for v, d in per_variant(args.run_dir, variants, "--run-dir").items()}
        deployment = from_addresses(urls, run_dirs)
    for deployed in deployment.variants.values():
        await wait_ready(deployed.api_url, timeout=args.wait_ready)
    return deployment


def _print(line: str) -> None:
    print(line, flush=True)


def summary_table(results: list[ScenarioResult]) -> str:
    """One screen: a row per run."""
    width = shutil.get_terminal_size((200, 40)).columns if sys.stdout.isatty() else 250
    header = f"{'variant':<26} {'scenario':<38} {'result':<11} {'conv s':>7} {'accept':>6}  anomalies"
    rows = [header, "-" * min(width, len(header) + 30)]
    for r in results:
        who = f"{r.variant}:{r.control}" if r.control else r.variant
        conv = f"{r.converge_s:.1f}" if r.converge_s is not None else ("-" if r.converged else "never")
        if r.status in ("skipped", "error"):
            conv = "-"
        share = r.verdict.summary.accepted_fraction if r.verdict else None
        accept = f"{share:.0%}" if share is not None else "-"
        anomalies = ", ".join(f"{k}={v}" for k, v in r.anomalies.items()) or "none"
        if r.control:
            anomalies += f"  (expects {'/'.join(r.expected)})"
        if r.status in ("error", "skipped", "not-applied") and r.note:
            anomalies = r.note
        row = f"{who:<26} {r.scenario:<38} {r.status.upper():<11} {conv:>7} {accept:>6}  {anomalies}"
        rows.append(row[:width])
    statuses = ("pass", "fail", "not-applied", "error", "skipped")
    counts = {s: sum(r.status == s for r in results) for s in statuses}
    rows.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" (of {len(results)} runs)")
    return "\n".join(rows)


def scenarios_command(_: argparse.Namespace) -> int:
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
        print(f"{c.variant}:{c.control}  -> {c.scenario}, must show {' and '.join(c.expect)}")
        print(textwrap.fill(c.why, 100, initial_indent="    ", subsequent_indent="    "))
    return 0

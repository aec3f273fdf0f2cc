"""`python -m compare`: every subcommand's arguments, in one place.

    run        benchmark the variants and the unsafe reference, write the report   (compare.run)
    report     re-render a report from its results.json                            (compare.run)
    faults     run fault scenarios against the variants and check them      (compare.faults.command)
    scenarios  list the fault scenarios and what each threatens             (compare.faults.command)

Parsing imports nothing heavy: a subcommand's module is imported only once it is chosen, so
`--help` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

FAULTS_DESCRIPTION = """\
    python -m compare faults --variant mq|workflow|both --scenario NAME|all [--seed N] [--orders N]
                             [--out DIR] [--controls] [--target local|external|compose|addresses]
                             [--allow-skips]

--scenario may be given several times. --variant also takes one control, e.g. mq:no-dedup.
--controls adds every control of the chosen variants (each with the scenario that must expose it).
--target says what the runs act on (compare.targets.deployment):
  local      (default) the suite starts private PostgreSQL / RabbitMQ / Temporal and the variants
  external   the suite starts the variants on the servers of the CC_* settings (no dependency
             restarts); --external is the same
  compose    a running `docker compose` deployment of --compose-file (default docker-compose.yml)
             and --compose-env-file (what `docker compose --env-file` was given, if anything);
             container kills / pauses / partitions / dependency restarts where an engine answers
  addresses  variants already running at --api-url (VARIANT=URL), dependencies from CC_*; process
             faults through the supervisor's pid files when --run-dir (VARIANT=DIR) is given
Against compose and addresses the runs that need fault points, fault proxies, partitions the
target cannot make, or the controls are skipped, each with its reason. A skipped run is not a
pass: the exit code is 0 when every run passed (skipped ones too with --allow-skips), 1 when any
failed, was not applied (a fault that never fired or an injector that missed), broke or was
skipped without --allow-skips, 2 when the target cannot be used.
"""


def milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds") from None
    if not 0 < value <= 60_000:
        raise argparse.ArgumentTypeError(f"{text} ms: give a delay above 0 and at most 60000")
    return value


def repeats(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 20:
        raise argparse.ArgumentTypeError(f"{text}: give between 1 and 20 repeats")
    return value


def _add_run(sub: Any) -> None:
    run = sub.add_parser("run", help="benchmark both variants and the unsafe reference, write the report")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", action="store_const", dest="mode", const="quick", help="about 10 min (default)"
    )
    mode.add_argument(
        "--full", action="store_const", dest="mode", const="full", help="whole rate sweep and matrix"
    )
    run.add_argument(
        "--variants",
        nargs="*",
        choices=["mq", "workflow"],
        default=["mq", "workflow"],
        help="variants to run (default: both; none = the reference only)",
    )
    run.add_argument("--no-reference", action="store_true", help="skip the unsafe reference path")
    run.add_argument("--no-faults", action="store_true", help="skip the fault suite's anomaly matrix")
    run.add_argument("--out", type=Path, default=Path("report"), help="output directory (default: report)")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--p99-bound-ms", type=float, default=None, help="latency bound for 'sustainable'")
    run.add_argument("--rates", type=float, nargs="+", default=None, help="override the offered rates")
    run.add_argument("--step-s", type=float, default=None, help="override seconds per rate step")
    run.add_argument(
        "--repeat",
        type=repeats,
        default=1,
        metavar="N",
        help="run each target's capacity search N times and report the spread (default 1)",
    )
    run.add_argument("--keep", action="store_true", help="keep the run's databases and queues")
    run.add_argument(
        "--no-sensitivity",
        action="store_true",
        help="skip the workflow-memory sweep (workflow variant on an in-memory, non-durable Temporal)",
    )
    run.add_argument(
        "--temporal-store",
        choices=["sqlite", "memory"],
        default="sqlite",
        help="the private Temporal dev server's persistence: sqlite (durable, default) or "
        "memory (nothing persisted: an upper bound, not a durable setup)",
    )
    run.add_argument(
        "--inventory-delay-ms",
        type=milliseconds,
        default=None,
        metavar="MS",
        help="a slow inventory service: every deduction takes MS longer in both variants (the "
        "reference, which has no separate inventory step, is left out)",
    )
    run.set_defaults(command_at="compare.run:run_command", mode="quick")

    report = sub.add_parser("report", help="re-render report.md/html and plots from a results.json")
    report.add_argument("results", type=Path)
    report.add_argument("--out", type=Path, default=None, help="default: the results file's directory")
    report.set_defaults(command_at="compare.run:report_command")


def _add_faults(sub: Any) -> None:
    faults = sub.add_parser(
        "faults",
        help="run fault scenarios against the variants and check them",
        description=FAULTS_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = faults.add_argument
    add(
        "--variant",
        action="append",
        default=None,
        help="mq, workflow, both, or a control such as mq:no-dedup (repeatable)",
    )
    add("--scenario", action="append", default=None, help="a scenario name or all (repeatable)")
    add("--seed", type=int, default=1)
    add("--orders", type=int, default=200)
    add("--rate", type=float, default=None, help="orders offered per second (default 25)")
    add("--out", type=Path, default=Path("results/faults"))
    add("--controls", action="store_true", help="also run every control of the variants")
    add(
        "--target",
        choices=("local", "external", "compose", "addresses"),
        default="local",
        help="what the runs act on (below)",
    )
    add("--external", action="store_true", help="the same as --target external")
    add(
        "--compose-file",
        action="append",
        type=Path,
        default=None,
        help="compose file (repeatable; default docker-compose.yml)",
    )
    add(
        "--compose-env-file",
        action="append",
        type=Path,
        default=None,
        help="the deployment's `docker compose --env-file` (repeatable)",
    )
    add(
        "--api-url",
        action="append",
        default=None,
        help="--target addresses: VARIANT=URL (or URL with one variant)",
    )
    add(
        "--wait-ready",
        type=float,
        default=15.0,
        metavar="S",
        help="compose / addresses: seconds to wait for the APIs' /readyz (15)",
    )
    add(
        "--run-dir",
        action="append",
        default=None,
        help="--target addresses: VARIANT=DIR, a variant's CC_RUN_DIR (or DIR)",
    )
    add("--recovery", type=float, default=60.0, help="seconds allowed to converge")
    add("--dry-run", action="store_true", help="list the runs, run nothing")
    add(
        "--allow-skips",
        action="store_true",
        help="exit 0 even if runs were skipped (the target cannot take them)",
    )
    faults.set_defaults(command_at="compare.faults.command:faults_command")

    scenarios = sub.add_parser("scenarios", help="list the fault scenarios and what each threatens")
    scenarios.set_defaults(command_at="compare.faults.command:scenarios_command")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m compare",
        description="Compare the MQ and workflow variants: benchmark, faults, report.",
    )
    sub = top.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_faults(sub)
    return top


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handled as SIGINT is: by asyncio.run's handler (cancel the main task) or Python's
    (KeyboardInterrupt). A shell starting the command in the background makes it ignore SIGINT,
    and then asyncio.run installs none: SIGTERM still interrupts."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # SIGTERM (a timeout, a CI runner, `kill`) stops a command the way Ctrl-C does: the running
    # work is cancelled and what it staged (servers, roles, databases) is torn down on the way
    # out, instead of the process dying at once and leaving those running.
    signal.signal(signal.SIGTERM, _interrupt)
    module, _, name = args.command_at.partition(":")
    try:
        return int(getattr(importlib.import_module(module), name)(args))
    except KeyboardInterrupt:
        return 130
    except KeyError as exc:  # a lookup that names what was unknown: its message alone
        print(f"error: {exc.args[0] if exc.args else exc}".splitlines()[0], file=sys.stderr)
        return 1
    except Exception as exc:  # one readable line, never a traceback for the user
        print(f"error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1

"""Top-level CLI: each command family registers its own subcommands.

- compare.run_cli:    run, report   (benchmark + report; issue 6)
- compare.faults_cli: faults, scenarios (fault suite; issue 5)

Each module exposes `register(subparsers) -> None`; a subcommand sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ("compare.run_cli", "compare.faults_cli")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compare",
        description="Compare the MQ and workflow variants: benchmark, faults, report.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one readable line, never a traceback for the user
        print(f"error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1

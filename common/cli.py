"""The command line every variant offers: init, up, role. Errors end in one readable line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import uvloop

from common.faults import Faults, FaultSpecError
from common.settings import Settings
from common.supervisor import Role, Supervisor

RoleMain = Callable[[Settings, Faults], Awaitable[None]]


@dataclass(frozen=True)
class Tool:
    """An operator command of a variant (`python -m <variant> <name> ...`): recovery, retention."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Settings, argparse.Namespace], Awaitable[None]]


def older_than(default_setting: str) -> Callable[[argparse.ArgumentParser], None]:
    """The `--older-than S` argument of a retention or recovery tool (default: a setting)."""

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--older-than", type=float, default=None, metavar="S",
                       help=f"seconds (default: the {default_setting} setting)")  # fmt: skip

    return add


@contextlib.asynccontextmanager
async def _nothing(_: Settings) -> AsyncIterator[None]:
    yield


def _no_controls(text: str) -> None:
    if text:
        raise ValueError(f"this target has no controls (got {text!r})")


@dataclass(frozen=True)
class VariantSpec:
    package: str
    title: str
    default_api_port: int
    init: Callable[[Settings, bool], Awaitable[None]]
    roles: Mapping[str, RoleMain]
    # Dependencies the variant brings up itself around `up` (the Temporal dev server).
    dependencies: Callable[[Settings], AbstractAsyncContextManager[None]] = field(default=_nothing)
    # Parses CC_CONTROL, raising ValueError for an unknown one, so that a typo fails at once.
    parse_control: Callable[[str], object] = field(default=_no_controls)
    # What --reset does, for `init --help` and `up --help` ("" keeps the generic wording).
    reset_help: str = ""
    tools: Mapping[str, Tool] = field(default_factory=dict)
    # Roles `up` leaves out under these settings (e.g. standbys switched off).
    left_out: Callable[[Settings], set[str]] = field(default=lambda _: set())


def _parser(spec: VariantSpec) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m {spec.package}", description=spec.title)
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create databases, tables and topology (idempotent)")
    init.add_argument("--reset", action="store_true", help=spec.reset_help or "drop and recreate everything")
    up = sub.add_parser("up", help="init, then run every role supervised until Ctrl-C")
    up.add_argument("--api-port", type=int, default=None)
    up.add_argument("--reset", action="store_true", help=spec.reset_help or "start from empty databases")
    role = sub.add_parser("role", help="run one role in this process (the supervisor uses this)")
    role.add_argument("name", choices=sorted(spec.roles))
    for name, tool in spec.tools.items():
        tool.arguments(sub.add_parser(name, help=tool.help, description=tool.help))
    return p


async def _run_role(main: RoleMain, settings: Settings, name: str) -> None:
    faults = Faults.from_text(settings.faults, name, settings.run_dir)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await main(settings, faults)


async def _up(spec: VariantSpec, settings: Settings, reset: bool) -> None:
    async with spec.dependencies(settings):
        await spec.init(settings, reset)
        skip = spec.left_out(settings)
        argv = [sys.executable, "-m", spec.package, "role"]
        roles = [Role(name, [*argv, name]) for name in spec.roles if name not in skip]
        if "api" in spec.roles:  # copies share the port (SO_REUSEPORT): the kernel spreads connections
            copies = range(2, settings.api_processes + 1)
            roles += [Role(f"api-{i}", [*argv, "api"], kind="api") for i in copies]
        env = {"CC_API_PORT": str(settings.api_port)}
        print(f"{spec.title}: API on http://{settings.api_host}:{settings.api_port}", flush=True)
        await Supervisor(roles, settings.run_dir, env).run()


def main(spec: VariantSpec, argv: list[str] | None = None) -> int:
    args = _parser(spec).parse_args(argv)
    try:
        settings = Settings()
        if args.command == "up" and args.api_port is None:
            args.api_port = settings.api_port if "CC_API_PORT" in os.environ else spec.default_api_port
        if args.command == "up":
            settings = settings.model_copy(update={"api_port": args.api_port})
        Faults.from_text(settings.faults, "check", settings.run_dir)  # fail fast on bad specs
        spec.parse_control(settings.control)
        if args.command == "init":
            asyncio.run(spec.init(settings, args.reset))
            print(f"{spec.package}: initialised", flush=True)
        elif args.command == "up":
            asyncio.run(_up(spec, settings, args.reset))
        elif args.command in spec.tools:
            asyncio.run(spec.tools[args.command].run(settings, args))
        else:
            # uvloop: the roles are I/O loops (HTTP, PostgreSQL, AMQP, gRPC); its event loop
            # costs a fraction of the default one's CPU per socket operation.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(_run_role(spec.roles[args.name], settings, args.name))
    except KeyboardInterrupt:
        return 130
    except (FaultSpecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the one readable line; details belong to logs, not a traceback
        print(f"error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    return 0

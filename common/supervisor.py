"""Run a variant's roles as separate OS processes; restart a crashed one with backoff.

Each role's output is prefixed with its name. Each role's pid is written to
<run_dir>/pids/<role>.pid so that tests and the fault suite can signal it for real.
SIGTERM / SIGINT stop every role (SIGTERM, then SIGKILL after a grace period).

Every role gets the same environment, except for per-role overrides in CC_ROLE_ENV, a JSON object
{"<role>": {"CC_NAME": "value", ...}} (the fault suite uses it to route each role to a dependency
through its own fault proxy, so that one role can be cut off alone), and CC_ROLE_PREFIX,
{"<role>": ["ip", "netns", "exec", "NS"]}, a command the role's argv is run under (the fault suite
runs a role in its own network namespace for kernel-level partitions).

KeptAlive does the same for one dependency a variant starts for itself (the Temporal dev server
of the workflow variant): started and awaited before the roles, restarted with the same backoff
when it dies, its pid in <run_dir>/pids/<name>.pid, stopped after the roles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from common.backoff import Backoff

STABLE_AFTER_S = 10.0
GRACE_S = 10.0
ROLE_BACKOFF = (0.5, 10.0)  # initial and maximum delay before a restart, in seconds


@dataclass(frozen=True)
class Role:
    name: str
    argv: list[str]
    kind: str = ""  # the role it is a copy of (api-2 of api): CC_ROLE_ENV / CC_ROLE_PREFIX are per kind

    @property
    def overrides_key(self) -> str:
        return self.kind or self.name


def pid_file(run_dir: Path, role: str) -> Path:
    return run_dir / "pids" / f"{role}.pid"


def copies(run_dir: Path, role: str) -> list[str]:
    """The role and its copies that `up` runs (`api`, `api-2`, ...), by their pid files."""
    found = [p.stem for p in (run_dir / "pids").glob(f"{role}-*.pid")]
    return [role, *sorted(n for n in found if n.removeprefix(f"{role}-").isdigit())]


def read_pid(run_dir: Path, role: str) -> int | None:
    try:
        return int(pid_file(run_dir, role).read_text())
    except (FileNotFoundError, ValueError):
        return None


class Supervisor:
    def __init__(self, roles: list[Role], run_dir: Path, env: dict[str, str] | None = None) -> None:
        self._roles = roles
        self._run_dir = run_dir
        self._env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._role_env: dict[str, dict[str, str]] = json.loads(self._env.get("CC_ROLE_ENV") or "{}")
        self._role_prefix: dict[str, list[str]] = json.loads(self._env.get("CC_ROLE_PREFIX") or "{}")
        self._stopping = asyncio.Event()
        self._procs: dict[str, asyncio.subprocess.Process] = {}

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        (self._run_dir / "pids").mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        try:
            async with asyncio.TaskGroup() as tg:
                for role in self._roles:
                    tg.create_task(self._keep_running(role))
                await self._stopping.wait()
                await self._terminate_all()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _keep_running(self, role: Role) -> None:
        backoff = Backoff(*ROLE_BACKOFF)
        while not self._stopping.is_set():
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                *self._role_prefix.get(role.overrides_key, []),
                *role.argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**self._env, **self._role_env.get(role.overrides_key, {})},
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops roles
            )
            self._procs[role.name] = proc
            pid_file(self._run_dir, role.name).write_text(str(proc.pid))
            self._log(role.name, f"started pid {proc.pid}")
            await self._pump(role.name, proc)
            code = await proc.wait()
            if self._stopping.is_set():
                self._log(role.name, f"stopped (exit {code})")
                return
            if time.monotonic() - started > STABLE_AFTER_S:
                backoff.reset()
            delay = backoff.next_delay()
            self._log(role.name, f"exited with {code}; restarting in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _pump(self, name: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            sys.stdout.write(f"[{name}] {raw.decode(errors='replace')}")
            sys.stdout.flush()

    async def _terminate_all(self) -> None:
        live = [p for p in self._procs.values() if p.returncode is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in live)), GRACE_S)
        except TimeoutError:
            for proc in live:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()

    def _log(self, name: str, text: str) -> None:
        _log(name, text)


def _log(name: str, text: str) -> None:
    print(f"[supervisor] {name}: {text}", flush=True)


async def _terminate(proc: asyncio.subprocess.Process, grace_s: float) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


Start = Callable[[], Awaitable[asyncio.subprocess.Process]]


class KeptAlive:
    """`async with KeptAlive(name, start, run_dir):` -- one process, restarted while the block runs.

    `start` launches the process and returns once it is ready (or raises). The first start's
    error propagates; later ones are logged and retried with backoff, like a role's restarts.
    """

    def __init__(self, name: str, start: Start, run_dir: Path, *, grace_s: float = GRACE_S) -> None:
        self._name = name
        self._start = start
        self._run_dir = run_dir
        self._grace_s = grace_s
        self._proc: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    async def __aenter__(self) -> KeptAlive:
        self._started(await self._start())
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._proc is not None:
            await _terminate(self._proc, self._grace_s)
            _log(self._name, f"stopped (exit {self._proc.returncode})")

    def _started(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        (self._run_dir / "pids").mkdir(parents=True, exist_ok=True)
        pid_file(self._run_dir, self._name).write_text(str(proc.pid))
        _log(self._name, f"started pid {proc.pid}")

    async def _watch(self) -> None:
        backoff = Backoff(*ROLE_BACKOFF)
        while True:
            assert self._proc is not None
            started = time.monotonic()
            code = await self._proc.wait()
            if time.monotonic() - started > STABLE_AFTER_S:
                backoff.reset()
            self._started(await self._restart(f"exited with {code}", backoff))

    async def _restart(self, why: str, backoff: Backoff) -> asyncio.subprocess.Process:
        while True:
            delay = backoff.next_delay()
            _log(self._name, f"{why}; restarting in {delay:.1f}s")
            await asyncio.sleep(delay)
            try:
                return await self._start()
            except (OSError, RuntimeError, TimeoutError) as exc:
                why = f"failed to start ({exc})"

"""How the fault suite acts on a running variant's role processes.

Two ways, one interface (`Roles`):

- `SupervisedRoles`: the roles of `python -m <variant> up` (common.supervisor), found through the
  pid files in its run directory and signalled directly; the supervisor restarts a killed role.
  Used for the variants the suite starts itself and for a deployment started by hand.
- `ComposeRoles`: the role services of a compose deployment, acted on with `docker compose`
  (compare.compose). Docker does not restart a container that `docker kill` stopped, so a kill
  is followed by `docker compose start` after `restart_delay_s`, like the supervisor's backoff.

Every method returns a short detail for the history ("pid 1234", "container mq-order-relay").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Protocol

from common.supervisor import read_pid
from compare.compose import ComposeProject


class RoleUnavailable(RuntimeError):
    """The role has no live process to act on (not started, or between a death and a restart)."""


class Roles(Protocol):
    async def kill(self, role: str) -> str: ...
    async def pause(self, role: str) -> str: ...
    async def resume(self, role: str) -> None: ...


class SupervisedRoles:
    def __init__(self, run_dir: Path, *, wait_s: float = 5.0) -> None:
        self.run_dir = run_dir
        self.wait_s = wait_s
        self._paused: dict[str, int] = {}

    def pid(self, role: str) -> int:
        pid = read_pid(self.run_dir, role)
        if pid is None:
            raise RoleUnavailable(f"no pid file for role {role} in {self.run_dir}")
        return pid

    async def _signal_live(self, role: str, sig: signal.Signals) -> int:
        """Signal the role's current process; if it is between a death and its restart, wait."""
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                pid = self.pid(role)
                os.kill(pid, sig)
                return pid
            except (ProcessLookupError, RoleUnavailable) as exc:
                if time.monotonic() > deadline:
                    raise RoleUnavailable(f"{role}: {exc}") from exc
                await asyncio.sleep(0.1)

    async def kill(self, role: str) -> str:
        return f"pid {await self._signal_live(role, signal.SIGKILL)}"

    async def pause(self, role: str) -> str:
        pid = await self._signal_live(role, signal.SIGSTOP)
        self._paused[role] = pid
        return f"pid {pid}"

    async def resume(self, role: str) -> None:
        pid = self._paused.pop(role, None)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


class ComposeRoles:
    def __init__(
        self, project: ComposeProject, services: dict[str, str], *, restart_delay_s: float = 1.0
    ) -> None:
        self.project = project
        self.services = services  # role -> compose service
        self.restart_delay_s = restart_delay_s

    def service(self, role: str) -> str:
        try:
            return self.services[role]
        except KeyError:
            raise RoleUnavailable(f"no compose service for role {role}") from None

    async def kill(self, role: str) -> str:
        service = self.service(role)
        await self.project.run("kill", "-s", "SIGKILL", service)
        await asyncio.sleep(self.restart_delay_s)
        await self.project.start_again(service)
        return f"container {service} (started again after {self.restart_delay_s:g}s)"

    async def pause(self, role: str) -> str:
        service = self.service(role)
        await self.project.run("pause", service)
        return f"container {service}"

    async def resume(self, role: str) -> None:
        await self.project.run("unpause", self.service(role))


class NoRoles:
    """A variant whose roles the suite cannot reach (compare.runner skips the process faults)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def kill(self, role: str) -> str:
        raise RoleUnavailable(self.reason)

    async def pause(self, role: str) -> str:
        raise RoleUnavailable(self.reason)

    async def resume(self, role: str) -> None:
        return None

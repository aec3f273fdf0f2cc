"""How the fault suite acts on a running variant's role processes.

Two ways, one interface (`Roles`):

- `SupervisedRoles`: the roles of `python -m <variant> up` (common.supervisor), found through the
  pid files in its run directory and signalled directly; the supervisor restarts a killed role.
  Used for the variants the suite starts itself and for a deployment started by hand.
- `ComposeRoles`: the role services of a compose deployment, acted on with `docker compose`
  (compare.targets.compose). Docker does not restart a container that `docker kill` stopped, so a kill
  is followed by `docker compose restart --no-deps` after `restart_delay_s`, like the
  supervisor's backoff. It can also partition a role: every container of the service is
  disconnected from its networks (`docker network disconnect`: no packet in or out, no reset
  sent to the peers) and connected again later with the same aliases. Docker usually gives the
  container its address back; where it does not, connections open across the partition never
  recover and only timeouts end them. (A partition of a process the suite started itself is a
  network namespace whose link goes down: compare.faults.netns.)

Every method returns a short detail for the history ("pid 1234", "container mq-order-relay").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Protocol

from common.supervisor import copies, read_pid
from compare.targets.compose import ComposeProject


class RoleUnavailable(RuntimeError):
    """The role has no live process to act on (not started, or between a death and a restart)."""


class Roles(Protocol):
    can_partition: bool

    async def kill(self, role: str) -> str: ...
    async def pause(self, role: str) -> str: ...
    async def resume(self, role: str) -> None: ...
    async def partition(self, role: str) -> str: ...
    async def heal(self, role: str, *, all_of_them: bool = False) -> None: ...


class _NoPartitions:
    can_partition = False

    async def partition(self, role: str) -> str:
        raise RoleUnavailable("the suite cannot cut this role off the network")

    async def heal(self, role: str, *, all_of_them: bool = False) -> None:
        return None


class SupervisedRoles(_NoPartitions):
    def __init__(self, run_dir: Path, *, wait_s: float = 5.0) -> None:
        self.run_dir = run_dir
        self.wait_s = wait_s
        self._paused: dict[str, list[int]] = {}

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

    # A role's copies (`api-2` of `api`) are faulted with it: "the API dies" means every API process.
    async def kill(self, role: str) -> str:
        return ", ".join(
            [f"pid {await self._signal_live(r, signal.SIGKILL)}" for r in copies(self.run_dir, role)]
        )

    async def pause(self, role: str) -> str:
        pids = [await self._signal_live(r, signal.SIGSTOP) for r in copies(self.run_dir, role)]
        self._paused[role] = pids
        return ", ".join(f"pid {pid}" for pid in pids)

    async def resume(self, role: str) -> None:
        for pid in self._paused.pop(role, []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


class ComposeRoles:
    can_partition = True

    def __init__(
        self, project: ComposeProject, services: dict[str, str], *, restart_delay_s: float = 1.0
    ) -> None:
        self.project = project
        self.services = services  # role -> compose service
        self.restart_delay_s = restart_delay_s
        self._cut: dict[str, list[tuple[str, str, list[str]]]] = {}  # role -> (container, network, aliases)
        self._holds: dict[str, int] = {}

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

    async def partition(self, role: str) -> str:
        service = self.service(role)
        self._holds[role] = self._holds.get(role, 0) + 1
        if self._holds[role] > 1:  # overlapping partitions: still cut off until the last heals
            return f"container {service} (already cut off)"
        cut = self._cut.setdefault(role, [])
        for container in await self.project.containers(service):
            inspect = ("inspect", "--format", "{{json .NetworkSettings.Networks}}", container)
            networks = json.loads(await self.project.docker(*inspect))
            for network, attachment in networks.items():
                await self.project.docker("network", "disconnect", network, container)
                cut.append((container, network, list(attachment.get("Aliases") or [])))
        if not cut:
            self._holds.pop(role)
            raise RoleUnavailable(f"no running container of {service}")
        return f"container {service} disconnected from {len(cut)} network(s)"

    async def heal(self, role: str, *, all_of_them: bool = False) -> None:
        self._holds[role] = 0 if all_of_them else max(0, self._holds.get(role, 0) - 1)
        if self._holds[role] > 0:
            return
        for container, network, aliases in self._cut.pop(role, []):
            flags = [flag for alias in aliases for flag in ("--alias", alias)]
            await self.project.docker("network", "connect", *flags, network, container)


class NoRoles(_NoPartitions):
    """A variant whose roles the suite cannot reach (compare.faults.runner skips the process faults)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def kill(self, role: str) -> str:
        raise RoleUnavailable(self.reason)

    async def pause(self, role: str) -> str:
        raise RoleUnavailable(self.reason)

    async def resume(self, role: str) -> None:
        return None

"""Fault injectors, each usable from a scenario by name (a pydantic model with a `kind`).

- arm:     arms a fault point in the variant's processes (CC_FAULTS: crash / raise / delay /
           duplicate); `times` bounds it, counted across restarts
- kill:    SIGKILL of a role process (its supervisor restarts it), or of a role's container
- pause:   SIGSTOP of a role process (or `docker compose pause`), resumed after `seconds`, or
           left stopped until a later `resume` step (a backlog builds up behind it)
- resume:  SIGCONT of a role an open-ended pause stopped
- restart: a crash of PostgreSQL / RabbitMQ / Temporal, up again after `downtime_s` (servers the
           suite owns: its private sandbox, or a compose deployment's containers); `times` in a
           row, `up_s` apart
- network: a proxy toxic between role(s) and a dependency for `seconds` (or for good: until
           the run ends, recovery included): latency, timeout (one direction: the lost ack /
           lost confirm; both with 0 s: a blackhole), reset_peer, limit_data, down (a partition)
- poison:  malformed messages published straight into the broker (MQ)
- delete_queue: an operator deletes a work queue while orders flow (MQ)
- netns:   a kernel-level partition of a role that runs in its own network namespace (its veth
           goes down for `seconds`: packets dropped, no RST; the plan's `isolate` lists the role),
           or of a deployment's role containers (disconnected from their networks)

Load-side faults (duplicate submissions, hot SKU, invalid orders) belong to the workload
(compare.faults.workload.WorkloadSpec). A fault step's `at` is a fraction of the workload's planned
duration, so one schedule fits any --orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import aio_pika
from pydantic import BaseModel, ConfigDict, Field

from common.settings import Settings
from compare.faults.history import FaultEvent, History
from compare.faults.netns import RoleNamespace
from compare.faults.proxy import FaultProxy, Toxic
from compare.targets.compose import ComposeError
from compare.targets.roles import Roles, RoleUnavailable
from compare.targets.sandbox import Dependency, Sandbox


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArmPoint(_Fault):
    kind: Literal["arm"] = "arm"
    point: str
    action: Literal["crash", "raise", "delay", "duplicate"] = "crash"
    role: str | None = None
    times: int | None = 2
    seconds: float | None = None
    probability: float | None = None

    def entry(self) -> str:
        text = f"{self.role + '/' if self.role else ''}{self.point}={self.action}"
        if self.times is not None:
            text += f",times={self.times}"
        if self.seconds is not None:
            text += f",seconds={self.seconds}"
        if self.probability is not None:
            text += f",probability={self.probability}"
        return text

    def label(self) -> str:
        return f"{self.action} at {self.role + '/' if self.role else ''}{self.point}"


class KillRole(_Fault):
    kind: Literal["kill"] = "kill"
    role: str

    def label(self) -> str:
        return f"SIGKILL {self.role}"


class PauseRole(_Fault):
    kind: Literal["pause"] = "pause"
    role: str
    seconds: float | None = Field(3.0, description="None: until a later `resume` step (or the end)")

    def label(self) -> str:
        return f"SIGSTOP {self.role}" + (f" {self.seconds:g}s" if self.seconds is not None else "")


class ResumeRole(_Fault):
    """SIGCONT of a role an open-ended `pause` stopped (a backlog built, now let it drain)."""

    kind: Literal["resume"] = "resume"
    role: str

    def label(self) -> str:
        return f"SIGCONT {self.role}"


class RestartDependency(_Fault):
    kind: Literal["restart"] = "restart"
    dependency: Dependency
    downtime_s: float = 2.0
    times: int = Field(1, ge=1, description="crash-restarts in a row")
    up_s: float = Field(1.0, ge=0, description="time up between two of them")
    crash: bool = Field(False, description="RabbitMQ: the VM halts at once (else a graceful stop_app)")
    recovery_s: float = Field(
        0.0, ge=0, description="PostgreSQL: how long its startup (crash recovery) lasts, answering "
        "57P03 'the database system is starting up' meanwhile, as a busy database replaying its WAL does",
    )

    def label(self) -> str:
        again = f" x{self.times}" if self.times > 1 else ""
        slow = f", {self.recovery_s:g}s recovering" if self.recovery_s else ""
        how = "crash-restart" if self.crash else "restart"
        return f"{how} {self.dependency} ({self.downtime_s:g}s down{slow}){again}"


class DeleteQueue(_Fault):
    """An operator deletes a work queue (MQ) while orders flow: publishes to it are unroutable."""

    kind: Literal["delete_queue"] = "delete_queue"
    queue: str  # without the amqp prefix

    def label(self) -> str:
        return f"delete queue {self.queue}"


class NetworkFault(_Fault):
    kind: Literal["network"] = "network"
    dependency: Dependency
    roles: tuple[str, ...] | None = None  # None: every process's link to the dependency
    toxic: Toxic
    seconds: float | None = Field(3.0, description="None: until the run ends (recovery included)")

    def label(self) -> str:
        who = ",".join(self.roles) if self.roles else "all"
        extra = f" {self.toxic.direction}" if self.toxic.direction != "both" else ""
        lasting = f"{self.seconds:g}s" if self.seconds is not None else "for good"
        return f"{self.toxic.kind}{extra} {who}->{self.dependency} {lasting}"


class KernelPartition(_Fault):
    kind: Literal["netns"] = "netns"
    role: str
    seconds: float = 4.0

    def label(self) -> str:
        return f"kernel partition {self.role} {self.seconds:g}s"


class PoisonMessages(_Fault):
    kind: Literal["poison"] = "poison"
    count: int = 5

    def label(self) -> str:
        return f"{self.count} poison messages"


_Timed = (
    KillRole | PauseRole | ResumeRole | RestartDependency | NetworkFault | KernelPartition | PoisonMessages
    | DeleteQueue
)  # fmt: skip
Fault = Annotated[ArmPoint | _Timed, Field(discriminator="kind")]
TimedFault = Annotated[_Timed, Field(discriminator="kind")]


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float = Field(
        ..., ge=0, le=4, description="fraction of the workload's planned duration (> 1: after the load)"
    )
    fault: TimedFault


POISON_BODIES: list[tuple[bytes, str | None]] = [
    (b"not json at all", "poison-1"),
    (b'{"order_id": 42}', "poison-2"),
    (b'{"order_id": "x", "lines": [{"sku": "s", "quantity": -1}]}', "poison-3"),
    (b"\xff\xfe\x00garbage", "poison-4"),
    (b'{"order_id": "y", "lines": []}', None),  # and no message id at all
]


class Dependencies(Protocol):
    """Restarts of the servers a run depends on (compare.targets.sandbox.Sandbox, compare.targets.compose)."""

    def can_restart(self, dep: Dependency) -> bool: ...
    async def restart(
        self, dep: Dependency, downtime_s: float, *, recovery_s: float = 0.0, crash: bool = False
    ) -> None: ...


@dataclass
class FaultContext:
    """What injectors act on during one run."""

    roles: Roles
    dependencies: Dependencies
    proxies: dict[tuple[Dependency, str | None], FaultProxy]
    direct: Settings  # the run's settings with the real (not proxied) addresses
    history: History
    t0: float
    log: Callable[[str], None] = print
    paused: set[str] = field(default_factory=set)
    partitioned: set[str] = field(default_factory=set)  # roles a deployment's partitions touched
    namespaces: dict[str, RoleNamespace] = field(default_factory=dict)
    lasting: list[tuple[FaultProxy, Toxic]] = field(default_factory=list)  # never healed in the run

    def now(self) -> float:
        return time.monotonic() - self.t0

    def event(self, action: str, fault: str, detail: str = "") -> None:
        self.history.faults.append(
            FaultEvent(at=round(self.now(), 3), action=action, fault=fault, detail=detail)
        )
        self.log(f"{self.now():6.1f}s {action:7} {fault} {detail}".rstrip())

    def proxies_for(self, dep: Dependency, roles: tuple[str, ...] | None) -> list[FaultProxy]:
        return [p for (d, role), p in self.proxies.items() if d is dep and (roles is None or role in roles)]

    async def heal_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.clear()
        for proxy, toxic in self.lasting:
            proxy.add(toxic)
        for role in list(self.paused):
            with contextlib.suppress(RoleUnavailable, ComposeError):
                await self.roles.resume(role)
            self.paused.discard(role)
        for role in list(self.partitioned):
            with contextlib.suppress(RoleUnavailable, ComposeError):
                await self.roles.heal(role, all_of_them=True)
            self.partitioned.discard(role)
        for ns in self.namespaces.values():
            if ns.partitioned:
                await ns.heal(all_of_them=True)


async def inject(fault: TimedFault, ctx: FaultContext) -> None:
    """Apply one fault and, for the ones with a duration, heal it when the time is up."""
    label = fault.label()
    if isinstance(fault, KillRole):
        try:
            ctx.event("instant", label, await ctx.roles.kill(fault.role))
        except (RoleUnavailable, ComposeError) as exc:
            ctx.event("instant", label, f"missed: {exc}")
    elif isinstance(fault, PauseRole):
        await _hold_role(ctx, label, fault.role, fault.seconds, ctx.roles.pause, ctx.roles.resume, ctx.paused)
    elif isinstance(fault, ResumeRole):
        if fault.role in ctx.paused:
            await ctx.roles.resume(fault.role)
            ctx.paused.discard(fault.role)
            ctx.event("instant", label)
        else:
            ctx.event("instant", label, "missed: not paused")
    elif isinstance(fault, RestartDependency):
        for i in range(fault.times):
            if i:
                await asyncio.sleep(fault.up_s)
            ctx.event("start", label, f"{i + 1}/{fault.times}")
            await ctx.dependencies.restart(
                fault.dependency, fault.downtime_s, recovery_s=fault.recovery_s, crash=fault.crash
            )
            ctx.event("heal", label, f"{i + 1}/{fault.times}")
    elif isinstance(fault, DeleteQueue):
        await delete_queue(ctx.direct, fault.queue)
        ctx.event("instant", label, ctx.direct.amqp_name(fault.queue))
    elif isinstance(fault, NetworkFault):
        proxies = ctx.proxies_for(fault.dependency, fault.roles)
        names = [(p, p.add(fault.toxic)) for p in proxies]
        ctx.event("start", label, f"{len(proxies)} links")
        if fault.seconds is None:
            ctx.lasting += [(p, fault.toxic) for p in proxies]
            return
        await asyncio.sleep(fault.seconds)
        for proxy, name in names:
            proxy.remove(name)
        ctx.event("heal", label)
    elif isinstance(fault, KernelPartition):
        ns = ctx.namespaces.get(fault.role)
        if ns is not None:
            await ns.partition()
            ctx.event("start", label, ns.name)
            await asyncio.sleep(fault.seconds)
            await ns.heal()
            ctx.event("heal", label)
            return
        # A deployment's containers (compare.targets.roles.ComposeRoles). The role stays in `partitioned`
        # after a heal: an overlapping partition may still hold it, and heal_all heals them all.
        await _hold_role(
            ctx,
            label,
            fault.role,
            fault.seconds,
            ctx.roles.partition,
            ctx.roles.heal,
            ctx.partitioned,
            forget=False,
        )
    elif isinstance(fault, PoisonMessages):
        sent = await publish_poison(ctx.direct, fault.count)
        ctx.history.poison_messages += sent
        ctx.event("instant", label, f"{sent} published")


async def _hold_role(
    ctx: FaultContext,
    label: str,
    role: str,
    seconds: float | None,
    act: Callable[[str], Awaitable[str]],
    undo: Callable[[str], Awaitable[None]],
    held: set[str],
    *,
    forget: bool = True,
) -> None:
    """Act on a role for `seconds` (pause, partition), remembered in `held` for heal_all."""
    try:
        detail = await act(role)
    except (RoleUnavailable, ComposeError) as exc:
        ctx.event("instant", label, f"missed: {exc}")
        return
    held.add(role)
    ctx.event("start", label, detail)
    if seconds is None:  # a later `resume` step (or heal_all) ends it
        return
    await asyncio.sleep(seconds)
    await undo(role)
    if forget:
        held.discard(role)
    ctx.event("heal", label)


async def publish_poison(settings: Settings, count: int) -> int:
    """Malformed messages into the MQ variant's exchange, on both routing keys."""
    exchange_name = settings.amqp_name("mq")
    sent = 0
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(exchange_name, ensure=True)
        for i in range(count):
            body, message_id = POISON_BODIES[i % len(POISON_BODIES)]
            routing_key = ("inventory.deduct", "orders.result")[i % 2]
            await exchange.publish(
                aio_pika.Message(
                    body,
                    message_id=f"{message_id}-{i}" if message_id else None,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/json",
                ),
                routing_key=routing_key,
            )
            sent += 1
    return sent


async def delete_queue(settings: Settings, queue: str) -> None:
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(settings.amqp_name(queue))


def faults_env(arms: list[ArmPoint]) -> str:
    return ";".join(a.entry() for a in arms)


def role_env(
    proxies: dict[tuple[Dependency, str | None], FaultProxy], roles: tuple[str, ...], sandbox: Sandbox
) -> str:
    """CC_ROLE_ENV for common.supervisor: each role's own proxy per dependency."""
    out: dict[str, dict[str, str]] = {}
    for (dep, role), proxy in proxies.items():
        if role is None or role not in roles:
            continue
        out.setdefault(role, {}).update(dependency_env(dep, proxy, sandbox))
    return json.dumps(out)


def _via(url: str, proxy: FaultProxy) -> str:
    parsed = urlsplit(url)
    userinfo = parsed.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{proxy.host}:{proxy.port}" if userinfo else f"{proxy.host}:{proxy.port}"
    return urlunsplit(parsed._replace(netloc=netloc))


def dependency_env(dep: Dependency, proxy: FaultProxy, sandbox: Sandbox) -> dict[str, str]:
    """The settings that send a process to `dep` through `proxy` instead of directly."""
    if dep is Dependency.POSTGRES:
        return {"CC_PG_URL": _via(sandbox.pg_url, proxy)}
    if dep is Dependency.RABBITMQ:
        return {"CC_AMQP_URL": _via(sandbox.amqp_url, proxy)}
    return {"CC_TEMPORAL_ADDRESS": f"{proxy.host}:{proxy.port}"}

"""The mixed nemesis: a random fault schedule drawn from a seed, and the schedule executor.

Same seed + same variant profile = same schedule (the RNG is random.Random(seed), drawn in a
fixed order), so a failing nemesis run can be replayed exactly with --seed.
"""

from __future__ import annotations

import asyncio
import random
import time

from compare.faults.injectors import (
    ArmPoint,
    FaultContext,
    KillRole,
    NetworkFault,
    PauseRole,
    RestartDependency,
    Step,
    TimedFault,
    inject,
)
from compare.faults.proxy import Direction, Down, Latency, ResetPeer, Timeout
from compare.faults.scenario import Plan, VariantProfile


def draw(profile: VariantProfile, seed: int, *, restarts: bool, steps: int = 6) -> Plan:
    """A random plan: one armed crash point (half the time) and `steps` timed faults."""
    rng = random.Random(f"{seed}:{profile.name}")
    arm: list[ArmPoint] = []
    if rng.random() < 0.5:
        arm.append(ArmPoint(point=rng.choice(sorted(profile.points)), action="crash", times=1))
    deps = list(profile.dependencies)
    restarting: set[str] = set()  # one restart per dependency: a second would overlap the first

    def one() -> TimedFault:
        kind = rng.choice(["kill", "pause", "partition", "lost-ack", "latency", "reset", "restart"])
        role = rng.choice(profile.roles)
        dep = rng.choice(deps)
        seconds = round(rng.uniform(1.5, 4.0), 1)
        if kind == "kill":
            return KillRole(role=role)
        if kind == "pause":
            return PauseRole(role=role, seconds=seconds)
        if kind == "partition":
            return NetworkFault(dependency=dep, roles=(role,), toxic=Down(), seconds=seconds)
        if kind == "lost-ack":
            direction = rng.choice([Direction.UPSTREAM, Direction.DOWNSTREAM])
            return NetworkFault(
                dependency=dep,
                roles=(role,),
                toxic=Timeout(direction=direction, seconds=1.0),
                seconds=seconds,
            )
        if kind == "latency":
            return NetworkFault(dependency=dep, toxic=Latency(seconds=0.15, jitter=0.1), seconds=seconds)
        if kind == "restart" and restarts:
            downtime = round(rng.uniform(1.0, 3.0), 1)
            if dep not in restarting:
                restarting.add(dep)
                return RestartDependency(dependency=dep, downtime_s=downtime)
        return NetworkFault(dependency=dep, toxic=ResetPeer(seconds=0), seconds=0.5)

    times = sorted(round(rng.uniform(0.1, 0.8), 3) for _ in range(steps))
    return Plan(arm=arm, schedule=[Step(at=at, fault=one()) for at in times])


async def run_schedule(schedule: list[Step], ctx: FaultContext, duration_s: float) -> None:
    """Fire each step at t0 + at * duration_s; faults with a duration run side by side."""
    tasks: list[asyncio.Task[None]] = []
    for step in sorted(schedule, key=lambda s: s.at):
        delay = ctx.t0 + step.at * duration_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_safely(step.fault, ctx)))
    await asyncio.gather(*tasks)


async def _safely(fault: TimedFault, ctx: FaultContext) -> None:
    try:
        await inject(fault, ctx)
    except Exception as exc:  # a fault that could not be applied is recorded, not fatal
        ctx.event("error", fault.label(), f"{type(exc).__name__}: {exc}".splitlines()[0])

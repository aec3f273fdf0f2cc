"""The scenario catalogue: one list for both variants, each scenario mapped to each variant's
processes, dependencies and fault points (a scenario that has no meaning for a variant, such as
a poison message for Temporal, simply has no plan for it).

A scenario is declarative: name, description, what it threatens, the workload (load-side faults
included) and, per variant, the fault points to arm and a timed fault schedule. `nemesis` is the
exception: its schedule is drawn from the seed (compare.faults.nemesis) when the run starts.

Controls (deliberately broken configurations, chosen with CC_CONTROL, implemented inside the
variants) are paired with the scenario that must expose them and the anomalies they must show
(every kind in `expect`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from compare.faults.checker import AnomalyKind
from compare.faults.injectors import (
    ArmPoint,
    DeleteQueue,
    KernelPartition,
    KillRole,
    NetworkFault,
    PauseRole,
    PoisonMessages,
    RestartDependency,
    ResumeRole,
    Step,
)
from compare.faults.proxy import Direction, Down, Latency, ResetPeer, Timeout
from compare.faults.workload import WorkloadSpec
from compare.targets.sandbox import Dependency

PG, MQ, TEMPORAL = Dependency.POSTGRES, Dependency.RABBITMQ, Dependency.TEMPORAL


@dataclass(frozen=True)
class VariantProfile:
    """What the suite knows of a variant: its roles, dependencies and fault points (with roles)."""

    name: str
    roles: tuple[str, ...]
    dependencies: tuple[Dependency, ...]
    points: dict[str, tuple[str, ...]]
    dead_letter_queues: tuple[str, ...] = ()  # without the amqp prefix
    temporal: bool = False


PROFILES: dict[str, VariantProfile] = {
    "mq": VariantProfile(
        name="mq",
        roles=("api", "order-relay", "inventory-consumer", "inventory-relay", "order-result-consumer",
               "reconciler"),
        dependencies=(PG, MQ),
        points={
            "after_order_commit": ("api",),
            "before_publish": ("order-relay", "inventory-relay"),
            "after_publish": ("order-relay", "inventory-relay"),
            "before_consumer_commit": ("inventory-consumer", "order-result-consumer"),
            "after_consumer_commit": ("inventory-consumer", "order-result-consumer"),
        },
        dead_letter_queues=("inventory.deduct.dlq", "orders.results.dlq"),
    ),
    "workflow": VariantProfile(
        name="workflow",
        roles=("api", "order-worker", "inventory-worker"),
        dependencies=(PG, TEMPORAL),
        points={
            "activity_start": ("order-worker", "inventory-worker"),
            "after_order_commit": ("order-worker",),
            "after_deduct_commit": ("inventory-worker",),
            "after_settle_commit": ("order-worker",),
        },
        temporal=True,
    ),
}

# The point where a consumer has done its work and not yet told the other side: MQ acks a
# delivery, a Temporal activity reports its completion.
_REPORTERS = {
    "mq": ("inventory-consumer", "order-result-consumer"),
    "workflow": ("order-worker", "inventory-worker"),
}
_PUBLISHERS = {"mq": ("order-relay", "inventory-relay")}


class Plan(BaseModel):
    """A scenario as applied to one variant."""

    model_config = ConfigDict(extra="forbid")

    arm: list[ArmPoint] = Field(default_factory=list)
    schedule: list[Step] = Field(default_factory=list)
    isolate: list[str] = Field(default_factory=list, description="roles run in their own network namespace")


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    threatens: str
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    plans: dict[str, Plan]
    destructive: bool = False  # restarts a dependency: private sandbox only
    nemesis: bool = False  # the schedule is drawn from the seed at run time
    min_recovery_s: float = Field(
        0.0, ge=0, description="the recovery window is at least this long (the run's own may be longer)"
    )

    def applies_to(self, variant: str) -> bool:
        return variant in self.plans


class ControlCase(BaseModel):
    variant: str
    control: str
    scenario: str
    expect: list[AnomalyKind] = Field(..., min_length=1, description="every one of these must show")
    why: str


def _both(plan: Plan) -> dict[str, Plan]:
    return {"mq": plan, "workflow": plan}


def _point_scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    points = sorted({p for prof in PROFILES.values() for p in prof.points})
    for point in points:
        have = [v for v, prof in PROFILES.items() if point in prof.points]
        # At the order commit the client is the one left in doubt: it gives up on no answer
        # (no retry), so a dual write cannot be papered over by the client's own resubmission.
        giving_up = point == "after_order_commit"
        out.append(
            Scenario(
                name=f"crash-{point}",
                description=f"hard exit (os._exit) at {point}, twice per process that reaches it"
                + ("; clients do not retry an unanswered order" if giving_up else ""),
                threatens="work done but not recorded / recorded but not reported (redelivery, retry)",
                # The API dies twice and restarts with backoff while clients do not retry: a slower
                # load keeps part of it answered; a low bar, since most of a short load may be lost
                # to the restarts by design (what was committed is what the run checks)
                workload=WorkloadSpec(retries=0, rate=10, min_accepted=0.1) if giving_up else WorkloadSpec(),
                plans={v: Plan(arm=[ArmPoint(point=point, action="crash", times=2)]) for v in have},
            )
        )
    out.append(
        Scenario(
            name="raise-consume",
            description="the consumer / activity fails (exception) before its commit, three times",
            threatens="retry and dead-letter paths: a failure must not lose or poison the message",
            plans={
                "mq": Plan(arm=[ArmPoint(point="before_consumer_commit", action="raise", times=3)]),
                "workflow": Plan(arm=[ArmPoint(point="activity_start", action="raise", times=3)]),
            },
        )
    )
    out.append(
        Scenario(
            name="delay-report",
            description="a 3 s stall after the commit, before the ack / activity completion",
            threatens="timeouts that redeliver work already done",
            plans={
                "mq": Plan(arm=[ArmPoint(point="after_consumer_commit", action="delay", times=3, seconds=3)]),
                "workflow": Plan(
                    arm=[ArmPoint(point="after_deduct_commit", action="delay", times=3, seconds=3)]
                ),
            },
        )
    )
    out.append(
        Scenario(
            name="duplicate-step",
            description="the step is done twice: the relay publishes a batch again / the deduction "
            "runs again",
            threatens="duplicates downstream: dedup must absorb them",
            plans={
                "mq": Plan(arm=[ArmPoint(point="after_publish", action="duplicate", times=5)]),
                "workflow": Plan(arm=[ArmPoint(point="after_deduct_commit", action="duplicate", times=5)]),
            },
        )
    )
    return out


def _role_scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    roles = sorted({r for prof in PROFILES.values() for r in prof.roles})
    for role in roles:
        have = [v for v, prof in PROFILES.items() if role in prof.roles]
        out.append(
            Scenario(
                name=f"kill-{role}",
                description=f"SIGKILL the {role} process three times during the load "
                "(the supervisor restarts it)",
                threatens="in-flight work of a process that dies without cleanup",
                plans={
                    v: Plan(schedule=[Step(at=at, fault=KillRole(role=role)) for at in (0.2, 0.45, 0.7)])
                    for v in have
                },
            )
        )
        out.append(
            Scenario(
                name=f"pause-{role}",
                description=f"SIGSTOP the {role} process for 4 s, twice (a GC pause, a frozen VM)",
                threatens="leases, heartbeats and timeouts: a paused process that wakes up and goes on",
                plans={
                    v: Plan(
                        schedule=[Step(at=at, fault=PauseRole(role=role, seconds=4)) for at in (0.2, 0.6)]
                    )
                    for v in have
                },
            )
        )
    return out


def _dependency_scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    for dep in Dependency:
        have = [v for v, prof in PROFILES.items() if dep in prof.dependencies]
        out.append(
            Scenario(
                name=f"restart-{dep}",
                description=f"restart {dep} (crash stop, 2 s down) in the middle of the load",
                threatens="reconnects, in-flight transactions and unconfirmed messages",
                plans={
                    v: Plan(schedule=[Step(at=0.35, fault=RestartDependency(dependency=dep))]) for v in have
                },
                destructive=True,
            )
        )
    out.append(
        Scenario(
            name="crash-rabbitmq",
            description="the broker's Erlang VM halts at once (no shutdown) mid-load, back after 2 s",
            threatens="messages confirmed but not yet on disk; unacked deliveries; reconnects",
            plans={"mq": Plan(schedule=[Step(at=0.35, fault=RestartDependency(dependency=MQ, crash=True))])},
            destructive=True,
        )
    )
    for variant, prof in PROFILES.items():
        for role in prof.roles:
            for dep in prof.dependencies:
                name = f"partition-{role}-{dep}"
                fault = NetworkFault(dependency=dep, roles=(role,), toxic=Down(), seconds=4)
                existing = next((s for s in out if s.name == name), None)
                plan = Plan(schedule=[Step(at=at, fault=fault) for at in (0.25, 0.6)])
                if existing is not None:
                    existing.plans[variant] = plan
                    continue
                out.append(
                    Scenario(
                        name=name,
                        description=f"cut {role} off from {dep} for 4 s, twice (connections reset, refused)",
                        threatens="work half done when a link drops; reconnect and resume",
                        plans={variant: plan},
                    )
                )
    return out


def _kernel_scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    roles = sorted({r for prof in PROFILES.values() for r in prof.roles})
    for role in roles:
        have = [v for v, prof in PROFILES.items() if role in prof.roles]
        out.append(
            Scenario(
                name=f"kernel-partition-{role}",
                description=f"{role} runs in its own network namespace; its veth goes down for 4 s, twice "
                "(packets dropped, no reset: TCP has to find out by itself)",
                threatens="a silent partition from every dependency (and, for the api, from the clients)",
                plans={
                    v: Plan(
                        isolate=[role],
                        schedule=[
                            Step(at=at, fault=KernelPartition(role=role, seconds=4)) for at in (0.25, 0.6)
                        ],
                    )
                    for v in have
                },
            )
        )
    return out


def _network_scenarios() -> list[Scenario]:
    lost_confirm = Timeout(direction=Direction.DOWNSTREAM, seconds=1.5)
    lost_ack = Timeout(direction=Direction.UPSTREAM, seconds=1.5)
    return [
        Scenario(
            name="lost-publish-confirm",
            description="broker -> relay traffic held, then the link reset: messages stored, confirms lost",
            threatens="the two generals: the relay must republish, consumers must deduplicate",
            plans={
                "mq": Plan(
                    schedule=[
                        Step(
                            at=at,
                            fault=NetworkFault(dependency=MQ, roles=_PUBLISHERS["mq"], toxic=lost_confirm),
                        )
                        for at in (0.2, 0.55)
                    ]
                )
            },
        ),
        Scenario(
            name="lost-ack",
            description="consumer -> broker held 1.5 s then the link reset (MQ); worker -> Temporal held "
            "8 s, past the 5 s heartbeat timeout (workflow): work committed, the ack / activity "
            "completion lost",
            threatens="redelivery of work already done: the dedup table / idempotent activity must absorb it",
            plans={
                "mq": Plan(
                    schedule=[
                        Step(at=at, fault=NetworkFault(dependency=MQ, roles=_REPORTERS["mq"], toxic=lost_ack))
                        for at in (0.2, 0.55)
                    ]
                ),
                "workflow": Plan(
                    schedule=[
                        Step(
                            at=0.2,
                            # the inventory worker only: the order worker keeps scheduling deductions,
                            # which the inventory worker's outstanding polls receive, run, and cannot
                            # report (holding the order worker too left none in flight to retry)
                            fault=NetworkFault(
                                dependency=TEMPORAL,
                                roles=("inventory-worker",),
                                toxic=Timeout(direction=Direction.UPSTREAM, seconds=0),
                                seconds=8,
                            ),
                        )
                    ]
                ),
            },
        ),
        Scenario(
            name="slow-network",
            description="200 +- 100 ms latency on every link to every dependency for most of the run",
            threatens="timeouts set too tight, retries that pile up",
            plans={
                v: Plan(
                    schedule=[
                        Step(
                            at=0.1,
                            fault=NetworkFault(
                                dependency=d, toxic=Latency(seconds=0.2, jitter=0.1), seconds=8
                            ),
                        )
                        for d in prof.dependencies
                    ]
                )
                for v, prof in PROFILES.items()
            },
        ),
        Scenario(
            name="reset-storm",
            description="every connection to every dependency reset, three times",
            threatens="reconnect logic, in-flight requests, half-applied work",
            plans={
                v: Plan(
                    schedule=[
                        Step(at=at, fault=NetworkFault(dependency=d, toxic=ResetPeer(seconds=0), seconds=0.5))
                        for at in (0.2, 0.45, 0.7)
                        for d in prof.dependencies
                    ]
                )
                for v, prof in PROFILES.items()
            },
        ),
    ]


def _load_scenarios() -> list[Scenario]:
    return [
        Scenario(
            name="baseline",
            description="the workload with no fault at all",
            threatens="nothing: the checker must report a clean run",
            plans=_both(Plan()),
        ),
        Scenario(
            name="duplicate-storm",
            description="every order submitted 4 times at once; 20% resubmitted with another body (409)",
            threatens="idempotency of order acceptance: one order, one deduction, first body kept",
            workload=WorkloadSpec(duplicates=3, conflict_ratio=0.2),
            plans=_both(Plan()),
        ),
        Scenario(
            name="hot-sku",
            description="every order wants the same SKU, stock for a third of them, 16 in flight",
            threatens="oversell and lost updates under contention; REJECTED must be clean",
            workload=WorkloadSpec(hot_stock_ratio=1 / 3, concurrency=16, skus=3),
            plans=_both(Plan()),
        ),
        Scenario(
            name="invalid-orders",
            description="30% extra malformed requests (bad JSON, negative quantity, unknown fields, ...)",
            threatens="bad input must get a 4xx and leave no trace, never a 500",
            workload=WorkloadSpec(invalid_ratio=0.3),
            plans=_both(Plan()),
        ),
        Scenario(
            name="poison-message",
            description="malformed messages published straight into both queues during the load",
            threatens="a poison message blocking the queue; it must be dead-lettered, the rest flow",
            plans={"mq": Plan(schedule=[Step(at=0.3, fault=PoisonMessages(count=6))])},
        ),
        Scenario(
            name="nemesis",
            description="seeded random mix of kills, pauses, partitions, lost acks, resets and restarts",
            threatens="everything at once",
            plans=_both(Plan()),
            nemesis=True,
        ),
    ]


# The roles that drain a backlog: stopped during the load, let go at its end.
_DRAINERS = {
    "mq": ("inventory-consumer", "order-result-consumer"),
    "workflow": ("order-worker", "inventory-worker"),
}


def _backlog(variant: str, then: list[Step]) -> list[Step]:
    """Stop the variant's consumers for the whole load (a backlog of every order builds up),
    let them go at its end, and apply `then` while they drain."""
    roles = _DRAINERS[variant]
    return [
        *(Step(at=0.0, fault=PauseRole(role=r, seconds=None)) for r in roles),
        *(Step(at=1.0, fault=ResumeRole(role=r)) for r in roles),
        *then,
    ]


def _backlog_scenarios() -> list[Scenario]:
    restarts = Step(
        at=1.0, fault=RestartDependency(dependency=PG, downtime_s=0.5, times=4, up_s=1.0, recovery_s=1.5)
    )
    return [
        Scenario(
            name="restart-postgres-backlog",
            description="a backlog of every order waits in the queues / task queues; while it drains, "
            "PostgreSQL crash-stops and restarts 4 times in a row, each crash recovery lasting 1.5 s "
            "(57P03 'not accepting connections' meanwhile)",
            threatens="'starting up' / 'shutting down' errors read as processing failures: good "
            "messages dead-lettered, orders stranded PENDING",
            plans={v: Plan(schedule=_backlog(v, [restarts])) for v in _DRAINERS},
            destructive=True,
        ),
        Scenario(
            name="crash-loop-consumer",
            description="a backlog larger than the prefetch waits; the inventory consumer / worker then "
            "dies (hard exit) 5 times in a row while holding its prefetched deliveries / tasks",
            threatens="crashes counted as processing failures (the broker's delivery limit): good "
            "messages dead-lettered, orders stranded PENDING",
            # the workflow variant drains this slowly (132 s after the last crash here, 200 orders):
            # slow is reported as slow (the convergence time), not as lost orders
            min_recovery_s=180.0,
            plans={
                "mq": Plan(
                    arm=[ArmPoint(point="before_consumer_commit", role="inventory-consumer", times=5)],
                    schedule=_backlog("mq", []),
                ),
                "workflow": Plan(
                    arm=[ArmPoint(point="activity_start", role="inventory-worker", times=5)],
                    schedule=_backlog("workflow", []),
                ),
            },
        ),
        Scenario(
            name="delete-work-queue",
            description="an operator deletes the deduct queue, later the results queue, while orders flow",
            threatens="a publish the broker returns as unroutable, taken for a confirm: the outbox row "
            "is deleted and the message is gone",
            plans={
                "mq": Plan(
                    schedule=[
                        Step(at=0.3, fault=DeleteQueue(queue="inventory.deduct")),
                        Step(at=0.6, fault=DeleteQueue(queue="orders.results")),
                    ]
                )
            },
        ),
    ]


def _blackhole_scenarios() -> list[Scenario]:
    blackhole = Timeout(direction=Direction.BOTH, seconds=0)  # nothing passes, nothing is reset
    return [
        Scenario(
            name="blackhole-relay-postgres",
            description="both relays' links to PostgreSQL go dark for good (packets held, no reset) "
            "early in the load; the standbys must take over. 'converged' counts from the cut: the "
            "failover time",
            threatens="a half-open session keeps the advisory lock (for hours, until TCP gives up): "
            "the standby never takes over, the outbox never drains",
            plans={
                "mq": Plan(
                    schedule=[
                        Step(
                            at=0.1,
                            fault=NetworkFault(
                                dependency=PG, roles=_PUBLISHERS["mq"], toxic=blackhole, seconds=None
                            ),
                        )
                    ]
                )
            },
        ),
        Scenario(
            name="blackhole-consumer-postgres",
            description="the consumers' / workers' links to PostgreSQL go dark for 20 s (packets held, "
            "no reset) in the middle of their transactions",
            threatens="a session cut off mid-transaction keeps its row locks and dedup row; the "
            "outage read as processing failures (dead letters)",
            plans={
                v: Plan(schedule=[Step(at=0.3, fault=cut)])
                for v, cut in (
                    (v, NetworkFault(dependency=PG, roles=roles, toxic=blackhole, seconds=20))
                    for v, roles in _REPORTERS.items()
                )
            },
        ),
    ]


def catalogue() -> list[Scenario]:
    return [*_load_scenarios(), *_point_scenarios(), *_role_scenarios(), *_dependency_scenarios(),
            *_backlog_scenarios(), *_blackhole_scenarios(), *_network_scenarios(),
            *_kernel_scenarios()]  # fmt: skip


def scenario_named(name: str) -> Scenario:
    for scenario in catalogue():
        if scenario.name == name:
            return scenario
    known = ", ".join(s.name for s in catalogue())
    raise KeyError(f"unknown scenario {name!r} (known: {known})")


CONTROLS: list[ControlCase] = [
    ControlCase(
        variant="mq",
        control="no-dedup",
        scenario="crash-after_consumer_commit",
        expect=[AnomalyKind.DOUBLE_DEDUCTION],
        why="a crash after the commit, before the ack, redelivers: without dedup it deducts again",
    ),
    ControlCase(
        variant="mq",
        control="no-dedup",
        scenario="lost-ack",
        expect=[AnomalyKind.DOUBLE_DEDUCTION],
        why="the network loses the consumer's acks: the broker redelivers, without dedup it deducts again",
    ),
    ControlCase(
        variant="mq",
        control="direct-publish",
        scenario="crash-after_order_commit",
        expect=[AnomalyKind.STUCK],  # the client got no answer: not "lost", PENDING forever
        why="the order is committed, the API dies before publishing: nothing will ever process it",
    ),
    ControlCase(
        variant="mq",
        control="ack-before-commit",
        scenario="crash-before_consumer_commit",
        expect=[AnomalyKind.LOST, AnomalyKind.STUCK],  # the client had its 202
        why="the delivery is acked, the consumer dies before its commit: the message is gone",
    ),
    ControlCase(
        variant="workflow",
        control="non-idempotent-deduct",
        scenario="crash-after_deduct_commit",
        expect=[AnomalyKind.DOUBLE_DEDUCTION],
        why="the deduction committed, its completion lost: the retried activity deducts again",
    ),
    ControlCase(
        variant="workflow",
        control="non-idempotent-deduct",
        scenario="lost-ack",
        expect=[AnomalyKind.DOUBLE_DEDUCTION],
        why="the worker is cut off from Temporal past its heartbeat timeout: the deduction is retried",
    ),
    ControlCase(
        variant="workflow",
        control="api-writes-order",
        scenario="crash-after_order_commit",
        expect=[AnomalyKind.STUCK],  # the client got no answer: not "lost", PENDING forever
        why="the API wrote the order row and died before starting the workflow: PENDING forever",
    ),
]

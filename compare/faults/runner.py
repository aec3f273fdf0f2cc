"""Fault runs, Jepsen-style: the fault suite's Python API.

    from compare.faults.runner import run_scenarios
    results = await run_scenarios(
        ["mq", "workflow"], ["baseline", "kill-api"], seed=1, orders=200,
        out_dir=Path("results/faults"), progress=print, controls=True,
    )
    for r in results:
        r.model_dump(mode="json")   # ScenarioResult: variant, control, scenario, status, anomalies, ...

- `variant_names`: "mq", "workflow", or one control as "mq:no-dedup" (see compare.faults.scenario.CONTROLS);
  `controls=True` adds every control of the named variants, each with the scenario that must
  expose it (its expected anomalies in `expected`).
- `scenario_names`: names from compare.faults.scenario.catalogue(), or ["all"].
- `rate`: orders per second the workload offers (default 25; the Temporal dev server here
  completes about 15 workflows/s, so at 25/s part of the workflow variant's "time to converge"
  is its backlog draining: compare with the baseline run's `drain_s`, or lower the rate).
- `sandbox`: None starts private PostgreSQL / RabbitMQ / Temporal servers for the run and stops
  them at the end; pass `Sandbox.external(...)` to use given servers (destructive scenarios are
  then skipped).
- `deployment`: instead of a sandbox, variants already running (compare.targets.deployment): the suite
  attaches to them and skips what it cannot apply there (`unsupported` says why).

One run: fresh databases / queues / task queues (a random prefix); every role reaches every
dependency through its own fault proxy (CC_ROLE_ENV); the variant starts with the scenario's fault
points armed (CC_FAULTS) and the control selected (CC_CONTROL); stock is set through the API; the
workload and the fault schedule run side by side and are recorded in the history; then every
fault is healed and the run waits (bounded by `recovery_s`) until the system converges; the
checker reads the databases, the broker's dead-letter queues and Temporal, and judges.

Files in out_dir: faults.json (every ScenarioResult), <label>.json (one result),
<label>.history.json (its history), runs/<label>/variant.log (the variant's output).
`status` is "pass" (real variant: no anomaly; control: every anomaly it expects showed), "fail",
"not-applied" (an armed fault point never fired, or an injector missed or broke: the run proves
nothing, so it does not pass; a real variant's anomalies still make it "fail"), "skipped" (the
target cannot take this run; `note` says why) or "error" (the run itself broke, e.g. a dead-letter
queue that does not exist; `note` says why). Controls get the same recovery window as the real
scenarios: a control must not pass because the system was merely slow. The share of valid orders
a run must get accepted is its workload's `min_accepted` (compare.faults.workload.WorkloadSpec).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import aio_pika
import httpx
from pydantic import BaseModel, Field

from common.db import drop_database
from common.settings import Settings
from compare.faults import netns
from compare.faults.checker import (
    AnomalyKind,
    DeadLetterQueueMissing,
    StateReader,
    SystemState,
    Verdict,
    converged,
    judge,
)
from compare.faults.history import FaultEvent, History
from compare.faults.injectors import (
    ArmPoint,
    Dependencies,
    FaultContext,
    KernelPartition,
    KillRole,
    NetworkFault,
    PauseRole,
    RestartDependency,
    dependency_env,
    faults_env,
    role_env,
)
from compare.faults.nemesis import draw, run_schedule
from compare.faults.netns import RoleNamespace
from compare.faults.proxy import FaultProxy
from compare.faults.scenario import CONTROLS, PROFILES, ControlCase, Plan, Scenario, catalogue, scenario_named
from compare.faults.workload import Workload, WorkloadRunner
from compare.targets.deployment import Deployment, NoRestarts, wait_ready
from compare.targets.roles import NoRoles, Roles, SupervisedRoles
from compare.targets.sandbox import Dependency, Sandbox, free_port
from compare.targets.target import VARIANTS, VariantProcess

Progress = Callable[[str], None]
Status = Literal["pass", "fail", "not-applied", "skipped", "error"]


class ScenarioResult(BaseModel):
    variant: str
    control: str | None = None
    scenario: str
    threatens: str = ""
    seed: int
    orders: int
    rate: float | None = None  # orders/s the workload offered (None: results from before it was recorded)
    status: Status
    expected: list[AnomalyKind] = Field(default_factory=list)  # controls: what must show
    anomalies: dict[str, int] = Field(default_factory=dict)
    verdict: Verdict | None = None
    converged: bool = False
    converge_s: float | None = None  # from the end of the last fault to convergence
    drain_s: float | None = None  # from the end of the workload (all faults healed) to convergence
    duration_s: float = 0.0
    min_accepted: float | None = None  # the share of valid orders the run had to get accepted
    arm: list[str] = Field(default_factory=list)
    fired: dict[str, int] = Field(default_factory=dict)  # armed fault points that went off
    faults: list[FaultEvent] = Field(default_factory=list)
    note: str | None = None

    @property
    def label(self) -> str:
        who = f"{self.variant}-{self.control}" if self.control else self.variant
        return f"{who}__{self.scenario}"


class Case(BaseModel):
    variant: str
    scenario: Scenario
    control: ControlCase | None = None

    @property
    def label(self) -> str:
        who = f"{self.variant}-{self.control.control}" if self.control else self.variant
        return f"{who}__{self.scenario.name}"


def plan_cases(variant_names: list[str], scenario_names: list[str], *, controls: bool = False) -> list[Case]:
    """The matrix: every scenario that applies to every variant, then the controls."""
    everything = scenario_names == ["all"] or "all" in scenario_names
    scenarios = catalogue() if everything else [scenario_named(n) for n in scenario_names]
    cases: list[Case] = []
    control_cases: list[ControlCase] = []
    for name in variant_names:
        variant, _, control = name.partition(":")
        if variant not in PROFILES:
            raise KeyError(f"unknown variant {variant!r} (known: {', '.join(PROFILES)})")
        if control:
            found = [c for c in CONTROLS if c.variant == variant and c.control == control]
            if not found:
                known = ", ".join(c.control for c in CONTROLS if c.variant == variant)
                raise KeyError(f"unknown control {control!r} for {variant} (known: {known})")
            control_cases += found
            continue
        cases += [Case(variant=variant, scenario=s) for s in scenarios if s.applies_to(variant)]
        if controls:
            control_cases += [c for c in CONTROLS if c.variant == variant]
    cases += [Case(variant=c.variant, scenario=scenario_named(c.scenario), control=c) for c in control_cases]
    return cases


def dependencies_of(cases: list[Case]) -> set[Dependency]:
    return {d for c in cases for d in PROFILES[c.variant].dependencies}


async def run_scenarios(
    variant_names: list[str],
    scenario_names: list[str],
    seed: int,
    orders: int,
    out_dir: Path,
    progress: Progress | None = None,
    *,
    controls: bool = False,
    sandbox: Sandbox | None = None,
    deployment: Deployment | None = None,
    recovery_s: float = 60.0,
    rate: float | None = None,
) -> list[ScenarioResult]:
    cases = plan_cases(variant_names, scenario_names, controls=controls)
    say = progress or (lambda _: None)
    os.makedirs(out_dir, exist_ok=True)
    owned = sandbox is None and deployment is None
    target: Sandbox | Deployment
    if deployment is not None:
        target = deployment
    elif sandbox is not None:
        target = sandbox
    else:
        say(f"starting private servers: {', '.join(sorted(dependencies_of(cases)))}")
        target = sandbox = await Sandbox.private_servers(dependencies_of(cases))
    results: list[ScenarioResult] = []
    try:
        for i, case in enumerate(cases, 1):
            say(f"[{i}/{len(cases)}] {case.label}")
            result = await run_case(case, target, seed=seed, orders=orders, out_dir=out_dir,
                                    say=say, recovery_s=recovery_s, rate=rate)  # fmt: skip
            results.append(result)
            say(f"[{i}/{len(cases)}] {case.label}: {result.status.upper()} {_brief(result)}")
            _write(
                out_dir / "faults.json", json.dumps([r.model_dump(mode="json") for r in results], indent=1)
            )
    finally:
        if owned and isinstance(target, Sandbox):
            await target.close()
    return results


def _brief(r: ScenarioResult) -> str:
    if r.status in ("skipped", "error"):
        return r.note or ""
    parts = [", ".join(f"{k}={v}" for k, v in r.anomalies.items()) or "no anomaly"]
    if r.verdict is not None:
        parts.append(accepted_share(r.verdict))
    if r.converge_s is not None:
        parts.append(f"converged {r.converge_s:.1f}s after the last fault")
    if r.note:
        parts.append(r.note)
    return "; ".join(parts)


async def run_case(
    case: Case,
    target: Sandbox | Deployment,
    *,
    seed: int,
    orders: int,
    out_dir: Path,
    say: Progress,
    recovery_s: float = 60.0,
    rate: float | None = None,
) -> ScenarioResult:
    scenario = case.scenario
    control = case.control.control if case.control else None
    base = ScenarioResult(
        variant=case.variant,
        control=control,
        scenario=scenario.name,
        threatens=scenario.threatens,
        seed=seed,
        orders=orders,
        status="skipped",
        expected=case.control.expect if case.control else [],
    )
    plan = _plan(scenario, case.variant, seed, restarts=_can_restart(target))
    reason = unsupported(case, plan, target)
    if reason is not None:
        return base.model_copy(update={"note": reason})
    run: _Run
    if isinstance(target, Deployment):
        run = _DeployedRun(case, plan, target, seed=seed, orders=orders, out_dir=out_dir, say=say, rate=rate)
    else:
        run = _Run(case, plan, target, seed=seed, orders=orders, out_dir=out_dir, say=say, rate=rate)
    started = time.monotonic()
    try:
        result = await run.execute(base, max(recovery_s, scenario.min_recovery_s))
    except Exception as exc:
        result = base.model_copy(
            update={"status": "error", "note": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
        )
    finally:
        await run.cleanup()
    result.duration_s = round(time.monotonic() - started, 1)
    result.arm = [a.entry() for a in plan.arm]
    result.fired = fired_points(run.run_dir / "variant.log")
    result = settle(result, not_applied(plan, result.fired, run.history.faults))
    _write(out_dir / f"{result.label}.json", result.model_dump_json(indent=1))
    _write(out_dir / f"{result.label}.history.json", run.history.model_dump_json())
    return result


def accepted_share(verdict: Verdict) -> str:
    """ "accepted 97/100 valid orders (97 %, at least 50 %)" """
    s = verdict.summary
    if s.accepted_fraction is None:
        return "no valid order attempted"
    accepted = round(s.accepted_fraction * s.intended)
    return (
        f"accepted {accepted}/{s.intended} valid orders "
        f"({s.accepted_fraction:.0%}, at least {verdict.min_accepted:.0%})"
    )


def not_applied(plan: Plan, fired: dict[str, int], faults: list[FaultEvent]) -> list[str]:
    """Why the plan's faults did not all happen: armed points that never fired, injectors that
    missed or broke, scheduled steps that never started. Empty: every fault was applied."""
    reasons = [f"{arm.label()} never fired" for arm in plan.arm if not _has_fired(arm, fired)]
    for event in faults:
        if event.action == "error":
            reasons.append(f"{event.fault}: error {event.detail}".rstrip())
        elif event.detail.startswith("missed"):
            reasons.append(f"{event.fault}: {event.detail}")
    started, scheduled = sum(1 for event in faults if event.action != "heal"), len(plan.schedule)
    if started < scheduled:
        reasons.append(f"{scheduled - started} of {scheduled} scheduled faults never started")
    return reasons


def _has_fired(arm: ArmPoint, fired: dict[str, int]) -> bool:
    """`fired` keys are common.faults' `role/point: action`."""
    for key in fired:
        where, _, action = key.partition(": ")
        role, _, point = where.rpartition("/")
        if point == arm.point and action == arm.action and arm.role in (None, role):
            return True
    return False


def settle(result: ScenarioResult, reasons: list[str]) -> ScenarioResult:
    """A run whose faults were not all applied does not pass: "not-applied" (a real variant's
    anomalies still make it "fail", with the reasons in the note; an error stays an error)."""
    if not reasons or result.status in ("error", "skipped"):
        return result
    more = f" (+{len(reasons) - 5} more)" if len(reasons) > 5 else ""
    note = "not applied: " + "; ".join(reasons[:5]) + more
    note = f"{result.note}; {note}" if result.note else note
    real_failure = result.status == "fail" and result.control is None
    return result.model_copy(update={"status": "fail" if real_failure else "not-applied", "note": note})


def control_status(verdict: Verdict, expect: list[AnomalyKind]) -> tuple[Status, str | None]:
    """A control passes only when every anomaly kind it expects showed."""
    missing = [kind.value for kind in expect if not verdict.count(kind)]
    if not missing:
        return "pass", None
    if verdict.ok:
        return "fail", "control came out clean: the suite failed to expose it"
    shown = ", ".join(verdict.counts())
    return "fail", f"control did not show {', '.join(missing)} (only {shown}): the suite failed to expose it"


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def fired_points(log: Path) -> dict[str, int]:
    """Armed fault points that went off, from the `FAULT role/point: action` lines of common.faults."""
    fired: Counter[str] = Counter()
    with contextlib.suppress(FileNotFoundError):
        for line in log.read_text(errors="replace").splitlines():
            _, found, rest = line.partition("FAULT ")
            if found:
                fired[rest.strip()] += 1
    return dict(fired)


def _can_restart(target: Sandbox | Deployment) -> bool:
    if isinstance(target, Deployment):
        return target.dependencies is not None
    return target.private


def unsupported(case: Case, plan: Plan, target: Sandbox | Deployment) -> str | None:
    """Why this run cannot be done against this target, or None."""
    faults = [step.fault for step in plan.schedule]
    if isinstance(target, Sandbox):
        if case.scenario.destructive and not target.private:
            return "needs the private sandbox (restarts a dependency)"
        if plan.isolate and not netns.available():
            return "needs network namespaces (root and iproute2)"
        return None
    if case.control is not None:
        return "a control needs the variant started by the suite (CC_CONTROL)"
    if plan.arm:
        return "arms fault points: CC_FAULTS is fixed when a deployment starts"
    if any(isinstance(f, NetworkFault) for f in faults):
        return "needs the suite's fault proxies between roles and dependencies"
    roles = target.roles.get(case.variant)
    if any(isinstance(f, KillRole | PauseRole) for f in faults) and roles is None:
        return f"process faults: {target.no_roles_reason}"
    partitions = plan.isolate or any(isinstance(f, KernelPartition) for f in faults)
    if partitions and not (roles and roles.can_partition):
        return "partitions: only containers (a Docker engine) or the suite's own namespaces can be cut off"
    if any(isinstance(f, RestartDependency) for f in faults) and target.dependencies is None:
        return f"dependency restarts: {target.no_restarts_reason}"
    return None


def _plan(scenario: Scenario, variant: str, seed: int, *, restarts: bool) -> Plan:
    if scenario.nemesis:
        return draw(PROFILES[variant], seed, restarts=restarts)
    return scenario.plans[variant]


class _Run:
    """One run against a variant the suite starts itself, on the sandbox's servers."""

    def __init__(
        self,
        case: Case,
        plan: Plan,
        target: Sandbox | Deployment,
        *,
        seed: int,
        orders: int,
        out_dir: Path,
        say: Progress,
        rate: float | None = None,
    ) -> None:
        self.case = case
        self.plan = plan
        self.profile = PROFILES[case.variant]
        self.say = say
        self.seed = seed
        self.spec = case.scenario.workload.model_copy(
            update={"orders": orders} | ({"rate": rate} if rate else {})
        )
        self.tag = uuid.uuid4().hex[:8]
        self.workload = Workload(self.spec, f"o{self.tag}", seed)
        self.history = History()
        self.run_dir = out_dir / "runs" / case.label
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir(parents=True)
        self.proxies: dict[tuple[Dependency, str | None], FaultProxy] = {}
        self.process: VariantProcess | None = None
        self.reader: StateReader | None = None
        self.namespaces: dict[str, RoleNamespace] = {}
        self.target = target
        self.direct = self._settings()

    @property
    def sandbox(self) -> Sandbox:
        assert isinstance(self.target, Sandbox)
        return self.target

    def _settings(self) -> Settings:
        """The run's settings with the real (not proxied) addresses: fresh names per run."""
        target = self.sandbox
        prefix = f"cc{self.tag}_"
        return Settings(
            pg_url=target.pg_url,
            amqp_url=target.amqp_url,
            temporal_address=target.temporal_address,
            db_prefix=prefix,
            amqp_prefix=prefix,
            temporal_queue_prefix=prefix,
            run_dir=self.run_dir,
            api_port=free_port(),
            faults=faults_env(self.plan.arm),
            control=self.case.control.control if self.case.control else "",
        )

    async def _start(self) -> tuple[str, Roles, Dependencies]:
        """Proxies, namespaces, then the variant; its API's address and what faults act on."""
        for role in self.plan.isolate:
            self.namespaces[role] = await RoleNamespace.create()
        for dep in self.profile.dependencies:
            for role in (None, *self.profile.roles):
                ns = self.namespaces.get(role) if role else None
                proxy = FaultProxy(
                    f"{role or 'default'}->{dep}",
                    self.sandbox.address(dep),
                    listen=(ns.host_ip if ns else "127.0.0.1", 0),
                    seed=self.seed,
                )
                await proxy.start()
                self.proxies[(dep, role)] = proxy
        update: dict[str, object] = {
            k.removeprefix("CC_").lower(): v
            for dep in self.profile.dependencies
            for k, v in dependency_env(dep, self.proxies[(dep, None)], self.sandbox).items()
        }
        if "api" in self.namespaces:  # clients reach the API across its veth
            update["api_host"] = self.namespaces["api"].ns_ip
        proxied = self.direct.model_copy(update=update)
        self.process = VariantProcess(VARIANTS[self.case.variant], proxied, self.run_dir / "variant.log")
        self.say("  starting the variant")
        env = {"CC_ROLE_ENV": role_env(self.proxies, self.profile.roles, self.sandbox)}
        if self.namespaces:
            env["CC_ROLE_PREFIX"] = json.dumps({role: ns.prefix for role, ns in self.namespaces.items()})
        self.process.start(env, reset=True)
        await self.process.wait_ready(timeout=120)
        return self.process.base_url, SupervisedRoles(self.run_dir), self.sandbox

    def _reader(self) -> StateReader:
        return StateReader(
            self.direct,
            VARIANTS[self.case.variant].db_code,
            dead_letter_queues=tuple(self.direct.amqp_name(q) for q in self.profile.dead_letter_queues),
            temporal=self.profile.temporal,
        )

    async def execute(self, base: ScenarioResult, recovery_s: float) -> ScenarioResult:
        base_url, roles, dependencies = await self._start()
        self.history.initial_stock = self.workload.initial_stock()
        await self._set_stock(base_url)

        duration = self.spec.duration_hint()
        t0 = time.monotonic()
        ctx = FaultContext(
            roles=roles,
            dependencies=dependencies,
            proxies=self.proxies,
            direct=self.direct,
            history=self.history,
            t0=t0,
            log=lambda line: self.say(f"  {line}"),
            namespaces=self.namespaces,
        )
        runner = WorkloadRunner(self.workload, base_url, self.history, t0)
        self.say(
            f"  load: {self.spec.orders} orders at {self.spec.rate:g}/s; {len(self.plan.schedule)} faults"
        )
        ticker = asyncio.create_task(self._tick(runner))
        try:
            await asyncio.gather(runner.run(), run_schedule(self.plan.schedule, ctx, duration))
        finally:
            ticker.cancel()
            await ctx.heal_all()
        load_end = time.monotonic()

        if self.reader is None:
            self.reader = self._reader()
        self.say(f"  recovering (at most {recovery_s:g}s)")
        state, done_at = await self._await_convergence(load_end + recovery_s)
        verdict = judge(self.history, state, min_accepted=self.spec.min_accepted)
        last_fault = max((f.at for f in self.history.faults), default=None)
        converge_s = drain_s = None
        if done_at is not None:
            drain_s = round(max(0.0, done_at - load_end), 2)
            if last_fault is not None:
                converge_s = round(max(0.0, done_at - t0 - last_fault), 2)
            elif self.plan.arm:  # armed points fire during the load: count from its end
                converge_s = drain_s
        status: Status = "pass" if verdict.ok else "fail"
        note = None
        if self.case.control is not None:
            status, note = control_status(verdict, self.case.control.expect)
        return base.model_copy(
            update={
                "status": status,
                "anomalies": verdict.counts(),
                "verdict": verdict,
                "converged": done_at is not None,
                "converge_s": converge_s,
                "drain_s": drain_s,
                "faults": self.history.faults,
                "note": note,
                "min_accepted": self.spec.min_accepted,
                "rate": self.spec.rate,
            }
        )

    async def _tick(self, runner: WorkloadRunner) -> None:
        while True:
            await asyncio.sleep(3)
            accepted = len(self.history.accepted())
            self.say(f"  ... {runner.done}/{self.spec.orders} orders done, {accepted} accepted")

    async def _set_stock(self, base_url: str) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            for sku, quantity in self.history.initial_stock.items():
                for attempt in range(20):
                    with contextlib.suppress(httpx.HTTPError):
                        r = await client.put(f"/stock/{sku}", json={"quantity": quantity})
                        if r.status_code == 200:
                            break
                    await asyncio.sleep(0.2 * (attempt + 1))
                else:
                    raise RuntimeError(f"could not set stock for {sku}")

    async def _await_convergence(self, deadline: float) -> tuple[SystemState, float | None]:
        assert self.reader is not None
        state: SystemState | None = None
        while True:
            try:
                state = await self.reader.read(self.history, workflows=False)
                if converged(self.history, state):
                    if self.profile.temporal:
                        state = await self.reader.read(self.history, workflows=True)
                    if converged(self.history, state):
                        return state, time.monotonic()
            except DeadLetterQueueMissing:
                raise  # not a dependency coming back: the count cannot be trusted, the run errs
            except Exception as exc:  # a dependency still coming back
                self.say(f"  (reading state: {type(exc).__name__})")
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        return await self.reader.read(self.history, workflows=True), None

    async def cleanup(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(self.process.stop)
        for proxy in self.proxies.values():
            await proxy.stop()
        for ns in self.namespaces.values():
            await ns.close()
        if self.reader is not None:
            await self.reader.close()
        for side in ("orders", "inventory"):
            with contextlib.suppress(Exception):
                await drop_database(
                    self.direct, self.direct.database(VARIANTS[self.case.variant].db_code, side)
                )
        if not self.sandbox.private and self.profile.dead_letter_queues:
            with contextlib.suppress(Exception):
                await _delete_broker_names(self.direct)


class _DeployedRun(_Run):
    """One run against a deployment that is already running: attach, load, fault, check."""

    @property
    def deployment(self) -> Deployment:
        assert isinstance(self.target, Deployment)
        return self.target

    def _settings(self) -> Settings:
        """The deployment's addresses and names; only the run directory is the run's own."""
        deployed = self.deployment.variants[self.case.variant].settings
        return deployed.model_copy(update={"run_dir": self.run_dir})

    async def _start(self) -> tuple[str, Roles, Dependencies]:
        api_url = self.deployment.variants[self.case.variant].api_url
        self.say(f"  attaching to {api_url}")
        await wait_ready(api_url)
        self.reader = self._reader()
        if self.profile.dead_letter_queues:  # a deployment keeps what earlier runs dead-lettered
            self.reader.dead_letters_before = await self.reader.dead_letters()
        roles = self.deployment.roles.get(self.case.variant) or NoRoles(self.deployment.no_roles_reason)
        return api_url, roles, self.deployment.dependencies or NoRestarts()

    def _reader(self) -> StateReader:
        reader = super()._reader()
        reader.order_prefix = self.workload.tag
        return reader

    async def cleanup(self) -> None:
        if self.reader is not None:
            await self.reader.close()


async def _delete_broker_names(settings: Settings) -> None:
    """On a shared broker, remove the run's queues and exchanges (names from the preamble)."""
    queues = ("inventory.deduct", "orders.results", "inventory.deduct.dlq", "orders.results.dlq")
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for name in queues:
            await channel.queue_delete(settings.amqp_name(name))
        for name in ("mq", "mq.dlx"):
            await channel.exchange_delete(settings.amqp_name(name))

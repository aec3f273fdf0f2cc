"""Traffic over time: a burst above the sustained rate, and process faults under steady load.

Burst (the seed's "削峰" claim, that the broker smooths peaks): `burst_lead_s` at a base rate,
`burst_s` at `burst_factor` x the max sustainable rate, `burst_tail_s` back at the base rate;
acceptance latency at the API, the backlog over time (PENDING orders for every target; outbox
rows and queue depths for MQ; open workflows and task-queue backlogs for Temporal) and the time
from the end of the peak until the backlog is back to its pre-burst level ("drained": PENDING
orders <= max(5, 2 x the highest level seen during the lead phase)); for the workflow variant
the in-flight count is the larger of PENDING rows and open workflows (its order row is written
by the workflow's first activity, so an order queued in Temporal has no row yet).

Disturbance: steady load at a moderate rate while the inventory-side role is SIGKILLed (the
supervisor restarts it) and later the order-side role is paused (SIGSTOP, SIGCONT after
`disturb_pause_s`). Fault windows are recorded for the over-time plot; recovery time per fault
is measured the same way as the burst drain; double deductions are counted, and so are lost
orders against the client's own 202s: an accepted order absent from the order database, or still
PENDING, once the backlog has drained (what backs the report's "no lost order").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

from pydantic import BaseModel

from common.supervisor import read_pid
from compare.bench import BenchConfig, Progress, SecondBin, summarise, wait_drained
from compare.load import LoadRun, OrderFactory, Phase, run_open_loop
from compare.metrics import GroupUsage, LatencyHistogram, LatencySummary, ResourceSampler, cores_between
from compare.stage import Staged

# role SIGKILLed (inventory side), role paused (order side)
DISTURBED_ROLES = {
    "mq": ("inventory-consumer", "order-relay"),
    "workflow": ("inventory-worker", "order-worker"),
}


class BacklogSample(BaseModel):
    t: float  # seconds from the load start
    pending: int  # orders accepted, not terminal
    outbox: int | None = None  # MQ: rows in t_local_msg (both databases)
    queues: dict[str, int] = {}  # MQ: ready messages per queue
    open_workflows: int | None = None  # Temporal: running workflows
    task_queues: dict[str, int] = {}  # Temporal: approximate backlog per task queue

    @property
    def level(self) -> int:
        """Orders in flight: PENDING rows, or open workflows where the order row comes later."""
        return max(self.pending, self.open_workflows or 0)


async def sample_backlog(st: Staged, t0: float) -> BacklogSample:
    sample = BacklogSample(t=round(time.time() - t0, 2), pending=await st.stores.pending())
    with contextlib.suppress(Exception):
        sample.outbox = await st.stores.outbox_rows()
    if st.broker is not None:
        with contextlib.suppress(Exception):
            sample.queues = await st.broker.depths()
    if st.temporal is not None:
        with contextlib.suppress(Exception):
            sample.open_workflows = await st.temporal.workflows("Running")
        with contextlib.suppress(Exception):
            sample.task_queues = await st.temporal.backlog()
    return sample


class BacklogRecorder:
    def __init__(self, st: Staged, t0: float, interval: float = 1.0) -> None:
        self.st, self.t0, self.interval = st, t0, interval
        self.samples: list[BacklogSample] = []
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                self.samples.append(await sample_backlog(self.st, self.t0))
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def until_drained(self, timeout_s: float) -> None:
        """Keep sampling after the load until nothing is pending or queued (bounded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            last = self.samples[-1] if self.samples else None
            if last is not None and last.t > 0 and _empty(last):
                return
            await asyncio.sleep(self.interval)


def _empty(s: BacklogSample) -> bool:
    queued = sum(v for k, v in s.queues.items() if not k.endswith("dlq"))
    return s.pending == 0 and not s.outbox and queued == 0 and not s.open_workflows


def time_to_level(samples: list[BacklogSample], since: float, level: float) -> float | None:
    """Seconds from `since` until the in-flight backlog is <= level (None: never in the run)."""
    for s in samples:
        if s.t >= since and s.level <= level:
            return round(s.t - since, 2)
    return None


def baseline_level(samples: list[BacklogSample], until: float) -> float:
    before = [s.level for s in samples if s.t < until]
    return max(5.0, 2.0 * max(before, default=0))


def busiest(cores: dict[str, float], top: int = 4) -> str:
    """ "api 0.97, postgres 0.61, ..." (cores), busiest first; "-" when nothing was measured."""
    ranked = sorted(cores.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{name} {value:.2f}" for name, value in ranked) or "-"


class BurstResult(BaseModel):
    base_rate: float
    peak_rate: float
    lead_s: float
    burst_s: float
    tail_s: float
    sent: int
    accepted: int
    errors: int
    error_samples: list[str]
    accept: LatencySummary
    accept_peak: LatencySummary  # arrivals scheduled during the peak
    terminal: LatencySummary
    max_pending: int
    drain_level: float
    drain_s: float | None  # from the end of the peak until PENDING <= drain_level
    backlog: list[BacklogSample]
    timeline: list[SecondBin]
    resources: dict[str, GroupUsage]
    peak_cores: dict[str, float] = {}  # cores each process group kept busy during the peak


async def burst(st: Staged, cfg: BenchConfig, sustained: float, progress: Progress) -> BurstResult:
    base = max(round(sustained * 0.5, 1), 1.0)
    peak = min(sustained * cfg.burst_factor, cfg.burst_cap_rate)
    phases = [
        Phase(duration_s=cfg.burst_lead_s, rate=base),
        Phase(duration_s=cfg.burst_s, rate=peak),
        Phase(duration_s=cfg.burst_tail_s, rate=base),
    ]
    progress(
        f"{st.title}: burst {cfg.burst_lead_s:g} s at {base:g}/s, {cfg.burst_s:g} s at {peak:g}/s, "
        f"{cfg.burst_tail_s:g} s at {base:g}/s"
    )
    tag = "burst"
    groups, notes = st.resource_groups()
    t0 = time.time() + 0.2
    recorder = BacklogRecorder(st, t0)
    async with ResourceSampler(groups, notes=notes) as sampler:
        recorder.start()
        try:
            run = await run_open_loop(
                st.base_url,
                phases,
                OrderFactory(cfg.seed + 1, tag, cfg.skus),
                connections=cfg.connections * 2,
                drain_timeout_s=cfg.burst_drain_timeout_s,
            )
            await recorder.until_drained(cfg.burst_drain_timeout_s)
        finally:
            await recorder.stop()
    end = time.time()
    times = await st.stores.order_times(tag)
    total = cfg.burst_lead_s + cfg.burst_s + cfg.burst_tail_s
    step = summarise(
        run,
        times,
        offered_rate=peak,
        duration_s=total,
        window_end=end,
        resources={},
        bound_ms=cfg.p99_bound_ms,
    )
    peak_start, peak_end = run.started + cfg.burst_lead_s, run.started + cfg.burst_lead_s + cfg.burst_s
    peak_hist = LatencyHistogram()
    for rec in run.records:
        if peak_start <= rec.scheduled < peak_end:
            peak_hist.record_ms(((rec.done or end) - rec.scheduled) * 1000)
    samples = recorder.samples
    level = baseline_level(samples, cfg.burst_lead_s)
    drain = time_to_level(samples, cfg.burst_lead_s + cfg.burst_s, level)
    result = BurstResult(
        base_rate=base,
        peak_rate=peak,
        lead_s=cfg.burst_lead_s,
        burst_s=cfg.burst_s,
        tail_s=cfg.burst_tail_s,
        sent=step.sent,
        accepted=step.accepted,
        errors=step.errors,
        error_samples=step.error_samples,
        accept=step.accept,
        accept_peak=peak_hist.summary(),
        terminal=step.terminal,
        max_pending=max((s.level for s in samples), default=0),
        drain_level=level,
        drain_s=drain,
        backlog=samples,
        timeline=step.timeline,
        resources=sampler.usage(),
        peak_cores=cores_between(sampler.series, peak_start, peak_end),
    )
    progress(
        f"{st.title}: burst accept p99 {result.accept_peak.p99_ms} ms during the peak, max backlog "
        f"{result.max_pending} orders, drained {drain if drain is not None else 'NOT'} s after the peak; "
        f"busiest during the peak: {busiest(result.peak_cores)}"
    )
    return result


class FaultWindow(BaseModel):
    label: str
    role: str
    start: float  # seconds from the load start
    end: float
    recovery_s: float | None = None  # from the window's end until the backlog is back to normal


class DisturbResult(BaseModel):
    rate: float
    duration_s: float
    windows: list[FaultWindow]
    accept: LatencySummary
    terminal: LatencySummary
    anomalies: dict[str, int]
    backlog: list[BacklogSample]
    timeline: list[SecondBin]
    accepted: int | None = None  # orders the client got a 202 for
    accepted_missing: int | None = None  # of those, absent from the order database after the drain
    accepted_pending: int | None = None  # of those, still PENDING after the drain


def unfinished(run: LoadRun, status: dict[str, str]) -> tuple[int, int]:
    """Of the orders the client got a 202 for: (absent from `status`, still PENDING there)."""
    accepted = [r.order_id for r in run.accepted]
    missing = sum(1 for oid in accepted if oid not in status)
    pending = sum(1 for oid in accepted if status.get(oid) == "PENDING")
    return missing, pending


async def _wait_new_pid(st: Staged, role: str, old: int, timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = read_pid(st.settings.run_dir, role)
        if pid is not None and pid != old:
            return
        await asyncio.sleep(0.1)


async def disturb(st: Staged, cfg: BenchConfig, rate: float, progress: Progress) -> DisturbResult | None:
    roles = DISTURBED_ROLES.get(st.name)
    if roles is None:
        return None
    kill_role, pause_role = roles
    progress(
        f"{st.title}: {cfg.disturb_s:g} s at {rate:g}/s with SIGKILL {kill_role} and "
        f"SIGSTOP {pause_role} for {cfg.disturb_pause_s:g} s"
    )
    tag = "dist"
    t0 = time.time() + 0.2
    windows: list[FaultWindow] = []

    async def nemesis() -> None:
        await asyncio.sleep(max(t0 + cfg.disturb_s * 0.25 - time.time(), 0))
        pid = st.process.signal_role(kill_role, signal.SIGKILL)
        start = time.time() - t0
        await _wait_new_pid(st, kill_role, pid)
        windows.append(
            FaultWindow(label=f"SIGKILL {kill_role}", role=kill_role, start=start, end=time.time() - t0)
        )
        await asyncio.sleep(max(t0 + cfg.disturb_s * 0.6 - time.time(), 0))
        pid = st.process.signal_role(pause_role, signal.SIGSTOP)
        start = time.time() - t0
        try:
            await asyncio.sleep(cfg.disturb_pause_s)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        windows.append(
            FaultWindow(label=f"SIGSTOP {pause_role}", role=pause_role, start=start, end=time.time() - t0)
        )

    recorder = BacklogRecorder(st, t0)
    recorder.start()
    task = asyncio.create_task(nemesis())
    try:
        run = await run_open_loop(
            st.base_url,
            [Phase(duration_s=cfg.disturb_s, rate=rate)],
            OrderFactory(cfg.seed + 2, tag, cfg.skus),
            connections=cfg.connections,
            drain_timeout_s=cfg.burst_drain_timeout_s,
        )
        await task
        await recorder.until_drained(cfg.burst_drain_timeout_s)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await recorder.stop()
    end = await wait_drained(st.stores, tag, 5, len(run.accepted))
    times = await st.stores.order_times(tag)
    step = summarise(
        run,
        times,
        offered_rate=rate,
        duration_s=cfg.disturb_s,
        window_end=end,
        resources={},
        bound_ms=cfg.p99_bound_ms,
    )
    samples = recorder.samples
    level = baseline_level(samples, windows[0].start if windows else cfg.disturb_s)
    for w in windows:
        w.recovery_s = time_to_level(samples, w.end, level)
    anomalies = await st.stores.audit_anomalies(tag)
    missing, pending = unfinished(run, times.status)
    progress(
        f"{st.title}: faults under load: "
        + ", ".join(f"{w.label} recovered {w.recovery_s} s after" for w in windows)
        + f"; anomalies {anomalies}; of {len(run.accepted)} accepted orders {missing} absent, "
        f"{pending} still PENDING"
    )
    return DisturbResult(
        rate=rate,
        duration_s=cfg.disturb_s,
        windows=windows,
        accept=step.accept,
        terminal=step.terminal,
        anomalies=anomalies,
        backlog=samples,
        timeline=step.timeline,
        accepted=len(run.accepted),
        accepted_missing=missing,
        accepted_pending=pending,
    )

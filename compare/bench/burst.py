"""Traffic over time: a burst above the sustained rate, and process faults under steady load.

Burst (the seed's "削峰" claim, that the broker smooths peaks): `burst_lead_s` at a base rate,
`burst_s` at `burst_factor` x the max sustainable rate, `burst_tail_s` back at the base rate;
acceptance latency at the API, the backlog over time (PENDING orders for every target; outbox
rows and queue depths for MQ; open workflows and task-queue backlogs for Temporal) and the time
from the end of the peak until the backlog is back to its pre-burst level ("drained": PENDING
orders <= max(5, 2 x the highest level seen during the lead phase)); for the workflow variant
the in-flight count is the larger of PENDING rows and open workflows (its order row is written
by the workflow's first activity, so an order queued in Temporal has no row yet).

Peak shaving, judged per variant (peak_shaving): the claim HELD when, during a peak that
outran completion (orders completed at < 90 % of the offered peak rate: the consumers fell
behind), the API kept accepting (>= 99 % of the peak's arrivals got a 202, p99 <= 100 ms), the
backlog sat behind the API (more orders accepted-but-not-terminal than unanswered at the API:
in the outbox, the queues, the consumers or Temporal, each shown over time) and it drained after
the peak. A peak that did not outrun completion did not exercise the claim, and says so.
`--inventory-delay-ms` makes consumption the bottleneck: the search then finds the consumers'
rate, the peak is 3x that, and the drain wait is sized to the backlog that leaves.

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
from common.tasks import cancel_and_wait
from compare.bench.capacity import BenchConfig, Progress, SecondBin, summarise, wait_drained
from compare.bench.load import LoadRun, OrderFactory, Phase, run_open_loop
from compare.bench.metrics import GroupUsage, LatencyHistogram, LatencySummary, ResourceSampler, cores_between
from compare.targets.stage import Staged

# role SIGKILLed (inventory side), role paused (order side)
DISTURBED_ROLES = {
    "mq": ("inventory-consumer", "order-relay"),
    "workflow": ("inventory-worker", "order-worker"),
}


class BacklogSample(BaseModel):
    t: float  # seconds from the load start
    pending: int  # orders accepted, not terminal
    api_in_flight: int | None = None  # arrivals due and not yet answered (from the client's records)
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
            await cancel_and_wait(self._task)

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


# The peak-shaving claim's bars: the API must keep answering like an idle one (100 ms p99 is what
# a shopper does not notice) and accept all but a stray 1 %; "outran completion" leaves 10 % slack
# so that a peak completed at its offered rate with ordinary jitter does not count as a backlog.
SHAVING_ACCEPT_P99_MS = 100.0
SHAVING_ACCEPTED_SHARE = 0.99
SHAVING_OUTRAN = 0.9


class PeakShaving(BaseModel):
    verdict: str  # held | did not hold | not exercised
    reasons: list[str]  # why not, one per failed check
    peak_rate: float
    peak_completed_per_s: float  # orders that became terminal per second during the peak
    accepted_share: float  # of the arrivals scheduled during the peak
    accept_p99_ms: float | None
    api_in_flight_max: int  # most arrivals due and not yet answered at once
    behind_api_max: int  # most orders accepted and not terminal at once
    where_at_max: dict[str, int]  # where those were at that moment
    drain_s: float | None


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
    drain_timeout_s: float | None = None  # how long the run waited for the backlog after the load
    inventory_delay_ms: float | None = None  # compare run --inventory-delay-ms
    shaving: PeakShaving | None = None


def in_flight_at(run: LoadRun, when: float) -> int:
    """Arrivals due by `when` (wall clock) that had no answer yet: the queue in front of the API."""
    return sum(1 for r in run.records if r.scheduled <= when and (r.done is None or r.done > when))


def where(sample: BacklogSample) -> dict[str, int]:
    """Where the orders in flight were at one sample (queue and task-queue names as probed)."""
    out: dict[str, int] = {"accepted, not terminal": sample.level}
    if sample.outbox is not None:
        out["outbox rows"] = sample.outbox
    for key, value in sorted(sample.queues.items()):
        if not key.endswith("dlq"):
            out[f"queue {key} (ready)"] = value
    if sample.open_workflows is not None:
        out["workflows running"] = sample.open_workflows
    for key, value in sorted(sample.task_queues.items()):
        out[f"task queue {key}"] = value
    out["unanswered at the API"] = sample.api_in_flight or 0
    return out


def peak_shaving(
    *,
    peak_rate: float,
    burst_s: float,
    peak_arrivals: int,
    peak_accepted: int,
    accept_p99_ms: float | None,
    completed_in_peak: int,
    samples: list[BacklogSample],
    drain_s: float | None,
) -> PeakShaving:
    """Judge the seed's peak-shaving claim from one burst (see the module docstring)."""
    completed_rate = completed_in_peak / burst_s if burst_s > 0 else 0.0
    share = peak_accepted / peak_arrivals if peak_arrivals else 0.0
    api_max = max((s.api_in_flight or 0 for s in samples), default=0)
    top = max(samples, key=lambda s: s.level, default=None)
    behind = top.level if top is not None else 0
    reasons: list[str] = []
    if share < SHAVING_ACCEPTED_SHARE:
        reasons.append(f"only {share:.1%} of the peak's arrivals accepted")
    if accept_p99_ms is None or accept_p99_ms > SHAVING_ACCEPT_P99_MS:
        reasons.append(f"POST -> 202 p99 {accept_p99_ms} ms > {SHAVING_ACCEPT_P99_MS:g} ms")
    if completed_rate >= SHAVING_OUTRAN * peak_rate:
        verdict = "did not hold" if reasons else "not exercised"
        reasons = reasons or [
            f"completion kept up with the peak ({completed_rate:.0f}/s of {peak_rate:g}/s): "
            "no backlog to shave (--inventory-delay-ms makes consumption the bottleneck)"
        ]
    else:
        if behind <= api_max:
            reasons.append(f"the backlog sat at the API ({api_max} unanswered vs {behind} behind it)")
        if drain_s is None:
            reasons.append("the backlog did not drain within the run")
        verdict = "did not hold" if reasons else "held"
    return PeakShaving(
        verdict=verdict,
        reasons=reasons,
        peak_rate=peak_rate,
        peak_completed_per_s=round(completed_rate, 1),
        accepted_share=round(share, 4),
        accept_p99_ms=accept_p99_ms,
        api_in_flight_max=api_max,
        behind_api_max=behind,
        where_at_max=where(top) if top is not None else {},
        drain_s=drain_s,
    )


def drain_timeout(cfg: BenchConfig, sustained: float, base: float, peak: float) -> float:
    """Long enough for the backlog a peak above the sustained rate leaves: it grows by
    (peak - sustained) per second of peak and drains at (sustained - base) per second of tail,
    then at the sustained rate; twice that, at least the configured wait, at most 5 minutes."""
    backlog = max(peak - sustained, 0.0) * cfg.burst_s
    after_tail = max(backlog - max(sustained - base, 0.0) * cfg.burst_tail_s, 0.0)
    needed = after_tail / max(sustained, 1.0)
    return min(max(cfg.burst_drain_timeout_s, 2 * needed), 300.0)


async def burst(
    st: Staged,
    cfg: BenchConfig,
    sustained: float,
    progress: Progress,
    inventory_delay_ms: float | None = None,
) -> BurstResult:
    base = max(round(sustained * 0.5, 1), 1.0)
    peak = min(sustained * cfg.burst_factor, cfg.burst_cap_rate)
    wait_s = drain_timeout(cfg, sustained, base, peak)
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
                drain_timeout_s=wait_s,
            )
            await recorder.until_drained(wait_s)
        finally:
            await recorder.stop()
    end = time.time()
    for sample in recorder.samples:
        sample.api_in_flight = in_flight_at(run, t0 + sample.t)
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
        max_shortfall=cfg.max_shortfall,
        min_growth_ms=cfg.min_growth_ms,
    )
    peak_start, peak_end = run.started + cfg.burst_lead_s, run.started + cfg.burst_lead_s + cfg.burst_s
    peak_hist = LatencyHistogram()
    peak_arrivals = peak_accepted = 0
    for rec in run.records:
        if peak_start <= rec.scheduled < peak_end:
            peak_hist.record_ms(((rec.done or end) - rec.scheduled) * 1000)
            peak_arrivals += 1
            peak_accepted += rec.status == 202
    samples = recorder.samples
    level = baseline_level(samples, cfg.burst_lead_s)
    drain = time_to_level(samples, cfg.burst_lead_s + cfg.burst_s, level)
    accept_peak = peak_hist.summary()
    shaving = peak_shaving(
        peak_rate=peak,
        burst_s=cfg.burst_s,
        peak_arrivals=peak_arrivals,
        peak_accepted=peak_accepted,
        accept_p99_ms=accept_peak.p99_ms,
        completed_in_peak=sum(1 for t in times.terminal_at.values() if peak_start <= t < peak_end),
        samples=samples,
        drain_s=drain,
    )
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
        accept_peak=accept_peak,
        terminal=step.terminal,
        max_pending=max((s.level for s in samples), default=0),
        drain_level=level,
        drain_s=drain,
        backlog=samples,
        timeline=step.timeline,
        resources=sampler.usage(),
        peak_cores=cores_between(sampler.series, peak_start, peak_end),
        drain_timeout_s=wait_s,
        inventory_delay_ms=inventory_delay_ms,
        shaving=shaving,
    )
    progress(
        f"{st.title}: burst accept p99 {result.accept_peak.p99_ms} ms during the peak, max backlog "
        f"{result.max_pending} orders, drained {drain if drain is not None else 'NOT'} s after the peak; "
        f"busiest during the peak: {busiest(result.peak_cores)}; peak shaving {shaving.verdict}"
        + (f" ({'; '.join(shaving.reasons)})" if shaving.reasons else "")
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
        await cancel_and_wait(task)
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
        max_shortfall=cfg.max_shortfall,
        min_growth_ms=cfg.min_growth_ms,
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

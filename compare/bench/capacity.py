"""Capacity search: climb a rate ladder, bisect, confirm; latency to terminal in HDR histograms.

For each offered rate one step: open-loop POST /orders for `step_s` seconds (compare.bench.load),
then wait (bounded) until the step's orders are terminal, then read from the orders database
when each became terminal (t_order.updated_at) and from the inventory database when its stock
was deducted (first t_deduction_log row). Latency is measured from the SCHEDULED send time. An
order not terminal when the wait ends is recorded at the censored value (wait end - scheduled),
so a stall can only make the percentiles worse, never disappear.

A step passes when p99 to terminal <= the stated bound, at least 99 % of the arrivals were
accepted (202), at least 99 % of the accepted orders reached a terminal state in time, and
completion kept up with the offered rate: a short step can end before a growing backlog pushes
p99 past the bound (375/s offered, 293/s completed, p99 1.7 s after 6 s), so the step also
fails when the wait grows across it (backlog_growth: a robust slope through the median wait of
each half second of arrivals) by enough to mean completion fell more than `max_shortfall` short
of the offered rate, and by at least `min_growth_ms`. A step that kept up (everything accepted
and terminal, no growing backlog) but missed the latency bound is repeated once (one transient
stall on a shared machine should not end the search).

The search (capacity_search): climb the ladder (QUICK/FULL `rates`) until the first failing
step; bisect between the last passing and the first failing rate until the gap is under
`bisect_gap` of the passing rate (at most `max_bisect` steps); then run the found rate once more:
it must pass again, else the search steps down and confirms the lower rate (at most `max_confirm`
confirmation steps): to the next lower rate that passed, or to `bisect_gap` below the failed one
when that is closer, so that an unlucky confirmation costs ~10 %, not a whole ladder rung
(400 -> 360 -> 324 -> 300, not 400 -> 300 -> 200; five steps always reach a rung that passed).
A step-down rate measured for the first time (360) counts as confirmed when it passes: a rate
above it passed once too. The max sustainable rate is the confirmed one.
A failing step's backlog is drained (bounded) before the next step starts. Each step also
records the host's pressure (compare.bench.pressure) and flags outside load next to its figures.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Generic, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel

from compare.bench import pressure
from compare.bench.load import LoadRun, OrderFactory, Phase, run_open_loop
from compare.bench.metrics import GroupUsage, LatencyHistogram, LatencySummary, ResourceSampler
from compare.bench.pressure import HostPressure
from compare.targets.probes import OrderTimes, Stores
from compare.targets.stage import Staged

Progress = Callable[[str], None]


class BenchConfig(BaseModel):
    mode: str
    seed: int = 42
    rates: list[float]
    step_s: float
    warmup_s: float = 3.0
    warmup_rate: float = 5.0
    drain_timeout_s: float
    p99_bound_ms: float = 2000.0
    # A step fails when completion fell more than this short of the offered rate (a backlog
    # building up) and that added at least min_growth_ms of wait across the step.
    max_shortfall: float = 0.05
    min_growth_ms: float = 100.0
    skus: int = 100
    stock_per_sku: int = 1_000_000_000
    connections: int = 64
    burst_factor: float = 3.0
    burst_lead_s: float = 5.0
    burst_s: float = 10.0
    burst_tail_s: float = 15.0
    burst_cap_rate: float = 600.0
    burst_drain_timeout_s: float = 60.0
    disturb_s: float = 30.0
    disturb_pause_s: float = 5.0
    fault_scenarios: bool = True  # run the fault suite for the anomaly matrix
    bisect_gap: float = 0.1  # bisect until (first failing - last passing) < this x last passing
    max_bisect: int = 4
    max_confirm: int = 5  # confirmation steps (the found rate, then each step down)
    idle_window_s: float = 2.5  # host pressure with the target idle, before each search
    breakdown_low_rate: float = 10.0  # the per-stage latency breakdown's low rate
    breakdown_poll_s: float = 0.02  # how often the breakdown polls the MQ outbox


# The ladder is coarse (bisection fills the gap below the first failure) and reaches 1500/s:
# it stops at the first failure, so the top rungs only cost time for a target that fast.
QUICK = BenchConfig(
    mode="quick",
    rates=[5, 10, 25, 50, 100, 150, 200, 300, 400, 600, 800, 1000, 1500],
    step_s=6.0,
    drain_timeout_s=10.0,
    burst_drain_timeout_s=40.0,
    disturb_s=24.0,
)
FULL = BenchConfig(
    mode="full",
    rates=[2, 5, 10, 15, 25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1000, 1200, 1500],
    step_s=20.0,
    drain_timeout_s=30.0,
    warmup_s=5.0,
    burst_s=10.0,
    burst_tail_s=30.0,
    burst_cap_rate=1200.0,
    burst_drain_timeout_s=120.0,
    disturb_s=60.0,
)


class SecondBin(BaseModel):
    t: float  # seconds from the run start (bin start)
    offered: int
    accepted: int  # 202 answers received in this second
    completed: int  # orders that became terminal in this second
    accept_p99_ms: float | None  # of arrivals scheduled in this second
    terminal_p99_ms: float | None


class StepResult(BaseModel):
    offered_rate: float
    duration_s: float
    sent: int
    accepted: int
    errors: int
    error_samples: list[str]
    completed: int
    confirmed: int
    rejected: int
    incomplete: int
    accept: LatencySummary
    terminal: LatencySummary
    deducted: LatencySummary
    accepted_per_s: float
    completed_per_s: float
    resources: dict[str, GroupUsage]
    cpu_ms_per_order: dict[str, float]
    passed: bool
    why: str
    timeline: list[SecondBin]
    backlog_growth_ms: float | None = None  # wait added across the step (backlog_growth)
    shortfall: float | None = None  # how far completion fell short of the offered rate
    kept_up: bool = True  # accepted, completed, no backlog building: only latency can fail it
    first_attempt: str | None = None  # set when this step is a repeat: why the first attempt failed
    kind: str = "ladder"  # ladder | bisect | confirm (capacity_search)
    search: int = 0  # which capacity search of the target (compare run --repeat)
    host: HostPressure | None = None  # host pressure during the step, with its flags


def _p99(values: list[float]) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(0.99 * len(values)) - 1)]


def timeline(run: LoadRun, times: OrderTimes, end: float) -> list[SecondBin]:
    """Per-second series from the run start to `end` (wall clock)."""
    n = max(1, math.ceil(end - run.started))
    offered = [0] * n
    accepted = [0] * n
    completed = [0] * n
    acc_lat: list[list[float]] = [[] for _ in range(n)]
    term_lat: list[list[float]] = [[] for _ in range(n)]

    def idx(t: float) -> int | None:
        i = int(t - run.started)
        return i if 0 <= i < n else None

    for rec in run.records:
        i = idx(rec.scheduled)
        if i is None:
            continue
        offered[i] += 1
        if rec.status == 202 and rec.done is not None:
            j = idx(rec.done)
            if j is not None:
                accepted[j] += 1
            acc_lat[i].append((rec.done - rec.scheduled) * 1000)
            term = times.terminal_at.get(rec.order_id)
            term_lat[i].append(((term if term is not None else end) - rec.scheduled) * 1000)
    for t in times.terminal_at.values():
        j = idx(t)
        if j is not None:
            completed[j] += 1
    return [
        SecondBin(
            t=float(i),
            offered=offered[i],
            accepted=accepted[i],
            completed=completed[i],
            accept_p99_ms=_p99(acc_lat[i]),
            terminal_p99_ms=_p99(term_lat[i]),
        )
        for i in range(n)
    ]


class Growth(NamedTuple):
    growth_ms: float  # added wait across the step (robust slope x span)
    shortfall: float  # how far completion fell short of the offered rate (0 when it kept up)


def backlog_growth(run: LoadRun, times: OrderTimes, window_end: float, bin_s: float = 0.5) -> Growth | None:
    """Whether the wait for a terminal state grew across the step, as a backlog that builds up
    makes it: the median wait per `bin_s` of arrivals, and the Theil-Sen slope through those
    medians (the median of the pairwise slopes, so that a stall in a few bins does not tilt it).
    A slope s (seconds of wait gained per second of arrivals) means completion ran at 1/(1+s)
    of the offered rate: a shortfall of s/(1+s). None with fewer than 6 bins to tell."""
    bins: dict[int, list[float]] = {}
    for r in run.records:
        if r.status == 202:
            wait = times.terminal_at.get(r.order_id, window_end) - r.scheduled
            bins.setdefault(int((r.scheduled - run.started) / bin_s), []).append(wait)
    points = sorted((i * bin_s, statistics.median(waits)) for i, waits in bins.items())
    if len(points) < 6:
        return None
    slope = statistics.median((y2 - y1) / (x2 - x1) for (x1, y1), (x2, y2) in combinations(points, 2))
    span = points[-1][0] - points[0][0]
    return Growth(round(slope * span * 1000, 1), round(slope / (1 + slope), 4) if slope > 0 else 0.0)


def summarise(
    run: LoadRun,
    times: OrderTimes,
    *,
    offered_rate: float,
    duration_s: float,
    window_end: float,
    resources: dict[str, GroupUsage],
    bound_ms: float,
    max_shortfall: float,
    min_growth_ms: float,
) -> StepResult:
    accept, terminal, deducted = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    errors: list[str] = []
    accepted = completed = incomplete = 0
    for rec in run.records:
        if rec.status != 202:
            errors.append(f"{rec.status} {rec.error}"[:160])
            accept.record_ms(((rec.done or run.ended) - rec.scheduled) * 1000)
            continue
        accepted += 1
        accept.record_ms(rec.accept_ms or 0.0)
        done = times.terminal_at.get(rec.order_id)
        if done is None:
            incomplete += 1
            terminal.record_ms((window_end - rec.scheduled) * 1000)
        else:
            completed += 1
            terminal.record_ms((done - rec.scheduled) * 1000)
        stocked = times.deducted_at.get(rec.order_id)
        if stocked is not None:
            deducted.record_ms((stocked - rec.scheduled) * 1000)
    sent = len(run.records)
    last = max(times.terminal_at.values(), default=run.started)
    terminal_summary = terminal.summary()
    reasons = []
    if terminal_summary.p99_ms is None or terminal_summary.p99_ms > bound_ms:
        reasons.append(f"p99 to terminal {terminal_summary.p99_ms} ms > {bound_ms:g} ms")
    if accepted < 0.99 * sent:
        reasons.append(f"only {accepted}/{sent} accepted")
    if incomplete > 0.01 * max(accepted, 1):
        reasons.append(f"{incomplete} orders not terminal after the wait")
    growth = backlog_growth(run, times, window_end)
    behind = False
    if growth is not None and growth.shortfall > max_shortfall and growth.growth_ms >= min_growth_ms:
        behind = True
        reasons.append(
            f"the backlog grew: waits rose {growth.growth_ms:,.0f} ms across the step (completion "
            f"{growth.shortfall:.0%} short of the offered rate)"
        )
    # Completion kept up (everything accepted and done, no backlog building): a step failing then
    # missed only the latency bound, which one transient stall can do; it gets a second attempt.
    kept_up = accepted >= 0.99 * sent and incomplete <= 0.01 * max(accepted, 1) and not behind
    total_cpu = sum(u.cpu_s for u in resources.values())
    per_order = {name: round(u.cpu_s / max(completed, 1) * 1000, 3) for name, u in resources.items()}
    per_order["total"] = round(total_cpu / max(completed, 1) * 1000, 3)
    return StepResult(
        offered_rate=offered_rate,
        duration_s=duration_s,
        sent=sent,
        accepted=accepted,
        errors=len(errors),
        error_samples=sorted(set(errors))[:5],
        completed=completed,
        confirmed=sum(1 for s in times.status.values() if s == "CONFIRMED"),
        rejected=sum(1 for s in times.status.values() if s == "REJECTED"),
        incomplete=incomplete,
        accept=accept.summary(),
        terminal=terminal_summary,
        deducted=deducted.summary(),
        accepted_per_s=round(accepted / duration_s, 2),
        completed_per_s=round(completed / max(last - run.started, duration_s), 2),
        resources=resources,
        cpu_ms_per_order=per_order,
        passed=not reasons,
        why="; ".join(reasons) or "ok",
        timeline=timeline(run, times, window_end),
        backlog_growth_ms=growth and growth.growth_ms,
        shortfall=growth and growth.shortfall,
        kept_up=kept_up,
    )


async def wait_drained(stores: Stores, tag: str, timeout_s: float, expected: int) -> float:
    """Wait (bounded) until `expected` orders of `tag` are terminal. Returns the wall clock then.

    Counting terminal rows rather than PENDING ones also covers the workflow variant, whose
    order row only appears when the workflow's first activity has run."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await stores.terminal(tag) >= expected:
            break
        await asyncio.sleep(0.5)
    return time.time()


async def run_step(
    st: Staged, cfg: BenchConfig, phases: list[Phase], tag: str, *, drain_timeout_s: float
) -> tuple[LoadRun, OrderTimes, float, dict[str, GroupUsage], HostPressure]:
    groups, notes = st.resource_groups()
    factory = OrderFactory(cfg.seed, tag, cfg.skus)
    async with ResourceSampler(groups, notes=notes) as sampler:
        before = pressure.snapshot()
        run = await run_open_loop(
            st.base_url, phases, factory, connections=cfg.connections, drain_timeout_s=cfg.drain_timeout_s
        )
        end = await wait_drained(st.stores, tag, drain_timeout_s, len(run.accepted))
        host = pressure.between(before, pressure.snapshot())
    usage = sampler.usage()
    own = sum(u.cpu_s for u in usage.values()) / host.wall_s if host.wall_s > 0 else None
    host = pressure.judged(host.model_copy(update={"own_cores": own and round(own, 2)}), "step")
    return run, await st.stores.order_times(tag), end, usage, host


class Outcome(Protocol):
    offered_rate: float
    passed: bool


S = TypeVar("S", bound=Outcome)


@dataclass
class Search(Generic[S]):
    steps: list[S]
    max_rate: float | None  # the confirmed rate (None: nothing passed, or nothing confirmed)
    highest_passed: float | None  # the highest rate that passed once
    confirmed: bool
    capped_by_ladder: bool  # the top rung passed: the real limit is higher
    log: list[str]


def _midpoint(lo: float, hi: float) -> float:
    return _rounded((lo + hi) / 2)


def _step_down(failed: float, passed: list[float], gap: float) -> float | None:
    """The rate to confirm after `failed` failed its confirmation: the highest lower rate that
    passed, or `gap` below `failed` when that is closer (a ladder rung can be 25 % lower).
    None when no lower rate passed at all."""
    below = [r for r in passed if r < failed]
    if not below:
        return None
    near = _rounded(failed * (1 - gap))
    return max(max(below), near) if near < failed else max(below)


def _rounded(rate: float) -> float:
    return float(round(rate)) if rate >= 10 else round(rate, 1)


async def capacity_search(
    ladder: list[float],
    measure: Callable[[float, str], Awaitable[S]],
    *,
    gap: float = 0.1,
    max_bisect: int = 4,
    max_confirm: int = 3,
) -> Search[S]:
    """Ladder up to the first failure, bisect below it, confirm (see the module docstring).

    `measure(rate, kind)` runs one step (kind: ladder | bisect | confirm) and returns it."""
    steps: list[S] = []
    log: list[str] = []
    lo: float | None = None
    hi: float | None = None
    for rate in sorted(ladder):
        step = await measure(rate, "ladder")
        steps.append(step)
        if not step.passed:
            hi = rate
            break
        lo = rate
    capped = lo is not None and hi is None
    if lo is None:
        log.append(f"the lowest rate {min(ladder, default=0):g}/s failed: nothing sustainable")
        return Search(steps=steps, max_rate=None, highest_passed=None, confirmed=False,
                      capped_by_ladder=False, log=log)  # fmt: skip
    if hi is not None:
        log.append(f"ladder: {lo:g}/s passed, {hi:g}/s failed")
        for _ in range(max_bisect):
            if hi - lo < gap * lo:
                break
            mid = _midpoint(lo, hi)
            if not lo < mid < hi:
                break
            step = await measure(mid, "bisect")
            steps.append(step)
            if step.passed:
                lo = mid
            else:
                hi = mid
            log.append(f"bisect {mid:g}/s: {'passed' if step.passed else 'failed'}")
    else:
        log.append(f"ladder: every rung passed up to {lo:g}/s (the top)")
    highest = lo
    candidate: float | None = lo
    for _ in range(max_confirm):
        if candidate is None:
            break
        step = await measure(candidate, "confirm")
        steps.append(step)
        if step.passed:
            log.append(f"confirmed {candidate:g}/s")
            return Search(steps=steps, max_rate=candidate, highest_passed=highest, confirmed=True,
                          capped_by_ladder=capped and candidate == highest, log=log)  # fmt: skip
        lower = _step_down(candidate, [s.offered_rate for s in steps if s.passed], gap)
        log.append(
            f"confirmation of {candidate:g}/s failed"
            + (f"; stepping down to {lower:g}/s" if lower is not None else "; no lower rate passed")
        )
        candidate = lower
    log.append("no rate confirmed")
    return Search(steps=steps, max_rate=None, highest_passed=highest, confirmed=False,
                  capped_by_ladder=False, log=log)  # fmt: skip


async def warm_up(st: Staged, cfg: BenchConfig, progress: Progress, tag: str = "warm") -> None:
    progress(f"{st.title}: warm-up {cfg.warmup_s:g} s at {cfg.warmup_rate:g}/s")
    await run_step(st, cfg, [Phase(duration_s=cfg.warmup_s, rate=cfg.warmup_rate)], tag, drain_timeout_s=10)


async def search_capacity(
    st: Staged, cfg: BenchConfig, progress: Progress, search: int = 0
) -> Search[StepResult]:
    """One capacity search against a staged target (fresh order tags per search and step)."""
    await warm_up(st, cfg, progress, f"warm{search}")
    counter = iter(range(1000))

    async def measure(rate: float, kind: str) -> StepResult:
        i = next(counter)
        tag = f"r{search}s{i:02d}"
        step = await _measure(st, cfg, rate, tag)
        if not step.passed and step.kept_up:
            # Kept up with the offered rate but missed the latency bound: on a shared machine that
            # can be one transient stall. Repeat once; the step fails only on a second failure.
            progress(f"{st.title}: {rate:g}/s kept up but missed the bound ({step.why}); repeating once")
            first = step.why
            tag += "r"
            step = (await _measure(st, cfg, rate, tag)).model_copy(update={"first_attempt": first})
        step = step.model_copy(update={"kind": kind, "search": search})
        flags = step.host.flags if step.host else []
        progress(
            f"{st.title}: [{kind}] {rate:g}/s -> {step.completed_per_s:g}/s completed, "
            f"accept p99 {_fmt(step.accept.p99_ms)}, terminal p50 {_fmt(step.terminal.p50_ms)} "
            f"p99 {_fmt(step.terminal.p99_ms)} [{'ok' if step.passed else 'FAIL: ' + step.why}]"
            + (f" HOST: {'; '.join(flags)}" if flags else "")
        )
        if not step.passed:
            # Let the backlog drain before the next step (or anything else) runs against it.
            await wait_drained(st.stores, tag, cfg.burst_drain_timeout_s, step.accepted)
        return step

    found = await capacity_search(
        cfg.rates, measure, gap=cfg.bisect_gap, max_bisect=cfg.max_bisect, max_confirm=cfg.max_confirm
    )
    progress(f"{st.title}: capacity search {search + 1}: {'; '.join(found.log)}")
    return found


async def _measure(st: Staged, cfg: BenchConfig, rate: float, tag: str) -> StepResult:
    step, _, _ = await measure_step(st, cfg, rate, tag)
    return step


async def measure_step(
    st: Staged, cfg: BenchConfig, rate: float, tag: str
) -> tuple[StepResult, LoadRun, OrderTimes]:
    """One step at `rate`: its summary, and the records and times it was computed from."""
    run, times, end, usage, host = await run_step(
        st, cfg, [Phase(duration_s=cfg.step_s, rate=rate)], tag, drain_timeout_s=cfg.drain_timeout_s
    )
    step = summarise(
        run,
        times,
        offered_rate=rate,
        duration_s=cfg.step_s,
        window_end=end,
        resources=usage,
        bound_ms=cfg.p99_bound_ms,
        max_shortfall=cfg.max_shortfall,
        min_growth_ms=cfg.min_growth_ms,
    ).model_copy(update={"host": host})
    return step, run, times


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:,.0f} ms" if ms >= 10 else f"{ms:.1f} ms"

"""Where an order's time goes: a per-stage latency breakdown at a low and a high rate.

Milestones of each order, all from its SCHEDULED send time (open loop, as in compare.bench.capacity):
- accepted: the client got the 202 (client clock);
- published: MQ: the order's row left the orders database's outbox (t_local_msg), i.e. the relay
  got the broker's confirm and deleted it. A probe polls the outbox every `poll_s` during the step
  and records when each of the step's orders was last seen there; the row went between that poll
  and the next one, estimated at the midpoint (resolution: the measured poll interval, stated in
  the report). Workflow: the workflow is started (durably, in Temporal) before the 202, so this
  stage is 0 by design;
- deducted: the order's first t_deduction_log row (inventory database);
- terminal: t_order.updated_at when the order became CONFIRMED / REJECTED.

The broker may deliver a message, and the consumer deduct, before the relay has the confirm:
the row-gone time is an upper bound of when the broker had the message, and so is the
deduction. Published is the earlier of the two (counted in `confirm_after_deduction`), so that
no stage comes out negative.

Stages are the differences of successive milestones per order. Their MEANS add up exactly to the
mean POST -> terminal latency of the same orders (medians do not add), so the stacked bars use
means; the table has p50 and p99 per stage too.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import re
import statistics
import time
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy import text

from common.tasks import cancel_and_wait
from compare.bench.capacity import BenchConfig, Progress, StepResult, measure_step
from compare.targets.stage import Staged

STAGES = ("POST -> 202", "202 -> published", "published -> stock deducted", "stock deducted -> terminal")


@dataclass(frozen=True)
class Milestones:
    """Epoch seconds; published None where unknown."""

    scheduled: float
    accepted: float
    published: float | None
    deducted: float
    terminal: float


class StageStats(BaseModel):
    stage: str
    count: int
    mean_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    negative: int = 0  # orders for which this stage came out below 0


class Breakdown(BaseModel):
    rate: float
    label: str  # "low" | "high"
    orders: int  # orders with every milestone
    left_out: int  # accepted orders missing a milestone (not terminal, no deduction, ...)
    stages: list[StageStats]
    total: StageStats  # POST -> terminal over the same orders
    published_how: str
    poll_interval_ms: float | None = None  # MQ: the outbox probe's measured interval (median)
    confirm_after_deduction: int = 0  # MQ: orders whose outbox row went after their deduction
    step: StepResult | None = None


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(math.ceil(q * len(ordered)) - 1, 0))]


def _stats(stage: str, values_ms: list[float]) -> StageStats:
    return StageStats(
        stage=stage,
        count=len(values_ms),
        mean_ms=round(statistics.fmean(values_ms), 2) if values_ms else None,
        p50_ms=_pct(values_ms, 0.5),
        p99_ms=_pct(values_ms, 0.99),
        negative=sum(1 for v in values_ms if v < 0),
    )


def stage_breakdown(orders: list[Milestones]) -> tuple[list[StageStats], StageStats]:
    """Per-stage statistics (ms); a missing `published` counts as published at the 202, and
    published is at the latest the deduction (the consumer had the message then)."""
    columns: list[list[float]] = [[] for _ in STAGES]
    total: list[float] = []
    for o in orders:
        published = o.accepted if o.published is None else min(o.published, o.deducted)
        points = (o.scheduled, o.accepted, published, o.deducted, o.terminal)
        for i in range(len(STAGES)):
            columns[i].append((points[i + 1] - points[i]) * 1000)
        total.append((o.terminal - o.scheduled) * 1000)
    return [_stats(name, col) for name, col in zip(STAGES, columns, strict=True)], _stats(
        "POST -> terminal", total
    )


def published_at(accepted: float, last_seen: float | None, polls: list[float]) -> float | None:
    """When the outbox row went: midway between the last poll that saw it (or the 202, when no
    poll did: the row was committed before the 202 was sent) and the next poll. None when no
    poll came after."""
    since = accepted if last_seen is None else max(accepted, last_seen)
    i = bisect.bisect_right(polls, since)
    if i >= len(polls):
        return None
    return (since + polls[i]) / 2


class OutboxWatch:
    """Polls the orders database's outbox for the step's order ids (`tag-NNNNNNN`)."""

    def __init__(self, st: Staged, tag: str, interval_s: float) -> None:
        self.st, self.tag, self.interval_s = st, tag, interval_s
        self.polls: list[float] = []  # epoch seconds, midpoint of each query
        self.last_seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._pattern = re.compile(re.escape(tag) + r"-\d+")

    async def _loop(self) -> None:
        query = text("SELECT payload::text FROM t_local_msg WHERE payload::text LIKE :p")
        async with self.st.stores.orders.connect() as conn:
            while True:
                t0 = time.time()
                rows = (await conn.execute(query, {"p": f"%{self.tag}-%"})).scalars().all()
                await conn.commit()  # a fresh snapshot for the next poll
                t = (t0 + time.time()) / 2
                self.polls.append(t)
                for payload in rows:
                    for order_id in self._pattern.findall(payload):
                        self.last_seen[order_id] = t
                await asyncio.sleep(self.interval_s)

    async def __aenter__(self) -> OutboxWatch:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await cancel_and_wait(self._task)

    def interval_ms(self) -> float | None:
        gaps = [(b - a) * 1000 for a, b in zip(self.polls, self.polls[1:], strict=False)]
        return round(statistics.median(gaps), 1) if gaps else None


async def measure_breakdown(
    st: Staged, cfg: BenchConfig, rate: float, label: str, progress: Progress
) -> Breakdown:
    tag = f"bd{label}"
    watch = OutboxWatch(st, tag, cfg.breakdown_poll_s) if st.name == "mq" else None
    async with contextlib.AsyncExitStack() as stack:
        if watch is not None:
            await stack.enter_async_context(watch)
        step, run, times = await measure_step(st, cfg, rate, tag)
    step = step.model_copy(update={"kind": "breakdown"})
    orders: list[Milestones] = []
    for rec in run.accepted:
        deducted = times.deducted_at.get(rec.order_id)
        terminal = times.terminal_at.get(rec.order_id)
        if rec.done is None or deducted is None or terminal is None:
            continue
        published = None
        if watch is not None:
            published = published_at(rec.done, watch.last_seen.get(rec.order_id), watch.polls)
            if published is None:
                continue
        orders.append(Milestones(rec.scheduled, rec.done, published, deducted, terminal))
    stages, total = stage_breakdown(orders)
    result = Breakdown(
        rate=rate,
        label=label,
        orders=len(orders),
        left_out=len(run.accepted) - len(orders),
        stages=stages,
        total=total,
        published_how=(
            "outbox row gone (the relay had the broker's confirm), polled"
            if watch is not None
            else "0 by design: the workflow starts in Temporal before the 202"
        ),
        poll_interval_ms=watch.interval_ms() if watch is not None else None,
        confirm_after_deduction=sum(
            1 for o in orders if o.published is not None and o.published > o.deducted
        ),
        step=step,
    )
    progress(
        f"{st.title}: breakdown at {rate:g}/s ({label}): "
        + ", ".join(f"{s.stage} {s.mean_ms} ms" for s in stages)
        + (f" (outbox polled every {result.poll_interval_ms} ms)" if watch is not None else "")
    )
    return result

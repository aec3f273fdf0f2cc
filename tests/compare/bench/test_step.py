"""One capacity-search step: when it passes. A short step can hide a backlog that grows."""

from __future__ import annotations

from compare.bench.capacity import StepResult, summarise
from compare.bench.load import LoadRecord, LoadRun
from compare.targets.probes import OrderTimes

START = 1_000_000.0
STEP_S = 6.0


def _step(
    rate: float, capacity: float, service_s: float, stall: tuple[float, float] | None = None
) -> tuple[LoadRun, OrderTimes, float]:
    """Arrivals at `rate` for STEP_S, answered at once; a pipeline that completes at most
    `capacity` orders/s, each at least `service_s` after it arrived (FIFO), and nothing during
    `stall` (seconds from the start)."""
    run = LoadRun(started=START)
    times = OrderTimes(status={}, terminal_at={}, deducted_at={})
    free = START
    for i in range(int(rate * STEP_S)):
        due = START + i / rate
        order_id = f"o{i}"
        run.records.append(LoadRecord(order_id, due, done=due + 0.005, status=202))
        free = max(due + service_s, free + 1 / capacity)
        if stall and START + stall[0] <= free < START + stall[1]:
            free = START + stall[1]
        times.terminal_at[order_id] = free
        times.status[order_id] = "CONFIRMED"
    run.ended = START + STEP_S
    return run, times, free + 0.5


def _summary(
    rate: float, capacity: float, service_s: float, stall: tuple[float, float] | None = None
) -> StepResult:
    run, times, end = _step(rate, capacity, service_s, stall)
    return summarise(
        run,
        times,
        offered_rate=rate,
        duration_s=STEP_S,
        window_end=end,
        resources={},
        bound_ms=2000,
        max_shortfall=0.05,
        min_growth_ms=100,
    )


def test_a_steady_latency_under_the_bound_passes_even_when_it_is_long() -> None:
    step = _summary(rate=300, capacity=10_000, service_s=1.2)
    assert step.passed, step.why
    assert abs(step.backlog_growth_ms) < 1


def test_a_backlog_that_grows_fails_even_when_p99_is_under_the_bound() -> None:
    # 375/s offered, 293/s completed: after 6 s the last orders wait ~1.6 s, under the 2 s bound
    step = _summary(rate=375, capacity=293, service_s=0.01)
    assert step.terminal.p99_ms is not None and step.terminal.p99_ms < 2000
    assert not step.passed
    assert "backlog grew" in step.why and step.backlog_growth_ms > 1000
    assert step.shortfall is not None and abs(step.shortfall - (1 - 293 / 375)) < 0.03
    assert not step.kept_up  # not worth a second attempt: it did not keep up


def test_a_stall_near_the_end_is_not_a_growing_backlog() -> None:
    step = _summary(rate=100, capacity=200, service_s=0.05, stall=(4.9, 5.7))
    assert step.passed, step.why
    assert step.terminal.max_ms is not None and step.terminal.max_ms > 700  # the stall is there


def test_a_slight_shortfall_within_the_tolerance_passes() -> None:
    step = _summary(rate=300, capacity=298, service_s=0.05)  # < 1 % short: noise, not a backlog
    assert step.passed, step.why

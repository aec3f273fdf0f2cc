"""OrderWorkflow: record the order, deduct stock on the inventory queue, settle the order.

Deterministic by construction: no clock, no randomness, no I/O, no settings -- only activity
calls whose inputs come from the workflow input. Runs in the SDK's sandbox; our own modules and
pydantic are passed through (imported once, not per run) because they are deterministic too.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from common.domain import DeductionOutcome, OrderStatus
    from workflow_variant.messages import (
        DEDUCT_STOCK,
        RECORD_ORDER,
        SETTLE_ORDER,
        WORKFLOW_NAME,
        DeductRequest,
        OrderWorkflowInput,
        Recorded,
    )

# Retry forever with capped backoff. Every failure an activity can raise is infrastructure (a
# database down, a worker killed, a lost completion): giving up would turn a transient outage into
# a lost order, and every activity is idempotent, so retrying is always safe. Business outcomes
# (REJECTED, a conflicting body) are return values, never exceptions, so they are not retried.
# ValidationError is the one exception: an input that does not validate is a programming error
# that no retry can fix; the workflow then fails visibly instead of retrying in a loop.
RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),  # a recovered database is noticed within ~10 s
    maximum_attempts=0,  # unlimited
    non_retryable_error_types=["ValidationError"],
)

# start_to_close bounds one attempt. Each activity is one short transaction, but under hot-SKU
# contention a deduction can queue for row locks and a pool slot, so 30 s leaves ample room.
# A killed worker is noticed much sooner through the heartbeat timeout: activities heartbeat
# every second from a background task while they run (workflow_variant.heartbeat), so a dead
# worker's attempt is retried elsewhere after 5 s instead of after 30 s (start_to_close still
# catches an attempt that hangs while its worker beats, e.g. on a blackholed database connection;
# the retry is safe, a late first attempt included, see activities.py). No schedule_to_start
# timeout: if the inventory worker is down, the task waits in its queue until it returns.
# No schedule_to_close or workflow execution timeout either: an order must never expire into a
# lost state because a dependency was down for long; it stays PENDING, visible in the UI.
ACTIVITY_OPTIONS = {
    "start_to_close_timeout": timedelta(seconds=30),
    "heartbeat_timeout": timedelta(seconds=5),
    "retry_policy": RETRY,
}


@workflow.defn(name=WORKFLOW_NAME)
class OrderWorkflow:
    @workflow.run
    async def run(self, inp: OrderWorkflowInput) -> DeductionOutcome:
        order = inp.order
        recorded = await workflow.execute_activity(
            RECORD_ORDER, order, result_type=Recorded, **ACTIVITY_OPTIONS
        )
        if recorded.conflict:
            # The id belongs to another order (its workflow left Temporal, and the API could not
            # read t_order to refuse the body). Touch nothing: that order keeps its own outcome.
            return DeductionOutcome(
                order_id=order.order_id,
                status=OrderStatus.REJECTED,
                reason="order id already used with a different body; nothing done",
            )
        outcome = await workflow.execute_activity(
            DEDUCT_STOCK,
            DeductRequest(order_id=order.order_id, lines=order.lines),
            task_queue=inp.inventory_task_queue,
            result_type=DeductionOutcome,
            **ACTIVITY_OPTIONS,
        )
        await workflow.execute_activity(SETTLE_ORDER, outcome, result_type=bool, **ACTIVITY_OPTIONS)
        return outcome

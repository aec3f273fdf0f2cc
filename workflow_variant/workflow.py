"""OrderWorkflow: record the order, deduct stock on the inventory queue, settle the order.

Deterministic by construction: no clock, no randomness, no I/O, no settings -- only activity
calls whose inputs come from the workflow input. Runs in the SDK's sandbox; our own modules and
pydantic are passed through (imported once, not per run) because they are deterministic too.

Versioning: runs started by this code take the record and settle steps as LOCAL activities on
the order worker (patch LOCAL_ORDER_STEPS); runs started before it, whose histories hold those
steps as regular activities, replay and go on as they began (`workflow.patched` is false for
them). Once no such run remains (retention: a day on the dev server), the branch can be dropped
with `workflow.deprecate_patch` and, a retention later, the old path deleted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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

# The patch marking runs whose order-side steps are local activities.
LOCAL_ORDER_STEPS = "order-steps-local-activities"

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

# The deduction: a regular activity on the inventory task queue (it belongs to the inventory
# service, with its own database and worker). start_to_close bounds one attempt: it is one short
# transaction, but under hot-SKU contention it can queue for row locks and a pool slot, so 30 s
# leaves ample room. A killed worker is noticed much sooner through the heartbeat timeout:
# activities heartbeat every second from a background task while they run
# (workflow_variant.heartbeat), so a dead worker's attempt is retried elsewhere after 5 s instead
# of after 30 s (start_to_close still catches an attempt that hangs while its worker beats, e.g.
# on a blackholed database connection; the retry is safe, a late first attempt included, see
# activities.py). No schedule_to_start timeout: if the inventory worker is down, the task waits
# in its queue until it returns. No schedule_to_close or workflow execution timeout either: an
# order must never expire into a lost state because a dependency was down for long; it stays
# PENDING, visible in the UI.
ACTIVITY_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "heartbeat_timeout": timedelta(seconds=5),
    "retry_policy": RETRY,
}

# record_order and settle_order: LOCAL activities, run by the order worker inside the workflow
# task that needs them. They touch only the orders database, which the order worker already
# owns, so a task-queue hop and a server round trip each (two activity tasks and two workflow
# tasks per order) bought nothing. What changes:
# - Durability: the step's result is written to history (a marker) with the workflow task that
#   completes; a worker that dies before that completion leaves no marker, and the next worker
#   runs the step again from the start. Both steps are idempotent by their own keys (record ON
#   CONFLICT on order_id, settle only from PENDING), so a re-run is harmless.
# - A killed order worker is noticed through the workflow task timeout (10 s, the SDK default)
#   instead of an activity heartbeat timeout (5 s); local activities do not heartbeat (the SDK
#   keeps the workflow task alive while a long one runs).
# - start_to_close 30 s per attempt, as above: one statement, but it may wait for a pool slot or
#   for PostgreSQL's own command timeout (15 s) on a cut connection; the retry is safe.
# - The same unlimited retry policy: a database outage delays the order, never fails it. Its
#   backoff (capped at 10 s) stays under local_retry_threshold (1 min, the SDK default, stated
#   here), so retries happen in the worker, which keeps the workflow task alive meanwhile; a
#   longer backoff would be a durable timer in the history instead.
LOCAL_ACTIVITY_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RETRY,
    "local_retry_threshold": timedelta(minutes=1),
}


async def _order_step(local: bool, name: str, arg: Any, result_type: type) -> Any:
    """One order-side step: a local activity for runs with the patch, a regular one before."""
    if local:
        return await workflow.execute_local_activity(
            name, arg, result_type=result_type, **LOCAL_ACTIVITY_OPTIONS
        )
    return await workflow.execute_activity(name, arg, result_type=result_type, **ACTIVITY_OPTIONS)


@workflow.defn(name=WORKFLOW_NAME)
class OrderWorkflow:
    @workflow.run
    async def run(self, inp: OrderWorkflowInput) -> DeductionOutcome:
        order = inp.order
        local = workflow.patched(LOCAL_ORDER_STEPS)  # decided once, before the first command
        recorded = await _order_step(local, RECORD_ORDER, order, Recorded)
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
        await _order_step(local, SETTLE_ORDER, outcome, bool)
        return outcome

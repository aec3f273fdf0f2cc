"""OrderWorkflow's own logic, with stand-in activities in this process (no databases).

Runs on the session's real dev server: the SDK's time-skipping test server is downloaded on
first use, which this project cannot rely on offline, and the workflow has no timers to skip.
The workflow runs in the SDK's sandbox here exactly as in the order-worker.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.worker import Worker

from common.domain import DeductionOutcome, OrderStatus, PlaceOrder
from tests.workflow.conftest import local_activity_markers
from workflow_variant.messages import (
    DEDUCT_STOCK,
    RECORD_ORDER,
    SETTLE_ORDER,
    DeductRequest,
    OrderWorkflowInput,
    Recorded,
)
from workflow_variant.workflow import OrderWorkflow


@dataclass
class StandIns:
    """Activities with the real names and types, scripted per test."""

    conflict: bool = False
    record_failures: int = 0  # infrastructure errors before the record succeeds
    deduct_failures: int = 0  # infrastructure errors before the deduction succeeds
    deduct_status: OrderStatus = OrderStatus.CONFIRMED
    invalid_input: bool = False
    calls: list[str] = field(default_factory=list)
    settled: list[DeductionOutcome] = field(default_factory=list)

    @activity.defn(name=RECORD_ORDER)
    async def record(self, cmd: PlaceOrder) -> Recorded:
        self.calls.append(RECORD_ORDER)
        if self.record_failures > 0:
            self.record_failures -= 1
            raise ConnectionError("database unreachable")
        return Recorded(created=True, conflict=self.conflict)

    @activity.defn(name=DEDUCT_STOCK)
    async def deduct(self, req: DeductRequest) -> DeductionOutcome:
        self.calls.append(DEDUCT_STOCK)
        if self.invalid_input:
            DeductRequest.model_validate({"order_id": 1})  # raises pydantic's ValidationError
        if self.deduct_failures > 0:
            self.deduct_failures -= 1
            raise ConnectionError("database unreachable")
        reason = None if self.deduct_status is OrderStatus.CONFIRMED else "insufficient stock"
        return DeductionOutcome(order_id=req.order_id, status=self.deduct_status, reason=reason)

    @activity.defn(name=SETTLE_ORDER)
    async def settle(self, outcome: DeductionOutcome) -> bool:
        self.calls.append(SETTLE_ORDER)
        self.settled.append(outcome)
        return True


@asynccontextmanager
async def workers(client: Client, stand_ins: StandIns) -> AsyncIterator[tuple[str, str]]:
    orders_q, inventory_q = f"logic-{uuid.uuid4().hex[:8]}-orders", f"logic-{uuid.uuid4().hex[:8]}-inv"
    async with (
        Worker(
            client,
            task_queue=orders_q,
            workflows=[OrderWorkflow],
            activities=[stand_ins.record, stand_ins.settle],
        ),
        Worker(client, task_queue=inventory_q, activities=[stand_ins.deduct]),
    ):
        yield orders_q, inventory_q


async def _start(client: Client, stand_ins: StandIns) -> WorkflowHandle[Any, DeductionOutcome]:
    """Runs the workflow to its end; the handle (for its history)."""
    order = PlaceOrder(
        order_id=f"logic-{uuid.uuid4().hex}", customer_id="c", lines=[{"sku": "a", "quantity": 1}]
    )
    async with workers(client, stand_ins) as (orders_q, inventory_q):
        handle = await client.start_workflow(
            OrderWorkflow.run,
            OrderWorkflowInput(order=order, inventory_task_queue=inventory_q),
            id=f"order-{order.order_id}",
            task_queue=orders_q,
        )
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
    return handle


async def _run(client: Client, stand_ins: StandIns) -> DeductionOutcome:
    return await (await _start(client, stand_ins)).result()


async def test_confirmed_runs_three_steps_in_order(temporal_client: Client) -> None:
    stand_ins = StandIns()
    outcome = await _run(temporal_client, stand_ins)
    assert outcome.status is OrderStatus.CONFIRMED
    assert stand_ins.calls == [RECORD_ORDER, DEDUCT_STOCK, SETTLE_ORDER]
    assert stand_ins.settled == [outcome]


async def test_order_side_steps_are_local_activities_retried_in_the_worker(temporal_client: Client) -> None:
    """record and settle run inside the workflow task (markers, no activity tasks); a failing
    record is retried with the workflow's retry policy until it succeeds."""
    stand_ins = StandIns(record_failures=2)
    handle = await _start(temporal_client, stand_ins)
    assert (await handle.result()).status is OrderStatus.CONFIRMED
    assert stand_ins.calls == [RECORD_ORDER] * 3 + [DEDUCT_STOCK, SETTLE_ORDER]
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == [DEDUCT_STOCK]  # the only activity task: the inventory service's
    markers = [m["activity_type"] for m in local_activity_markers(history)]
    assert markers == [RECORD_ORDER, SETTLE_ORDER]


async def test_rejection_is_settled_not_retried(temporal_client: Client) -> None:
    stand_ins = StandIns(deduct_status=OrderStatus.REJECTED)
    outcome = await _run(temporal_client, stand_ins)
    assert outcome.status is OrderStatus.REJECTED
    assert stand_ins.calls.count(DEDUCT_STOCK) == 1
    assert stand_ins.settled[0].status is OrderStatus.REJECTED


async def test_infrastructure_errors_are_retried(temporal_client: Client) -> None:
    stand_ins = StandIns(deduct_failures=3)
    outcome = await _run(temporal_client, stand_ins)
    assert outcome.status is OrderStatus.CONFIRMED
    assert stand_ins.calls.count(DEDUCT_STOCK) == 4


async def test_conflicting_record_touches_nothing(temporal_client: Client) -> None:
    stand_ins = StandIns(conflict=True)
    outcome = await _run(temporal_client, stand_ins)
    assert outcome.status is OrderStatus.REJECTED
    assert stand_ins.calls == [RECORD_ORDER]  # no deduction, no settlement


async def test_validation_error_fails_the_workflow_instead_of_looping(temporal_client: Client) -> None:
    stand_ins = StandIns(invalid_input=True)
    with pytest.raises(WorkflowFailureError):
        await _run(temporal_client, stand_ins)
    assert stand_ins.calls.count(DEDUCT_STOCK) == 1
    assert stand_ins.settled == []

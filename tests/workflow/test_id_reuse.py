"""An order id whose workflow is gone from Temporal, closed without success, or closed while the
orders database lost its row: the API answers from what is true, never a 202 that nothing
will act on."""

from __future__ import annotations

import asyncio
import signal

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from common.db import create_schema
from tests.support import wait_until
from tests.workflow.conftest import StartWf, WfRun
from workflow_variant.messages import workflow_id
from workflow_variant.schema import DB_CODE, inventory_schema, orders_schema

pytestmark = pytest.mark.slow

APPLE_2 = [{"sku": "apple", "quantity": 2}]
APPLE_5 = [{"sku": "apple", "quantity": 5}]


async def _forget(client: Client, wf_id: str) -> None:
    """Delete the workflow's every run, as Temporal's retention does, and wait until it is gone."""
    namespace = client.namespace
    request = DeleteWorkflowExecutionRequest(
        namespace=namespace, workflow_execution=WorkflowExecution(workflow_id=wf_id)
    )
    await client.workflow_service.delete_workflow_execution(request)

    async def gone() -> bool:
        try:
            await client.get_workflow_handle(wf_id).describe()
        except RPCError as exc:
            return exc.status == RPCStatusCode.NOT_FOUND
        return False

    await wait_until(gone, timeout=120, interval=0.3, what=f"{wf_id} deleted")


async def _executions(wf: WfRun, name: str) -> int:
    query = f"WorkflowId = '{workflow_id(wf.oid(name))}'"
    return len([e async for e in wf.temporal.list_workflows(query)])


async def test_reused_id_after_its_workflow_left_temporal(start_wf: StartWf) -> None:
    """Retention dropped the closed workflow: another body under the same id is still a 409
    (t_order remembers the body), the same body is the stored order, and nothing runs again."""
    wf = await start_wf()
    await wf.set_stock("apple", 10)
    assert (await wf.place("gone", APPLE_2)).status_code == 202
    await wf.wait_terminal(["gone"])
    await _forget(wf.temporal, workflow_id(wf.oid("gone")))

    other = await wf.place("gone", APPLE_5)
    assert other.status_code == 409, other.text
    same = await wf.place("gone", APPLE_2)
    assert same.status_code == 202, same.text
    assert same.json()["status"] == "CONFIRMED"
    assert await wf.deducted("gone") == 2
    assert await wf.stock("apple") == 8
    assert await _executions(wf, "gone") == 0  # answered from t_order: no new run was started


async def test_terminated_workflow_is_retried_by_a_resubmission(start_wf: StartWf) -> None:
    """An operator terminated the workflow before it recorded the order. GET says so (not a
    PENDING forever); the same body again runs the order (ALLOW_DUPLICATE_FAILED_ONLY, after the
    API checked the body); another body is a 409."""
    wf = await start_wf()
    await wf.set_stock("apple", 10)
    wf.process.signal_role("order-worker", signal.SIGSTOP)  # nothing records the order meanwhile
    try:
        assert (await wf.place("term", APPLE_2)).status_code == 202
        await wf.temporal.get_workflow_handle(workflow_id(wf.oid("term"))).terminate("by an operator")
        told = await wf.http.get(f"/orders/{wf.oid('term')}")
        assert told.status_code == 409, told.text
        assert "TERMINATED" in told.json()["detail"]
        assert (await wf.place("term", APPLE_5)).status_code == 409
        again = await wf.place("term", APPLE_2)
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "PENDING"
    finally:
        wf.process.signal_role("order-worker", signal.SIGCONT)
    await wf.wait_terminal(["term"], timeout=60)
    assert (await wf.order("term"))["status"] == "CONFIRMED"
    assert await wf.deducted("term") == 2
    assert await _executions(wf, "term") == 2


async def test_databases_reset_without_temporal_is_a_clear_error(start_wf: StartWf) -> None:
    """The databases were emptied but Temporal still holds the ids' completed workflows (a
    restore, a hand-made reset): nothing will process these orders again, so the API says that
    (409 with the reason) instead of answering 202 PENDING forever."""
    wf = await start_wf()
    await wf.set_stock("apple", 10)
    assert (await wf.place("lost", APPLE_2)).status_code == 202
    await wf.wait_terminal(["lost"])
    await create_schema(
        wf.settings, wf.settings.database(DB_CODE, "orders"), orders_schema().metadata, reset=True
    )
    await create_schema(
        wf.settings, wf.settings.database(DB_CODE, "inventory"), inventory_schema().metadata, reset=True
    )
    await wf.orders_db.dispose()  # its pooled connections died with the old database
    await wf.inventory_db.dispose()
    await asyncio.sleep(0.5)

    answer = await wf.place("lost", APPLE_2)
    assert answer.status_code == 409, answer.text
    assert "reset" in answer.json()["detail"]
    told = await wf.http.get(f"/orders/{wf.oid('lost')}")
    assert told.status_code == 409, told.text
    assert "CONFIRMED" in told.json()["detail"]  # what the workflow recorded
    assert await wf.scalar(wf.orders_db, "SELECT count(*) FROM t_order") == 0

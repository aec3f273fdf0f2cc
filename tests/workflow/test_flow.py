"""The business flow through HTTP, on a real Temporal dev server and real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Replayer

from common.temporal_dev import is_listening
from tests.support import free_port
from tests.workflow.conftest import StartWf
from workflow_variant.client import DATA_CONVERTER
from workflow_variant.messages import workflow_id
from workflow_variant.workflow import OrderWorkflow

pytestmark = pytest.mark.slow


async def test_happy_path_confirms_and_deducts(start_wf: StartWf) -> None:
    wf = await start_wf()
    await wf.set_stock("apple", 10)
    await wf.set_stock("pear", 5)
    response = await wf.place("o1", [{"sku": "apple", "quantity": 3}, {"sku": "pear", "quantity": 5}])
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "PENDING"
    await wf.wait_terminal(["o1"])
    order = await wf.order("o1")
    assert order["status"] == "CONFIRMED" and order["reason"] is None
    assert await wf.stock("apple") == 7
    assert await wf.stock("pear") == 0
    assert await wf.deducted("o1") == 8
    dedup = await wf.scalar(wf.inventory_db, "SELECT count(*) FROM t_dedup")
    assert dedup == 1  # one deduction step recorded, keyed by the order
    assert (await wf.http.get(f"/orders/{wf.oid('nope')}")).status_code == 404

    # The live history replays against the current code (the stored ones: test_replay.py).
    history = await wf.temporal.get_workflow_handle(workflow_id(wf.oid("o1"))).fetch_history()
    await Replayer(workflows=[OrderWorkflow], data_converter=DATA_CONVERTER).replay_workflow(history)


async def test_rejection_is_an_outcome_not_a_failure(start_wf: StartWf) -> None:
    wf = await start_wf()
    await wf.set_stock("apple", 10)
    await wf.set_stock("pear", 1)
    await wf.place("o1", [{"sku": "apple", "quantity": 3}, {"sku": "pear", "quantity": 2}])
    await wf.place("o2", [{"sku": "ghost", "quantity": 1}])
    await wf.wait_terminal(["o1", "o2"])
    o1 = await wf.order("o1")
    assert o1["status"] == "REJECTED" and "pear" in o1["reason"]
    o2 = await wf.order("o2")
    assert o2["status"] == "REJECTED" and "unknown sku ghost" in o2["reason"]
    assert await wf.stock("apple") == 10  # all or nothing
    assert await wf.deducted("o1") == 0
    # a business rejection is returned by the activity: one attempt, no retries, workflow completed
    assert await wf.attempts("o1", "deduct_stock") == 1
    result = await wf.temporal.get_workflow_handle_for(OrderWorkflow.run, workflow_id(wf.oid("o1"))).result()
    assert result.status == "REJECTED"


async def test_duplicate_submission_starts_one_workflow(start_wf: StartWf) -> None:
    wf = await start_wf()
    await wf.set_stock("apple", 10)
    lines = [{"sku": "apple", "quantity": 2}]
    answers = await asyncio.gather(*(wf.place("dup", lines) for _ in range(20)))
    assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
    assert {a.json()["order_id"] for a in answers} == {wf.oid("dup")}
    conflict = await wf.place("dup", [{"sku": "apple", "quantity": 3}])
    assert conflict.status_code == 409
    await wf.wait_terminal(["dup"])
    again = await wf.place("dup", lines)  # after completion: REJECT_DUPLICATE, answered from t_order
    assert again.status_code == 202 and again.json()["status"] == "CONFIRMED"
    assert (await wf.place("dup", [{"sku": "apple", "quantity": 1}])).status_code == 409
    assert await wf.deducted("dup") == 2
    assert await wf.stock("apple") == 8
    assert await _executions(wf.temporal, workflow_id(wf.oid("dup"))) == 1


async def _executions(client: Client, wf_id: str) -> int:
    return len([e async for e in client.list_workflows(f"WorkflowId = '{wf_id}'")])


async def test_hot_sku_never_oversells(start_wf: StartWf) -> None:
    """300 concurrent orders of one unit for one SKU with stock for 50."""
    wf = await start_wf()
    await wf.set_stock("hot", 50)
    gate = asyncio.Semaphore(50)

    async def place(i: int) -> int:
        async with gate:
            return (await wf.place(f"h{i}", [{"sku": "hot", "quantity": 1}])).status_code

    codes = await asyncio.gather(*(place(i) for i in range(300)))
    assert codes.count(202) == 300
    await wf.wait_terminal([f"h{i}" for i in range(300)], timeout=240)
    confirmed = await wf.scalar(wf.orders_db, "SELECT count(*) FROM t_order WHERE status = 'CONFIRMED'")
    assert confirmed == 50
    assert await wf.stock("hot") == 0
    assert await wf.scalar(wf.inventory_db, "SELECT sum(quantity) FROM t_deduction_log") == 50
    assert await wf.scalar(wf.inventory_db, "SELECT count(DISTINCT order_id) FROM t_deduction_log") == 50


async def test_up_brings_its_own_dev_server(start_wf: StartWf, tmp_path: Path) -> None:
    """Nothing listens at the configured address: `up` starts a dev server (SQLite file) and
    stops it again on exit."""
    host, port = "127.0.0.1", free_port()
    db_file = tmp_path / "own-temporal.sqlite"
    wf = await start_wf(temporal_address=f"{host}:{port}", temporal_db_file=db_file)
    await wf.set_stock("apple", 1)
    await wf.place("own", [{"sku": "apple", "quantity": 1}])
    await wf.wait_terminal(["own"])
    assert (await wf.order("own"))["status"] == "CONFIRMED"
    assert db_file.exists()
    wf.process.stop()
    assert not await is_listening(host, port)


async def test_order_visible_before_it_is_recorded(start_wf: StartWf) -> None:
    """Between the start of the workflow and its record activity, t_order has no row: GET and a
    duplicate POST are answered from the workflow (memo), and a different body is still a 409."""
    wf = await start_wf({"CC_FAULTS": "order-worker/activity_start=delay,seconds=5,times=1"})
    await wf.set_stock("apple", 5)
    lines = [{"sku": "apple", "quantity": 1}]
    assert (await wf.place("early", lines)).status_code == 202
    assert await wf.scalar(wf.orders_db, "SELECT count(*) FROM t_order") == 0
    assert (await wf.order("early"))["status"] == "PENDING"
    again = await wf.place("early", lines)
    assert again.status_code == 202 and again.json()["status"] == "PENDING"
    assert (await wf.place("early", [{"sku": "apple", "quantity": 2}])).status_code == 409
    await wf.wait_terminal(["early"])
    assert (await wf.order("early"))["status"] == "CONFIRMED"


async def test_bad_input_is_a_4xx(start_wf: StartWf) -> None:
    wf = await start_wf()
    bad = [
        {"order_id": "x", "customer_id": "c", "lines": []},
        {"order_id": "x", "customer_id": "c", "lines": [{"sku": "a", "quantity": 0}]},
        {"order_id": "bad id", "customer_id": "c", "lines": [{"sku": "a", "quantity": 1}]},
        {"order_id": "x", "customer_id": "c", "lines": [{"sku": "a", "quantity": "1"}]},
    ]
    for body in bad:
        assert (await wf.http.post("/orders", json=body)).status_code == 422, body
    assert (await wf.http.post("/orders", content=b"{not json")).status_code == 422
    assert await wf.scalar(wf.orders_db, "SELECT count(*) FROM t_order") == 0

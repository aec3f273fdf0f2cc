"""Faults against the workflow variant: killed workers, lost completions, a Temporal restart.

Each test arms named fault points (CC_FAULTS) or kills real processes, then checks the two
databases: every accepted order terminal, nothing deducted twice (t_deduction_log has no unique
constraint, so a double deduction would show there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from urllib.parse import urlparse

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from compare.faults.proxy import Down, FaultProxy
from tests.support import wait_until
from tests.workflow.conftest import DevServer, StartWf, WfRun
from workflow_variant.messages import workflow_id

pytestmark = pytest.mark.slow


async def _wait_deducted(wf: WfRun, name: str) -> None:
    async def committed() -> bool:
        return await wf.deduction_rows(name) > 0

    await wait_until(committed, timeout=60, what=f"deduction of {name} committed")


async def _healthy(wf: WfRun) -> bool:
    try:
        return (await wf.http.get("/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_inventory_worker_sigkilled_after_deduct_commit(start_wf: StartWf) -> None:
    """The deduction commits, then the worker dies before reporting: the server retries the
    activity on the restarted worker, which finds the dedup row instead of deducting again."""
    wf = await start_wf({"CC_FAULTS": "inventory-worker/after_deduct_commit=delay,seconds=120,times=1"})
    await wf.set_stock("apple", 10)
    assert (await wf.place("k1", [{"sku": "apple", "quantity": 4}])).status_code == 202
    await _wait_deducted(wf, "k1")
    wf.kill_role("inventory-worker")  # a real SIGKILL, while the activity sleeps after its commit
    await wf.wait_terminal(["k1"])
    assert (await wf.order("k1"))["status"] == "CONFIRMED"
    assert await wf.attempts("k1", "deduct_stock") >= 2  # it really ran again
    assert await wf.deduction_rows("k1") == 1
    assert await wf.stock("apple") == 6


async def test_lost_completions_are_absorbed(start_wf: StartWf) -> None:
    """Every activity raises once after its commit: each runs twice, each effect happens once."""
    faults = ";".join(
        (
            "order-worker/after_order_commit=raise,times=1",
            "inventory-worker/after_deduct_commit=raise,times=1",
            "order-worker/after_settle_commit=raise,times=1",
        )
    )
    wf = await start_wf({"CC_FAULTS": faults})
    await wf.set_stock("apple", 10)
    await wf.place("r1", [{"sku": "apple", "quantity": 3}])
    await wf.wait_terminal(["r1"])
    assert (await wf.order("r1"))["status"] == "CONFIRMED"
    for activity in ("record_order", "deduct_stock", "settle_order"):
        assert await wf.attempts("r1", activity) == 2, activity
    assert await wf.deduction_rows("r1") == 1
    assert await wf.stock("apple") == 7


async def test_control_non_idempotent_deduct_deducts_twice(start_wf: StartWf) -> None:
    """The same fault with the dedup step switched off: the idempotency test above can fail."""
    wf = await start_wf(
        {
            "CC_FAULTS": "inventory-worker/after_deduct_commit=raise,times=1",
            "CC_CONTROL": "non-idempotent-deduct",
        }
    )
    await wf.set_stock("apple", 10)
    await wf.place("n1", [{"sku": "apple", "quantity": 3}])
    await wf.wait_terminal(["n1"])
    assert await wf.deduction_rows("n1") == 2  # visible in the audit log
    assert await wf.stock("apple") == 4


async def test_order_worker_crash_after_order_commit_still_completes(start_wf: StartWf) -> None:
    wf = await start_wf({"CC_FAULTS": "order-worker/after_order_commit=crash,times=1"})
    await wf.set_stock("apple", 10)
    assert (await wf.place("c1", [{"sku": "apple", "quantity": 1}])).status_code == 202
    await wf.wait_terminal(["c1"])
    assert (await wf.order("c1"))["status"] == "CONFIRMED"
    # record_order is a local activity: its workflow task died with the worker, timed out, and
    # the next one (on the restarted worker) recorded the order again (finding the row)
    assert await wf.lost_workflow_tasks("c1") >= 1
    assert await wf.attempts("c1", "record_order") >= 1
    assert await wf.deducted("c1") == 1


async def test_control_api_writes_order_strands_the_order(start_wf: StartWf) -> None:
    """The dual write: the API commits t_order, then dies before starting the workflow. Nothing
    will ever finish that order (unless the client happens to retry)."""
    wf = await start_wf(
        {"CC_FAULTS": "api/after_order_commit=crash,times=1", "CC_CONTROL": "api-writes-order"}
    )
    await wf.set_stock("apple", 10)
    with contextlib.suppress(httpx.HTTPError):
        await wf.place("d1", [{"sku": "apple", "quantity": 1}])  # the API process dies here
    await wf.process.wait_ready()  # the supervisor restarted it
    await asyncio.sleep(5)
    assert (await wf.order("d1"))["status"] == "PENDING"
    try:
        await wf.temporal.get_workflow_handle(workflow_id(wf.oid("d1"))).describe()
        raise AssertionError("a workflow exists for the stranded order")
    except RPCError as exc:
        assert exc.status == RPCStatusCode.NOT_FOUND
    assert await wf.deducted("d1") == 0


async def test_inventory_worker_down_for_a_while(start_wf: StartWf) -> None:
    """Orders wait in the inventory task queue while its worker is stopped, then complete."""
    wf = await start_wf()
    await wf.set_stock("apple", 100)
    wf.process.signal_role("inventory-worker", signal.SIGSTOP)
    names = [f"w{i}" for i in range(5)]
    for name in names:
        assert (await wf.place(name, [{"sku": "apple", "quantity": 2}])).status_code == 202
    await asyncio.sleep(7)  # longer than the heartbeat timeout: a task it had polled times out
    pending = await wf.scalar(wf.orders_db, "SELECT count(*) FROM t_order WHERE status = 'PENDING'")
    assert pending == len(names)  # recorded by the order side, waiting for inventory
    wf.kill_role("inventory-worker")  # stopped, then killed: the supervisor starts a new one
    await wf.wait_terminal(names)
    for name in names:
        assert (await wf.order(name))["status"] == "CONFIRMED"
        assert await wf.deduction_rows(name) == 1
    assert await wf.stock("apple") == 90


async def test_temporal_server_killed_and_restarted(start_wf: StartWf, temporal_server: DevServer) -> None:
    """SIGKILL the Temporal server with workflows in flight, start it again on the same SQLite
    file: every accepted order ends terminal and nothing is deducted twice."""
    wf = await start_wf()
    await wf.set_stock("apple", 15)
    names = [f"t{i}" for i in range(30)]
    codes = await asyncio.gather(*(wf.place(n, [{"sku": "apple", "quantity": 1}]) for n in names))
    assert [c.status_code for c in codes] == [202] * len(names)
    await temporal_server.kill()
    try:
        during = await wf.place("t-during", [{"sku": "apple", "quantity": 1}])
        assert during.status_code == 503, during.text  # refused, never a 500 nor a false 202
        assert (await wf.http.get("/readyz")).status_code == 503
        # an API process that never reached Temporal (its lazy client never connected) too
        wf.kill_role("api")
        await wait_until(lambda: _healthy(wf), timeout=60, what="api restarted")
        assert (await wf.place("t-during", [{"sku": "apple", "quantity": 1}])).status_code == 503
        assert (await wf.http.get(f"/orders/{wf.oid('t-unknown')}")).status_code == 503
        await asyncio.sleep(3)
    finally:
        await temporal_server.start()
    await wf.wait_terminal(names, timeout=180)
    confirmed = await wf.scalar(wf.orders_db, "SELECT count(*) FROM t_order WHERE status = 'CONFIRMED'")
    assert confirmed == 15
    assert await wf.stock("apple") == 0
    assert await wf.scalar(wf.inventory_db, "SELECT count(*) FROM t_deduction_log") == 15
    assert await wf.scalar(wf.inventory_db, "SELECT count(DISTINCT order_id) FROM t_deduction_log") == 15


async def test_inventory_database_partitioned_then_back(start_wf: StartWf, pg_url: str) -> None:
    """The inventory worker loses its database: deductions fail and are retried (never given up),
    orders stay PENDING, and all complete once the database is reachable again."""
    pg = urlparse(pg_url.replace("+asyncpg", ""))
    async with FaultProxy("inventory-db", upstream=(pg.hostname or "127.0.0.1", pg.port or 5432)) as proxy:
        via_proxy = pg_url.replace(f"{pg.hostname}:{pg.port}", f"{proxy.host}:{proxy.port}")
        wf = await start_wf({"CC_ROLE_ENV": json.dumps({"inventory-worker": {"CC_PG_URL": via_proxy}})})
        await wf.set_stock("apple", 20)
        proxy.add(Down())
        names = [f"p{i}" for i in range(4)]
        for name in names:
            assert (await wf.place(name, [{"sku": "apple", "quantity": 1}])).status_code == 202
        await asyncio.sleep(6)
        pending = await wf.scalar(wf.orders_db, "SELECT count(*) FROM t_order WHERE status = 'PENDING'")
        assert pending == len(names)
        proxy.clear()
        await wf.wait_terminal(names)
    for name in names:
        assert (await wf.order(name))["status"] == "CONFIRMED"
        assert await wf.deduction_rows(name) == 1
    assert await wf.stock("apple") == 16

"""The business flow through HTTP, on real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio

import pytest

from tests.mq.conftest import StartMq

pytestmark = pytest.mark.slow


async def test_happy_path_confirms_and_deducts(start_mq: StartMq) -> None:
    mq = await start_mq()
    await mq.set_stock("apple", 10)
    await mq.set_stock("pear", 5)
    response = await mq.place("o1", [{"sku": "apple", "quantity": 3}, {"sku": "pear", "quantity": 5}])
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "PENDING"
    await mq.wait_terminal(["o1"])
    order = (await mq.http.get("/orders/o1")).json()
    assert order["status"] == "CONFIRMED"
    assert (await mq.http.get("/stock/apple")).json()["quantity"] == 7
    assert (await mq.http.get("/stock/pear")).json()["quantity"] == 0
    assert await mq.deducted("o1") == 8
    # both outboxes drained: rows are deleted after the broker confirmed them
    assert await mq.scalar(mq.orders_db, "SELECT count(*) FROM t_local_msg") == 0
    assert await mq.scalar(mq.inventory_db, "SELECT count(*) FROM t_local_msg") == 0


async def test_insufficient_stock_rejects_all_lines(start_mq: StartMq) -> None:
    mq = await start_mq()
    await mq.set_stock("apple", 10)
    await mq.set_stock("pear", 1)
    await mq.place("o1", [{"sku": "apple", "quantity": 3}, {"sku": "pear", "quantity": 2}])
    await mq.place("o2", [{"sku": "ghost", "quantity": 1}])
    await mq.wait_terminal(["o1", "o2"])
    o1 = (await mq.http.get("/orders/o1")).json()
    assert o1["status"] == "REJECTED" and "pear" in o1["reason"]
    o2 = (await mq.http.get("/orders/o2")).json()
    assert o2["status"] == "REJECTED" and "unknown sku ghost" in o2["reason"]
    assert (await mq.http.get("/stock/apple")).json()["quantity"] == 10  # all or nothing
    assert await mq.deducted("o1") == 0


async def test_duplicate_submission_has_one_effect(start_mq: StartMq) -> None:
    mq = await start_mq()
    await mq.set_stock("apple", 10)
    lines = [{"sku": "apple", "quantity": 2}]
    answers = await asyncio.gather(*(mq.place("dup", lines) for _ in range(20)))
    assert {a.status_code for a in answers} == {202}
    assert {a.json()["order_id"] for a in answers} == {"dup"}
    conflict = await mq.place("dup", [{"sku": "apple", "quantity": 3}])
    assert conflict.status_code == 409
    await mq.wait_terminal(["dup"])
    again = await mq.place("dup", lines)
    assert again.status_code == 202 and again.json()["status"] == "CONFIRMED"
    assert await mq.deducted("dup") == 2
    assert (await mq.http.get("/stock/apple")).json()["quantity"] == 8


async def test_hot_sku_never_oversells(start_mq: StartMq) -> None:
    """300 concurrent orders of one unit for one SKU with stock for 50."""
    mq = await start_mq()
    await mq.set_stock("hot", 50)
    ids = [f"h{i}" for i in range(300)]
    semaphore = asyncio.Semaphore(32)

    async def place(order_id: str) -> int:
        async with semaphore:
            return (await mq.place(order_id, [{"sku": "hot", "quantity": 1}])).status_code

    assert set(await asyncio.gather(*(place(i) for i in ids))) == {202}
    await mq.wait_terminal(ids, timeout=120)
    confirmed = await mq.scalar(mq.orders_db, "SELECT count(*) FROM t_order WHERE status = 'CONFIRMED'")
    rejected = await mq.scalar(mq.orders_db, "SELECT count(*) FROM t_order WHERE status = 'REJECTED'")
    assert (confirmed, rejected) == (50, 250)
    assert await mq.scalar(mq.inventory_db, "SELECT sum(quantity) FROM t_deduction_log") == 50
    assert await mq.scalar(mq.inventory_db, "SELECT quantity FROM t_stock WHERE sku = 'hot'") == 0
    double = await mq.scalar(
        mq.inventory_db,
        "SELECT count(*) FROM (SELECT order_id FROM t_deduction_log GROUP BY order_id HAVING count(*) > 1) d",
    )
    assert double == 0

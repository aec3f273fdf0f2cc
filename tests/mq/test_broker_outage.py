"""The broker goes away for a while: orders are still accepted (they wait in the outbox) and all
are delivered after it returns. A private RabbitMQ node, so the shared one is never touched."""

from __future__ import annotations

import asyncio

import pytest

from compare.targets.sandbox import PrivateRabbit
from tests.mq.conftest import StartMq
from tests.mq.test_faults import assert_no_double_deduction

pytestmark = pytest.mark.slow

ONE_APPLE = [{"sku": "apple", "quantity": 1}]


async def test_broker_down_orders_accepted_then_all_delivered(
    private_rabbit: PrivateRabbit, start_mq: StartMq
) -> None:
    mq = await start_mq(amqp_url=private_rabbit.url)
    await mq.set_stock("apple", 100)
    before = [f"b{i}" for i in range(10)]
    for order_id in before:
        assert (await mq.place(order_id, ONE_APPLE)).status_code == 202
    await mq.wait_terminal(before)

    outage = asyncio.create_task(private_rabbit.restart(downtime_s=8))
    await asyncio.sleep(3)  # the broker application is stopped now
    during = [f"d{i}" for i in range(20)]
    for order_id in during:
        assert (await mq.place(order_id, ONE_APPLE)).status_code == 202  # accepted without a broker
    held = await mq.scalar(mq.orders_db, "SELECT count(*) FROM t_local_msg")
    assert held > 0, "orders placed during the outage should wait in the outbox"
    await outage

    await mq.wait_terminal(before + during, timeout=120)
    assert await mq.scalar(mq.inventory_db, "SELECT sum(quantity) FROM t_deduction_log") == 30
    assert await mq.scalar(mq.orders_db, "SELECT count(*) FROM t_local_msg") == 0
    assert await mq.scalar(mq.inventory_db, "SELECT count(*) FROM t_local_msg") == 0
    await assert_no_double_deduction(mq)

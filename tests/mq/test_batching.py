"""The consumer applies a batch of ready deliveries per transaction (mq_variant.consumer).

A backlog is made by stopping the inventory consumer (SIGSTOP) while messages are published
straight to the deduct queue, so that it finds several deliveries ready when it goes on.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import pytest
from sqlalchemy import text

from mq_variant import topology
from tests.mq.conftest import MqRun, StartMq
from tests.mq.test_faults import assert_no_double_deduction, wait_for_log
from tests.support import wait_until

pytestmark = pytest.mark.slow

SKUS = ("apple", "pear", "plum")


def deduct(order_id: str, sku: str = "apple") -> bytes:
    return json.dumps({"order_id": order_id, "lines": [{"sku": sku, "quantity": 1}]}).encode()


@asynccontextmanager
async def consumer_stopped(mq: MqRun) -> AsyncIterator[None]:
    """The inventory consumer is stopped inside the block: what is published meanwhile waits."""
    await wait_for_log(mq, f"inventory-consumer: consuming {topology.names(mq.settings).deduct_queue}")
    mq.process.signal_role("inventory-consumer", signal.SIGSTOP)
    try:
        yield
    finally:
        mq.process.signal_role("inventory-consumer", signal.SIGCONT)


async def publish(mq: MqRun, bodies: list[bytes]) -> list[str]:
    """Publish in this order (confirmed, one by one) to the deduct queue; the message ids."""
    ids = [uuid.uuid4().hex for _ in bodies]
    connection = await aio_pika.connect(mq.settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.names(mq.settings).exchange)
        for message_id, body in zip(ids, bodies, strict=True):
            await exchange.publish(
                aio_pika.Message(body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=topology.DEDUCT,
            )
    return ids


async def dead_letters(mq: MqRun) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message out of the deduct DLQ."""
    out = []
    connection = await aio_pika.connect(mq.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        dlq = await channel.declare_queue(topology.names(mq.settings).dlqs[0], passive=True)
        while (message := await dlq.get(fail=False, timeout=5)) is not None:
            await message.ack()
            out.append(message)
    return out


async def dlq_depth(mq: MqRun) -> int:
    connection = await aio_pika.connect(mq.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        dlq = await channel.declare_queue(topology.names(mq.settings).dlqs[0], passive=True)
        return int(dlq.declaration_result.message_count or 0)


async def refuse_deductions_of(mq: MqRun, order_id: str) -> None:
    """A real, non-transient database error (SQLSTATE P0001) for one order's deduction only."""
    async with mq.inventory_db.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
                f"IF NEW.order_id = '{order_id}' THEN "
                "RAISE EXCEPTION 'deduction refused for %', NEW.order_id; END IF; RETURN NEW; END $f$"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER refuse_bad BEFORE INSERT ON t_deduction_log "
                "FOR EACH ROW EXECUTE FUNCTION refuse_bad()"
            )
        )


async def test_one_failing_message_fails_nobody_else_in_its_batch(start_mq: StartMq) -> None:
    mq = await start_mq(max_deliveries=3, reconcile_after_s=3600)
    for sku in SKUS:
        await mq.set_stock(sku, 100)
    await refuse_deductions_of(mq, "bad")
    goods = [f"g{i}" for i in range(10)]
    bodies = [deduct(o, SKUS[i % 3]) for i, o in enumerate(goods[:4])]
    bodies += [deduct("bad"), deduct("g1", SKUS[1])]  # the poison, then a re-sent g1 (a new id)
    bodies += [deduct(o, SKUS[i % 3]) for i, o in enumerate(goods[4:], start=4)]
    async with consumer_stopped(mq):
        ids = await publish(mq, bodies)
    bad_id = ids[4]

    async def dead_lettered() -> bool:
        return await dlq_depth(mq) == 1

    await wait_until(dead_lettered, timeout=90, what="the bad message in the DLQ")
    await wait_for_log(mq, "applying them one at a time")  # it really was in a batch with others

    async def goods_applied() -> bool:
        done = await mq.scalar(
            mq.inventory_db, "SELECT count(*) FROM t_dedup WHERE message_id = ANY(:k)",
            k=[f"{o}:deduct" for o in goods],
        )  # fmt: skip
        return done == len(goods)

    await wait_until(goods_applied, timeout=60, what="every good message applied")
    for order_id in goods:
        assert await mq.deducted(order_id) == 1, order_id
    await assert_no_double_deduction(mq)
    assert await mq.deducted("bad") == 0
    assert (
        await mq.scalar(mq.inventory_db, "SELECT count(*) FROM t_dedup WHERE message_id = 'bad:deduct'") == 0
    )
    # only the bad one was counted, max_deliveries times; the batch's own failure counts for nobody
    async with mq.inventory_db.connect() as conn:
        failures = dict((await conn.execute(text("SELECT message_id, failures FROM t_inbox_failure"))).all())
    assert failures == {bad_id: 3}, failures
    letters = await dead_letters(mq)
    assert [m.message_id for m in letters] == [bad_id]
    error = str((letters[0].headers or {})["x-error"])
    assert error.startswith("failed 3 times:") and "deduction refused for bad" in error, error
    assert sum([await mq.stock(sku) for sku in SKUS]) == 300 - len(goods)


async def test_a_burst_is_applied_in_delivery_order_in_batches(start_mq: StartMq) -> None:
    mq = await start_mq(reconcile_after_s=3600)
    for sku in SKUS:
        await mq.set_stock(sku, 1000)
    orders = [f"o{i:03d}" for i in range(150)]
    bodies = [deduct(o, SKUS[i % 3]) for i, o in enumerate(orders)]
    bodies.insert(70, b'{"order_id": "broken"}')  # malformed: dead-lettered where it stands
    bodies.insert(100, deduct(orders[95], SKUS[95 % 3]))  # a copy of o095: answered, not applied
    async with consumer_stopped(mq):
        ids = await publish(mq, bodies)

    async def all_applied() -> bool:
        return await mq.scalar(mq.inventory_db, "SELECT count(*) FROM t_dedup") == len(orders)

    await wait_until(all_applied, timeout=90, what=f"{len(orders)} deductions")
    await wait_for_log(mq, f"duplicate {ids[100]} (o095:deduct already done)")
    async with mq.inventory_db.connect() as conn:
        log = await conn.execute(text("SELECT order_id FROM t_deduction_log ORDER BY id"))
        applied = list(log.scalars())
        transactions = await conn.scalar(text("SELECT count(DISTINCT processed_at) FROM t_dedup"))
    assert applied == orders  # processing order is delivery order, each applied once
    assert transactions < len(orders)  # several per transaction (now() is the transaction's start)
    letters = await dead_letters(mq)
    assert [m.message_id for m in letters] == [ids[70]]
    assert str((letters[0].headers or {})["x-error"]).startswith("malformed")
    await assert_no_double_deduction(mq)


async def test_a_slow_inventory_is_slow_per_message_not_one_long_idle_transaction(start_mq: StartMq) -> None:
    """`compare run --inventory-delay-ms` delays every deduction inside its transaction. A batch of
    8 at 0.4 s each must not sit idle in its transaction for 3.2 s in one go: the server ends a
    session idle in a transaction for longer than pg_idle_in_transaction_s (here 1.5 s), and the
    batch would be retried forever."""
    mq = await start_mq(
        pg_idle_in_transaction_s=1.5,
        reconcile_after_s=3600,
        env={"CC_FAULTS": "inventory-consumer/before_consumer_commit=delay,seconds=0.4"},
    )
    await mq.set_stock("apple", 100)
    orders = [f"slow{i}" for i in range(8)]
    async with consumer_stopped(mq):
        await publish(mq, [deduct(o) for o in orders])

    async def all_applied() -> bool:
        return await mq.scalar(mq.inventory_db, "SELECT count(*) FROM t_dedup") == len(orders)

    await wait_until(all_applied, timeout=30, what="8 slow deductions")
    assert await mq.stock("apple") == 100 - len(orders)

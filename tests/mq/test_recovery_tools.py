"""The MQ variant's recovery tools, run as an operator would: the reconciler re-drives a stranded
order (one deduction, whatever was lost), and dedup retention is the duplicate-detection window."""

from __future__ import annotations

import json
import uuid

import aio_pika
import pytest
from sqlalchemy import text

from mq_variant import topology
from tests.mq.conftest import MqRun, StartMq
from tests.support import wait_until

pytestmark = pytest.mark.slow

ONE_APPLE = [{"sku": "apple", "quantity": 1}]


async def _exec(mq: MqRun, sql: str, **params: object) -> None:
    async with mq.orders_db.begin() as conn:
        await conn.execute(text(sql), params)


async def _resend_deduct(mq: MqRun, order_id: str) -> None:
    """The order's deduct message again, under a new message id (a re-send, a replay)."""
    body = json.dumps({"order_id": order_id, "lines": ONE_APPLE}).encode()
    connection = await aio_pika.connect(mq.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(topology.names(mq.settings).exchange)
        message = aio_pika.Message(body, message_id=uuid.uuid4().hex)
        await exchange.publish(message, routing_key=topology.DEDUCT)


async def test_reconcile_re_drives_stranded_orders_with_one_deduction_each(start_mq: StartMq) -> None:
    mq = await start_mq()
    await mq.set_stock("apple", 10)
    # "lost": the order committed, its deduct message gone (no outbox row, nothing in the queue)
    await _exec(
        mq,
        "INSERT INTO t_order (order_id, customer_id, lines, fingerprint) VALUES (:o, 'c1', :lines, 'x')",
        o=mq.oid("lost"), lines=json.dumps(ONE_APPLE),
    )  # fmt: skip
    # "unanswered": deducted, then its result message lost: as if it never reached order-service
    await mq.place("unanswered", ONE_APPLE)
    await mq.wait_terminal(["unanswered"])
    await _exec(mq, "UPDATE t_order SET status = 'PENDING' WHERE order_id = :o", o=mq.oid("unanswered"))
    await _exec(mq, "DELETE FROM t_dedup WHERE message_id = :k", k=f"{mq.oid('unanswered')}:settle")

    out = await mq.tool("reconcile", "--older-than", "0")
    assert "re-sent the deduct message of 2 orders" in out, out
    await mq.wait_terminal(["lost", "unanswered"])
    for name in ("lost", "unanswered"):
        assert (await mq.order(name))["status"] == "CONFIRMED", name
        assert await mq.deducted(name) == 1, name
    assert await mq.stock("apple") == 8
    assert "of 0 orders" in await mq.tool("reconcile", "--older-than", "0")


async def test_a_duplicate_inside_the_dedup_window_is_absorbed_and_one_past_it_is_not(
    start_mq: StartMq,
) -> None:
    mq = await start_mq()
    await mq.set_stock("apple", 10)
    await mq.place("o1", ONE_APPLE)
    await mq.wait_terminal(["o1"])

    assert "'inventory.t_dedup': 0" in await mq.tool("prune", "--older-than", "3600")
    await _resend_deduct(mq, mq.oid("o1"))
    await _wait_log(mq, f"({mq.oid('o1')}:deduct already done)")
    assert await mq.deducted("o1") == 1  # inside the window: absorbed

    assert "'inventory.t_dedup': 1" in await mq.tool("prune", "--older-than", "0")
    await _resend_deduct(mq, mq.oid("o1"))

    async def deducted_twice() -> bool:
        return await mq.deducted("o1") == 2

    await wait_until(deducted_twice, timeout=30, what="the late duplicate applied")
    # past the window the duplicate deducts again: why the window must exceed every redelivery delay


async def _wait_log(mq: MqRun, text_: str) -> None:
    async def seen() -> bool:
        return text_ in mq.process.log_tail(1000)

    await wait_until(seen, timeout=30, what=text_)


async def test_a_dead_letter_of_unknown_age_is_not_replayed_and_holds_the_reconciler_back(
    start_mq: StartMq,
) -> None:
    mq = await start_mq(reconcile_after_s=4)
    names = topology.names(mq.settings)
    connection = await aio_pika.connect(mq.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        dlx = await channel.get_exchange(names.dlx)
        body = json.dumps({"order_id": "old", "lines": ONE_APPLE}).encode()  # no timestamp: age unknown
        await dlx.publish(aio_pika.Message(body, message_id=uuid.uuid4().hex), routing_key=topology.DEDUCT)
    await _wait_log(mq, "1 dead letters wait for an operator")  # the role re-drives nothing meanwhile
    assert "replayed 0; left 1" in await mq.tool("dlq", "replay")
    assert "replayed 1; left 0" in await mq.tool("dlq", "replay", "--force")

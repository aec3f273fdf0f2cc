"""Consistency under the faults that threaten it: real processes crash at named fault points or
are SIGKILLed; the supervisor restarts them; the checks read both databases."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import aio_pika
import pytest

from mq_variant import topology
from tests.mq.conftest import MqRun, StartMq
from tests.support import wait_until

pytestmark = pytest.mark.slow

ONE_APPLE = [{"sku": "apple", "quantity": 1}]


async def assert_no_double_deduction(mq: MqRun) -> None:
    assert await mq.double_deductions() == 0


async def test_consumer_sigkilled_after_commit_before_ack_deducts_once(start_mq: StartMq) -> None:
    # the consumer stops itself right after its commit, before the ack; we SIGKILL it there
    mq = await start_mq({"CC_FAULTS": "inventory-consumer/after_consumer_commit=pause,times=1"})
    await mq.set_stock("apple", 10)
    await mq.place("o1", ONE_APPLE)
    await wait_for_log(mq, "FAULT inventory-consumer/after_consumer_commit: pause")
    paused = mq.process.signal_role("inventory-consumer", signal.SIGKILL)
    await mq.wait_terminal(["o1"])
    # the redelivery reaches the restarted consumer and the dedup table turns it into a no-op
    await wait_for_log(mq, "already done): answered from the stored result")
    assert mq.process.pid("inventory-consumer") != paused  # really died and was restarted
    assert await mq.deducted("o1") == 1
    assert (await mq.http.get("/orders/o1")).json()["status"] == "CONFIRMED"


async def test_relay_crash_after_publish_before_delete_deducts_once(start_mq: StartMq) -> None:
    mq = await start_mq({"CC_FAULTS": "order-relay/after_publish=crash,times=1"})
    await mq.set_stock("apple", 10)
    await mq.place("o1", ONE_APPLE)
    await mq.wait_terminal(["o1"])
    await wait_for_log(mq, "already done): answered from the stored result")  # the second copy, deduplicated
    assert "FAULT order-relay/after_publish: crash" in mq.process.log_tail(400)
    assert await mq.deducted("o1") == 1
    assert await mq.scalar(mq.orders_db, "SELECT count(*) FROM t_local_msg") == 0


async def test_return_path_faults_settle_each_order_once(start_mq: StartMq) -> None:
    mq = await start_mq(
        {
            "CC_FAULTS": "inventory-relay/after_publish=crash,times=1;"
            "order-result-consumer/after_consumer_commit=crash,times=1"
        }
    )
    await mq.set_stock("apple", 10)
    await mq.place("o1", ONE_APPLE)
    await mq.place("o2", [{"sku": "apple", "quantity": 99}])
    await mq.wait_terminal(["o1", "o2"])
    await wait_for_log(mq, "order-result-consumer: duplicate")
    log = mq.process.log_tail(400)
    assert "FAULT inventory-relay/after_publish: crash" in log
    assert "FAULT order-result-consumer/after_consumer_commit: crash" in log
    assert (await mq.http.get("/orders/o1")).json()["status"] == "CONFIRMED"
    assert (await mq.http.get("/orders/o2")).json()["status"] == "REJECTED"
    assert await mq.deducted("o1") == 1


async def test_sigkill_every_worker_role_under_load_loses_nothing(start_mq: StartMq) -> None:
    mq = await start_mq()
    await mq.set_stock("apple", 1000)
    ids = [f"k{i}" for i in range(200)]
    roles = ["inventory-consumer", "order-relay", "inventory-relay", "order-result-consumer"]

    async def killer() -> None:
        for round_ in range(2):
            for role in roles:
                await asyncio.sleep(0.3)
                mq.process.signal_role(role, signal.SIGKILL)
            del round_

    async def load() -> None:
        for chunk in range(0, len(ids), 20):
            answers = await asyncio.gather(*(mq.place(i, ONE_APPLE) for i in ids[chunk : chunk + 20]))
            assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
            await asyncio.sleep(0.1)

    await asyncio.gather(killer(), load())
    await mq.wait_terminal(ids, timeout=120)
    assert await mq.scalar(mq.inventory_db, "SELECT sum(quantity) FROM t_deduction_log") == 200
    assert await mq.scalar(mq.inventory_db, "SELECT quantity FROM t_stock WHERE sku='apple'") == 800
    await assert_no_double_deduction(mq)


async def test_a_re_sent_deduct_applies_once_whatever_its_message_id(start_mq: StartMq) -> None:
    """Dedup is keyed on the business operation (<order>:deduct), not the transport message id:
    the order's own message, the same message again (a relay retry) and the same deduct under a
    new id (a reconciler, a DLQ replay) deduct once; each repeat is answered with the stored
    outcome."""
    mq = await start_mq()
    await mq.set_stock("apple", 10)
    names = topology.names(mq.settings)
    await mq.place("o1", ONE_APPLE)
    await mq.wait_terminal(["o1"])
    body = json.dumps({"order_id": "o1", "lines": ONE_APPLE}).encode()
    same_id = uuid.uuid4().hex
    connection = await aio_pika.connect(mq.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(names.exchange)
        for message_id in (same_id, same_id, uuid.uuid4().hex):
            await exchange.publish(aio_pika.Message(body, message_id=message_id), routing_key=topology.DEDUCT)

    await wait_for_log(mq, f"duplicate {same_id} (o1:deduct already done)")
    await wait_until(
        lambda: _log_count(mq, "(o1:deduct already done): answered from the stored result", 3),
        timeout=30,
        what="three repeats answered",
    )
    assert await mq.deducted("o1") == 1
    assert (await mq.http.get("/orders/o1")).json()["status"] == "CONFIRMED"


async def _log_count(mq: MqRun, text: str, n: int) -> bool:
    return mq.process.log_tail(2000).count(text) >= n


async def wait_for_log(mq: MqRun, text: str, timeout: float = 30) -> None:
    async def seen() -> bool:
        return text in mq.process.log_tail(1000)

    await wait_until(seen, timeout=timeout, what=f"log line {text!r}")


async def test_malformed_messages_go_to_the_dlq_and_the_consumer_keeps_going(start_mq: StartMq) -> None:
    mq = await start_mq()
    await mq.set_stock("apple", 10)
    names = topology.names(mq.settings)
    connection = await aio_pika.connect(mq.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(names.exchange)
        for body in (b"not json", b'{"order_id": "x", "lines": []}', b'{"order_id": "x"}'):
            await exchange.publish(
                aio_pika.Message(body, message_id=uuid.uuid4().hex), routing_key=topology.DEDUCT
            )
        await exchange.publish(aio_pika.Message(b"{}"), routing_key=topology.DEDUCT)
        await mq.place("after", ONE_APPLE)
        await mq.wait_terminal(["after"])
        assert (await mq.http.get("/orders/after")).json()["status"] == "CONFIRMED"
        dlq = await channel.declare_queue(names.dlqs[0], passive=True)
        reasons = []
        for _ in range(4):
            message = await dlq.get(timeout=5, fail=True)
            assert message is not None
            reasons.append(str(message.headers["x-error"]))
            await message.ack()
    assert all(r.startswith("malformed") for r in reasons), reasons
    assert len(set(reasons)) == 4, reasons


async def test_a_message_failing_every_time_is_dead_lettered_then_replayed(start_mq: StartMq) -> None:
    # every processing attempt of the first message raises: after max_deliveries failures the
    # consumer dead-letters it; the next order goes through; `dlq list` shows it with its reason;
    # `dlq replay` (the fault is used up) brings the order to a terminal state, one deduction.
    mq = await start_mq(
        {"CC_FAULTS": "inventory-consumer/before_consumer_commit=raise,times=3"},
        max_deliveries=3,
        reconcile_after_s=3600,  # the replay, not the reconciler, must bring it back
    )
    await mq.set_stock("apple", 10)
    await mq.place("poison", ONE_APPLE)
    names = topology.names(mq.settings)
    connection = await aio_pika.connect(mq.settings.amqp_url)
    async with connection:
        channel = await connection.channel()

        async def dead_lettered() -> bool:
            dlq = await channel.declare_queue(names.dlqs[0], passive=True)
            return dlq.declaration_result.message_count == 1

        await wait_until(dead_lettered, timeout=60, what="poison message in the DLQ")
    await mq.place("next", ONE_APPLE)
    await mq.wait_terminal(["next"])
    assert await mq.deducted("poison") == 0  # every attempt rolled back
    assert (await mq.http.get("/orders/poison")).json()["status"] == "PENDING"  # needs an operator

    listed = await mq.tool("dlq", "list")
    assert "1 dead-lettered messages" in listed and "failed 3 times: FaultInjected" in listed, listed
    assert "replayed 1;" in await mq.tool("dlq", "replay")
    await mq.wait_terminal(["poison"])
    assert (await mq.http.get("/orders/poison")).json()["status"] == "CONFIRMED"
    assert await mq.deducted("poison") == 1
    assert "0 dead-lettered messages" in await mq.tool("dlq", "list")

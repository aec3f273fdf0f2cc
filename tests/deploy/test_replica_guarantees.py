"""What several consumer replicas mean for ordering, on the real broker with the real topology
(mq_variant.topology): one consumer receives at a time, in queue order; when it goes away its
unacked message is redelivered to the standby first, then the rest follow in order."""

from __future__ import annotations

import contextlib
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from common.settings import Settings
from mq_variant import topology
from tests.conftest import fresh_settings
from tests.support import wait_until

MESSAGES = 20
A_ACKS = 10  # replica A acks messages 0..9, then holds 10 unacked and goes away


async def test_single_active_consumer_keeps_queue_order_across_replicas(
    base_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings(base_settings, tmp_path)
    names = topology.names(settings)
    publisher = await aio_pika.connect(settings.amqp_url)
    replica_a = await aio_pika.connect(settings.amqp_url)
    replica_b = await aio_pika.connect(settings.amqp_url)
    got_a: list[int] = []
    got_b: list[int] = []
    try:
        channel = await publisher.channel(publisher_confirms=True)
        exchange, _ = await topology.declare(channel, settings)

        async def on_a(message: AbstractIncomingMessage) -> None:
            got_a.append(int(message.body))
            if int(message.body) < A_ACKS:
                await message.ack()

        async def on_b(message: AbstractIncomingMessage) -> None:
            got_b.append(int(message.body))
            await message.ack()

        for connection, handler in ((replica_a, on_a), (replica_b, on_b)):
            consumer_channel = await connection.channel()
            await consumer_channel.set_qos(prefetch_count=1)
            queue = await consumer_channel.get_queue(names.deduct_queue)
            await queue.consume(handler)

        for i in range(MESSAGES):
            message = aio_pika.Message(str(i).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await exchange.publish(message, routing_key=topology.DEDUCT)

        async def a_holds_its_last() -> bool:
            return len(got_a) == A_ACKS + 1

        await wait_until(a_holds_its_last, timeout=30, what="replica A at its unacked message")
        assert got_a == list(range(A_ACKS + 1))
        assert got_b == [], "the standby replica received while the active one was consuming"

        await replica_a.close()  # the active replica goes away with message 10 unacked

        async def b_has_the_rest() -> bool:
            return len(got_b) >= MESSAGES - A_ACKS

        await wait_until(b_has_the_rest, timeout=30, what="replica B takes over")
        assert got_b == list(range(A_ACKS, MESSAGES)), "order across the failover"
    finally:
        for connection in (replica_a, replica_b):
            with contextlib.suppress(Exception):
                await connection.close()
        with contextlib.suppress(Exception):
            await topology.delete(await publisher.channel(), settings)
        await publisher.close()

"""Broker topology: durable, quorum queues, a dead-letter exchange, ordered consumption.

    exchange <p>mq (direct)
      inventory.deduct -> queue <p>inventory.deduct   (order-service -> inventory)
      orders.result    -> queue <p>orders.results     (inventory -> order-service)
    exchange <p>mq.dlx (direct), same routing keys
      -> <p>inventory.deduct.dlq, <p>orders.results.dlq

Main queues are quorum queues (replicated on a cluster, Jepsen-tested). A message that keeps
failing is dead-lettered by the consumer itself, which counts its processing failures (see
mq_variant.consumer): brokers disagree on what counts toward x-delivery-limit (before 4.3 every
return, a consumer crash included; from 4.3 not a requeued nack), so the limit is only a high
backstop for a message that kills its consumer every time. x-single-active-consumer keeps the
queue's order even when several consumer replicas run (only one receives at a time).
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue
from yarl import URL

from common.settings import Settings

DEDUCT = "inventory.deduct"
RESULT = "orders.result"


@dataclass(frozen=True)
class Names:
    exchange: str
    dlx: str
    deduct_queue: str
    result_queue: str

    @property
    def dlqs(self) -> tuple[str, str]:
        return f"{self.deduct_queue}.dlq", f"{self.result_queue}.dlq"

    def queue_for(self, routing_key: str) -> str:
        return {DEDUCT: self.deduct_queue, RESULT: self.result_queue}[routing_key]

    def key_of(self, queue: str) -> str:
        """The routing key that leads to `queue` (and, on the dead-letter exchange, to its DLQ)."""
        return {self.deduct_queue: DEDUCT, self.result_queue: RESULT}[queue]


async def connect(settings: Settings, timeout: float = 5) -> AbstractConnection:
    """A broker connection with the configured heartbeat (unless the URL sets one): a link that
    went silent (a partition without a reset) is noticed within about two heartbeats."""
    url = URL(settings.amqp_url)
    if "heartbeat" not in url.query:
        url = url.update_query(heartbeat=settings.amqp_heartbeat_s)
    return await aio_pika.connect(str(url), timeout=timeout)


def names(settings: Settings) -> Names:
    return Names(
        exchange=settings.amqp_name("mq"),
        dlx=settings.amqp_name("mq.dlx"),
        deduct_queue=settings.amqp_name("inventory.deduct"),
        result_queue=settings.amqp_name("orders.results"),
    )


async def declare(channel: AbstractChannel, settings: Settings) -> tuple[AbstractExchange, AbstractExchange]:
    """Idempotent: every process declares what it uses, so start order does not matter."""
    n = names(settings)
    exchange = await channel.declare_exchange(n.exchange, aio_pika.ExchangeType.DIRECT, durable=True)
    dlx = await channel.declare_exchange(n.dlx, aio_pika.ExchangeType.DIRECT, durable=True)
    for routing_key, queue_name in ((DEDUCT, n.deduct_queue), (RESULT, n.result_queue)):
        queue = await channel.declare_queue(
            queue_name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": n.dlx,
                "x-dead-letter-routing-key": routing_key,
                # a backstop only: the consumer counts processing failures itself
                "x-delivery-limit": settings.broker_delivery_limit,
                "x-single-active-consumer": True,
            },
        )
        await queue.bind(exchange, routing_key)
        dlq = await channel.declare_queue(
            f"{queue_name}.dlq", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dlq.bind(dlx, routing_key)
    return exchange, dlx


async def queue(channel: AbstractChannel, name: str) -> AbstractQueue:
    """A passive handle (e.g. to read message_count) on an already declared queue."""
    return await channel.declare_queue(name, passive=True)


async def delete(channel: AbstractChannel, settings: Settings) -> None:
    n = names(settings)
    for queue_name in (n.deduct_queue, n.result_queue, *n.dlqs):
        await channel.queue_delete(queue_name)
    for exchange_name in (n.exchange, n.dlx):
        await channel.exchange_delete(exchange_name)

"""Operator tools for the dead-letter queues: list what is there, replay it to its work queue.

`replay` re-publishes each dead-lettered message to the work exchange under its routing key with
a new message id (confirmed, routed: a return is an error), then acks it in the DLQ. Safe: the
consumers deduplicate per business operation (`<order>:deduct`, `<order>:settle`), so a replayed
message that had in fact been applied is answered from the stored result. A message older than
the dedup retention window is left in the DLQ (its dedup row may be gone: replaying it could
apply twice), and so is one whose age is unknown (no timestamp), unless `force` is given.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pydantic import BaseModel

from common.settings import Settings
from mq_variant import topology


class DeadLetter(BaseModel):
    queue: str
    message_id: str | None
    routing_key: str
    error: str
    age_s: float | None
    body: str


@asynccontextmanager
async def _channel(settings: Settings) -> AsyncIterator[AbstractChannel]:
    connection = await topology.connect(settings, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await topology.declare(channel, settings)
        yield channel


def _describe(queue: str, message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    age = None if message.timestamp is None else max(0.0, time.time() - message.timestamp.timestamp())
    return DeadLetter(
        queue=queue,
        message_id=message.message_id,
        routing_key=message.routing_key or "",
        error=str(headers.get("x-error", headers.get("x-first-death-reason", ""))),
        age_s=None if age is None else round(age, 1),
        body=message.body[:300].decode(errors="replace"),
    )


async def list_dead_letters(settings: Settings, limit: int = 100) -> list[DeadLetter]:
    """Peek: every message is fetched and returned to the DLQ (requeued), none is removed."""
    out: list[DeadLetter] = []
    async with _channel(settings) as channel:
        for name in topology.names(settings).dlqs:
            queue = await topology.queue(channel, name)
            held: list[AbstractIncomingMessage] = []
            while len(out) < limit:
                message = await queue.get(fail=False, no_ack=False)
                if message is None:
                    break
                held.append(message)
                out.append(_describe(name, message))
            for message in held:
                await message.nack(requeue=True)
    return out


async def replay(settings: Settings, *, limit: int = 1000, force: bool = False) -> tuple[int, int]:
    """Re-publish dead letters to their work queues. (replayed, left because too old)."""
    names = topology.names(settings)
    replayed = left = 0
    async with _channel(settings) as channel:
        exchange = await channel.get_exchange(names.exchange)
        for name in names.dlqs:
            queue = await topology.queue(channel, name)
            budget = min(limit, queue.declaration_result.message_count or 0)  # not what we re-poison
            too_old: list[AbstractIncomingMessage] = []
            for _ in range(budget):
                message = await queue.get(fail=False, no_ack=False)
                if message is None:
                    break
                letter = _describe(name, message)
                # an unknown age counts as too old: nothing proves its dedup row is still there
                too_old_for_dedup = letter.age_s is None or letter.age_s > settings.dedup_retention_s
                if too_old_for_dedup and not force:
                    too_old.append(message)
                    left += 1
                    continue
                await exchange.publish(_again(message), routing_key=letter.routing_key, mandatory=True)
                await message.ack()
                replayed += 1
            for message in too_old:
                await message.nack(requeue=True)
    return replayed, left


def _again(message: AbstractIncomingMessage) -> aio_pika.Message:
    headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
    headers["replayed-from"] = message.message_id or ""
    return aio_pika.Message(
        body=message.body,
        message_id=uuid.uuid4().hex,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=message.timestamp,
        type=message.type,
        headers=headers,
    )

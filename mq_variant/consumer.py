"""The inbox consumer: dedup check, the work, the dedup row -- one transaction -- then the ack.

Messages are handled one at a time in delivery order (with a bounded prefetch), so the queue's
order is the processing order. Outcomes per delivery:

- malformed body or missing message id: published to the dead-letter exchange with the reason in
  the `x-error` header, then acked. It never blocks the queue and never crashes the consumer.
- database unreachable: the message is held and the transaction retried with backoff (an outage
  must not dead-letter good messages). If the broker connection drops meanwhile, the broker
  redelivers and the dedup table makes that harmless.
- any other error while processing: nack with requeue; the quorum queue counts deliveries and
  dead-letters the message after `max_deliveries`.
- success: commit, then ack. A crash between the two redelivers the message: the dedup row,
  committed with the work, turns the redelivery into a no-op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import dedup
from common.backoff import Backoff
from common.faults import FaultPoint, Faults
from common.settings import Settings
from mq_variant import topology
from mq_variant.controls import Control

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[AsyncConnection, M, str], Awaitable[None]]

_CONNECTION_ERRORS = (OSError, TimeoutError, OperationalError, InterfaceError)


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _CONNECTION_ERRORS)


class InboxConsumer(Generic[M]):
    def __init__(
        self,
        *,
        settings: Settings,
        engine: AsyncEngine,
        dedup_table: Table,
        queue_name: str,
        model: type[M],
        handler: Handler[M],
        faults: Faults,
        control: Control,
        name: str,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._dedup = dedup_table
        self._queue_name = queue_name
        self._model = model
        self._handler = handler
        self._faults = faults
        self._control = control
        self._name = name

    async def run(self) -> None:
        backoff = Backoff(self._settings.backoff_initial_s, self._settings.backoff_max_s)
        while True:
            try:
                await self._session(backoff)
            except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
                delay = backoff.next_delay()
                self._log(f"broker session ended ({type(exc).__name__}: {exc}); retrying in {delay:.2f}s")
                await asyncio.sleep(delay)

    async def _session(self, backoff: Backoff) -> None:
        connection = await aio_pika.connect(self._settings.amqp_url, timeout=5)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=self._settings.consumer_prefetch)
            _, dlx = await topology.declare(channel, self._settings)
            queue = await topology.queue(channel, self._queue_name)
            self._log(f"consuming {self._queue_name}")
            async with queue.iterator() as messages:
                async for message in messages:
                    await self._handle(message, dlx)
                    backoff.reset()

    async def _handle(self, message: AbstractIncomingMessage, dlx: AbstractExchange) -> None:
        try:
            if not message.message_id:
                raise ValueError("message has no message_id")
            payload = self._model.model_validate_json(message.body)
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(message, dlx, f"malformed: {_describe(exc)}")
            return
        if self._control is Control.ACK_BEFORE_COMMIT:
            await message.ack()
        if not await self._process(message.message_id, payload):
            if self._control is not Control.ACK_BEFORE_COMMIT:
                await message.nack(requeue=True)
            return
        await self._faults.hit(FaultPoint.AFTER_CONSUMER_COMMIT)
        if self._control is not Control.ACK_BEFORE_COMMIT:
            await message.ack()

    async def _process(self, message_id: str, payload: M) -> bool:
        """Commit the work once. False: a processing error (the broker will count it)."""
        retry = Backoff(self._settings.backoff_initial_s, self._settings.backoff_max_s)
        while True:
            try:
                async with self._engine.begin() as conn:
                    if self._control is Control.NO_DEDUP:
                        await self._handler(conn, payload, message_id)
                    else:
                        _, fresh = await dedup.once(
                            conn, self._dedup, message_id, lambda: self._handler(conn, payload, message_id)
                        )
                        if not fresh:
                            self._log(f"duplicate {message_id} skipped (already processed)")
                    await self._faults.hit(FaultPoint.BEFORE_CONSUMER_COMMIT)
                return True
            except Exception as exc:
                if not _is_connection_error(exc):
                    self._log(f"processing {message_id} failed: {type(exc).__name__}: {_first_line(exc)}")
                    return False
                delay = retry.next_delay()
                self._log(f"database unavailable ({type(exc).__name__}); retry in {delay:.2f}s")
                await asyncio.sleep(delay)

    async def _dead_letter(
        self, message: AbstractIncomingMessage, dlx: AbstractExchange, reason: str
    ) -> None:
        self._log(f"dead-lettering {message.message_id or '<no id>'}: {reason}")
        await dlx.publish(
            aio_pika.Message(
                body=message.body,
                message_id=message.message_id,
                content_type=message.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={
                    **(message.headers or {}),
                    "x-error": reason[:500],
                    "x-original-queue": self._queue_name,
                },
            ),
            routing_key=message.routing_key or "",
        )
        await message.ack()

    def _log(self, text: str) -> None:
        print(f"{self._name}: {text}", flush=True)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
        )
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]

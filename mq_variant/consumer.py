"""The inbox consumer: dedup check, the work, the dedup row -- one transaction -- then the ack.

Messages are handled one at a time in delivery order (with a bounded prefetch), so the queue's
order is the processing order. Dedup is keyed on the business operation (`<order_id>:deduct`,
`<order_id>:settle`), not on the transport message id: a message re-sent under a new id (a
reconciler, a DLQ replay, an operator) can never apply twice, and a repeated deduct is answered
again with the stored outcome. Outcomes per delivery:

- malformed body or missing message id: published to the dead-letter exchange with the reason in
  the `x-error` header (a publish the broker returns is an error, not a success), then acked.
- the database cannot serve right now (common.db_errors: connection, startup / shutdown, too many
  connections, serialization / deadlock): the message is held and the transaction retried with
  backoff, for as long as it takes. An outage never dead-letters a good message.
- the processing itself fails (anything else): the failure is counted per message in
  t_inbox_failure (it survives restarts) and the message retried after a backoff; after
  `max_deliveries` failures it is dead-lettered with the last error, then acked. This rule is
  the consumer's own: it does not depend on what a broker version counts toward
  x-delivery-limit (crashes of a healthy consumer never count here); that limit is a backstop.
- success: commit, then ack. A crash between the two redelivers the message: the dedup row,
  committed with the work, turns the redelivery into a no-op.
- the broker cancels the consumer (its queue was deleted): the session ends and starts again,
  declaring the topology anew.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Generic, Protocol, TypeVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import dedup
from common.backoff import Backoff
from common.db_errors import is_transient
from common.dedup import JSON
from common.faults import FaultPoint, Faults
from common.settings import Settings
from mq_variant import topology
from mq_variant.controls import Control

M = TypeVar("M", bound=BaseModel)
M_contra = TypeVar("M_contra", bound=BaseModel, contravariant=True)


class InboxHandler(Protocol[M_contra]):
    """What a consumer does with one message, inside its transaction."""

    def key(self, message: M_contra) -> str:
        """The business operation the message asks for: the dedup key."""
        ...

    async def apply(self, conn: AsyncConnection, message: M_contra, message_id: str) -> JSON | None:
        """The first time: do the work; the result is stored with the dedup row."""
        ...

    async def again(self, conn: AsyncConnection, message: M_contra, stored: JSON | None) -> None:
        """A repeat of work already done: answer from the stored result (or do nothing)."""
        ...


class BrokerCancelled(aio_pika.exceptions.AMQPError):
    """The broker cancelled our consumer (e.g. the queue was deleted)."""


class InboxConsumer(Generic[M]):
    def __init__(
        self,
        *,
        settings: Settings,
        engine: AsyncEngine,
        dedup_table: Table,
        failure_table: Table,
        queue_name: str,
        model: type[M],
        handler: InboxHandler[M],
        faults: Faults,
        control: Control,
        name: str,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._dedup = dedup_table
        self._failures = failure_table
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
            except (
                OSError,
                TimeoutError,
                aio_pika.exceptions.AMQPError,
                aio_pika.exceptions.ChannelInvalidStateError,  # an ack on a channel the broker closed
            ) as exc:
                delay = backoff.next_delay()
                self._log(f"broker session ended ({type(exc).__name__}: {exc}); retrying in {delay:.2f}s")
                await asyncio.sleep(delay)

    async def _session(self, backoff: Backoff) -> None:
        connection = await topology.connect(self._settings, timeout=5)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await channel.set_qos(prefetch_count=self._settings.consumer_prefetch)
            _, dlx = await topology.declare(channel, self._settings)
            queue = await topology.queue(channel, self._queue_name)
            cancelled = asyncio.Event()
            underlay = await channel.get_underlay_channel()
            underlay.on_consumer_cancel_callbacks.add(lambda _frame: cancelled.set())
            self._log(f"consuming {self._queue_name}")
            async with queue.iterator() as messages:
                watcher = asyncio.create_task(_close_when(cancelled, channel))
                try:
                    async for message in messages:
                        await self._handle(message, dlx)
                        backoff.reset()
                finally:
                    watcher.cancel()
            if cancelled.is_set():
                raise BrokerCancelled(f"the broker cancelled the consumer of {self._queue_name}")

    async def _handle(self, message: AbstractIncomingMessage, dlx: AbstractExchange) -> None:
        try:
            if not message.message_id:
                raise ValueError("message has no message_id")
            payload = self._model.model_validate_json(message.body)
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(message, dlx, f"malformed: {_describe(exc)}")
            return
        acked_early = self._control is Control.ACK_BEFORE_COMMIT
        if acked_early:
            await message.ack()
        failed = await self._process(message.message_id, payload)
        if failed is not None:
            await self._dead_letter(message, dlx, failed, ack=not acked_early)
            return
        await self._faults.hit(FaultPoint.AFTER_CONSUMER_COMMIT)
        if not acked_early:
            await message.ack()

    async def _process(self, message_id: str, payload: M) -> str | None:
        """Commit the work once. None when done; the reason when it failed too often."""
        retry = Backoff(self._settings.backoff_initial_s, self._settings.backoff_max_s)
        failures = 0
        while True:
            try:
                await self._commit(message_id, payload)
                return None
            except Exception as exc:
                reason = f"{type(exc).__name__}: {_first_line(exc)}"
                if is_transient(exc):
                    delay = retry.next_delay()
                    self._log(f"database unavailable ({reason}); holding {message_id}, retry in {delay:.2f}s")
                    await asyncio.sleep(delay)
                    continue
                failures = max(failures + 1, await self._count_failure(message_id, reason))
                if failures >= self._settings.max_deliveries:
                    return f"failed {failures} times: {reason}"
                delay = retry.next_delay()
                self._log(f"processing {message_id} failed ({failures}x): {reason}; retry in {delay:.2f}s")
                await asyncio.sleep(delay)

    async def _commit(self, message_id: str, payload: M) -> None:
        async with self._engine.begin() as conn:
            if self._control is Control.NO_DEDUP:
                await self._handler.apply(conn, payload, message_id)
            else:
                key = self._handler.key(payload)
                stored, fresh = await dedup.once(
                    conn, self._dedup, key, lambda: self._handler.apply(conn, payload, message_id)
                )
                if not fresh:
                    self._log(f"duplicate {message_id} ({key} already done): answered from the stored result")
                    await self._handler.again(conn, payload, stored)
            await self._faults.hit(FaultPoint.BEFORE_CONSUMER_COMMIT)

    async def _count_failure(self, message_id: str, reason: str) -> int:
        """Durably count a processing failure of this message; 0 if the count cannot be written."""
        stmt = insert(self._failures).values(message_id=message_id, failures=1, last_error=reason[:500])
        stmt = stmt.on_conflict_do_update(
            index_elements=["message_id"],
            set_={
                "failures": self._failures.c.failures + 1,
                "last_error": stmt.excluded.last_error,
                "updated_at": func.now(),
            },
        ).returning(self._failures.c.failures)
        try:
            async with self._engine.begin() as conn:
                return int((await conn.execute(stmt)).scalar_one())
        except Exception as exc:
            self._log(f"could not record the failure of {message_id}: {type(exc).__name__}")
            return 0

    async def _dead_letter(
        self, message: AbstractIncomingMessage, dlx: AbstractExchange, reason: str, *, ack: bool = True
    ) -> None:
        """Publish to the dead-letter exchange, confirmed and routed (a return raises), then ack."""
        self._log(f"dead-lettering {message.message_id or '<no id>'}: {reason}")
        await dlx.publish(
            aio_pika.Message(
                body=message.body,
                message_id=message.message_id,
                content_type=message.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                timestamp=message.timestamp,  # its age decides whether a replay is still safe
                type=message.type,
                headers={
                    **(message.headers or {}),
                    "x-error": reason[:500],
                    "x-original-queue": self._queue_name,
                },
            ),
            # the queue's own key, not the incoming one (a message published to the queue through
            # the default exchange carries the queue's name, which the DLX cannot route)
            routing_key=topology.names(self._settings).key_of(self._queue_name),
            mandatory=True,
            timeout=30,
        )
        if ack:
            await message.ack()

    def _log(self, text: str) -> None:
        print(f"{self._name}: {text}", flush=True)


async def _close_when(cancelled: asyncio.Event, channel: AbstractChannel) -> None:
    await cancelled.wait()
    with contextlib.suppress(Exception):
        await channel.close()


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
        )
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]

"""The inbox consumer: dedup check, the work, the dedup row -- one transaction -- then the ack.

Deliveries are applied in batches: the consumer waits for the next delivery, takes every further
one already received without waiting (at most `consumer_prefetch`, which also bounds what the
broker sends ahead), and applies them in ONE transaction, in delivery order, each exactly as it
would be alone (its own dedup row, its own effects); then commits once and acks the batch with
one `ack(multiple=True)` on its last delivery tag. Dedup is keyed on the business operation
(`<order_id>:deduct`, `<order_id>:settle`), not on the transport message id: a message re-sent
under a new id (a reconciler, a DLQ replay, an operator) can never apply twice, and a repeated
deduct is answered again with the stored outcome. Two copies of one operation in the same batch
are no exception: the first is applied, the second answered from the first's result (the answers
to repeats are queued after the batch's new results: per order, its first answer still comes first).

Ordering: one channel, a queue with a single active consumer, and the batch's statements run one
message after the other in delivery order, so the queue's order is the processing order (as when
messages were handled one per transaction). The multiple-ack covers exactly the batch: every
delivery with a lower tag on this channel was acked before (an earlier batch, a dead letter).

Outcomes:
- malformed body or missing message id: not part of a batch. What came before it is applied,
  committed and acked first; then it is published to the dead-letter exchange with the reason in
  the `x-error` header (a publish the broker returns is an error, not a success) and acked.
- the database cannot serve right now (common.db_errors: connection, startup / shutdown, too many
  connections, serialization / deadlock): the whole batch is held and its transaction retried
  with backoff, for as long as it takes. An outage never dead-letters a good message.
- any other error in a batch of several: its transaction is rolled back and that batch's messages
  are applied again one at a time, each in its own transaction, under the rules below. One bad
  message thus fails nobody else, and the happy path pays no SAVEPOINT round trips. The batch's
  own failure is not counted against any message (it is not known which one failed).
- a message applied alone whose processing fails: the failure is counted per message in
  t_inbox_failure (it survives restarts) and the message retried after a backoff; after
  `max_deliveries` failures it is dead-lettered with the last error, then acked. This rule is
  the consumer's own: it does not depend on what a broker version counts toward
  x-delivery-limit (crashes of a healthy consumer never count here); that limit is a backstop.
- success: commit, then ack. A crash between the two redelivers the whole batch: the dedup
  rows, committed with the work, turn every redelivered message into a no-op (answered again
  from its stored result).
- the broker cancels the consumer (its queue was deleted) or the channel closes: the session
  ends and starts again, declaring the topology anew; unacked deliveries return to the queue.

Fault points: `before_consumer_commit` is hit once per message, after the batch's work, inside
the transaction (so `compare run --inventory-delay-ms` still slows every deduction; while a fault
is set there a `SELECT 1` follows each hit, so that N delays are N short idle periods, not one
long one the server would end), and `after_consumer_commit` once per message between the commit
and the ack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, func, text
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
from mq_variant.deliveries import Deliveries

_STILL_HERE = text("SELECT 1")

M = TypeVar("M", bound=BaseModel)
M_contra = TypeVar("M_contra", bound=BaseModel, contravariant=True)


class InboxHandler(Protocol[M_contra]):
    """What a consumer does with a batch of messages, inside its transaction."""

    def key(self, message: M_contra) -> str:
        """The business operation the message asks for: the dedup key."""
        ...

    async def apply(
        self, conn: AsyncConnection, messages: Sequence[tuple[M_contra, str]]
    ) -> list[JSON | None]:
        """The first time for each (message, message id), in order: do the work, as if one after
        the other. The results, one per message, are stored with their dedup rows."""
        ...

    async def again(self, conn: AsyncConnection, repeats: Sequence[tuple[M_contra, JSON | None]]) -> None:
        """Repeats of work already done: answer from each stored result (or do nothing)."""
        ...


class BrokerCancelled(aio_pika.exceptions.AMQPError):
    """The broker cancelled our consumer (e.g. the queue was deleted)."""


class ChannelGone(aio_pika.exceptions.AMQPError):
    """The consumer's channel (or its connection) closed under it."""


@dataclass(frozen=True)
class Work(Generic[M]):
    """A well-formed delivery: what to apply, and the delivery to ack."""

    delivery: AbstractIncomingMessage
    message_id: str
    payload: M


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
        self._acks_early = control is Control.ACK_BEFORE_COMMIT

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
            deliveries = await Deliveries.consume(channel, queue)
            self._log(f"consuming {self._queue_name}")
            while batch := await deliveries.next_batch(self._settings.consumer_prefetch):
                await self._handle(batch, dlx)
                backoff.reset()
            if deliveries.cancelled:
                raise BrokerCancelled(f"the broker cancelled the consumer of {self._queue_name}")
            raise ChannelGone(deliveries.ended or "the channel closed")

    async def _handle(self, batch: list[AbstractIncomingMessage], dlx: AbstractExchange) -> None:
        """Apply the well-formed deliveries in order; a malformed one splits the batch there."""
        run: list[Work[M]] = []
        for delivery in batch:
            work = self._parse(delivery)
            if isinstance(work, Work):
                run.append(work)
                continue
            await self._apply(run, dlx)  # what came before it first: acks stay in order
            run = []
            await self._dead_letter(delivery, dlx, f"malformed: {work}")
        await self._apply(run, dlx)

    def _parse(self, delivery: AbstractIncomingMessage) -> Work[M] | str:
        """The delivery as work, or why it is malformed."""
        if not delivery.message_id:
            return "message has no message_id"
        try:
            return Work(delivery, delivery.message_id, self._model.model_validate_json(delivery.body))
        except ValidationError as exc:
            return _describe(exc)

    async def _apply(self, run: list[Work[M]], dlx: AbstractExchange) -> None:
        if not run:
            return
        if self._acks_early:  # the control: acked before the work is committed
            for work in run:
                await work.delivery.ack()
        if len(run) > 1 and await self._commit_batch(run):
            for _ in run:
                await self._faults.hit(FaultPoint.AFTER_CONSUMER_COMMIT)
            if not self._acks_early:
                await run[-1].delivery.ack(multiple=True)  # exactly this batch (see the docstring)
            return
        for work in run:  # alone, or the batch failed: one at a time, each with its own fate
            await self._apply_alone(work, dlx)

    async def _apply_alone(self, work: Work[M], dlx: AbstractExchange) -> None:
        failed = await self._process(work)
        if failed is not None:
            await self._dead_letter(work.delivery, dlx, failed, ack=not self._acks_early)
            return
        await self._faults.hit(FaultPoint.AFTER_CONSUMER_COMMIT)
        if not self._acks_early:
            await work.delivery.ack()

    async def _commit_batch(self, run: list[Work[M]]) -> bool:
        """Commit the batch in one transaction: True when done, False after a processing failure
        (rolled back: the caller applies the messages one at a time). An outage holds the batch."""
        retry = Backoff(self._settings.backoff_initial_s, self._settings.backoff_max_s)
        while True:
            try:
                await self._commit(run)
                return True
            except Exception as exc:
                reason = f"{type(exc).__name__}: {_first_line(exc)}"
                if not is_transient(exc):
                    self._log(f"batch of {len(run)} failed ({reason}); applying them one at a time")
                    return False
                delay = retry.next_delay()
                self._log(
                    f"database unavailable ({reason}); holding a batch of {len(run)} "
                    f"({run[0].message_id}..{run[-1].message_id}), retry in {delay:.2f}s"
                )
                await asyncio.sleep(delay)

    async def _process(self, work: Work[M]) -> str | None:
        """Commit one message's work once. None when done; the reason when it failed too often."""
        retry = Backoff(self._settings.backoff_initial_s, self._settings.backoff_max_s)
        failures = 0
        while True:
            try:
                await self._commit([work])
                return None
            except Exception as exc:
                reason = f"{type(exc).__name__}: {_first_line(exc)}"
                if is_transient(exc):
                    delay = retry.next_delay()
                    self._log(
                        f"database unavailable ({reason}); holding {work.message_id}, retry in {delay:.2f}s"
                    )
                    await asyncio.sleep(delay)
                    continue
                failures = max(failures + 1, await self._count_failure(work.message_id, reason))
                if failures >= self._settings.max_deliveries:
                    return f"failed {failures} times: {reason}"
                delay = retry.next_delay()
                self._log(
                    f"processing {work.message_id} failed ({failures}x): {reason}; retry in {delay:.2f}s"
                )
                await asyncio.sleep(delay)

    async def _commit(self, run: list[Work[M]]) -> None:
        """One transaction: every message's dedup claim and work, in delivery order."""
        # a delay per message (a slow inventory) must stay a delay per message: the server ends a
        # session idle in a transaction for pg_idle_in_transaction_s
        keep_alive = self._faults.arms(FaultPoint.BEFORE_CONSUMER_COMMIT)
        async with self._engine.begin() as conn:
            await self._apply_in(conn, run)
            for _ in run:
                await self._faults.hit(FaultPoint.BEFORE_CONSUMER_COMMIT)
                if keep_alive:
                    await conn.execute(_STILL_HERE)

    async def _apply_in(self, conn: AsyncConnection, run: list[Work[M]]) -> None:
        """Claim the batch's keys, do the work of the new ones in order, store their results,
        answer the repeats (already done before, or earlier in this batch) from the results."""
        if self._control is Control.NO_DEDUP:
            await self._handler.apply(conn, [(w.payload, w.message_id) for w in run])
            return
        keys = [self._handler.key(w.payload) for w in run]
        stored = await dedup.claim(conn, self._dedup, list(dict.fromkeys(keys)))
        fresh: dict[str, Work[M]] = {}
        repeats: list[tuple[Work[M], str]] = []
        for work, key in zip(run, keys, strict=True):
            if key in stored or key in fresh:
                repeats.append((work, key))
            else:
                fresh[key] = work
        results = await self._handler.apply(conn, [(w.payload, w.message_id) for w in fresh.values()])
        done = dict(zip(fresh, results, strict=True))
        await dedup.record(conn, self._dedup, {k: r for k, r in done.items() if r is not None})
        stored.update(done)
        for work, key in repeats:
            self._log(f"duplicate {work.message_id} ({key} already done): answered from the stored result")
        if repeats:
            await self._handler.again(conn, [(work.payload, stored[key]) for work, key in repeats])

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


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]

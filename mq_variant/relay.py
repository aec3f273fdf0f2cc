"""The relay: keeps sending outbox rows to the broker; deletes a row only after its confirm.

- One active relay per database: a session-level PostgreSQL advisory lock, held as long as the
  relay's connection lives. `up` runs a second relay per database as a hot standby (roles
  `*-relay-standby`); it takes over when the active one's session ends. A relay cut off without a
  reset (a blackhole) falls silent, and the server ends its session after `relay_idle_session_s`
  (idle_session_timeout; TCP keepalives for a vanished host), freeing the lock for the standby.
- Woken by LISTEN/NOTIFY on commit of an outbox row, with a polling fallback (a NOTIFY lost on a
  reconnect is picked up by the next poll).
- Publishes a batch in outbox id order on one confirm channel (pipelined: every message of the
  batch is in flight before the first confirm is awaited), deletes the batch after every confirm.
  A lost confirm means the batch is published again: duplicates are accepted, the consumer's
  dedup table removes them. Nothing is deleted that the broker did not confirm: no loss.
- Any error (broker or database down, a nack, a publish returned as unroutable) ends the
  session; it starts again after a capped exponential backoff, with new connections, declaring
  the topology again (a deleted queue comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections.abc import Sequence

import aio_pika
import asyncpg
from aio_pika.abc import AbstractExchange

from common.backoff import Backoff
from common.db import asyncpg_dsn, server_settings
from common.faults import FaultInjected, FaultPoint, Faults
from common.settings import Settings
from mq_variant import topology
from mq_variant.outbox import NOTIFY_CHANNEL


def lock_key(database: str) -> int:
    """A stable advisory-lock key per database (crc32 fits PostgreSQL's bigint)."""
    return zlib.crc32(f"relay:{database}".encode())


class Relay:
    def __init__(self, settings: Settings, database: str, faults: Faults, name: str) -> None:
        self._settings = settings
        self._database = database
        self._faults = faults
        self._name = name
        self._wake = asyncio.Event()

    async def run(self, *, standby: bool = False) -> None:
        """`standby`: let the primary take the lock first (a hot standby that waits its turn)."""
        backoff = Backoff(self._settings.backoff_initial_s, self._settings.backoff_max_s)
        if standby:
            await asyncio.sleep(3 * self._settings.relay_poll_interval_s)
        while True:
            try:
                await self._session(backoff)
            except (
                OSError,
                TimeoutError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                aio_pika.exceptions.AMQPError,
                FaultInjected,  # an injected error takes the same way as a real one
            ) as exc:
                delay = backoff.next_delay()
                self._log(f"session ended ({type(exc).__name__}: {exc}); retrying in {delay:.2f}s")
                await asyncio.sleep(delay)

    async def _session(self, backoff: Backoff) -> None:
        conn = await asyncpg.connect(
            asyncpg_dsn(self._settings, self._database),
            timeout=5,
            command_timeout=self._settings.pg_command_timeout_s,
            server_settings={
                **server_settings(self._settings),
                # the relay queries every poll interval and waits for confirms at most half this
                # long; silent this long, it was cut off:
                # the server ends the session and frees the advisory lock for a standby
                "idle_session_timeout": str(int(self._settings.relay_idle_session_s * 1000)),
            },
        )
        try:
            await self._become_active(conn)
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            amqp = await topology.connect(self._settings, timeout=5)
            async with amqp:
                # a message the broker cannot route comes back as a Return: with on_return_raises
                # that is a PublishError, not a confirm, so its row is kept (aio-pika's default
                # resolves a returned publish normally, and the row would be deleted: silent loss)
                channel = await amqp.channel(publisher_confirms=True, on_return_raises=True)
                exchange, _ = await topology.declare(channel, self._settings)
                self._log("active: relaying")
                while True:
                    self._wake.clear()  # a NOTIFY arriving while we read is not lost
                    sent = await self._relay_batch(conn, exchange)
                    backoff.reset()
                    if sent < self._settings.relay_batch_size:
                        await self._wait_for_work()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            conn.terminate()

    async def _become_active(self, conn: asyncpg.Connection) -> None:
        key = lock_key(self._database)
        announced = False
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            if not announced:
                self._log("another relay is active; standing by")
                announced = True
            await asyncio.sleep(self._settings.relay_poll_interval_s)

    async def _relay_batch(self, conn: asyncpg.Connection, exchange: AbstractExchange) -> int:
        rows = await conn.fetch(
            "SELECT id, message_id, routing_key, payload, created_at FROM t_local_msg ORDER BY id LIMIT $1",
            self._settings.relay_batch_size,
        )
        if not rows:
            return 0
        await self._faults.hit(FaultPoint.BEFORE_PUBLISH)
        await self._publish(exchange, rows)
        if await self._faults.hit(FaultPoint.AFTER_PUBLISH):  # "duplicate": send the batch again
            await self._publish(exchange, rows)
        await conn.execute("DELETE FROM t_local_msg WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        return len(rows)

    async def _publish(self, exchange: AbstractExchange, rows: Sequence[asyncpg.Record]) -> None:
        # Tasks are created in id order and reach the channel's publish lock in that order, so
        # the broker receives the batch in outbox order; confirms are then awaited together.
        # A nack raises DeliveryError, a return (unroutable: a queue or binding is missing)
        # PublishError, both AMQPErrors: the session restarts after a backoff, declares the
        # topology again, and nothing is deleted.
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        body=row["payload"].encode()
                        if isinstance(row["payload"], str)
                        else json.dumps(row["payload"]).encode(),
                        message_id=row["message_id"],
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        type=row["routing_key"],
                        timestamp=row["created_at"],
                        headers={"outbox-id": row["id"]},
                    ),
                    routing_key=row["routing_key"],
                    mandatory=True,
                    # give up on the confirms before the server ends our silent session
                    timeout=self._settings.relay_idle_session_s / 2,
                )
                for row in rows
            )
        )

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._settings.relay_poll_interval_s)

    def _log(self, text: str) -> None:
        print(f"{self._name}: {text}", flush=True)

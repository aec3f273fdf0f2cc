"""The ordering guarantee, stated and tested.

Guarantee: messages leave each outbox in outbox id order among the rows committed by the time
the relay reads (a row whose transaction commits late follows the ones already sent: it is
never skipped), one active relay per database, and
the broker keeps that order in a queue consumed by a single active consumer. Duplicates (a
batch re-sent after a lost confirm or a relay crash) may repeat earlier messages, so the
promise is: the FIRST delivery of every message is in outbox order; the dedup table removes the
repeats. Per order there is one message each way, and a terminal state is never overwritten.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aio_pika
import pytest
from sqlalchemy import text

from common.db import drop_database, engine_for
from common.settings import Settings
from compare.targets.target import settings_env
from mq_variant import topology
from mq_variant.init import init
from tests.conftest import fresh_settings
from tests.mq.conftest import delete_topology
from tests.support import wait_until

pytestmark = pytest.mark.slow


def start_relay(settings: Settings, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mq_variant", "role", "order-relay"],
            env={**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def fill_outbox(settings: Settings, first: int, count: int) -> None:
    engine = engine_for(settings, settings.database("mq", "orders"), pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO t_local_msg (message_id, routing_key, payload) "
                    "SELECT 'm' || g, :rk, jsonb_build_object('seq', g) "
                    "FROM generate_series(CAST(:a AS int), CAST(:b AS int)) g"
                ),
                {"rk": topology.DEDUCT, "a": first, "b": first + count - 1},
            )
    finally:
        await engine.dispose()


async def drain_queue(settings: Settings, expected: int) -> list[int]:
    """Consume the deduct queue (basic.get is not allowed on single-active-consumer queues) until
    `expected` messages arrived and the queue stays quiet; returns their seq numbers in order."""
    connection = await aio_pika.connect(settings.amqp_url)
    seqs: list[int] = []
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=500)
        queue = await channel.declare_queue(topology.names(settings).deduct_queue, passive=True)
        async with queue.iterator() as messages:
            while True:
                quiet = 2.0 if len(seqs) >= expected else 30.0
                try:
                    message = await asyncio.wait_for(messages.__anext__(), quiet)
                except TimeoutError:
                    break
                seqs.append(int(str(message.message_id)[1:]))
                await message.ack()
    return seqs


async def outbox_rows(settings: Settings) -> int:
    engine = engine_for(settings, settings.database("mq", "orders"), pool_size=1)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text("SELECT count(*) FROM t_local_msg")))
    finally:
        await engine.dispose()


def first_deliveries(seqs: list[int]) -> list[int]:
    seen: set[int] = set()
    return [s for s in seqs if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]


async def relays_with_one_active(
    settings: Settings, tmp_path: Path, env: dict[str, str]
) -> list[subprocess.Popen[bytes]]:
    relays = [start_relay(settings, tmp_path / f"relay{i}.log", env) for i in range(2)]

    async def one_active_one_standby() -> bool:
        logs = [(tmp_path / f"relay{i}.log").read_text() for i in range(2)]
        return sorted("active: relaying" in log for log in logs) == [False, True] and any(
            "standing by" in log for log in logs
        )

    await wait_until(one_active_one_standby, timeout=30, what="one active relay, one standby")
    return relays


async def relay_run(base_settings: Settings, tmp_path: Path, count: int, env: dict[str, str]) -> list[int]:
    settings = fresh_settings(base_settings, tmp_path / "run", relay_batch_size=50)
    await init(settings, reset=True)
    relays: list[subprocess.Popen[bytes]] = []
    try:
        relays = await relays_with_one_active(settings, tmp_path, env)
        await fill_outbox(settings, 1, count)

        async def drained() -> bool:
            return await outbox_rows(settings) == 0

        await wait_until(drained, timeout=90, what="outbox drained")
        return await drain_queue(settings, count)
    finally:
        for relay in relays:
            relay.kill()
            relay.wait()
        for side in ("orders", "inventory"):
            await drop_database(settings, settings.database("mq", side))
        await delete_topology(settings)


async def fault_after_publish(
    base_settings: Settings, tmp_path: Path, action: str, count: int
) -> tuple[list[int], list[str]]:
    """`count` messages through two relays, the active one hit once by `action` after a publish
    was confirmed and before its rows were deleted: (the seqs delivered, the relays' logs)."""
    env = {"CC_FAULTS": f"order-relay/after_publish={action},times=1"}
    seqs = await relay_run(base_settings, tmp_path, count, env)
    logs = [(tmp_path / f"relay{i}.log").read_text() for i in range(2)]
    assert sum(f"FAULT order-relay/after_publish: {action}" in log for log in logs) == 1
    return seqs, logs


async def test_outbox_order_is_queue_order_with_a_second_relay_standing_by(
    base_settings: Settings, tmp_path: Path
) -> None:
    assert await relay_run(base_settings, tmp_path, 1000, {}) == list(range(1, 1001))


async def test_active_relay_crash_after_publish_standby_resends_without_reordering(
    base_settings: Settings, tmp_path: Path
) -> None:
    # the active relay crashes after its first batch was confirmed but before it was deleted;
    # the standby takes the lock and publishes that batch again, then the rest
    seqs, logs = await fault_after_publish(base_settings, tmp_path, "crash", 1000)
    assert all("active: relaying" in log for log in logs)  # the standby took over
    assert len(seqs) > 1000  # the unacknowledged batch really went out twice
    assert sorted(set(seqs)) == list(range(1, 1001))  # nothing lost
    assert first_deliveries(seqs) == list(range(1, 1001))  # first deliveries in outbox order


async def test_a_raised_error_after_publish_ends_the_session_not_the_relay(
    base_settings: Settings, tmp_path: Path
) -> None:
    # `raise` lets the code's normal error handling run: for a relay, that is ending the session
    # and starting a new one (the batch goes out again), not the process exiting
    seqs, logs = await fault_after_publish(base_settings, tmp_path, "raise", 300)
    assert any("session ended (FaultInjected" in log for log in logs), "the relay process died instead"
    assert first_deliveries(seqs) == list(range(1, 301))


async def test_a_row_committed_after_a_higher_id_was_relayed_is_still_relayed(
    base_settings: Settings, tmp_path: Path
) -> None:
    # An outbox id is taken at INSERT and becomes visible at COMMIT: a transaction holding a lower
    # id can commit after the relay sent and deleted a higher one. The relay's read must not skip
    # it (as a read of `id > the last id sent` would: a lost message).
    settings = fresh_settings(base_settings, tmp_path / "run", relay_batch_size=50)
    await init(settings, reset=True)
    engine = engine_for(settings, settings.database("mq", "orders"), pool_size=1)
    relay: subprocess.Popen[bytes] | None = None
    try:
        relay = start_relay(settings, tmp_path / "relay.log", {})

        async def relaying() -> bool:
            return "active: relaying" in (tmp_path / "relay.log").read_text()

        # the relay first, so that m2 is relayed within the wait below however slowly it starts
        await wait_until(relaying, timeout=30, what="the relay active")
        async with engine.connect() as slow:
            # this open transaction waits on purpose: exempt it from the session's idle limit
            await slow.execute(text("SET idle_in_transaction_session_timeout = 0"))
            await slow.execute(
                text("INSERT INTO t_local_msg (message_id, routing_key, payload) VALUES ('m1', :rk, '{}')"),
                {"rk": topology.DEDUCT},
            )  # id 1, not committed yet
            await fill_outbox(settings, 2, 1)  # id 2, committed

            async def higher_one_relayed() -> bool:
                return await outbox_rows(settings) == 0

            await wait_until(higher_one_relayed, timeout=8, what="m2 relayed and deleted")
            await slow.commit()

        async def drained() -> bool:
            return await outbox_rows(settings) == 0

        await wait_until(drained, timeout=30, what="m1 relayed after its late commit")
        assert sorted(set(await drain_queue(settings, 2))) == [1, 2]
    finally:
        await engine.dispose()
        if relay is not None:
            relay.kill()
            relay.wait()
        for side in ("orders", "inventory"):
            await drop_database(settings, settings.database("mq", side))
        await delete_topology(settings)

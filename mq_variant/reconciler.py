"""The reconciler: re-drives orders the message flow lost (an operator deleted a queue, a message
was dead-lettered and purged, a broker lost data it had confirmed).

An order still PENDING `reconcile_after_s` after its last change, whose deduct message is not in
the outbox and with no message waiting in the work queues (nothing in flight), gets its deduct
message again, through the outbox like the first one. Safe because inventory keys its dedup on
`<order_id>:deduct`: if the first message did get through, inventory answers the repeat with the
stored outcome and deducts nothing. The order's `updated_at` is bumped with each re-send, so a
still-missing answer is re-sent at most once per `reconcile_after_s`. An order older than the
dedup retention window is never re-driven (its dedup row may be gone: a re-send could deduct
again); it is logged for an operator instead. Nothing is re-driven while a dead-letter queue
holds anything (see why_not).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.settings import Settings
from mq_variant import outbox, topology
from mq_variant.messages import DeductStock
from mq_variant.schema import ORDERS

_STALE = text(
    """
    WITH stale AS (
        SELECT o.order_id FROM t_order o
        WHERE o.status = 'PENDING' AND o.updated_at < now() - make_interval(secs => :age)
          AND o.created_at > now() - make_interval(secs => :window)
          AND NOT EXISTS (
              SELECT 1 FROM t_local_msg m
              WHERE m.routing_key = :deduct AND m.payload ->> 'order_id' = o.order_id)
        ORDER BY o.created_at LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    UPDATE t_order SET updated_at = now() FROM stale WHERE t_order.order_id = stale.order_id
    RETURNING t_order.order_id, t_order.lines
    """
)


_TOO_OLD = text(
    """
    SELECT count(*), min(order_id) FROM t_order
    WHERE status = 'PENDING' AND created_at <= now() - make_interval(secs => :window)
    """
)


async def queue_depths(settings: Settings) -> dict[str, int]:
    """Ready messages in the work queues and the dead-letter queues, by queue name."""
    names = topology.names(settings)
    connection = await topology.connect(settings, timeout=10)
    async with connection:
        channel = await connection.channel()
        depths: dict[str, int] = {}
        for name in (names.deduct_queue, names.result_queue, *names.dlqs):
            queue = await topology.queue(channel, name)
            depths[name] = queue.declaration_result.message_count or 0
        return depths


def why_not(settings: Settings, depths: dict[str, int]) -> str | None:
    """Why this pass must not re-drive anything, or None.

    Messages waiting in a work queue are in flight. A dead letter means something failed that a
    person has to look at (`dlq list`): re-driving its order would only fail again, once per
    period, for as long as the window lasts, so nothing is re-driven until the DLQs are empty.
    """
    names = topology.names(settings)
    dead = sum(depths[q] for q in names.dlqs)
    if dead:
        return f"{dead} dead letters wait for an operator (python -m mq_variant dlq list)"
    if depths[names.deduct_queue] or depths[names.result_queue]:
        return "messages in flight"
    return None


async def reconcile_once(
    engine: AsyncEngine, older_than_s: float, window_s: float, limit: int = 500
) -> list[str]:
    """Re-emit the deduct message of stale PENDING orders younger than `window_s`. Their ids."""
    assert ORDERS.outbox is not None
    params = {"age": older_than_s, "window": window_s, "deduct": topology.DEDUCT, "limit": limit}
    async with engine.begin() as conn:
        rows = (await conn.execute(_STALE, params)).all()
        for row in rows:
            message = DeductStock(order_id=row.order_id, lines=row.lines).model_dump(mode="json")
            await outbox.append(conn, ORDERS.outbox, topology.DEDUCT, message)
    return [row.order_id for row in rows]


async def too_old(engine: AsyncEngine, window_s: float) -> tuple[int, str | None]:
    """PENDING orders older than the dedup window: never re-driven, a person must decide."""
    async with engine.connect() as conn:
        row = (await conn.execute(_TOO_OLD, {"window": window_s})).one()
    return int(row[0]), row[1]


async def run(settings: Settings, engine: AsyncEngine, log: Callable[[str], None]) -> None:
    """The role: a pass every reconcile_after_s / 4 (see why_not for when it holds back)."""
    interval = max(1.0, settings.reconcile_after_s / 4)
    said = ""
    while True:
        await asyncio.sleep(interval)
        try:
            reason = why_not(settings, await queue_depths(settings))
            if reason is None:
                window = settings.dedup_retention_s
                redriven = await reconcile_once(engine, settings.reconcile_after_s, window)
                if redriven:
                    log(f"re-sent the deduct message of {len(redriven)} stale PENDING orders: {redriven[:5]}")
            old, example = await too_old(engine, settings.dedup_retention_s)
            if old:
                reason = f"{old} PENDING orders older than the dedup window need a person (e.g. {example})"
        except Exception as exc:  # a dependency down: the next pass tries again
            reason = f"pass skipped ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]})"
        if reason and reason != said:  # say it once, not every pass
            log(reason)
        said = reason or ""


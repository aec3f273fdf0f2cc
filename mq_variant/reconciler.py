"""The reconciler: re-drives orders the message flow lost (an operator deleted a queue, a message
was dead-lettered and purged, a broker lost data it had confirmed).

An order still PENDING `reconcile_after_s` after its last change, whose deduct message is not in
the outbox and with no message waiting in the work queues (nothing in flight), gets its deduct
message again, through the outbox like the first one. Safe because inventory keys its dedup on
`<order_id>:deduct`: if the first message did get through, inventory answers the repeat with the
stored outcome and deducts nothing. The order's `updated_at` is bumped with each re-send, so a
still-missing answer is re-sent at most once per `reconcile_after_s`. An order older than the
dedup retention window is never re-driven (its dedup row may be gone: a re-send could deduct
again); it is logged for an operator instead.
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


async def in_flight(settings: Settings) -> int:
    """Messages waiting in the two work queues (ready, not yet delivered)."""
    names = topology.names(settings)
    connection = await topology.connect(settings, timeout=10)
    async with connection:
        channel = await connection.channel()
        total = 0
        for name in (names.deduct_queue, names.result_queue):
            queue = await topology.queue(channel, name)
            total += queue.declaration_result.message_count or 0
        return total


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


async def run(settings: Settings, engine: AsyncEngine, log: Callable[[str], None]) -> None:
    """The role: a pass every reconcile_after_s / 4; skipped while the work queues are not empty."""
    interval = max(1.0, settings.reconcile_after_s / 4)
    while True:
        await asyncio.sleep(interval)
        try:
            if await in_flight(settings):
                continue
            redriven = await reconcile_once(engine, settings.reconcile_after_s, settings.dedup_retention_s)
            if redriven:
                log(f"re-sent the deduct message of {len(redriven)} stale PENDING orders: {redriven[:5]}")
        except Exception as exc:  # a dependency down: the next pass tries again
            log(f"reconcile pass skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")


"""Retention of the dedup table (both variants) and of other per-message bookkeeping.

The dedup table IS the duplicate-detection window: a duplicate that arrives after its row was
pruned is applied again. So the window (`dedup_retention_s`) must exceed the longest possible
delay of a redelivery or a re-send: broker redelivery, a relay's retry after an outage, a
reconciler's re-send, an operator's DLQ replay (which refuses messages older than the window),
a Temporal activity retry (bounded by the workflow's own timeouts).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Table, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine


async def prune(
    engine: AsyncEngine, tables: list[tuple[Table, Column[Any]]], older_than_s: float, batch: int = 5000
) -> dict[str, int]:
    """Delete rows whose time column is older than `older_than_s`; the count per table.

    In batches of `batch` rows, one short transaction each, so that a large backlog neither
    holds locks for long nor runs into the sessions' statement timeout."""
    cutoff = func.now() - text("make_interval(secs => :age)").bindparams(age=older_than_s)
    removed: dict[str, int] = {}
    for table, column in tables:
        (key,) = table.primary_key.columns
        removed[table.name] = 0
        while True:
            some = select(key).where(column < cutoff).limit(batch).scalar_subquery()
            async with engine.begin() as conn:
                done = (await conn.execute(delete(table).where(key.in_(some)))).rowcount
            removed[table.name] += done
            if done < batch:
                break
    return removed

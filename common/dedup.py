"""The dedup (inbox) table: do a step at most once per key, inside the caller's transaction.

Both variants need it, keyed on the business operation: the MQ consumers by `<order_id>:deduct` /
`<order_id>:settle` (duplicates come from the relay, broker redelivery, the reconciler and DLQ
replays, each possibly under a new message id), Temporal activities by `order-<id>:deduct` (an
activity whose completion was lost runs again). The retention IS the duplicate-detection window
(common.retention).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

JSON = dict[str, Any]


async def once(
    conn: AsyncConnection, table: Table, key: str, step: Callable[[], Awaitable[JSON | None]]
) -> tuple[JSON | None, bool]:
    """Run `step` unless `key` was already processed. Returns (result, ran_now).

    The claim is an INSERT .. ON CONFLICT DO NOTHING: a concurrent duplicate blocks on the
    primary key until the first transaction ends, then sees the row and skips.
    """
    claimed = (
        await conn.execute(
            insert(table)
            .values(message_id=key)
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(table.c.message_id)
        )
    ).first()
    if claimed is None:
        previous = await conn.scalar(select(table.c.result).where(table.c.message_id == key))
        return previous, False
    result = await step()
    if result is not None:
        await conn.execute(table.update().where(table.c.message_id == key).values(result=result))
    return result, True

"""Append to the local message table inside the caller's transaction, and wake the relay."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Select, Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

NOTIFY_CHANNEL = "t_local_msg"


async def append(conn: AsyncConnection, table: Table, routing_key: str, payload: dict[str, Any]) -> str:
    """The row becomes visible, and the NOTIFY is delivered, only when the transaction commits.

    One statement (the INSERT as a CTE, pg_notify over its row): one round trip, not two."""
    message_id = uuid.uuid4().hex
    await conn.execute(
        _append_and_notify(table), {"message_id": message_id, "routing_key": routing_key, "payload": payload}
    )
    return message_id


@functools.cache
def _append_and_notify(table: Table) -> Select[Any]:
    """Built once per outbox table, with bind parameters: compiled once per process."""
    row = (
        table.insert()
        .values(
            message_id=bindparam("message_id"),
            routing_key=bindparam("routing_key"),
            payload=bindparam("payload", type_=JSONB),
        )
        .returning(table.c.id)
        .cte("m")
    )
    return select(func.pg_notify(NOTIFY_CHANNEL, "")).select_from(row)

"""Append to the local message table inside the caller's transaction, and wake the relay."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

NOTIFY_CHANNEL = "t_local_msg"


async def append(conn: AsyncConnection, table: Table, routing_key: str, payload: dict[str, Any]) -> str:
    """One message: append_many of one; its message id."""
    return (await append_many(conn, table, routing_key, [payload]))[0]


async def append_many(
    conn: AsyncConnection, table: Table, routing_key: str, payloads: Sequence[dict[str, Any]]
) -> list[str]:
    """Queue the payloads, in this order; their message ids. The rows become visible, and the
    NOTIFY is delivered, only when the transaction commits. One statement (the INSERT as a CTE,
    one pg_notify after it): one round trip however many messages."""
    if not payloads:
        return []
    ids = [uuid.uuid4().hex for _ in payloads]
    rows = [{"m": message_id, "p": payload} for message_id, payload in zip(ids, payloads, strict=True)]
    await conn.execute(_append_and_notify(table), {"routing_key": routing_key, "rows": rows})
    return ids


@functools.cache
def _append_and_notify(table: Table) -> TextClause:
    """Built once per outbox table, with bind parameters. Rows go in in the array's order (the
    relay publishes in id order)."""
    return text(
        f"WITH m AS (INSERT INTO {table.name} (message_id, routing_key, payload) "
        "SELECT d.m, :routing_key, d.p "
        "FROM ROWS FROM (jsonb_to_recordset(:rows) AS (m text, p jsonb)) WITH ORDINALITY AS d(m, p, n) "
        "ORDER BY d.n RETURNING id) "
        f"SELECT pg_notify('{NOTIFY_CHANNEL}', '') FROM (SELECT 1 FROM m LIMIT 1) AS one"
    ).bindparams(bindparam("rows", type_=JSONB))

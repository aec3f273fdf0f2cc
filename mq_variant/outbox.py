"""Append to the local message table inside the caller's transaction, and wake the relay."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

NOTIFY_CHANNEL = "t_local_msg"


async def append(conn: AsyncConnection, table: Table, routing_key: str, payload: dict[str, Any]) -> str:
    """The row becomes visible, and the NOTIFY is delivered, only when the transaction commits."""
    message_id = uuid.uuid4().hex
    await conn.execute(table.insert().values(message_id=message_id, routing_key=routing_key, payload=payload))
    await conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return message_id

"""POST /orders on the MQ side: the order row, its outbox row and the relay's wake-up in ONE statement.

    WITH o AS (INSERT INTO t_order .. ON CONFLICT (order_id) DO NOTHING RETURNING *),
         m AS (INSERT INTO t_local_msg (message_id, routing_key, payload) SELECT .. FROM o)
    SELECT o.*, pg_notify('t_local_msg', '') FROM o

One statement is one implicit transaction: both rows commit together or not at all, exactly as
the seed's "order row + local message row in one transaction", and the NOTIFY is delivered on
that commit. Sent in autocommit mode it costs one round trip instead of six (pre-ping, BEGIN,
two INSERTs, NOTIFY, COMMIT); built once with bind parameters, it is compiled once per process.
An existing order id inserts neither row (its message was queued with it): a second statement
reads it back to answer the retry or refuse a different body (409).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import autocommit
from common.domain import Order, PlaceOrder
from common.orders import OrderRepository, insert_new_order, new_order_params, to_order
from mq_variant.outbox import NOTIFY_CHANNEL
from mq_variant.schema import ORDERS


def _statement() -> Select[Any]:
    order, outbox = ORDERS.order, ORDERS.outbox
    assert outbox is not None
    new_order = insert_new_order(order).cte("o")
    message = (
        outbox.insert()
        .from_select(
            ["message_id", "routing_key", "payload"],
            select(
                bindparam("message_id"), bindparam("routing_key"), bindparam("payload", type_=JSONB)
            ).select_from(new_order),
        )
        .cte("m")
    )
    return select(new_order, func.pg_notify(NOTIFY_CHANNEL, "")).add_cte(message)


_PLACE = _statement()


async def place_with_message(
    engine: AsyncEngine, orders: OrderRepository, cmd: PlaceOrder, routing_key: str, payload: dict[str, Any]
) -> tuple[Order, bool]:
    """(order, created). Raises common.domain.OrderConflict for a reused id with another body."""
    params = {
        **new_order_params(cmd),
        "message_id": uuid.uuid4().hex,
        "routing_key": routing_key,
        "payload": payload,
    }
    async with autocommit(engine) as conn:
        row = (await conn.execute(_PLACE, params)).first()
        if row is not None:
            return to_order(row), True
        return await orders.existing(conn, cmd), False

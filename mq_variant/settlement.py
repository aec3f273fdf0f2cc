"""order side: apply a StockResult to the order (PENDING -> CONFIRMED/REJECTED, once)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from common.orders import OrderRepository
from mq_variant.messages import StockResult
from mq_variant.schema import ORDERS

_orders = OrderRepository(ORDERS)


async def handle_result(conn: AsyncConnection, message: StockResult, message_id: str) -> None:
    """Runs inside the consumer's transaction, together with the dedup row."""
    await _orders.settle(conn, message)

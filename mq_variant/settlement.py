"""order side: apply a StockResult to the order (PENDING -> CONFIRMED/REJECTED, once)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.orders import OrderRepository
from mq_variant.messages import StockResult
from mq_variant.schema import ORDERS

_orders = OrderRepository(ORDERS)


class Settle:
    """Runs inside the consumer's transaction, together with the dedup row `<order_id>:settle`."""

    def key(self, message: StockResult) -> str:
        return f"{message.order_id}:settle"

    async def apply(self, conn: AsyncConnection, message: StockResult, message_id: str) -> dict[str, Any]:
        await _orders.settle(conn, message)
        return {"status": message.status}

    async def again(self, conn: AsyncConnection, message: StockResult, stored: dict[str, Any] | None) -> None:
        """A terminal order is never overwritten: nothing to do."""

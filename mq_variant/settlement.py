"""order side: apply StockResults to their orders (PENDING -> CONFIRMED/REJECTED, once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.orders import OrderRepository
from mq_variant.messages import StockResult
from mq_variant.schema import ORDERS

_orders = OrderRepository(ORDERS)


class Settle:
    """Runs inside the consumer's transaction, together with the dedup rows `<order_id>:settle`."""

    def key(self, message: StockResult) -> str:
        return f"{message.order_id}:settle"

    async def apply(
        self, conn: AsyncConnection, messages: Sequence[tuple[StockResult, str]]
    ) -> list[dict[str, Any] | None]:
        # one outcome per order: the dedup keys are distinct, except under the no-dedup control,
        # where a second copy of one order's result would change nothing anyway (terminal is final)
        first: dict[str, StockResult] = {}
        for m, _ in messages:
            first.setdefault(m.order_id, m)
        await _orders.settle_many(conn, list(first.values()))
        return [{"status": m.status} for m, _ in messages]

    async def again(
        self, conn: AsyncConnection, repeats: Sequence[tuple[StockResult, dict[str, Any] | None]]
    ) -> None:
        """A terminal order is never overwritten: nothing to do."""

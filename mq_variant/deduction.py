"""inventory side: deduct stock for a DeductStock message and queue the outcome in its outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.stock import StockRepository
from mq_variant import outbox, topology
from mq_variant.messages import DeductStock, StockResult
from mq_variant.schema import INVENTORY

_stock = StockRepository(INVENTORY)


class Deduct:
    """Runs inside the consumer's transaction, together with the dedup row `<order_id>:deduct`."""

    def key(self, message: DeductStock) -> str:
        return f"{message.order_id}:deduct"

    async def apply(self, conn: AsyncConnection, message: DeductStock, message_id: str) -> dict[str, Any]:
        outcome = await _stock.deduct(conn, message.order_id, message.lines, source_id=message_id)
        result = StockResult(order_id=outcome.order_id, status=outcome.status, reason=outcome.reason)
        await _answer(conn, result.model_dump(mode="json"))
        return result.model_dump(mode="json")

    async def again(self, conn: AsyncConnection, message: DeductStock, stored: dict[str, Any] | None) -> None:
        """A re-sent deduct (relay retry, reconciler, DLQ replay): send the stored outcome again."""
        if stored is not None:
            await _answer(conn, stored)


async def _answer(conn: AsyncConnection, result: dict[str, Any]) -> None:
    assert INVENTORY.outbox is not None
    await outbox.append(conn, INVENTORY.outbox, topology.RESULT, result)

"""inventory side: deduct stock for a DeductStock message and queue the outcome in its outbox."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from common.stock import StockRepository
from mq_variant import outbox, topology
from mq_variant.messages import DeductStock, StockResult
from mq_variant.schema import INVENTORY

_stock = StockRepository(INVENTORY)


async def handle_deduct(conn: AsyncConnection, message: DeductStock, message_id: str) -> None:
    """Runs inside the consumer's transaction, together with the dedup row."""
    outcome = await _stock.deduct(conn, message.order_id, message.lines, source_id=message_id)
    assert INVENTORY.outbox is not None
    result = StockResult(order_id=outcome.order_id, status=outcome.status, reason=outcome.reason)
    await outbox.append(conn, INVENTORY.outbox, topology.RESULT, result.model_dump(mode="json"))

"""inventory side: deduct stock for DeductStock messages and queue the outcomes in its outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.stock import Deduction, StockRepository
from mq_variant import outbox, topology
from mq_variant.messages import DeductStock, StockResult
from mq_variant.schema import INVENTORY

_stock = StockRepository(INVENTORY)


class Deduct:
    """Runs inside the consumer's transaction, together with the dedup rows `<order_id>:deduct`."""

    def key(self, message: DeductStock) -> str:
        return f"{message.order_id}:deduct"

    async def apply(
        self, conn: AsyncConnection, messages: Sequence[tuple[DeductStock, str]]
    ) -> list[dict[str, Any] | None]:
        requests = [Deduction(m.order_id, m.lines, source_id=message_id) for m, message_id in messages]
        outcomes = await _stock.deduct_many(conn, requests)
        results: list[dict[str, Any] | None] = [
            StockResult(order_id=o.order_id, status=o.status, reason=o.reason).model_dump(mode="json")
            for o in outcomes
        ]
        await _answer(conn, [r for r in results if r is not None])
        return results

    async def again(
        self, conn: AsyncConnection, repeats: Sequence[tuple[DeductStock, dict[str, Any] | None]]
    ) -> None:
        """Re-sent deducts (relay retry, reconciler, DLQ replay): send the stored outcomes again."""
        await _answer(conn, [stored for _, stored in repeats if stored is not None])


async def _answer(conn: AsyncConnection, results: list[dict[str, Any]]) -> None:
    assert INVENTORY.outbox is not None
    await outbox.append_many(conn, INVENTORY.outbox, topology.RESULT, results)

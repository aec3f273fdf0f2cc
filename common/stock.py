"""Stock in the inventory database: all-or-nothing deduction with an audit row per line."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.deduction import decide
from common.domain import DeductionOutcome, OrderLine, OrderStatus, StockLevel
from common.schema import InventorySchema


class StockRepository:
    def __init__(self, schema: InventorySchema) -> None:
        self._stock = schema.stock
        self._log = schema.deduction_log

    async def deduct(
        self, conn: AsyncConnection, order_id: str, lines: Sequence[OrderLine], source_id: str
    ) -> DeductionOutcome:
        """Must run inside the caller's transaction (with its dedup row).

        Rows are locked in sku order so that concurrent orders never deadlock; the UPDATE keeps
        its own `quantity >= n` guard so that stock cannot go below zero even if the lock were
        ever dropped.
        """
        skus = sorted(line.sku for line in lines)
        rows = await conn.execute(
            select(self._stock.c.sku, self._stock.c.quantity)
            .where(self._stock.c.sku.in_(skus))
            .order_by(self._stock.c.sku)
            .with_for_update()
        )
        outcome = decide(order_id, lines, {r.sku: r.quantity for r in rows})
        if outcome.status is not OrderStatus.CONFIRMED:
            return outcome
        for line in lines:
            updated = await conn.execute(
                self._stock.update()
                .where(self._stock.c.sku == line.sku, self._stock.c.quantity >= line.quantity)
                .values(quantity=self._stock.c.quantity - line.quantity)
            )
            if updated.rowcount != 1:  # impossible while the row lock is held
                raise RuntimeError(f"stock guard failed for {line.sku}")
        await conn.execute(
            self._log.insert(),
            [
                {"order_id": order_id, "sku": ln.sku, "quantity": ln.quantity, "source_id": source_id}
                for ln in lines
            ],
        )
        return outcome

    async def get(self, conn: AsyncConnection, sku: str) -> StockLevel | None:
        row = (await conn.execute(select(self._stock).where(self._stock.c.sku == sku))).first()
        return None if row is None else StockLevel(sku=row.sku, quantity=row.quantity)

    async def set(self, conn: AsyncConnection, sku: str, quantity: int) -> StockLevel:
        await conn.execute(
            insert(self._stock)
            .values(sku=sku, quantity=quantity)
            .on_conflict_do_update(index_elements=["sku"], set_={"quantity": quantity})
        )
        return StockLevel(sku=sku, quantity=quantity)

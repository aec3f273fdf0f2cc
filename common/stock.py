"""Stock in the inventory database: all-or-nothing deduction with an audit row per line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import TextClause, bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.deduction import decide
from common.domain import DeductionOutcome, OrderLine, OrderStatus, StockLevel
from common.schema import InventorySchema


@dataclass(frozen=True)
class Deduction:
    """One order's request to deduct, and the id its audit rows carry (message or attempt)."""

    order_id: str
    lines: Sequence[OrderLine]
    source_id: str


class StockRepository:
    def __init__(self, schema: InventorySchema) -> None:
        self._stock = schema.stock
        self._take_and_log = _take_and_log(schema)

    async def deduct(
        self, conn: AsyncConnection, order_id: str, lines: Sequence[OrderLine], source_id: str
    ) -> DeductionOutcome:
        """One order: deduct_many of one. Must run inside the caller's transaction."""
        return (await self.deduct_many(conn, [Deduction(order_id, lines, source_id)]))[0]

    async def deduct_many(
        self, conn: AsyncConnection, requests: Sequence[Deduction]
    ) -> list[DeductionOutcome]:
        """Decide and apply each request in turn, as if one after the other; their outcomes.

        Must run inside the caller's transaction (with its dedup rows). Every SKU involved is
        locked first, in sku order (so that concurrent callers never deadlock); each request is
        decided by the pure rule against the stock the earlier ones left; then one UPDATE applies
        the sums (each row keeps its own `quantity >= n` guard, so stock cannot go below zero
        even if the lock were ever dropped) and, in the same statement, writes the audit rows in
        request order. Two statements however many requests.
        """
        skus = sorted({line.sku for r in requests for line in r.lines})
        rows = await conn.execute(
            select(self._stock.c.sku, self._stock.c.quantity)
            .where(self._stock.c.sku.in_(skus))
            .order_by(self._stock.c.sku)
            .with_for_update()
        )
        on_hand = {r.sku: r.quantity for r in rows}
        taken: dict[str, int] = {}
        audit: list[dict[str, object]] = []
        outcomes = []
        for r in requests:
            outcome = decide(r.order_id, r.lines, on_hand)
            outcomes.append(outcome)
            if outcome.status is not OrderStatus.CONFIRMED:
                continue
            for line in r.lines:
                on_hand[line.sku] -= line.quantity
                taken[line.sku] = taken.get(line.sku, 0) + line.quantity
                audit.append({"o": r.order_id, "s": line.sku, "q": line.quantity, "src": r.source_id})
        if taken:
            changes = [{"s": sku, "q": n} for sku, n in taken.items()]
            params = {"take": changes, "skus": list(taken), "audit": audit}
            updated = (await conn.execute(self._take_and_log, params)).scalar_one()
            if updated != len(changes):  # impossible while the row locks are held
                # raising rolls the caller's transaction back: the audit rows with it
                raise RuntimeError(f"stock guard failed for one of {sorted(taken)}")
        return outcomes

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


def _take_and_log(schema: InventorySchema) -> TextClause:
    """Subtract the sums (guarded) and append the audit rows, in the array's order (the ledger's
    id order is the deduction order), in one statement; its result is the count of stock rows
    the guard let through."""
    return text(
        f"WITH taken AS (UPDATE {schema.stock.name} AS s SET quantity = s.quantity - d.q "
        "FROM jsonb_to_recordset(:take) AS d(s text, q integer) "
        # ANY gives the planner the primary key (why: common.dedup._record_sql)
        "WHERE s.sku = d.s AND s.sku = ANY(CAST(:skus AS text[])) AND s.quantity >= d.q "
        "RETURNING s.sku), "
        f"logged AS (INSERT INTO {schema.deduction_log.name} (order_id, sku, quantity, source_id) "
        "SELECT d.o, d.s, d.q, d.src "
        "FROM ROWS FROM (jsonb_to_recordset(:audit) AS (o text, s text, q integer, src text)) "
        "WITH ORDINALITY AS d(o, s, q, src, n) ORDER BY d.n) "
        "SELECT count(*) FROM taken"
    ).bindparams(bindparam("take", type_=JSONB), bindparam("audit", type_=JSONB))

"""The order table: idempotent insert keyed by order_id, terminal states set once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.domain import DeductionOutcome, Order, OrderConflict, OrderStatus, PlaceOrder
from common.schema import OrdersSchema


def _to_order(row: Any) -> Order:
    return Order.model_validate(dict(row._mapping))


class OrderRepository:
    def __init__(self, schema: OrdersSchema) -> None:
        self._t = schema.order

    async def add(self, conn: AsyncConnection, cmd: PlaceOrder) -> tuple[Order, bool]:
        """Insert the order once. Returns (order, created). Raises OrderConflict on a new body."""
        fingerprint = cmd.fingerprint()
        row = (
            await conn.execute(
                insert(self._t)
                .values(
                    order_id=cmd.order_id,
                    customer_id=cmd.customer_id,
                    lines=[line.model_dump() for line in cmd.lines],
                    fingerprint=fingerprint,
                    status=OrderStatus.PENDING,
                )
                .on_conflict_do_nothing(index_elements=["order_id"])
                .returning(self._t)
            )
        ).first()
        if row is not None:
            return _to_order(row), True
        existing = (await conn.execute(select(self._t).where(self._t.c.order_id == cmd.order_id))).one()
        if existing.fingerprint != fingerprint:
            raise OrderConflict(cmd.order_id)
        return _to_order(existing), False

    async def get(self, conn: AsyncConnection, order_id: str) -> Order | None:
        row = (await conn.execute(select(self._t).where(self._t.c.order_id == order_id))).first()
        return None if row is None else _to_order(row)

    async def settle(self, conn: AsyncConnection, outcome: DeductionOutcome) -> bool:
        """PENDING -> CONFIRMED/REJECTED, once. A late or repeated outcome changes nothing."""
        result = await conn.execute(
            self._t.update()
            .where(self._t.c.order_id == outcome.order_id, self._t.c.status == OrderStatus.PENDING)
            .values(status=outcome.status, reason=outcome.reason, updated_at=func.now())
        )
        return result.rowcount == 1

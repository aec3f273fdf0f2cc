"""The order table: idempotent insert keyed by order_id, terminal states set once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert

from common.domain import DeductionOutcome, Order, OrderConflict, OrderStatus, PlaceOrder
from common.schema import OrdersSchema


def to_order(row: Any) -> Order:
    return Order.model_validate(dict(row._mapping))


def insert_new_order(table: Table) -> ReturningInsert[Any]:
    """INSERT the order unless its id exists, RETURNING the new row (no row: it existed). Built
    once, bound per call (new_order_params)."""
    return (
        insert(table)
        .values(
            order_id=bindparam("order_id"),
            customer_id=bindparam("customer_id"),
            lines=bindparam("lines", type_=JSONB),
            fingerprint=bindparam("fingerprint"),
            status=OrderStatus.PENDING.value,
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(table)
    )


def new_order_params(cmd: PlaceOrder) -> dict[str, Any]:
    return {
        "order_id": cmd.order_id,
        "customer_id": cmd.customer_id,
        "lines": [line.model_dump() for line in cmd.lines],
        "fingerprint": cmd.fingerprint(),
    }


class OrderRepository:
    def __init__(self, schema: OrdersSchema) -> None:
        """Every statement is built once here, with bind parameters (compiled once per process)."""
        self._t = schema.order
        self._insert = insert_new_order(self._t)
        self._settle = (
            self._t.update()
            .where(self._t.c.order_id == bindparam("id"), self._t.c.status == OrderStatus.PENDING.value)
            .values(status=bindparam("status"), reason=bindparam("reason"), updated_at=func.now())
        )
        self._settle_returning = self._settle.returning(self._t)
        self._settle_many = text(
            f"UPDATE {self._t.name} AS o SET status = d.status, reason = d.reason, updated_at = now() "
            "FROM jsonb_to_recordset(:rows) AS d(order_id text, status text, reason text) "
            f"WHERE o.order_id = d.order_id AND o.status = '{OrderStatus.PENDING.value}' "
            # the planner takes jsonb_to_recordset for 100 rows and joined them by scanning the
            # whole order table (common.dedup._record_sql): ANY gives it the primary key
            "AND o.order_id = ANY(CAST(:ids AS text[]))"
        ).bindparams(bindparam("rows", type_=JSONB))

    @property
    def table(self) -> Table:
        return self._t

    async def add(self, conn: AsyncConnection, cmd: PlaceOrder) -> tuple[Order, bool]:
        """Insert the order once. Returns (order, created). Raises OrderConflict on a new body."""
        row = (await conn.execute(self._insert, new_order_params(cmd))).first()
        if row is not None:
            return to_order(row), True
        return await self.existing(conn, cmd), False

    async def existing(self, conn: AsyncConnection, cmd: PlaceOrder) -> Order:
        """The order already stored under cmd's id; OrderConflict if its body differs."""
        row = (await conn.execute(select(self._t).where(self._t.c.order_id == cmd.order_id))).one()
        if row.fingerprint != cmd.fingerprint():
            raise OrderConflict(cmd.order_id)
        return to_order(row)

    async def get(self, conn: AsyncConnection, order_id: str) -> Order | None:
        row = (await conn.execute(select(self._t).where(self._t.c.order_id == order_id))).first()
        return None if row is None else to_order(row)

    async def settle(self, conn: AsyncConnection, outcome: DeductionOutcome) -> bool:
        """PENDING -> CONFIRMED/REJECTED, once. A late or repeated outcome changes nothing."""
        result = await conn.execute(self._settle, _settle_params(outcome))
        return result.rowcount == 1

    async def settle_returning(self, conn: AsyncConnection, outcome: DeductionOutcome) -> Order | None:
        """settle(), answering with the settled order (None: it was not PENDING)."""
        row = (await conn.execute(self._settle_returning, _settle_params(outcome))).first()
        return None if row is None else to_order(row)

    async def settle_many(self, conn: AsyncConnection, outcomes: Sequence[DeductionOutcome]) -> None:
        """settle() for several orders (distinct ids) in one statement."""
        if outcomes:
            rows = [o.model_dump(mode="json", include={"order_id", "status", "reason"}) for o in outcomes]
            await conn.execute(self._settle_many, {"rows": rows, "ids": [o.order_id for o in outcomes]})


def _settle_params(outcome: DeductionOutcome) -> dict[str, Any]:
    return {"id": outcome.order_id, "status": outcome.status.value, "reason": outcome.reason}

"""Activities. Each is idempotent under retry, including "committed, but the completion never
reached the server" (the attempt is then run again from the start):

- record_order: INSERT .. ON CONFLICT DO NOTHING on order_id; a re-run finds the row.
- deduct_stock: the deduction and its dedup row (key order-<id>:deduct) commit in ONE
  transaction; a re-run finds the dedup row and returns the stored outcome. Temporal does not
  make this unnecessary: it guarantees at-least-once activity execution, not exactly-once.
- settle_order: UPDATE .. WHERE status = 'PENDING'; a re-run changes nothing.

REJECTED (insufficient stock, unknown SKU) is returned, not raised: it is an answer, not a fault.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from common.db import autocommit
from common.dedup import once
from common.domain import DeductionOutcome, OrderConflict, PlaceOrder
from common.faults import FaultPoint, Faults
from common.orders import OrderRepository
from common.schema import InventorySchema
from common.stock import StockRepository
from workflow_variant.heartbeat import heartbeating
from workflow_variant.messages import (
    DEDUCT_STOCK,
    RECORD_ORDER,
    SETTLE_ORDER,
    DeductRequest,
    Recorded,
    deduct_key,
)


def _attempt_id() -> str:
    """Identifies the attempt in the audit log (t_deduction_log.source_id)."""
    info = activity.info()
    return f"{info.workflow_id}/{info.activity_id}#{info.attempt}"


class OrderActivities:
    """Order-side activities against wf_orders: local activities of the order worker (runs
    started before that change call them as regular activities on the orders task queue).

    Each is a single statement (INSERT .. ON CONFLICT .. RETURNING, then a read of the existing
    row only if there was one; UPDATE .. WHERE status = 'PENDING'), so each runs in autocommit:
    one round trip instead of BEGIN, statement, COMMIT, and just as atomic."""

    def __init__(self, engine: AsyncEngine, orders: OrderRepository, faults: Faults) -> None:
        self._engine = engine
        self._orders = orders
        self._faults = faults

    @activity.defn(name=RECORD_ORDER)
    async def record_order(self, cmd: PlaceOrder) -> Recorded:
        async with heartbeating():
            await self._faults.hit(FaultPoint.ACTIVITY_START)
            try:
                async with autocommit(self._engine) as conn:  # one statement each, see class doc
                    _, created = await self._orders.add(conn, cmd)
            except OrderConflict:
                return Recorded(created=False, conflict=True)
            await self._faults.hit(FaultPoint.AFTER_ORDER_COMMIT)
            return Recorded(created=created)

    @activity.defn(name=SETTLE_ORDER)
    async def settle_order(self, outcome: DeductionOutcome) -> bool:
        async with heartbeating():
            await self._faults.hit(FaultPoint.ACTIVITY_START)
            async with autocommit(self._engine) as conn:
                changed = await self._orders.settle(conn, outcome)
            await self._faults.hit(FaultPoint.AFTER_SETTLE_COMMIT)
            return changed


class InventoryActivities:
    """Inventory-side activity, on the inventory task queue, against wf_inventory."""

    def __init__(
        self,
        engine: AsyncEngine,
        schema: InventorySchema,
        stock: StockRepository,
        faults: Faults,
        *,
        idempotent: bool = True,
    ) -> None:
        self._engine = engine
        self._dedup = schema.dedup
        self._stock = stock
        self._faults = faults
        self._idempotent = idempotent  # False only under the non-idempotent-deduct control

    @activity.defn(name=DEDUCT_STOCK)
    async def deduct_stock(self, req: DeductRequest) -> DeductionOutcome:
        async with heartbeating():
            await self._faults.hit(FaultPoint.ACTIVITY_START)
            outcome = await self._deduct(req)
            # The completion is reported only when we return: a crash or an exception here is
            # the lost-completion case. `duplicate` runs the step again, as a redelivery would.
            if await self._faults.hit(FaultPoint.AFTER_DEDUCT_COMMIT):
                outcome = await self._deduct(req)
            return outcome

    async def _deduct(self, req: DeductRequest) -> DeductionOutcome:
        source_id = _attempt_id()
        async with self._engine.begin() as conn:
            if not self._idempotent:
                return await self._stock.deduct(conn, req.order_id, req.lines, source_id)

            async def step() -> dict[str, object]:
                outcome = await self._stock.deduct(conn, req.order_id, req.lines, source_id)
                return outcome.model_dump(mode="json")

            stored, _ = await once(conn, self._dedup, deduct_key(req.order_id), step)
        return DeductionOutcome.model_validate(stored)

"""The UNSAFE reference path: the same database writes done synchronously in the request.

POST /orders inserts t_order (orders database), deducts t_stock and appends t_deduction_log
(inventory database), then sets the order's final status (orders database) -- three statements,
each its own local transaction, on two databases, no messaging, no outbox, no dedup, no atomicity
across the two databases. A crash between them leaves an order PENDING forever or stock deducted for an order
that does not exist. It is the lower bound on the cost of the work itself, so that the report
can state what each variant's guarantees cost as a ratio to it. Never use it for real orders.

    python -m compare.targets.reference up --api-port 8002 [--reset]

It reuses common/: the HTTP contract (common.api), the repositories and the schema, and runs
under the same supervisor as the variants (one role, `api`), so the benchmark treats it exactly
like them (compare.targets.target.VariantProcess).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.api import OrderService, serve
from common.cli import VariantSpec, main
from common.db import autocommit, create_schema
from common.deduction import decide
from common.domain import Order, OrderStatus, PlaceOrder
from common.faults import Faults
from common.schema import InventorySchema, OrdersSchema
from common.service import OrderServiceBase
from common.settings import Settings
from compare.targets.reference_writes import deduct_and_log
from compare.targets.target import Variant

DB_CODE = "ref"
REFERENCE = Variant("reference", "compare.targets.reference", DB_CODE, ("api",))

_ORDERS = OrdersSchema(outbox=False, dedup=False)
_INVENTORY = InventorySchema(outbox=False)
_DEDUCT = deduct_and_log(_INVENTORY)


class ReferenceService(OrderServiceBase):
    """Synchronous, unsafe: order insert, deduction, status update, each its own transaction."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, DB_CODE, _ORDERS, _INVENTORY, orders_pool=20, inventory_pool=20)

    async def place_order(self, cmd: PlaceOrder) -> Order:
        # As lean as the work allows: three statements, each its own transaction (one round trip
        # each; the insert and the settle are common.orders' prebuilt statements, the deduction
        # compare.targets.reference_writes), and nothing between them.
        async with autocommit(self.orders_db) as conn:
            order, created = await self.orders.add(conn, cmd)
        if not created:
            return order
        lines = [line.model_dump() for line in cmd.lines]
        async with autocommit(self.inventory_db) as conn:
            deducted = (
                await conn.execute(
                    _DEDUCT, {"lines": lines, "order_id": cmd.order_id, "source_id": f"ref-{cmd.order_id}"}
                )
            ).one()
        outcome = decide(cmd.order_id, cmd.lines, deducted.on_hand)
        if (outcome.status is OrderStatus.CONFIRMED) != (deducted.taken == len(lines)):
            # cannot happen while the statement holds its row locks; if it did, the deduction is
            # already committed (UNSAFE: nothing rolls it back) and the order stays PENDING
            raise RuntimeError(f"order {cmd.order_id}: the statement and the rule disagree ({deducted})")
        async with autocommit(self.orders_db) as conn:
            settled = await self.orders.settle_returning(conn, outcome)
        return settled or order


@asynccontextmanager
async def _service(settings: Settings) -> AsyncIterator[OrderService]:
    service = ReferenceService(settings)
    try:
        yield service
    finally:
        await service.close()


async def init(settings: Settings, reset: bool) -> None:
    await create_schema(settings, settings.database(DB_CODE, "orders"), _ORDERS.metadata, reset=reset)
    await create_schema(settings, settings.database(DB_CODE, "inventory"), _INVENTORY.metadata, reset=reset)


async def _api(settings: Settings, _: Faults) -> None:
    await serve(settings, _service, title="UNSAFE reference (synchronous, no guarantees)")


SPEC = VariantSpec(
    package="compare.targets.reference",
    title="UNSAFE reference service (synchronous writes, no messaging, no guarantees)",
    default_api_port=8002,
    init=init,
    roles={"api": _api},
)

if __name__ == "__main__":
    sys.exit(main(SPEC))

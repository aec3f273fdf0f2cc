"""The UNSAFE reference path: the same database writes done synchronously in the request.

POST /orders inserts t_order (orders database), deducts t_stock and appends t_deduction_log
(inventory database), then sets the order's final status (orders database) -- three local
transactions on two databases, no messaging, no outbox, no dedup, no atomicity across the two
databases. A crash between them leaves an order PENDING forever or stock deducted for an order
that does not exist. It is the lower bound on the cost of the work itself, so that the report
can state what each variant's guarantees cost as a ratio to it. Never use it for real orders.

    python -m compare.reference up --api-port 8002 [--reset]

It reuses common/: the HTTP contract (common.api), the repositories and the schema, and runs
under the same supervisor as the variants (one role, `api`), so the benchmark treats it exactly
like them (compare.target.VariantProcess).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from common.api import OrderService, serve
from common.cli import VariantSpec, main
from common.db import create_schema, engine_for
from common.domain import Order, PlaceOrder, StockLevel
from common.faults import Faults
from common.orders import OrderRepository
from common.schema import InventorySchema, OrdersSchema
from common.settings import Settings
from common.stock import StockRepository
from compare.target import Variant

DB_CODE = "ref"
REFERENCE = Variant("reference", "compare.reference", DB_CODE, ("api",))

_ORDERS = OrdersSchema(outbox=False, dedup=False)
_INVENTORY = InventorySchema(outbox=False)


class ReferenceService:
    """Synchronous, unsafe: order insert, deduction, status update, each its own transaction."""

    def __init__(self, settings: Settings) -> None:
        self._orders_db = engine_for(settings, settings.database(DB_CODE, "orders"), pool_size=20)
        self._inventory_db = engine_for(settings, settings.database(DB_CODE, "inventory"), pool_size=20)
        self._orders = OrderRepository(_ORDERS)
        self._stock = StockRepository(_INVENTORY)

    async def close(self) -> None:
        await self._orders_db.dispose()
        await self._inventory_db.dispose()

    async def place_order(self, cmd: PlaceOrder) -> Order:
        async with self._orders_db.begin() as conn:
            order, created = await self._orders.add(conn, cmd)
        if not created:
            return order
        async with self._inventory_db.begin() as conn:
            outcome = await self._stock.deduct(conn, cmd.order_id, cmd.lines, f"ref-{cmd.order_id}")
        async with self._orders_db.begin() as conn:
            await self._orders.settle(conn, outcome)
            settled = await self._orders.get(conn, cmd.order_id)
        assert settled is not None
        return settled

    async def get_order(self, order_id: str) -> Order | None:
        async with self._orders_db.connect() as conn:
            return await self._orders.get(conn, order_id)

    async def get_stock(self, sku: str) -> StockLevel | None:
        async with self._inventory_db.connect() as conn:
            return await self._stock.get(conn, sku)

    async def set_stock(self, sku: str, quantity: int) -> StockLevel:
        async with self._inventory_db.begin() as conn:
            return await self._stock.set(conn, sku, quantity)

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        for name, engine in (("orders_db", self._orders_db), ("inventory_db", self._inventory_db)):
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}"
        return checks


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
    package="compare.reference",
    title="UNSAFE reference service (synchronous writes, no messaging, no guarantees)",
    default_api_port=8002,
    init=init,
    roles={"api": _api},
)

if __name__ == "__main__":
    sys.exit(main(SPEC))

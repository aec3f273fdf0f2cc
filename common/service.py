"""The part of the OrderService port every variant answers alike, over its two databases.

Subclasses add place_order (the part the variants differ in) and may extend the rest.

GET/PUT /stock read the inventory database directly: in production that would be a call to the
inventory service; here it keeps one API for both variants.
"""

from __future__ import annotations

from sqlalchemy import text

from common.db import engine_for
from common.domain import Order, StockLevel
from common.orders import OrderRepository
from common.schema import InventorySchema, OrdersSchema
from common.settings import Settings
from common.stock import StockRepository


class OrderServiceBase:
    def __init__(
        self,
        settings: Settings,
        db_code: str,
        orders: OrdersSchema,
        inventory: InventorySchema,
        *,
        orders_pool: int = 20,
        inventory_pool: int = 4,
    ) -> None:
        """The pools are per deployment: each of the `api_processes` API processes gets its share."""
        share = settings.api_processes
        self.orders_db = engine_for(
            settings, settings.database(db_code, "orders"), pool_size=max(2, -(-orders_pool // share))
        )
        self.inventory_db = engine_for(
            settings, settings.database(db_code, "inventory"), pool_size=max(2, -(-inventory_pool // share))
        )
        self.orders = OrderRepository(orders)
        self.stock = StockRepository(inventory)

    async def get_order(self, order_id: str) -> Order | None:
        async with self.orders_db.connect() as conn:
            return await self.orders.get(conn, order_id)

    async def get_stock(self, sku: str) -> StockLevel | None:
        async with self.inventory_db.connect() as conn:
            return await self.stock.get(conn, sku)

    async def set_stock(self, sku: str, quantity: int) -> StockLevel:
        async with self.inventory_db.begin() as conn:
            return await self.stock.set(conn, sku, quantity)

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        for name, engine in (("orders_db", self.orders_db), ("inventory_db", self.inventory_db)):
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}"
        return checks

    async def close(self) -> None:
        await self.orders_db.dispose()
        await self.inventory_db.dispose()

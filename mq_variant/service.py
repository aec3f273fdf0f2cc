"""order-service's side of the HTTP API: the order row and its outbox row in ONE transaction."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import aio_pika
from sqlalchemy import text

from common.api import DependencyUnavailable, OrderService, ServiceFactory
from common.db import engine_for
from common.domain import Order, PlaceOrder, StockLevel
from common.faults import FaultPoint, Faults
from common.orders import OrderRepository
from common.settings import Settings
from common.stock import StockRepository
from mq_variant import outbox, topology
from mq_variant.controls import Control, parse_control
from mq_variant.messages import DeductStock
from mq_variant.schema import DB_CODE, INVENTORY, ORDERS


class MqOrderService:
    def __init__(self, settings: Settings, faults: Faults) -> None:
        self._settings = settings
        self._faults = faults
        self._control = parse_control(settings.control)
        self._orders_db = engine_for(settings, settings.database(DB_CODE, "orders"))
        # GET/PUT /stock read the inventory database directly: in production that would be a
        # call to the inventory service; here it keeps one API for both variants.
        self._inventory_db = engine_for(settings, settings.database(DB_CODE, "inventory"), pool_size=2)
        self._orders = OrderRepository(ORDERS)
        self._stock = StockRepository(INVENTORY)

    async def place_order(self, cmd: PlaceOrder) -> Order:
        message = DeductStock(order_id=cmd.order_id, lines=cmd.lines).model_dump(mode="json")
        async with self._orders_db.begin() as conn:
            order, created = await self._orders.add(conn, cmd)
            if created and self._control is not Control.DIRECT_PUBLISH:
                assert ORDERS.outbox is not None
                await outbox.append(conn, ORDERS.outbox, topology.DEDUCT, message)
        await self._faults.hit(FaultPoint.AFTER_ORDER_COMMIT)
        if created and self._control is Control.DIRECT_PUBLISH:
            await self._publish_directly(message)  # the dual write the outbox exists to avoid
        return order

    async def _publish_directly(self, body: dict[str, object]) -> None:
        try:
            connection = await aio_pika.connect(self._settings.amqp_url, timeout=5)
            async with connection:
                channel = await connection.channel()
                exchange, _ = await topology.declare(channel, self._settings)
                await exchange.publish(
                    aio_pika.Message(
                        json.dumps(body).encode(),
                        message_id=uuid.uuid4().hex,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=topology.DEDUCT,
                )
        except (OSError, aio_pika.exceptions.AMQPError) as exc:
            raise DependencyUnavailable(f"broker: {exc}") from exc

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
                checks[name] = f"{type(exc).__name__}"
        return checks

    async def close(self) -> None:
        await self._orders_db.dispose()
        await self._inventory_db.dispose()


def service_factory(faults: Faults) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory(settings: Settings) -> AsyncIterator[OrderService]:
        service = MqOrderService(settings, faults)
        try:
            yield service
        finally:
            await service.close()

    return factory

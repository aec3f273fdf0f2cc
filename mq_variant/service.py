"""order-service's side of the HTTP API: the order row and its outbox row in ONE transaction."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import aio_pika

from common.api import DependencyUnavailable, OrderService, ServiceFactory
from common.domain import Order, PlaceOrder
from common.faults import FaultPoint, Faults
from common.service import OrderServiceBase
from common.settings import Settings
from mq_variant import topology
from mq_variant.controls import Control, parse_control
from mq_variant.messages import DeductStock
from mq_variant.placement import place_with_message
from mq_variant.schema import DB_CODE, INVENTORY, ORDERS


class MqOrderService(OrderServiceBase):
    def __init__(self, settings: Settings, faults: Faults) -> None:
        super().__init__(settings, DB_CODE, ORDERS, INVENTORY)
        self._settings = settings
        self._faults = faults
        self._control = parse_control(settings.control)

    async def place_order(self, cmd: PlaceOrder) -> Order:
        message = DeductStock(order_id=cmd.order_id, lines=cmd.lines).model_dump(mode="json")
        if self._control is Control.DIRECT_PUBLISH:
            async with self.orders_db.begin() as conn:
                order, created = await self.orders.add(conn, cmd)
        else:
            order, created = await place_with_message(
                self.orders_db, self.orders, cmd, topology.DEDUCT, message
            )
        await self._faults.hit(FaultPoint.AFTER_ORDER_COMMIT)
        if created and self._control is Control.DIRECT_PUBLISH:
            await self._publish_directly(message)  # the dual write the outbox exists to avoid
        return order

    async def _publish_directly(self, body: dict[str, object]) -> None:
        try:
            connection = await topology.connect(self._settings, timeout=5)
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


def service_factory(faults: Faults) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory(settings: Settings) -> AsyncIterator[OrderService]:
        service = MqOrderService(settings, faults)
        try:
            yield service
        finally:
            await service.close()

    return factory

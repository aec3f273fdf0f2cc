"""Each role's main coroutine. Every role is its own OS process under the supervisor."""

from __future__ import annotations

from common.api import serve
from common.db import engine_for
from common.faults import Faults
from common.settings import Settings
from mq_variant import topology
from mq_variant.consumer import InboxConsumer
from mq_variant.controls import parse_control
from mq_variant.deduction import handle_deduct
from mq_variant.messages import DeductStock, StockResult
from mq_variant.relay import Relay
from mq_variant.schema import DB_CODE, INVENTORY, ORDERS
from mq_variant.service import service_factory
from mq_variant.settlement import handle_result


async def api(settings: Settings, faults: Faults) -> None:
    await serve(settings, service_factory(faults), title="order-service (MQ variant)")


async def order_relay(settings: Settings, faults: Faults) -> None:
    await Relay(settings, settings.database(DB_CODE, "orders"), faults, "order-relay").run()


async def inventory_relay(settings: Settings, faults: Faults) -> None:
    await Relay(settings, settings.database(DB_CODE, "inventory"), faults, "inventory-relay").run()


async def inventory_consumer(settings: Settings, faults: Faults) -> None:
    engine = engine_for(settings, settings.database(DB_CODE, "inventory"), pool_size=2)
    try:
        await InboxConsumer(
            settings=settings,
            engine=engine,
            dedup_table=INVENTORY.dedup,
            queue_name=topology.names(settings).deduct_queue,
            model=DeductStock,
            handler=handle_deduct,
            faults=faults,
            control=parse_control(settings.control),
            name="inventory-consumer",
        ).run()
    finally:
        await engine.dispose()


async def order_result_consumer(settings: Settings, faults: Faults) -> None:
    engine = engine_for(settings, settings.database(DB_CODE, "orders"), pool_size=2)
    assert ORDERS.dedup is not None
    try:
        await InboxConsumer(
            settings=settings,
            engine=engine,
            dedup_table=ORDERS.dedup,
            queue_name=topology.names(settings).result_queue,
            model=StockResult,
            handler=handle_result,
            faults=faults,
            control=parse_control(settings.control),
            name="order-result-consumer",
        ).run()
    finally:
        await engine.dispose()


ROLES = {
    "api": api,
    "order-relay": order_relay,
    "inventory-consumer": inventory_consumer,
    "inventory-relay": inventory_relay,
    "order-result-consumer": order_result_consumer,
}

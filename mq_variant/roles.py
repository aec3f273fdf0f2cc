"""Each role's main coroutine. Every role is its own OS process under the supervisor."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table

from common.api import serve
from common.db import engine_for
from common.faults import Faults
from common.settings import Settings
from mq_variant import reconciler, topology
from mq_variant.consumer import InboxConsumer, InboxHandler
from mq_variant.controls import Control, parse_control
from mq_variant.deduction import Deduct
from mq_variant.messages import DeductStock, StockResult
from mq_variant.relay import Relay
from mq_variant.schema import DB_CODE, INVENTORY, INVENTORY_FAILURES, ORDERS, ORDERS_FAILURES
from mq_variant.service import service_factory
from mq_variant.settlement import Settle
from mq_variant.tools import prune_both


async def api(settings: Settings, faults: Faults) -> None:
    await serve(settings, service_factory(faults), title="order-service (MQ variant)")


async def order_relay(settings: Settings, faults: Faults) -> None:
    await Relay(settings, settings.database(DB_CODE, "orders"), faults, "order-relay").run()


async def inventory_relay(settings: Settings, faults: Faults) -> None:
    await Relay(settings, settings.database(DB_CODE, "inventory"), faults, "inventory-relay").run()


async def order_relay_standby(settings: Settings, faults: Faults) -> None:
    relay = Relay(settings, settings.database(DB_CODE, "orders"), faults, "order-relay-standby")
    await relay.run(standby=True)


async def inventory_relay_standby(settings: Settings, faults: Faults) -> None:
    relay = Relay(settings, settings.database(DB_CODE, "inventory"), faults, "inventory-relay-standby")
    await relay.run(standby=True)


async def _consume(
    settings: Settings,
    faults: Faults,
    *,
    side: str,
    dedup_table: Table,
    failure_table: Table,
    queue_name: str,
    model: type[BaseModel],
    handler: InboxHandler[Any],
    name: str,
) -> None:
    engine = engine_for(settings, settings.database(DB_CODE, side), pool_size=4)
    try:
        await InboxConsumer(
            settings=settings,
            engine=engine,
            dedup_table=dedup_table,
            failure_table=failure_table,
            queue_name=queue_name,
            model=model,
            handler=handler,
            faults=faults,
            control=parse_control(settings.control),
            name=name,
        ).run()
    finally:
        await engine.dispose()


async def inventory_consumer(settings: Settings, faults: Faults) -> None:
    await _consume(
        settings,
        faults,
        side="inventory",
        dedup_table=INVENTORY.dedup,
        failure_table=INVENTORY_FAILURES,
        queue_name=topology.names(settings).deduct_queue,
        model=DeductStock,
        handler=Deduct(),
        name="inventory-consumer",
    )


async def order_result_consumer(settings: Settings, faults: Faults) -> None:
    assert ORDERS.dedup is not None
    await _consume(
        settings,
        faults,
        side="orders",
        dedup_table=ORDERS.dedup,
        failure_table=ORDERS_FAILURES,
        queue_name=topology.names(settings).result_queue,
        model=StockResult,
        handler=Settle(),
        name="order-result-consumer",
    )


async def reconciler_role(settings: Settings, faults: Faults) -> None:
    """Re-drives stale PENDING orders (mq_variant.reconciler) and prunes past the dedup window."""

    def log(text: str) -> None:
        print(f"reconciler: {text}", flush=True)

    control = parse_control(settings.control)
    if control is not Control.NONE:
        # a control shows what the mechanism it breaks lets through; re-driving would mask it
        log(f"off under the control {control.value!r}")
        await asyncio.Event().wait()

    async def prune_forever() -> None:
        while True:
            await asyncio.sleep(min(3600.0, settings.dedup_retention_s / 24))
            try:
                log(f"pruned {await prune_both(settings, settings.dedup_retention_s)}")
            except Exception as exc:  # a dependency down: the next pass tries again
                log(f"prune skipped ({type(exc).__name__})")

    engine = engine_for(settings, settings.database(DB_CODE, "orders"), pool_size=1)
    try:
        await asyncio.gather(reconciler.run(settings, engine, log), prune_forever())
    finally:
        await engine.dispose()


ROLES = {
    "api": api,
    "order-relay": order_relay,
    "inventory-consumer": inventory_consumer,
    "inventory-relay": inventory_relay,
    "order-result-consumer": order_result_consumer,
    "reconciler": reconciler_role,
    "order-relay-standby": order_relay_standby,
    "inventory-relay-standby": inventory_relay_standby,
}

"""Each role's main coroutine. Every role is its own OS process under the supervisor.

- api:              HTTP API; starts workflows, reads t_order / t_stock.
- order-worker:     the workflow and the order-side activities, task queue <p>wf-orders, wf_orders.
- inventory-worker: the deduction activity, task queue <p>wf-inventory, wf_inventory only.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio.worker import Worker

from common.api import serve
from common.db import engine_for
from common.faults import FaultPoint, Faults
from common.orders import OrderRepository
from common.settings import Settings
from common.stock import StockRepository
from workflow_variant.activities import InventoryActivities, OrderActivities
from workflow_variant.client import connect_with_retry
from workflow_variant.controls import Control, parse_control
from workflow_variant.messages import INVENTORY_QUEUE, ORDERS_QUEUE
from workflow_variant.schema import DB_CODE, inventory_schema, orders_schema
from workflow_variant.service import service_factory
from workflow_variant.workflow import OrderWorkflow

# Activities in flight per worker = database connections in use: keep them equal, so an attempt
# never waits on the pool long enough to look like a stuck one.
ACTIVITY_SLOTS = 16
# On SIGTERM, let running activities finish (they are short) before the process exits; well
# inside the supervisor's 10 s between its SIGTERM and its SIGKILL.
GRACEFUL_SHUTDOWN = timedelta(seconds=5)
# A workflow's next task goes first to the worker that has it cached (its sticky queue). If that
# worker was killed, the task waits this long before falling back to the shared queue. The SDK
# default is 10 s; our histories are ~25 events, so a replay elsewhere is cheap: fail over sooner.
STICKY_TIMEOUT = timedelta(seconds=3)
# Pollers, workflow-task slots and the sticky cache stay at the SDK defaults (5 workflow-task
# polls, one of them on the shared queue; 5 activity polls; 1000 cached workflows, more than are
# ever in flight). The machine, not the pollers, is the limit: at 20 orders/s on the project's
# 2-core machine, 10 workflow-task polls split evenly and 10 activity polls completed 10.2
# orders/s against 12.4 with the defaults, and more tasks went through the server's database
# instead of straight to a waiting poll (sync matches 128 of 1708 against 442 of 1199).


async def run_until_stopped(worker: Worker) -> None:
    """Run the worker until this task is cancelled (the role's SIGTERM), then shut it down
    completely before returning: polls stopped, running activities finished and reported. A
    second SIGTERM does not cut the shutdown short (the supervisor's SIGKILL still would)."""
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        stopping = asyncio.ensure_future(worker.shutdown())
        while not stopping.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(stopping)
        await running
        raise


async def api(settings: Settings, faults: Faults) -> None:
    await serve(settings, service_factory(faults), title="order-service (workflow variant)")


async def order_worker(settings: Settings, faults: Faults) -> None:
    await faults.hit(FaultPoint.WORKER_START)
    client = await connect_with_retry(settings, "order-worker")
    engine = engine_for(settings, settings.database(DB_CODE, "orders"), pool_size=ACTIVITY_SLOTS)
    activities = OrderActivities(engine, OrderRepository(orders_schema()), faults)
    try:
        worker = Worker(
            client,
            task_queue=settings.task_queue(ORDERS_QUEUE),
            workflows=[OrderWorkflow],
            activities=[activities.record_order, activities.settle_order],
            max_concurrent_activities=ACTIVITY_SLOTS,  # runs started before the local steps
            max_concurrent_local_activities=ACTIVITY_SLOTS,
            sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        )
        print(f"order-worker: polling {settings.task_queue(ORDERS_QUEUE)}", flush=True)
        await run_until_stopped(worker)
    finally:
        await engine.dispose()


async def inventory_worker(settings: Settings, faults: Faults) -> None:
    await faults.hit(FaultPoint.WORKER_START)
    idempotent = parse_control(settings.control) is not Control.NON_IDEMPOTENT_DEDUCT
    client = await connect_with_retry(settings, "inventory-worker")
    engine = engine_for(settings, settings.database(DB_CODE, "inventory"), pool_size=ACTIVITY_SLOTS)
    schema = inventory_schema()
    activities = InventoryActivities(engine, schema, StockRepository(schema), faults, idempotent=idempotent)
    try:
        worker = Worker(
            client,
            task_queue=settings.task_queue(INVENTORY_QUEUE),
            activities=[activities.deduct_stock],
            max_concurrent_activities=ACTIVITY_SLOTS,
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        )
        print(f"inventory-worker: polling {settings.task_queue(INVENTORY_QUEUE)}", flush=True)
        await run_until_stopped(worker)
    finally:
        await engine.dispose()


ROLES = {"api": api, "order-worker": order_worker, "inventory-worker": inventory_worker}

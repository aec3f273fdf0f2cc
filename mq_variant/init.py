"""`init`: databases, tables and broker topology, idempotent; --reset starts from empty."""

from __future__ import annotations

from common.db import create_schema
from common.settings import Settings
from mq_variant import topology
from mq_variant.schema import DB_CODE, INVENTORY, ORDERS


async def init(settings: Settings, reset: bool) -> None:
    await create_schema(settings, settings.database(DB_CODE, "orders"), ORDERS.metadata, reset=reset)
    await create_schema(settings, settings.database(DB_CODE, "inventory"), INVENTORY.metadata, reset=reset)
    connection = await topology.connect(settings, timeout=10)
    async with connection:
        channel = await connection.channel()
        if reset:
            await topology.delete(channel, settings)
        await topology.declare(channel, settings)

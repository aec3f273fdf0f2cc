"""`init`: databases and tables, idempotent; --reset starts from empty databases.

Temporal needs no setup (the dev server creates the `default` namespace). --reset does not erase
Temporal's history: workflow ids are order-<order_id>, so after a reset use new order ids, or stop
the variant and delete the dev server's SQLite file (CC_TEMPORAL_DB_FILE).
"""

from __future__ import annotations

from common.db import create_schema
from common.settings import Settings
from workflow_variant.controls import parse_control
from workflow_variant.schema import DB_CODE, inventory_schema, orders_schema


async def init(settings: Settings, reset: bool) -> None:
    parse_control(settings.control)  # a typo in CC_CONTROL fails here, in one line
    await create_schema(settings, settings.database(DB_CODE, "orders"), orders_schema().metadata, reset=reset)
    await create_schema(
        settings, settings.database(DB_CODE, "inventory"), inventory_schema().metadata, reset=reset
    )

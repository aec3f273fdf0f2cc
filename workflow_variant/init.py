"""`init`: databases and tables, idempotent. `--reset` starts from nothing: first the variant's
workflows in Temporal (workflow_variant.reset: deleted, or the dev server's store removed when
no server runs), so that no old run can touch the new databases, then empty databases.

Without --reset, Temporal needs no setup (the dev server creates the `default` namespace).
"""

from __future__ import annotations

from common.db import create_schema
from common.settings import Settings
from workflow_variant.controls import parse_control
from workflow_variant.reset import reset_temporal
from workflow_variant.schema import DB_CODE, inventory_schema, orders_schema

RESET_HELP = (
    "reset everything the variant owns: delete its workflows in Temporal (every OrderWorkflow on "
    "its task queue; with no server running, remove the dev server's store CC_TEMPORAL_DB_FILE), "
    "then drop and recreate its databases"
)


async def init(settings: Settings, reset: bool) -> None:
    parse_control(settings.control)  # a typo in CC_CONTROL fails here, in one line
    if reset:
        print(await reset_temporal(settings), flush=True)
    await create_schema(settings, settings.database(DB_CODE, "orders"), orders_schema().metadata, reset=reset)
    await create_schema(
        settings, settings.database(DB_CODE, "inventory"), inventory_schema().metadata, reset=reset
    )

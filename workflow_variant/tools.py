"""The workflow variant's operator command: dedup retention.

    python -m workflow_variant prune [--older-than S]   the activities' dedup rows past the window

The rest of its recovery tooling is Temporal's own (the web UI, `temporal workflow list|show|reset`).
The window must outlast every retry of the deduct activity: the workflow retries it forever, so a
workflow blocked longer than the window (a worker down for days) would deduct again on its next
attempt; in practice the window (7 days) is far above any outage a person would leave unattended.
"""

from __future__ import annotations

import argparse

from common.cli import Tool, older_than
from common.db import engine_for
from common.retention import prune
from common.settings import Settings
from workflow_variant.schema import DB_CODE, inventory_schema


async def _prune(settings: Settings, args: argparse.Namespace) -> None:
    age = settings.dedup_retention_s if args.older_than is None else args.older_than
    dedup = inventory_schema().dedup
    engine = engine_for(settings, settings.database(DB_CODE, "inventory"), pool_size=1)
    try:
        removed = await prune(engine, [(dedup, dedup.c.processed_at)], age)
    finally:
        await engine.dispose()
    print(f"pruned {{'inventory.{dedup.name}': {removed[dedup.name]}}}", flush=True)


TOOLS = {
    "prune": Tool(
        "delete the activities' dedup rows older than the dedup window",
        older_than("CC_DEDUP_RETENTION_S"),
        _prune,
    ),
}

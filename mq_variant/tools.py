"""The MQ variant's operator commands: what an operator runs to keep the design's promise.

    python -m mq_variant dlq list [--limit N]        what is dead-lettered, and why
    python -m mq_variant dlq replay [--force]        back to the work queues (per-order dedup)
    python -m mq_variant reconcile [--older-than S]  re-drive stale PENDING orders, once
    python -m mq_variant prune [--older-than S]      dedup / failure rows past the window

The `reconciler` role does `reconcile` and `prune` on its own; these are for an operator.
"""

from __future__ import annotations

import argparse
import json

from common.cli import Tool, older_than
from common.db import engine_for
from common.retention import prune
from common.settings import Settings
from mq_variant import dlq, reconciler
from mq_variant.schema import DB_CODE, INVENTORY, INVENTORY_FAILURES, ORDERS, ORDERS_FAILURES


def _dlq_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("--limit", type=int, default=1000, help="at most this many messages")
    p.add_argument("--force", action="store_true", help="replay even messages older than the dedup window")


async def _dlq(settings: Settings, args: argparse.Namespace) -> None:
    if args.action == "list":
        letters = await dlq.list_dead_letters(settings, limit=args.limit)
        for letter in letters:
            print(json.dumps(letter.model_dump()), flush=True)
        print(f"{len(letters)} dead-lettered messages", flush=True)
        return
    replayed, left = await dlq.replay(settings, limit=args.limit, force=args.force)
    print(f"replayed {replayed}; left {left} older than the dedup window (see --force)", flush=True)


async def _reconcile(settings: Settings, args: argparse.Namespace) -> None:
    engine = engine_for(settings, settings.database(DB_CODE, "orders"), pool_size=1)
    try:
        age = settings.reconcile_after_s if args.older_than is None else args.older_than
        redriven = await reconciler.reconcile_once(engine, age, settings.dedup_retention_s)
    finally:
        await engine.dispose()
    print(f"re-sent the deduct message of {len(redriven)} orders {redriven[:20]}", flush=True)


async def prune_both(settings: Settings, older_than_s: float) -> dict[str, int]:
    removed: dict[str, int] = {}
    for side, tables in (
        ("orders", [(ORDERS.dedup, ORDERS.dedup.c.processed_at)] if ORDERS.dedup is not None else []),
        ("inventory", [(INVENTORY.dedup, INVENTORY.dedup.c.processed_at)]),
    ):
        failures = ORDERS_FAILURES if side == "orders" else INVENTORY_FAILURES
        engine = engine_for(settings, settings.database(DB_CODE, side), pool_size=1)
        try:
            counts = await prune(engine, [*tables, (failures, failures.c.updated_at)], older_than_s)
        finally:
            await engine.dispose()
        removed |= {f"{side}.{name}": n for name, n in counts.items()}
    return removed


async def _prune(settings: Settings, args: argparse.Namespace) -> None:
    age = settings.dedup_retention_s if args.older_than is None else args.older_than
    print(f"pruned {await prune_both(settings, age)}", flush=True)


TOOLS = {
    "dlq": Tool("list or replay the dead-letter queues", _dlq_arguments, _dlq),
    "reconcile": Tool(
        "re-send the deduct message of orders PENDING too long (one pass)",
        older_than("CC_RECONCILE_AFTER_S"),
        _reconcile,
    ),
    "prune": Tool(
        "delete dedup and failure rows older than the dedup window",
        older_than("CC_DEDUP_RETENTION_S"),
        _prune,
    ),
}

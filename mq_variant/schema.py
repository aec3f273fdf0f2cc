"""The MQ variant's two databases: each side has its own outbox, dedup and failure tables."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, func

from common.schema import InventorySchema, OrdersSchema

DB_CODE = "mq"

ORDERS = OrdersSchema(outbox=True, dedup=True)
INVENTORY = InventorySchema(outbox=True)


def _failures(md: MetaData) -> Table:
    """Processing failures per message, counted by the consumer (version-independent poison rule)."""
    return Table(
        "t_inbox_failure",
        md,
        Column("message_id", Text, primary_key=True),
        Column("failures", Integer, nullable=False),
        Column("last_error", Text, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


ORDERS_FAILURES = _failures(ORDERS.metadata)
INVENTORY_FAILURES = _failures(INVENTORY.metadata)

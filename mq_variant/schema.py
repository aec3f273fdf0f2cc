"""The MQ variant's two databases: each side has its own outbox and its own dedup table."""

from __future__ import annotations

from common.schema import InventorySchema, OrdersSchema

DB_CODE = "mq"

ORDERS = OrdersSchema(outbox=True, dedup=True)
INVENTORY = InventorySchema(outbox=True)

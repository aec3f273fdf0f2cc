"""The workflow variant's tables: the same fixed names as the MQ variant, minus its outbox.

Orders side: only t_order. No outbox (Temporal's history is the durable record of what is left
to do) and no dedup table: the record activity is keyed by order_id (INSERT .. ON CONFLICT) and
the settle activity only moves PENDING -> terminal, so both are idempotent by their own key.
Inventory side: t_stock, t_deduction_log and t_dedup -- Temporal runs an activity at least once,
so the deduction still needs a dedup row committed in the same transaction as the deduction.
"""

from __future__ import annotations

from common.schema import InventorySchema, OrdersSchema

DB_CODE = "wf"


def orders_schema() -> OrdersSchema:
    return OrdersSchema(outbox=False, dedup=False)


def inventory_schema() -> InventorySchema:
    return InventorySchema(outbox=False)

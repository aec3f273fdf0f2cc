"""What crosses Temporal's wire: workflow input, activity names, inputs and results.

Kept free of I/O imports so the workflow sandbox can pass it through cheaply. Activities are
called by name from the workflow, so the workflow module never imports SQLAlchemy.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from common.domain import OrderLine, PlaceOrder

WORKFLOW_NAME = "OrderWorkflow"
RECORD_ORDER = "record_order"
DEDUCT_STOCK = "deduct_stock"
SETTLE_ORDER = "settle_order"

ORDERS_QUEUE = "wf-orders"
INVENTORY_QUEUE = "wf-inventory"


def workflow_id(order_id: str) -> str:
    return f"order-{order_id}"


def deduct_key(order_id: str) -> str:
    """The dedup key of an order's deduction: per order, not per run or attempt, so that any
    re-run of the step -- a retried attempt, a replayed activity, even a second workflow run for
    the same order -- finds the stored outcome instead of deducting again."""
    return f"order-{order_id}:deduct"


class OrderWorkflowInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    order: PlaceOrder
    # Passed in rather than read from settings: workflow code must not read the environment,
    # and a replay must see exactly what the original run saw.
    inventory_task_queue: str


class Recorded(BaseModel):
    """Result of the record activity. `conflict`: the id exists with another body -- nothing else
    is done. The API refuses such a body itself (409, from t_order); this is the last line, for
    a start it accepted while the orders database could not be read."""

    created: bool
    conflict: bool = False


class DeductRequest(BaseModel):
    order_id: str
    lines: list[OrderLine]

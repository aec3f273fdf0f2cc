"""Capture real workflow histories as replay fixtures (tests/workflow/histories/*.json).

    .venv/bin/python -m tests.workflow.capture_histories

Starts a private Temporal dev server and the variant (fresh databases, dropped afterwards), runs
one order through each path of OrderWorkflow -- confirmed after a retried record and a retried
deduction, confirmed, rejected, unknown SKU, id conflict -- and writes each history as
`<PREFIX><case>.json`. Refresh them only on purpose: they are what test_replay.py holds new
workflow code to. After a deliberate, incompatible change to the workflow, keep the old files
(running workflows still need them), version the workflow with workflow.patched() and capture
the new path under a new PREFIX.

Files: `<case>.json` were captured before the order-side steps became local activities (regular
activities on the orders task queue); `local_<case>.json` after (patch
workflow.LOCAL_ORDER_STEPS).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
from sqlalchemy import text
from temporalio.client import Client

from common.db import engine_for
from common.domain import PlaceOrder
from common.settings import Settings
from tests.workflow.stack import workflow_stack
from workflow_variant.client import connect
from workflow_variant.messages import INVENTORY_QUEUE, ORDERS_QUEUE, OrderWorkflowInput, workflow_id
from workflow_variant.workflow import OrderWorkflow

HISTORIES = Path(__file__).with_name("histories")
PREFIX = "local_"  # the current path: record and settle as local activities


async def capture() -> None:
    # the first order's record and deduction each fail once after their commit (then retried)
    faults = {
        "CC_FAULTS": "order-worker/after_order_commit=raise,times=1;"
        "inventory-worker/after_deduct_commit=raise,times=1"
    }
    async with workflow_stack("h", persist=False, env=faults) as (settings, process):
        await _run_orders(settings, process.base_url, settings.db_prefix)


async def _run_orders(settings: Settings, base_url: str, prefix: str) -> None:
    client = await connect(settings)
    orders_db = engine_for(settings, settings.database("wf", "orders"), pool_size=1)
    cases = {
        "confirmed_after_retry": [{"sku": "apple", "quantity": 2}],  # the faults fire here
        "confirmed": [{"sku": "apple", "quantity": 1}, {"sku": "pear", "quantity": 1}],
        "rejected": [{"sku": "pear", "quantity": 50}],
        "unknown_sku": [{"sku": "ghost", "quantity": 1}],
        "conflict": [{"sku": "apple", "quantity": 1}],
    }
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for sku in ("apple", "pear"):
            (await http.put(f"/stock/{sku}", json={"quantity": 10})).raise_for_status()
        # `conflict`: a row with another body already holds the id (as after Temporal's retention)
        async with orders_db.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO t_order (order_id, customer_id, lines, fingerprint) "
                    "VALUES (:o, 'someone-else', '[]', 'other')"
                ),
                {"o": f"{prefix}conflict"},
            )
        for name, lines in cases.items():
            body = {"order_id": f"{prefix}{name}", "customer_id": "c1", "lines": lines}
            if name == "conflict":  # the API answers 409 from t_order: start it as if it could not
                await _start_directly(client, settings, PlaceOrder.model_validate(body))
            else:
                (await http.post("/orders", json=body)).raise_for_status()
            handle = client.get_workflow_handle(workflow_id(f"{prefix}{name}"))
            await asyncio.wait_for(handle.result(), 60)
    await orders_db.dispose()
    HISTORIES.mkdir(exist_ok=True)
    for name in cases:
        history = await client.get_workflow_handle(workflow_id(f"{prefix}{name}")).fetch_history()
        path = HISTORIES / f"{PREFIX}{name}.json"
        path.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
        print(f"wrote {path} ({len(history.events)} events)")


async def _start_directly(client: Client, settings: Settings, cmd: PlaceOrder) -> None:
    """What the API does when the orders database cannot be read (the workflow's last line)."""
    inp = OrderWorkflowInput(order=cmd, inventory_task_queue=settings.task_queue(INVENTORY_QUEUE))
    await client.start_workflow(
        OrderWorkflow.run, inp, id=workflow_id(cmd.order_id), task_queue=settings.task_queue(ORDERS_QUEUE)
    )


if __name__ == "__main__":
    try:
        asyncio.run(capture())
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        sys.exit(1)

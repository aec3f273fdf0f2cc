"""`init --reset`, Temporal's part: no workflow of this variant survives a reset.

Workflow ids are order-<order_id>, so a closed workflow left over from before a reset would turn
a new order with an old id into a "duplicate" of a run whose database rows were dropped. What
the variant owns in Temporal is every OrderWorkflow on its orders task queue (CC_TEMPORAL_QUEUE_PREFIX
+ wf-orders), in CC_TEMPORAL_NAMESPACE; a reset deletes those, and nothing else:

- a server listens at CC_TEMPORAL_ADDRESS (a cluster, someone's dev server, the one `up` keeps):
  terminate-and-delete every such workflow run, then wait until Temporal no longer knows the ids
  (a closed run's deletion waits for the server's queue acks: seconds on the dev servers the
  project starts, up to a minute on others);
- nothing listens: remove the SQLite store of the dev server `up` would start there
  (CC_TEMPORAL_DB_FILE).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from common.settings import Settings
from common.temporal_dev import is_listening, remove_store, split_address
from workflow_variant.client import connect_with_retry
from workflow_variant.messages import ORDERS_QUEUE, WORKFLOW_NAME

PARALLEL_RPCS = 16
DELETE_TIMEOUT_S = 180.0
POLL_S = 0.3
CONNECT_TIMEOUT_S = 60.0


async def reset_temporal(settings: Settings) -> str:
    """Deletes the variant's workflows; returns one line saying what was done."""
    host, port = split_address(settings.temporal_address)
    if not await is_listening(host, port):
        store = settings.temporal_db_file
        removed = remove_store(store)
        return f"Temporal: nothing listens at {settings.temporal_address}; " + (
            f"removed the dev server's store {store}" if removed else f"no dev server store at {store}"
        )
    # A dev server just started (by `up`) listens a moment before its frontend is healthy
    # ("Frontend is not healthy yet"): wait for it as the workers do, but not forever.
    client = await asyncio.wait_for(connect_with_retry(settings, "reset"), CONNECT_TIMEOUT_S)
    queue = settings.task_queue(ORDERS_QUEUE)
    count = await delete_workflows(client, f"WorkflowType = '{WORKFLOW_NAME}' AND TaskQueue = '{queue}'")
    return f"Temporal: deleted {count} workflow runs of task queue {queue} at {settings.temporal_address}"


async def delete_workflows(client: Client, query: str, *, timeout: float = DELETE_TIMEOUT_S) -> int:
    """Terminate and delete every run the visibility query lists; return once their ids are free."""
    runs = [(w.id, w.run_id) async for w in client.list_workflows(query)]
    gate = asyncio.Semaphore(PARALLEL_RPCS)

    async def delete(workflow_id: str, run_id: str) -> None:
        async with gate:
            await _delete_run(client, workflow_id, run_id)

    await asyncio.gather(*(delete(wid, rid) for wid, rid in runs))
    ids = {wid for wid, _ in runs}
    if ids:
        print(f"Temporal: waiting for the deletion of {len(ids)} workflows", flush=True)
    await _wait_forgotten(client, ids, time.monotonic() + timeout)
    return len(runs)


async def _delete_run(client: Client, workflow_id: str, run_id: str) -> None:
    request = DeleteWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
    )
    try:
        await client.workflow_service.delete_workflow_execution(request)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:  # already gone
            raise


async def _known(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _wait_forgotten(client: Client, ids: Iterable[str], deadline: float) -> None:
    gate = asyncio.Semaphore(PARALLEL_RPCS)

    async def forgotten(workflow_id: str) -> None:
        while True:
            async with gate:
                if not await _known(client, workflow_id):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Temporal still knows the deleted workflow {workflow_id}")
            await asyncio.sleep(POLL_S)

    await asyncio.gather(*(forgotten(wid) for wid in ids))

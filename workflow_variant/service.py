"""order-service's side of the HTTP API: accepting an order = starting its workflow.

No dual write in the request path. The API writes nothing to t_order: it starts the workflow
(one durable step in Temporal) and the workflow's first activity records the order. Had the API
inserted the row and then started the workflow, a crash between the two would leave an order
PENDING with nothing to finish it (see the api-writes-order control, which does exactly that).
Update-with-start could have made "start + record" synchronous, at the cost of a second
round trip and a worker in the request path; the 202 contract does not need it.

Workflow id = order-<order_id>, started with
- id_reuse_policy REJECT_DUPLICATE: once an order's workflow closed, the id never starts again
  (until Temporal's retention drops the closed run -- then the record activity notices a
  conflicting body, and the deduction's dedup key still blocks a second deduction);
- id_conflict_policy FAIL: a duplicate while it runs raises WorkflowAlreadyStartedError.
  USE_EXISTING would also prevent a second run, but its handle looks exactly like a fresh start
  in the SDK's public API, so the API could not check the body for the 409. With FAIL both cases
  raise; the body fingerprint, stored in the workflow memo at start, decides 409 vs. same order.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from common.api import DependencyUnavailable, OrderService, ServiceFactory
from common.domain import Order, OrderConflict, OrderStatus, PlaceOrder
from common.faults import FaultPoint, Faults
from common.service import OrderServiceBase
from common.settings import Settings
from workflow_variant import client as temporal
from workflow_variant.controls import Control, parse_control
from workflow_variant.messages import INVENTORY_QUEUE, ORDERS_QUEUE, OrderWorkflowInput, workflow_id
from workflow_variant.schema import DB_CODE, inventory_schema, orders_schema
from workflow_variant.workflow import OrderWorkflow

MEMO_ORDER = "order"
MEMO_FINGERPRINT = "fingerprint"


def _pending(cmd: PlaceOrder) -> Order:
    return Order(
        order_id=cmd.order_id, customer_id=cmd.customer_id, lines=cmd.lines, status=OrderStatus.PENDING
    )


@contextlib.contextmanager
def _temporal_errors_are_503() -> Iterator[None]:
    """Temporal unreachable -> DependencyUnavailable (503), never a 500. The lazy client raises
    RuntimeError("Failed client connect ...") until its first connection succeeded, RPCError after."""
    try:
        yield
    except RPCError as exc:
        raise DependencyUnavailable(
            f"temporal: {exc.status.name if exc.status else ''} {exc.message}"
        ) from exc
    except RuntimeError as exc:
        if not str(exc).startswith("Failed client connect"):
            raise
        raise DependencyUnavailable("temporal: unreachable") from exc


class WorkflowOrderService(OrderServiceBase):
    def __init__(self, settings: Settings, client: Client, faults: Faults) -> None:
        super().__init__(settings, DB_CODE, orders_schema(), inventory_schema())
        self._settings = settings
        self._client = client
        self._faults = faults
        self._control = parse_control(settings.control)

    async def place_order(self, cmd: PlaceOrder) -> Order:
        if self._control is Control.API_WRITES_ORDER:
            # The deliberate dual write: row first, workflow second.
            async with self.orders_db.begin() as conn:
                await self.orders.add(conn, cmd)
            await self._faults.hit(FaultPoint.AFTER_ORDER_COMMIT)
        try:
            with _temporal_errors_are_503():
                await self._start(cmd)
        except WorkflowAlreadyStartedError:
            return await self._existing(cmd)
        return _pending(cmd)

    async def _start(self, cmd: PlaceOrder) -> None:
        await self._client.start_workflow(
            OrderWorkflow.run,
            OrderWorkflowInput(order=cmd, inventory_task_queue=self._settings.task_queue(INVENTORY_QUEUE)),
            id=workflow_id(cmd.order_id),
            task_queue=self._settings.task_queue(ORDERS_QUEUE),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            memo={MEMO_ORDER: cmd.model_dump(mode="json"), MEMO_FINGERPRINT: cmd.fingerprint()},
            static_summary=f"order {cmd.order_id} ({len(cmd.lines)} lines)",
            rpc_timeout=temporal.RPC_TIMEOUT,
        )

    async def _existing(self, cmd: PlaceOrder) -> Order:
        """A duplicate submission: same body -> the same order, another body -> 409."""
        description = await self._describe(cmd.order_id)
        if description is None:  # closed run already dropped by retention: t_order decides
            stored = await self.get_order(cmd.order_id)
            if stored is None:
                raise DependencyUnavailable("workflow vanished while starting; retry")
            same = PlaceOrder(order_id=stored.order_id, customer_id=stored.customer_id, lines=stored.lines)
            if same.fingerprint() != cmd.fingerprint():
                raise OrderConflict(cmd.order_id)
            return stored
        if await description.memo_value(MEMO_FINGERPRINT, None) != cmd.fingerprint():
            raise OrderConflict(cmd.order_id)
        return await super().get_order(cmd.order_id) or _pending(cmd)

    async def _describe(self, order_id: str) -> WorkflowExecutionDescription | None:
        handle = self._client.get_workflow_handle(workflow_id(order_id))
        with _temporal_errors_are_503():
            try:
                return await handle.describe(rpc_timeout=temporal.RPC_TIMEOUT)
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return None
                raise

    async def get_order(self, order_id: str) -> Order | None:
        """t_order first; before the record activity ran, the workflow's memo says PENDING."""
        stored = await super().get_order(order_id)
        if stored is not None:
            return stored
        description = await self._describe(order_id)
        if description is None:
            return None
        memo = await description.memo_value(MEMO_ORDER, None)
        return None if memo is None else _pending(PlaceOrder.model_validate(memo))

    async def readiness(self) -> dict[str, str]:
        checks = await super().readiness()
        try:
            healthy = await self._client.service_client.check_health(timeout=temporal.RPC_TIMEOUT)
            checks["temporal"] = "ok" if healthy else "not serving"
        except Exception as exc:
            checks["temporal"] = type(exc).__name__
        return checks


def service_factory(faults: Faults) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory(settings: Settings) -> AsyncIterator[OrderService]:
        client = await temporal.connect(settings, lazy=True)
        service = WorkflowOrderService(settings, client, faults)
        try:
            yield service
        finally:
            await service.close()

    return factory

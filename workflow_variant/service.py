"""order-service's side of the HTTP API: accepting an order = starting its workflow.

No dual write in the request path. The API writes nothing to t_order: it starts the workflow
(one durable step in Temporal) and the workflow's first activity records the order. Had the API
inserted the row and then started the workflow, a crash between the two would leave an order
PENDING with nothing to finish it (see the api-writes-order control, which does exactly that).
Update-with-start could have made "start + record" synchronous, at the cost of a second
round trip and a worker in the request path; the 202 contract does not need it.

Who knows what about an order id:
- t_order, once the workflow recorded the order: its body (fingerprint) and state. It outlives
  Temporal's retention, so it decides first: another body -> 409, a terminal order -> answered
  as it is, without touching Temporal. Unreadable (orders database down) -> we go on to the
  start and the workflow still refuses a conflicting body, so an outage does not stop orders.
- the workflow order-<order_id>, started with id_conflict_policy FAIL (a duplicate while it runs
  raises WorkflowAlreadyStartedError) and id_reuse_policy REJECT_DUPLICATE (a closed run too);
  the body fingerprint in its memo decides 409 vs. same order before the order is recorded.
  USE_EXISTING would also prevent a second run, but its handle looks exactly like a fresh start
  in the SDK's public API, so the body could not be checked.
- a run that FAILED, was TERMINATED, CANCELED or TIMED_OUT did not finish the order: the same
  body again starts a new run (ALLOW_DUPLICATE_FAILED_ONLY, only after the body was checked).
  Safe because every activity is idempotent per order (record ON CONFLICT, deduct keyed
  order-<id>:deduct, settle only from PENDING); a COMPLETED run is never started again.
- a COMPLETED run and no row: the databases were reset or restored without Temporal. Nothing
  will process that order again, so POST and GET say so (409 with the recorded outcome) rather
  than PENDING forever; `init --reset` resets both sides.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from common.api import DependencyUnavailable, OrderService, ServiceFactory
from common.db import autocommit
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
# Closed without finishing the order: the same body may start it again.
UNFINISHED = frozenset(
    {
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.CANCELED,
        WorkflowExecutionStatus.TIMED_OUT,
    }
)
_DB_DOWN = (DBAPIError, PoolTimeout, OSError, TimeoutError)


class OrderNotProcessed(OrderConflict):
    """The id's workflow is closed and t_order has no row: nothing will process this order as
    things stand. A 409 (the id cannot be used as asked) with the reason and the remedy."""

    def __init__(self, order_id: str, detail: str) -> None:
        Exception.__init__(self, f"order {order_id}: {detail}")
        self.order_id = order_id


def _pending(cmd: PlaceOrder) -> Order:
    return Order(
        order_id=cmd.order_id, customer_id=cmd.customer_id, lines=cmd.lines, status=OrderStatus.PENDING
    )


def _check_body(stored: Order | None, cmd: PlaceOrder) -> Order | None:
    """The recorded order, if any; OrderConflict if it was recorded with another body."""
    if stored is not None:
        same = PlaceOrder.model_construct(
            order_id=stored.order_id, customer_id=stored.customer_id, lines=stored.lines
        )  # built from a stored row: no validation (a hand-made row must still be a 409, not a 500)
        if same.fingerprint() != cmd.fingerprint():
            raise OrderConflict(cmd.order_id)
    return stored


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
        recorded = await self._recorded_if_readable(cmd)
        if recorded is not None and recorded.status.terminal:
            return recorded
        try:
            await self._start(cmd, WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            return await self._existing(cmd)
        return recorded or _pending(cmd)

    async def _recorded_if_readable(self, cmd: PlaceOrder) -> Order | None:
        try:
            stored = await self._stored(cmd.order_id)
        except _DB_DOWN:
            return None  # orders database down: accept anyway; the workflow still checks the body
        return _check_body(stored, cmd)

    async def _stored(self, order_id: str) -> Order | None:
        """t_order's row, read in autocommit: one round trip (a plain connection would add a
        BEGIN and a ROLLBACK around the SELECT). On every POST, before the start: only t_order
        knows an id whose workflow already left Temporal (another body -> 409; the stored order
        -> answered without a new run), and a start cannot tell that case from a first one."""
        async with autocommit(self.orders_db) as conn:
            return await self.orders.get(conn, order_id)

    async def _start(self, cmd: PlaceOrder, reuse: WorkflowIDReusePolicy) -> None:
        inp = OrderWorkflowInput(order=cmd, inventory_task_queue=self._settings.task_queue(INVENTORY_QUEUE))
        with _temporal_errors_are_503():
            await self._client.start_workflow(
                OrderWorkflow.run,
                inp,
                id=workflow_id(cmd.order_id),
                task_queue=self._settings.task_queue(ORDERS_QUEUE),
                id_reuse_policy=reuse,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                memo={MEMO_ORDER: cmd.model_dump(mode="json"), MEMO_FINGERPRINT: cmd.fingerprint()},
                static_summary=f"order {cmd.order_id} ({len(cmd.lines)} lines)",
                rpc_timeout=temporal.RPC_TIMEOUT,
            )

    async def _existing(self, cmd: PlaceOrder) -> Order:
        """The id's workflow exists (open or closed): same body -> the order, another -> 409."""
        description = await self._describe(cmd.order_id)
        if description is None:  # its closed run was dropped by retention just now
            raise DependencyUnavailable("workflow vanished while starting; retry")
        recorded = _check_body(await self._stored(cmd.order_id), cmd)  # read after describe
        if recorded is not None and recorded.status.terminal:
            return recorded
        if recorded is None and await description.memo_value(MEMO_FINGERPRINT, None) != cmd.fingerprint():
            raise OrderConflict(cmd.order_id)
        if description.status == WorkflowExecutionStatus.RUNNING:
            return recorded or _pending(cmd)
        if description.status in UNFINISHED:
            with contextlib.suppress(WorkflowAlreadyStartedError):  # a concurrent retry won
                await self._start(cmd, WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
            return recorded or _pending(cmd)
        if recorded is not None:
            return recorded
        raise await self._not_processed(cmd.order_id, description)

    async def _describe(self, order_id: str) -> WorkflowExecutionDescription | None:
        handle = self._client.get_workflow_handle(workflow_id(order_id))
        with _temporal_errors_are_503():
            try:
                return await handle.describe(rpc_timeout=temporal.RPC_TIMEOUT)
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return None
                raise

    async def _not_processed(
        self, order_id: str, description: WorkflowExecutionDescription
    ) -> OrderNotProcessed:
        """Why a closed workflow without a t_order row will not process the order."""
        status = description.status.name if description.status else "closed"
        if description.status in UNFINISHED:
            return OrderNotProcessed(
                order_id,
                f"its workflow {description.id} ended {status} before the order was recorded; "
                "submit the same order again to run it",
            )
        with _temporal_errors_are_503():
            outcome = await self._client.get_workflow_handle_for(OrderWorkflow.run, description.id).result(
                rpc_timeout=temporal.RPC_TIMEOUT
            )
        told = f"{outcome.status.value}" + (f", {outcome.reason}" if outcome.reason else "")
        return OrderNotProcessed(
            order_id,
            f"its workflow {description.id} {status} ({told}) but the orders database has no row for "
            "it: the databases were reset or restored without Temporal's history. It will not be "
            "processed again under this id: use a new order id (`init --reset` resets both sides)",
        )

    async def get_order(self, order_id: str) -> Order | None:
        """t_order first; before the record activity ran, the workflow's memo says PENDING; a
        closed workflow without a row is a 409 that says why (never a PENDING forever)."""
        stored = await self._stored(order_id)
        if stored is not None:
            return stored
        description = await self._describe(order_id)
        if description is None:
            return None
        memo = await description.memo_value(MEMO_ORDER, None)
        if description.status == WorkflowExecutionStatus.RUNNING:
            return None if memo is None else _pending(PlaceOrder.model_validate(memo))
        stored = await self._stored(order_id)  # recorded and settled since the first read
        if stored is not None:
            return stored
        raise await self._not_processed(order_id, description)

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

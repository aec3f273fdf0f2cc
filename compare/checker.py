"""The consistency checker: a history plus the system's final state in, a verdict out.

`judge(history, state)` is pure (unit-tested on hand-made histories and states);
`read_state(...)` reads what it needs from the outside only: the variant's two databases
(t_order, t_stock, t_deduction_log, t_local_msg), the broker's dead-letter queues (MQ) and the
Temporal workflows `order-<order_id>` (workflow variant). It knows nothing else of the variants.

Anomaly kinds (each counted; a real variant must show none after recovery):

| kind | meaning |
| --- | --- |
| lost | the API answered 202, yet after recovery the order is absent or still PENDING |
| effect_without_acceptance | every attempt got a 4xx, yet the order exists or stock moved for it |
| unexpected_order | an order in the database that nobody submitted |
| body_changed | the stored order's lines differ from the body first submitted (e.g. a 409 overwrote) |
| double_deduction | the audit ledger holds an (order, sku) pair more than once |
| oversell | more of a SKU was deducted than there ever was, or stock went negative |
| stock_conservation | initial - final stock of a SKU != the quantities of its CONFIRMED orders |
| ledger_mismatch | initial - final stock of a SKU != the ledger's sum for it (stock moved unaudited) |
| confirmed_without_deduction | CONFIRMED order with no (or partial) ledger rows |
| deduction_without_confirmed | ledger rows for an order that is not CONFIRMED |
| stuck | an order still PENDING, or its workflow not completed, after recovery |
| leftover_outbox | rows left in t_local_msg after recovery |
| dead_letters | dead-lettered messages beyond the poison messages the run injected |
| server_error | the API answered a 5xx other than 503 (a bug: bad input must get a 4xx) |
| invalid_accepted | the API answered 202 to a malformed order |
| wrong_answer | a resubmission of the same body got 409, or another body for an accepted id got 202 |
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from enum import StrEnum
from typing import Any

import aio_pika
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from common.settings import Settings
from compare.history import History, Intent, Outcome

EXAMPLES = 5


class AnomalyKind(StrEnum):
    LOST = "lost"
    EFFECT_WITHOUT_ACCEPTANCE = "effect_without_acceptance"
    UNEXPECTED_ORDER = "unexpected_order"
    BODY_CHANGED = "body_changed"
    DOUBLE_DEDUCTION = "double_deduction"
    OVERSELL = "oversell"
    STOCK_CONSERVATION = "stock_conservation"
    LEDGER_MISMATCH = "ledger_mismatch"
    CONFIRMED_WITHOUT_DEDUCTION = "confirmed_without_deduction"
    DEDUCTION_WITHOUT_CONFIRMED = "deduction_without_confirmed"
    STUCK = "stuck"
    LEFTOVER_OUTBOX = "leftover_outbox"
    DEAD_LETTERS = "dead_letters"
    SERVER_ERROR = "server_error"
    INVALID_ACCEPTED = "invalid_accepted"
    WRONG_ANSWER = "wrong_answer"


class OrderRow(BaseModel):
    order_id: str
    status: str
    lines: list[dict[str, Any]]
    reason: str | None = None


class DeductionRow(BaseModel):
    order_id: str
    sku: str
    quantity: int
    source_id: str = ""


class SystemState(BaseModel):
    """What the checker reads after recovery. None = not applicable to this variant."""

    orders: dict[str, OrderRow] = Field(default_factory=dict)
    deductions: list[DeductionRow] = Field(default_factory=list)
    stock: dict[str, int] = Field(default_factory=dict)
    outbox_rows: int | None = None
    dead_letters: int | None = None
    workflows: dict[str, str] | None = None  # order_id -> Temporal status name (absent: not started)


class Anomaly(BaseModel):
    kind: AnomalyKind
    count: int
    examples: list[str] = Field(default_factory=list)


class Summary(BaseModel):
    submitted: int = 0
    attempts: int = 0
    accepted: int = 0
    refused: int = 0
    indeterminate: int = 0
    confirmed: int = 0
    rejected: int = 0
    pending: int = 0
    deducted_units: int = 0


class Verdict(BaseModel):
    anomalies: list[Anomaly] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)
    outbox_rows: int | None = None
    dead_letters: int | None = None

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def count(self, kind: AnomalyKind) -> int:
        return sum(a.count for a in self.anomalies if a.kind is kind)

    def counts(self) -> dict[str, int]:
        return {a.kind.value: a.count for a in self.anomalies}


def _lines(lines: list[dict[str, Any]]) -> dict[str, int]:
    return {str(line["sku"]): int(line["quantity"]) for line in lines}


class _Findings:
    def __init__(self) -> None:
        self.items: dict[AnomalyKind, list[str]] = defaultdict(list)
        self.counts: Counter[AnomalyKind] = Counter()

    def add(self, kind: AnomalyKind, example: str, count: int = 1) -> None:
        self.counts[kind] += count
        if len(self.items[kind]) < EXAMPLES:
            self.items[kind].append(example)

    def anomalies(self) -> list[Anomaly]:
        return [
            Anomaly(kind=kind, count=self.counts[kind], examples=self.items[kind])
            for kind in AnomalyKind
            if self.counts[kind]
        ]


def judge(history: History, state: SystemState) -> Verdict:
    f = _Findings()
    accepted = history.accepted()
    refused = history.refused()
    orders = state.orders

    ledger_by_order: dict[str, Counter[str]] = defaultdict(Counter)
    pairs: Counter[tuple[str, str]] = Counter()
    ledger_by_sku: Counter[str] = Counter()
    for d in state.deductions:
        ledger_by_order[d.order_id][d.sku] += d.quantity
        pairs[(d.order_id, d.sku)] += 1
        ledger_by_sku[d.sku] += d.quantity

    # --- the client's view against the system's ---
    for order_id in sorted(accepted):
        row = orders.get(order_id)
        if row is None or row.status == "PENDING":
            f.add(AnomalyKind.LOST, f"{order_id}: {'absent' if row is None else 'PENDING'}")
    for order_id in sorted(refused):
        if order_id in orders or order_id in ledger_by_order:
            f.add(AnomalyKind.EFFECT_WITHOUT_ACCEPTANCE, order_id)
    for order_id in sorted(set(orders) | set(ledger_by_order)):
        if order_id not in history.orders:
            f.add(AnomalyKind.UNEXPECTED_ORDER, order_id)
    for order_id, row in sorted(orders.items()):
        submitted = history.orders.get(order_id)
        if submitted is not None and _lines(row.lines) != _lines(submitted.lines):
            f.add(AnomalyKind.BODY_CHANGED, order_id)

    # --- the ledger ---
    for (order_id, sku), n in sorted(pairs.items()):
        if n > 1:
            f.add(AnomalyKind.DOUBLE_DEDUCTION, f"{order_id}/{sku} x{n}")
    for order_id, row in sorted(orders.items()):
        deducted = ledger_by_order.get(order_id)
        if row.status == "CONFIRMED":
            wanted = Counter(_lines(row.lines))
            if deducted is None or any(deducted[sku] < q for sku, q in wanted.items()):
                f.add(AnomalyKind.CONFIRMED_WITHOUT_DEDUCTION, order_id)
        elif deducted:
            f.add(AnomalyKind.DEDUCTION_WITHOUT_CONFIRMED, f"{order_id}: {row.status}")
    for order_id in sorted(set(ledger_by_order) - set(orders)):
        f.add(AnomalyKind.DEDUCTION_WITHOUT_CONFIRMED, f"{order_id}: no order row")

    # --- stock per SKU ---
    confirmed_demand: Counter[str] = Counter()
    for row in orders.values():
        if row.status == "CONFIRMED":
            confirmed_demand.update(_lines(row.lines))
    for sku, initial in sorted(history.initial_stock.items()):
        final = state.stock.get(sku)
        if final is None:
            f.add(AnomalyKind.STOCK_CONSERVATION, f"{sku}: missing")
            continue
        moved = initial - final
        if final < 0 or ledger_by_sku[sku] > initial:
            f.add(AnomalyKind.OVERSELL, f"{sku}: initial {initial}, deducted {ledger_by_sku[sku]}")
        if moved != confirmed_demand[sku]:
            f.add(AnomalyKind.STOCK_CONSERVATION, f"{sku}: moved {moved}, confirmed {confirmed_demand[sku]}")
        if moved != ledger_by_sku[sku]:
            f.add(AnomalyKind.LEDGER_MISMATCH, f"{sku}: moved {moved}, ledger {ledger_by_sku[sku]}")

    # --- left behind ---
    for order_id, row in sorted(orders.items()):
        if row.status == "PENDING":
            f.add(AnomalyKind.STUCK, f"{order_id}: PENDING")
    if state.workflows is not None:
        for order_id, status in sorted(state.workflows.items()):
            if status not in ("COMPLETED", "ABSENT"):
                f.add(AnomalyKind.STUCK, f"{order_id}: workflow {status}")
    if state.outbox_rows:
        f.add(AnomalyKind.LEFTOVER_OUTBOX, f"{state.outbox_rows} rows", state.outbox_rows)
    if state.dead_letters is not None and state.dead_letters > history.poison_messages:
        extra = state.dead_letters - history.poison_messages
        f.add(AnomalyKind.DEAD_LETTERS, f"{extra} beyond {history.poison_messages} injected", extra)
    for attempt in history.attempts:
        if attempt.outcome is Outcome.SERVER_ERROR:
            f.add(AnomalyKind.SERVER_ERROR, f"{attempt.order_id}: {attempt.status}")
        if attempt.intent is Intent.INVALID and attempt.outcome is Outcome.ACCEPTED:
            f.add(AnomalyKind.INVALID_ACCEPTED, attempt.order_id)
        if attempt.intent is Intent.VALID and attempt.outcome is Outcome.CONFLICT:
            f.add(AnomalyKind.WRONG_ANSWER, f"{attempt.order_id}: 409 for the same body")
        if (
            attempt.intent is Intent.CONFLICT
            and attempt.outcome is Outcome.ACCEPTED
            and attempt.order_id in accepted
            and any(
                a.outcome is Outcome.ACCEPTED and a.intent is Intent.VALID and a.ended <= attempt.started
                for a in history.attempts_of(attempt.order_id)
            )
        ):
            f.add(AnomalyKind.WRONG_ANSWER, f"{attempt.order_id}: 202 for another body")

    statuses = Counter(row.status for row in orders.values())
    grouped = history.by_order()
    summary = Summary(
        submitted=len(history.orders),
        attempts=len(history.attempts),
        accepted=len(accepted),
        refused=len(refused),
        indeterminate=sum(1 for oid in grouped if oid not in accepted and oid not in refused),
        confirmed=statuses["CONFIRMED"],
        rejected=statuses["REJECTED"],
        pending=statuses["PENDING"],
        deducted_units=sum(ledger_by_sku.values()),
    )
    return Verdict(
        anomalies=f.anomalies(),
        summary=summary,
        outbox_rows=state.outbox_rows,
        dead_letters=state.dead_letters,
    )


def converged(history: History, state: SystemState) -> bool:
    """Recovery is over: every accepted order terminal, nothing PENDING, outbox empty."""
    if any(row.status == "PENDING" for row in state.orders.values()):
        return False
    if any(order_id not in state.orders for order_id in history.accepted()):
        return False
    if state.outbox_rows:
        return False
    return state.workflows is None or all(s in ("COMPLETED", "ABSENT") for s in state.workflows.values())


# --------------------------------------------------------------------------- reading the state


class StateReader:
    """Reads a variant's final state from outside. Addresses must be the real servers, not proxies.

    `db_code` is the variant's database code ("mq" / "wf"); `dead_letter_queues` the broker queue
    names to count (MQ); `temporal` True to describe workflows `order-<id>` (workflow variant).
    On a database other runs share, `order_prefix` keeps to this run's orders and
    `dead_letters_before` is the dead-letter depth its count starts from.
    """

    order_prefix: str = ""
    dead_letters_before: int = 0

    def __init__(
        self,
        settings: Settings,
        db_code: str,
        *,
        dead_letter_queues: tuple[str, ...] = (),
        temporal: bool = False,
    ) -> None:
        self._settings = settings
        self._orders = create_async_engine(
            settings.database_url(settings.database(db_code, "orders")), pool_size=2
        )
        self._inventory = create_async_engine(
            settings.database_url(settings.database(db_code, "inventory")), pool_size=2
        )
        self._dlqs = dead_letter_queues
        self._temporal = temporal
        self._client: Client | None = None

    async def close(self) -> None:
        await self._orders.dispose()
        await self._inventory.dispose()

    async def read(self, history: History, *, workflows: bool = True) -> SystemState:
        skus = list(history.initial_stock)
        async with self._orders.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT order_id, status, lines, reason FROM t_order WHERE starts_with(order_id, :p)"
                    ),
                    {"p": self.order_prefix},
                )
            ).all()
            orders_outbox = await _count_if_exists(conn, "t_local_msg")
        async with self._inventory.connect() as conn:
            ledger = (
                await conn.execute(
                    text(
                        "SELECT order_id, sku, quantity, source_id FROM t_deduction_log"
                        " WHERE starts_with(order_id, :p)"
                    ),
                    {"p": self.order_prefix},
                )
            ).all()
            stock = (
                await conn.execute(
                    text("SELECT sku, quantity FROM t_stock WHERE sku = ANY(:skus)"), {"skus": skus}
                )
            ).all()
            inventory_outbox = await _count_if_exists(conn, "t_local_msg")
        outbox = None
        if orders_outbox is not None or inventory_outbox is not None:
            outbox = (orders_outbox or 0) + (inventory_outbox or 0)
        state = SystemState(
            orders={
                r.order_id: OrderRow(order_id=r.order_id, status=r.status, lines=r.lines, reason=r.reason)
                for r in rows
            },
            deductions=[
                DeductionRow(order_id=r.order_id, sku=r.sku, quantity=r.quantity, source_id=r.source_id)
                for r in ledger
            ],
            stock={r.sku: r.quantity for r in stock},
            outbox_rows=outbox,
        )
        if self._dlqs:
            state.dead_letters = max(0, await self.dead_letters() - self.dead_letters_before)
        if self._temporal and workflows:
            ids = set(history.orders) | set(state.orders)
            state.workflows = await self._workflow_statuses(sorted(ids))
        return state

    async def dead_letters(self) -> int:
        """Messages now in the dead-letter queues."""
        total = 0
        connection = await aio_pika.connect(self._settings.amqp_url, timeout=10)
        async with connection:
            for name in self._dlqs:
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(name, passive=True)
                    total += queue.declaration_result.message_count or 0
                except aio_pika.exceptions.ChannelClosed:
                    continue  # never declared: nothing was dead-lettered
        return total

    async def _workflow_statuses(self, order_ids: list[str]) -> dict[str, str]:
        if self._client is None:
            self._client = await Client.connect(
                self._settings.temporal_address, namespace=self._settings.temporal_namespace
            )
        client = self._client
        limit = asyncio.Semaphore(16)

        async def one(order_id: str) -> tuple[str, str]:
            async with limit:
                try:
                    desc = await client.get_workflow_handle(f"order-{order_id}").describe()
                except RPCError as exc:
                    if exc.status is RPCStatusCode.NOT_FOUND:
                        return order_id, "ABSENT"
                    raise
                status = desc.status.name if desc.status is not None else "UNKNOWN"
                return order_id, status

        return dict(await asyncio.gather(*(one(o) for o in order_ids)))


async def _count_if_exists(conn: AsyncConnection, table: str) -> int | None:
    exists = await conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table})
    if not exists:
        return None
    with contextlib.suppress(Exception):
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")))
    return None

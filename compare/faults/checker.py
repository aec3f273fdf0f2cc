"""The consistency checker: a history plus the system's final state in, a verdict out.

`judge(history, state)` is pure (unit-tested on hand-made histories and states);
`read_state(...)` reads what it needs from the outside only: the variant's two databases
(t_order, t_stock, t_deduction_log, t_local_msg), the broker's dead-letter queues (MQ) and the
Temporal workflows `order-<order_id>` (workflow variant). It knows nothing else of the variants.
A dead-letter queue that does not exist is an error (DeadLetterQueueMissing), never a count of 0:
the MQ variant declares its topology when it starts, so a missing queue means something is wrong.

Anomaly kinds (each counted; a real variant must show none after recovery). The checker trusts
only the client's own history and the stock it seeded: an outcome the system chose (a REJECTED
order, a dead-lettered message) must be justified by that data, or it is an anomaly.

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
| stranded | dead-lettered messages the run did not inject as poison (any, if it injected none) |
| unjustified_rejection | a REJECTED order the seeded stock does not justify (below) |
| no_progress | fewer than `min_accepted` of the valid orders attempted got a 202 (below) |
| server_error | the API answered a 5xx other than 503 (a bug: bad input must get a 4xx) |
| invalid_accepted | the API answered 202 to a malformed order |
| wrong_answer | a resubmission of the same body got 409, or another body for an accepted id got 202 |

A rejection is justified only by the seeded stock: "insufficient stock ..." (and any reason the
checker cannot classify) when, for one of the order's lines, the SKU's final stock is below the
line's quantity (stock only decreases during a run, so it was short then too); "unknown sku X"
only when the workload never seeded X. No progress: each valid order the client attempted counts
once (duplicate submissions, conflicting bodies and invalid requests aside); a run in which the
system turned nearly everything away (503s, timeouts) proves nothing, so it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
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
from compare.faults.history import History, Intent, Outcome

EXAMPLES = 5
MIN_ACCEPTED = 0.5  # the default share of valid attempted orders a run must get accepted


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
    STRANDED = "stranded"
    UNJUSTIFIED_REJECTION = "unjustified_rejection"
    NO_PROGRESS = "no_progress"
    SERVER_ERROR = "server_error"
    INVALID_ACCEPTED = "invalid_accepted"
    WRONG_ANSWER = "wrong_answer"


class DeadLetterQueueMissing(RuntimeError):
    """A dead-letter queue the run must count does not exist: its dead letters cannot be known."""


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
    intended: int = 0  # valid orders the client attempted (each once)
    accepted_fraction: float | None = None  # of `intended`, the share that got a 202


class Verdict(BaseModel):
    anomalies: list[Anomaly] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)
    outbox_rows: int | None = None
    dead_letters: int | None = None
    min_accepted: float = MIN_ACCEPTED

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


class _Ledger:
    """The audit ledger, grouped the ways the checks need it."""

    def __init__(self, deductions: list[DeductionRow]) -> None:
        self.by_order: dict[str, Counter[str]] = defaultdict(Counter)
        self.pairs: Counter[tuple[str, str]] = Counter()
        self.by_sku: Counter[str] = Counter()
        for d in deductions:
            self.by_order[d.order_id][d.sku] += d.quantity
            self.pairs[(d.order_id, d.sku)] += 1
            self.by_sku[d.sku] += d.quantity


def judge(history: History, state: SystemState, *, min_accepted: float = MIN_ACCEPTED) -> Verdict:
    """Every anomaly the history and the final state show; `min_accepted`: see NO_PROGRESS."""
    f = _Findings()
    ledger = _Ledger(state.deductions)
    _check_client_view(f, history, state, ledger)
    _check_ledger(f, state, ledger)
    _check_stock(f, history, state, ledger)
    _check_rejections(f, history, state)
    _check_left_behind(f, history, state)
    _check_answers(f, history)
    summary = _summary(history, state, ledger)
    _check_progress(f, summary, min_accepted)
    return Verdict(
        anomalies=f.anomalies(),
        summary=summary,
        outbox_rows=state.outbox_rows,
        dead_letters=state.dead_letters,
        min_accepted=min_accepted,
    )


def _check_client_view(f: _Findings, history: History, state: SystemState, ledger: _Ledger) -> None:
    orders = state.orders
    for order_id in sorted(history.accepted()):
        row = orders.get(order_id)
        if row is None or row.status == "PENDING":
            f.add(AnomalyKind.LOST, f"{order_id}: {'absent' if row is None else 'PENDING'}")
    for order_id in sorted(history.refused()):
        if order_id in orders or order_id in ledger.by_order:
            f.add(AnomalyKind.EFFECT_WITHOUT_ACCEPTANCE, order_id)
    for order_id in sorted(set(orders) | set(ledger.by_order)):
        if order_id not in history.orders:
            f.add(AnomalyKind.UNEXPECTED_ORDER, order_id)
    for order_id, row in sorted(orders.items()):
        submitted = history.orders.get(order_id)
        if submitted is not None and _lines(row.lines) != _lines(submitted.lines):
            f.add(AnomalyKind.BODY_CHANGED, order_id)


def _check_ledger(f: _Findings, state: SystemState, ledger: _Ledger) -> None:
    for (order_id, sku), n in sorted(ledger.pairs.items()):
        if n > 1:
            f.add(AnomalyKind.DOUBLE_DEDUCTION, f"{order_id}/{sku} x{n}")
    for order_id, row in sorted(state.orders.items()):
        deducted = ledger.by_order.get(order_id)
        if row.status == "CONFIRMED":
            wanted = Counter(_lines(row.lines))
            if deducted is None or any(deducted[sku] < q for sku, q in wanted.items()):
                f.add(AnomalyKind.CONFIRMED_WITHOUT_DEDUCTION, order_id)
        elif deducted:
            f.add(AnomalyKind.DEDUCTION_WITHOUT_CONFIRMED, f"{order_id}: {row.status}")
    for order_id in sorted(set(ledger.by_order) - set(state.orders)):
        f.add(AnomalyKind.DEDUCTION_WITHOUT_CONFIRMED, f"{order_id}: no order row")


def _check_stock(f: _Findings, history: History, state: SystemState, ledger: _Ledger) -> None:
    confirmed_demand: Counter[str] = Counter()
    for row in state.orders.values():
        if row.status == "CONFIRMED":
            confirmed_demand.update(_lines(row.lines))
    for sku, initial in sorted(history.initial_stock.items()):
        final = state.stock.get(sku)
        if final is None:
            f.add(AnomalyKind.STOCK_CONSERVATION, f"{sku}: missing")
            continue
        moved = initial - final
        if final < 0 or ledger.by_sku[sku] > initial:
            f.add(AnomalyKind.OVERSELL, f"{sku}: initial {initial}, deducted {ledger.by_sku[sku]}")
        if moved != confirmed_demand[sku]:
            f.add(AnomalyKind.STOCK_CONSERVATION, f"{sku}: moved {moved}, confirmed {confirmed_demand[sku]}")
        if moved != ledger.by_sku[sku]:
            f.add(AnomalyKind.LEDGER_MISMATCH, f"{sku}: moved {moved}, ledger {ledger.by_sku[sku]}")


# How common.deduction words a rejection: "insufficient stock for SKU: 0 < 2", "unknown sku SKU".
_INSUFFICIENT = re.compile(r"\s*insufficient stock\b", re.IGNORECASE)
_UNKNOWN_SKU = re.compile(r"\s*unknown sku\s+(\S+)", re.IGNORECASE)


def _check_rejections(f: _Findings, history: History, state: SystemState) -> None:
    """A REJECTED order must be justified by the seeded stock (stock only decreases in a run)."""
    for order_id, row in sorted(state.orders.items()):
        submitted = history.orders.get(order_id)
        if row.status != "REJECTED" or submitted is None or submitted.intent is not Intent.VALID:
            continue  # not REJECTED, or already an unexpected order / an effect of a refused one
        why = _unjustified(_lines(submitted.lines), row.reason, history.initial_stock, state.stock)
        if why is not None:
            f.add(AnomalyKind.UNJUSTIFIED_REJECTION, f"{order_id}: {row.reason!r}, but {why}")


def _unjustified(
    lines: dict[str, int], reason: str | None, seeded: dict[str, int], final: dict[str, int]
) -> str | None:
    """Why the rejection is not justified, or None when the client's data justifies it."""
    unknown = _UNKNOWN_SKU.match(reason or "")
    if unknown is not None:
        sku = unknown.group(1).rstrip(".,;:")
        if sku in seeded:
            return f"{sku} was seeded with {seeded[sku]}"
        return None if sku in lines else f"{sku} is not in the order"
    short = [sku for sku, q in lines.items() if _final(sku, seeded, final) < q]
    if short:
        return None
    words = "" if _INSUFFICIENT.match(reason or "") else "the reason is not one the checker knows, and "
    cover = ", ".join(f"{sku} {_final(sku, seeded, final)} >= {q}" for sku, q in sorted(lines.items()))
    return f"{words}every line's final stock covers it ({cover})"


def _final(sku: str, seeded: dict[str, int], final: dict[str, int]) -> float:
    """A SKU's final stock; 0 for one never seeded, +inf for a seeded one that cannot be read."""
    if sku not in seeded:
        return 0
    return final.get(sku, float("inf"))


def _check_left_behind(f: _Findings, history: History, state: SystemState) -> None:
    for order_id, row in sorted(state.orders.items()):
        if row.status == "PENDING":
            f.add(AnomalyKind.STUCK, f"{order_id}: PENDING")
    if state.workflows is not None:
        for order_id, status in sorted(state.workflows.items()):
            if status not in ("COMPLETED", "ABSENT"):
                f.add(AnomalyKind.STUCK, f"{order_id}: workflow {status}")
    if state.outbox_rows:
        f.add(AnomalyKind.LEFTOVER_OUTBOX, f"{state.outbox_rows} rows", state.outbox_rows)
    poison = history.poison_messages
    if state.dead_letters is not None and state.dead_letters > poison:
        extra = state.dead_letters - poison
        where = f"beyond the {poison} poison messages injected" if poison else "in a run without poison"
        f.add(AnomalyKind.STRANDED, f"{extra} dead-lettered {where}", extra)


def _check_answers(f: _Findings, history: History) -> None:
    accepted = history.accepted()
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


def _summary(history: History, state: SystemState, ledger: _Ledger) -> Summary:
    accepted = history.accepted()
    refused = history.refused()
    intended = {oid for oid, o in history.orders.items() if o.intent is Intent.VALID}
    statuses = Counter(row.status for row in state.orders.values())
    return Summary(
        submitted=len(history.orders),
        attempts=len(history.attempts),
        accepted=len(accepted),
        refused=len(refused),
        indeterminate=sum(1 for oid in history.by_order() if oid not in accepted and oid not in refused),
        confirmed=statuses["CONFIRMED"],
        rejected=statuses["REJECTED"],
        pending=statuses["PENDING"],
        deducted_units=sum(ledger.by_sku.values()),
        intended=len(intended),
        accepted_fraction=round(len(intended & accepted) / len(intended), 4) if intended else None,
    )


def _check_progress(f: _Findings, summary: Summary, min_accepted: float) -> None:
    """A run in which the system turned (nearly) everything away proves nothing: it fails."""
    fraction = summary.accepted_fraction
    if fraction is None:
        f.add(AnomalyKind.NO_PROGRESS, "no valid order was attempted")
    elif fraction < min_accepted:
        accepted = round(fraction * summary.intended)
        f.add(
            AnomalyKind.NO_PROGRESS,
            f"{accepted} of {summary.intended} valid orders accepted ({fraction:.0%}), "
            f"at least {min_accepted:.0%} required",
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
        """Messages now in the dead-letter queues; DeadLetterQueueMissing if one does not exist."""
        total = 0
        connection = await aio_pika.connect(self._settings.amqp_url, timeout=10)
        async with connection:
            for name in self._dlqs:
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(name, passive=True)
                except aio_pika.exceptions.ChannelClosed as exc:
                    raise DeadLetterQueueMissing(
                        f"dead-letter queue {name} does not exist (the variant declares it when it "
                        f"starts): its dead letters cannot be counted ({exc})"
                    ) from exc
                total += queue.declaration_result.message_count or 0
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

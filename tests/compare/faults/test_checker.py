"""The checker on hand-made histories and states: each anomaly kind found, a clean run passes;
and the state reader refuses to count a dead-letter queue that does not exist (real RabbitMQ)."""

from __future__ import annotations

import uuid

import pytest

from common.settings import Settings
from compare.faults.checker import (
    AnomalyKind,
    DeadLetterQueueMissing,
    DeductionRow,
    OrderRow,
    StateReader,
    SystemState,
    converged,
    judge,
)
from compare.faults.history import Attempt, History, Intent, Outcome, SubmittedOrder


def _history() -> History:
    h = History(initial_stock={"A": 10, "B": 1})
    for oid, sku, qty, status in (("o1", "A", 3, 202), ("o2", "B", 1, 202), ("o3", "B", 1, 202)):
        h.submitted(SubmittedOrder(order_id=oid, customer_id="c", lines=[{"sku": sku, "quantity": qty}]))
        h.attempts.append(
            Attempt(order_id=oid, started=0, ended=0.1, status=status, outcome=Outcome.ACCEPTED)
        )
    h.submitted(
        SubmittedOrder(
            order_id="bad", customer_id="c", lines=[{"sku": "A", "quantity": -1}], intent=Intent.INVALID
        )
    )
    h.attempts.append(
        Attempt(
            order_id="bad", intent=Intent.INVALID, started=0, ended=0.1, status=422, outcome=Outcome.INVALID
        )
    )
    return h


def _clean() -> SystemState:
    return SystemState(
        orders={
            "o1": OrderRow(order_id="o1", status="CONFIRMED", lines=[{"sku": "A", "quantity": 3}]),
            "o2": OrderRow(order_id="o2", status="CONFIRMED", lines=[{"sku": "B", "quantity": 1}]),
            "o3": OrderRow(order_id="o3", status="REJECTED", lines=[{"sku": "B", "quantity": 1}]),
        },
        deductions=[
            DeductionRow(order_id="o1", sku="A", quantity=3),
            DeductionRow(order_id="o2", sku="B", quantity=1),
        ],
        stock={"A": 7, "B": 0},
        outbox_rows=0,
        dead_letters=0,
    )


def test_clean_run_passes() -> None:
    verdict = judge(_history(), _clean())
    assert verdict.ok, verdict.anomalies
    assert verdict.summary.accepted == 3 and verdict.summary.refused == 1
    assert verdict.summary.confirmed == 2 and verdict.summary.rejected == 1
    assert converged(_history(), _clean())


def test_lost_and_stuck() -> None:
    state = _clean()
    del state.orders["o3"]
    state.orders["o1"] = state.orders["o1"].model_copy(update={"status": "PENDING"})
    state.deductions = [d for d in state.deductions if d.order_id != "o1"]
    state.stock["A"] = 10
    verdict = judge(_history(), state)
    assert verdict.count(AnomalyKind.LOST) == 2  # o1 PENDING, o3 absent
    assert verdict.count(AnomalyKind.STUCK) == 1
    assert not converged(_history(), state)


def test_double_deduction_breaks_conservation_not_ledger() -> None:
    state = _clean()
    state.deductions.append(DeductionRow(order_id="o1", sku="A", quantity=3, source_id="redelivery"))
    state.stock["A"] = 4
    verdict = judge(_history(), state)
    assert verdict.count(AnomalyKind.DOUBLE_DEDUCTION) == 1
    assert verdict.count(AnomalyKind.STOCK_CONSERVATION) == 1
    assert verdict.count(AnomalyKind.LEDGER_MISMATCH) == 0


def test_oversell() -> None:
    state = _clean()
    state.orders["o3"] = state.orders["o3"].model_copy(update={"status": "CONFIRMED"})
    state.deductions.append(DeductionRow(order_id="o3", sku="B", quantity=1))
    state.stock["B"] = -1
    verdict = judge(_history(), state)
    assert verdict.count(AnomalyKind.OVERSELL) == 1


def test_confirmed_without_deduction_and_deduction_without_confirmed() -> None:
    state = _clean()
    state.deductions = [d for d in state.deductions if d.order_id != "o2"]
    state.deductions.append(DeductionRow(order_id="o3", sku="B", quantity=1))
    verdict = judge(_history(), state)
    assert verdict.count(AnomalyKind.CONFIRMED_WITHOUT_DEDUCTION) == 1
    assert verdict.count(AnomalyKind.DEDUCTION_WITHOUT_CONFIRMED) == 1


def test_stock_moved_without_ledger() -> None:
    state = _clean()
    state.stock["A"] = 6
    verdict = judge(_history(), state)
    assert verdict.count(AnomalyKind.LEDGER_MISMATCH) == 1
    assert verdict.count(AnomalyKind.STOCK_CONSERVATION) == 1


def test_effects_of_a_refused_order_and_unexpected_orders() -> None:
    state = _clean()
    state.orders["bad"] = OrderRow(order_id="bad", status="REJECTED", lines=[{"sku": "A", "quantity": 1}])
    state.orders["ghost"] = OrderRow(order_id="ghost", status="REJECTED", lines=[{"sku": "A", "quantity": 1}])
    verdict = judge(_history(), state)
    assert verdict.count(AnomalyKind.EFFECT_WITHOUT_ACCEPTANCE) == 1
    assert verdict.count(AnomalyKind.UNEXPECTED_ORDER) == 1
    assert verdict.count(AnomalyKind.BODY_CHANGED) == 1  # "bad" stored with another body


def test_indeterminate_attempts_allow_either_fate() -> None:
    h = _history()
    h.submitted(SubmittedOrder(order_id="maybe", customer_id="c", lines=[{"sku": "A", "quantity": 1}]))
    h.attempts.append(Attempt(order_id="maybe", started=0, ended=5, outcome=Outcome.NO_ANSWER))
    assert judge(h, _clean()).ok
    state = _clean()
    state.orders["maybe"] = OrderRow(
        order_id="maybe", status="CONFIRMED", lines=[{"sku": "A", "quantity": 1}]
    )
    state.deductions.append(DeductionRow(order_id="maybe", sku="A", quantity=1))
    state.stock["A"] = 6
    verdict = judge(h, state)
    assert verdict.ok, verdict.anomalies
    assert verdict.summary.indeterminate == 1


def test_leftovers_dead_letters_workflows_and_server_errors() -> None:
    h = _history()
    h.poison_messages = 2
    h.attempts.append(Attempt(order_id="o1", started=1, ended=1.1, status=500, outcome=Outcome.SERVER_ERROR))
    state = _clean()
    state.outbox_rows = 4
    state.dead_letters = 3
    state.workflows = {"o1": "COMPLETED", "o2": "RUNNING", "o3": "FAILED", "bad": "ABSENT"}
    verdict = judge(h, state)
    assert verdict.count(AnomalyKind.LEFTOVER_OUTBOX) == 4
    assert verdict.count(AnomalyKind.STRANDED) == 1
    assert verdict.count(AnomalyKind.STUCK) == 2
    assert verdict.count(AnomalyKind.SERVER_ERROR) == 1
    assert not converged(h, state)


def test_poison_messages_in_the_dlq_are_expected() -> None:
    h = _history()
    h.poison_messages = 3
    state = _clean()
    state.dead_letters = 3
    assert judge(h, state).ok


def test_wrong_answers_to_resubmissions() -> None:
    h = _history()
    h.attempts.append(Attempt(order_id="o1", started=1, ended=1.1, status=409, outcome=Outcome.CONFLICT))
    h.attempts.append(
        Attempt(
            order_id="o2", intent=Intent.CONFLICT, started=1, ended=1.1, status=202, outcome=Outcome.ACCEPTED
        )
    )
    h.attempts.append(
        Attempt(
            order_id="o3", intent=Intent.CONFLICT, started=1, ended=1.1, status=409, outcome=Outcome.CONFLICT
        )
    )
    assert judge(h, _clean()).count(AnomalyKind.WRONG_ANSWER) == 2


# --- outcomes the system chose must be justified by the client's history and the seeded stock ---


def _rejected(order_id: str, sku: str, reason: str | None) -> OrderRow:
    return OrderRow(order_id=order_id, status="REJECTED", lines=[{"sku": sku, "quantity": 1}], reason=reason)


def test_an_insufficient_stock_rejection_needs_the_final_stock_below_the_line() -> None:
    h = _history()
    h.initial_stock["B"] = 2  # o2 took one unit of B: one is left, enough for o3
    state = _clean()
    state.stock["B"] = 1
    state.orders["o3"] = _rejected("o3", "B", "insufficient stock for B: 0 < 1")
    verdict = judge(h, state)
    assert verdict.count(AnomalyKind.UNJUSTIFIED_REJECTION) == 1, verdict.anomalies
    (found,) = [a for a in verdict.anomalies if a.kind is AnomalyKind.UNJUSTIFIED_REJECTION]
    assert "o3" in found.examples[0] and "insufficient stock" in found.examples[0]
    # the same words are justified where the stock really ran out (B: 1 seeded, 0 left)
    state = _clean()
    state.orders["o3"] = _rejected("o3", "B", "insufficient stock for B: 0 < 1")
    assert judge(_history(), state).ok


def test_an_unknown_sku_rejection_is_justified_only_for_a_sku_never_seeded() -> None:
    h = _history()
    h.initial_stock["B"] = 2
    state = _clean()
    state.stock["B"] = 1
    state.orders["o3"] = _rejected("o3", "B", "unknown sku B")  # B was seeded: not unknown
    verdict = judge(h, state)
    assert verdict.count(AnomalyKind.UNJUSTIFIED_REJECTION) == 1, verdict.anomalies
    (found,) = [a for a in verdict.anomalies if a.kind is AnomalyKind.UNJUSTIFIED_REJECTION]
    assert "unknown sku" in found.examples[0] and "seeded" in found.examples[0]
    # an order for a SKU the workload never seeded is rightly rejected
    h = _history()
    h.submitted(SubmittedOrder(order_id="o4", customer_id="c", lines=[{"sku": "Z", "quantity": 1}]))
    h.attempts.append(Attempt(order_id="o4", started=0, ended=0.1, status=202, outcome=Outcome.ACCEPTED))
    state = _clean()
    state.orders["o4"] = _rejected("o4", "Z", "unknown sku Z")
    assert judge(h, state).ok


def test_an_unclassified_reason_needs_a_line_short_of_stock() -> None:
    h = _history()
    h.initial_stock["B"] = 2
    state = _clean()
    state.stock["B"] = 1
    state.orders["o3"] = _rejected("o3", "B", "the moon is in the wrong phase")
    assert judge(h, state).count(AnomalyKind.UNJUSTIFIED_REJECTION) == 1


def test_a_variant_that_rejects_everything_fails() -> None:
    state = _clean()
    state.orders = {oid: _rejected(oid, row.lines[0]["sku"], "insufficient stock")
                    for oid, row in state.orders.items()}  # fmt: skip
    state.orders["o1"] = state.orders["o1"].model_copy(update={"lines": [{"sku": "A", "quantity": 3}]})
    state.deductions = []
    state.stock = {"A": 10, "B": 1}
    verdict = judge(_history(), state)
    assert verdict.count(AnomalyKind.UNJUSTIFIED_REJECTION) == 3, verdict.anomalies


def _orders(h: History, n: int, outcome: Outcome, *, start: int = 0, tries: int = 1) -> None:
    for i in range(start, start + n):
        oid = f"n{i}"
        h.submitted(SubmittedOrder(order_id=oid, customer_id="c", lines=[{"sku": "A", "quantity": 1}]))
        for _ in range(tries):
            h.attempts.append(Attempt(order_id=oid, started=0, ended=1, outcome=outcome,
                                      status=202 if outcome is Outcome.ACCEPTED else 503))  # fmt: skip


def _confirmed(h: History) -> SystemState:
    accepted = sorted(h.accepted())
    return SystemState(
        orders={
            o: OrderRow(order_id=o, status="CONFIRMED", lines=[{"sku": "A", "quantity": 1}]) for o in accepted
        },
        deductions=[DeductionRow(order_id=o, sku="A", quantity=1) for o in accepted],
        stock={"A": 100 - len(accepted)},
    )


def test_a_run_that_accepted_too_few_orders_made_no_progress() -> None:
    h = History(initial_stock={"A": 100})
    _orders(h, 4, Outcome.ACCEPTED)
    _orders(h, 6, Outcome.UNAVAILABLE, start=4, tries=5)  # every retry a 503
    verdict = judge(h, _confirmed(h), min_accepted=0.5)
    assert verdict.count(AnomalyKind.NO_PROGRESS) == 1, verdict.anomalies
    assert verdict.summary.intended == 10 and verdict.summary.accepted_fraction == 0.4
    assert verdict.min_accepted == 0.5
    assert judge(h, _confirmed(h), min_accepted=0.4).ok  # the threshold is the scenario's to state


def test_progress_counts_valid_intended_orders_once() -> None:
    h = History(initial_stock={"A": 100})
    _orders(h, 3, Outcome.ACCEPTED, tries=4)  # a duplicate storm: four 202s each, one order each
    for i in range(20):  # invalid requests are refused on purpose: they are not orders to accept
        h.submitted(SubmittedOrder(order_id=f"bad{i}", customer_id="c", lines=[], intent=Intent.INVALID))
        h.attempts.append(Attempt(order_id=f"bad{i}", intent=Intent.INVALID, started=0, ended=1,
                                  status=422, outcome=Outcome.INVALID))  # fmt: skip
    verdict = judge(h, _confirmed(h))
    assert verdict.ok, verdict.anomalies
    assert verdict.summary.intended == 3 and verdict.summary.accepted_fraction == 1.0


def test_a_run_that_attempted_nothing_made_no_progress() -> None:
    verdict = judge(History(initial_stock={"A": 1}), SystemState(stock={"A": 1}))
    assert verdict.count(AnomalyKind.NO_PROGRESS) == 1


def test_a_dead_letter_in_a_run_without_poison_is_stranded() -> None:
    state = _clean()
    state.dead_letters = 2
    verdict = judge(_history(), state)
    assert verdict.count(AnomalyKind.STRANDED) == 2, verdict.anomalies
    (found,) = [a for a in verdict.anomalies if a.kind is AnomalyKind.STRANDED]
    assert "without poison" in found.examples[0]


async def test_a_missing_dead_letter_queue_is_an_error_not_zero() -> None:
    reader = StateReader(Settings(), "mq", dead_letter_queues=(f"cc-absent-{uuid.uuid4().hex[:8]}.dlq",))
    try:
        with pytest.raises(DeadLetterQueueMissing, match="does not exist"):
            await reader.dead_letters()
    finally:
        await reader.close()

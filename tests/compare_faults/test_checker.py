"""The checker on hand-made histories and states: each anomaly kind found, a clean run passes."""

from __future__ import annotations

from compare.checker import AnomalyKind, DeductionRow, OrderRow, SystemState, converged, judge
from compare.history import Attempt, History, Intent, Outcome, SubmittedOrder


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
    assert verdict.count(AnomalyKind.DEAD_LETTERS) == 1
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

"""The pure parts: deduction rule, order validation and fingerprint, fault specs, backoff."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.backoff import Backoff
from common.deduction import decide
from common.domain import OrderLine, OrderStatus, PlaceOrder
from common.faults import FaultAction, FaultPoint, Faults, FaultSpec, FaultSpecError, parse_faults


def lines(**quantities: int) -> list[OrderLine]:
    return [OrderLine(sku=sku, quantity=q) for sku, q in quantities.items()]


def test_decide_confirms_when_every_line_fits() -> None:
    outcome = decide("o", lines(a=2, b=3), {"a": 2, "b": 5})
    assert outcome.status is OrderStatus.CONFIRMED and outcome.reason is None


def test_decide_rejects_the_whole_order_on_one_short_line() -> None:
    outcome = decide("o", lines(a=1, b=6), {"a": 9, "b": 5})
    assert outcome.status is OrderStatus.REJECTED
    assert outcome.reason == "insufficient stock for b: 5 < 6"


def test_decide_rejects_unknown_sku() -> None:
    assert decide("o", lines(zz=1), {}).reason == "unknown sku zz"


def test_fingerprint_is_stable_and_body_sensitive() -> None:
    a = PlaceOrder(order_id="o1", customer_id="c", lines=lines(a=1))
    assert a.fingerprint() == PlaceOrder.model_validate_json(a.model_dump_json()).fingerprint()
    assert a.fingerprint() != PlaceOrder(order_id="o1", customer_id="c", lines=lines(a=2)).fingerprint()


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": "o", "customer_id": "c", "lines": []},
        {"order_id": "o", "customer_id": "c", "lines": [{"sku": "a", "quantity": True}]},
        {"order_id": "o", "customer_id": "c", "lines": [{"sku": "a", "quantity": 1}] * 2},
        {"order_id": "", "customer_id": "c", "lines": [{"sku": "a", "quantity": 1}]},
        {"order_id": "o", "customer_id": "c", "lines": [{"sku": "a b", "quantity": 1}]},
    ],
)
def test_invalid_orders_are_rejected(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PlaceOrder.model_validate(body)


def test_fault_spec_parsing() -> None:
    [spec] = parse_faults("inventory-consumer/after_consumer_commit=crash,times=2")
    assert spec == FaultSpec("after_consumer_commit", FaultAction.CRASH, role="inventory-consumer", times=2)
    delay, dup = parse_faults("after_publish=delay,seconds=0.5; before_publish=duplicate")
    assert delay.seconds == 0.5 and delay.role is None and dup.action is FaultAction.DUPLICATE
    for bad in ("after_publish=explode", "after_publish=crash,times=x", "after_publish=crash,when=1"):
        with pytest.raises(FaultSpecError):
            parse_faults(bad)


async def test_faults_fire_only_for_their_role_and_count_across_instances(tmp_path) -> None:
    text = "relay/after_publish=raise,times=1;before_publish=duplicate"
    other = Faults.from_text(text, "consumer", tmp_path)
    assert await other.hit(FaultPoint.AFTER_PUBLISH) is False  # not this role
    assert await other.hit(FaultPoint.BEFORE_PUBLISH) is True  # unscoped entry
    first = Faults.from_text(text, "relay", tmp_path)
    with pytest.raises(RuntimeError):
        await first.hit(FaultPoint.AFTER_PUBLISH)
    restarted = Faults.from_text(text, "relay", tmp_path)  # a restarted process: count kept on disk
    assert await restarted.hit(FaultPoint.AFTER_PUBLISH) is False
    assert not Faults.from_text("", "relay", tmp_path).armed


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(0.05 <= d <= 1.0 for d in delays) and delays[-1] >= 0.5
    backoff.reset()
    assert backoff.next_delay() <= 0.1

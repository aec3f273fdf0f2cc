"""The pure deduction rule: all lines or none, never below zero. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from common.domain import DeductionOutcome, OrderLine, OrderStatus


def decide(order_id: str, lines: Sequence[OrderLine], on_hand: Mapping[str, int]) -> DeductionOutcome:
    for line in lines:
        available = on_hand.get(line.sku)
        if available is None:
            return DeductionOutcome(
                order_id=order_id, status=OrderStatus.REJECTED, reason=f"unknown sku {line.sku}"
            )
        if available < line.quantity:
            return DeductionOutcome(
                order_id=order_id,
                status=OrderStatus.REJECTED,
                reason=f"insufficient stock for {line.sku}: {available} < {line.quantity}",
            )
    return DeductionOutcome(order_id=order_id, status=OrderStatus.CONFIRMED)

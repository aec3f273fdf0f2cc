"""A run's history, Jepsen-style: what was submitted, when, and what the API answered.

Times are seconds since the run started (monotonic). An order's fate as the client saw it:

- accepted:    at least one attempt got 202 (the API promised the order exists)
- refused:     every attempt got a definite 4xx (the order must have no effect at all)
- indeterminate: otherwise (503, 5xx, timeout, connection error): it may or may not exist
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # 202
    CONFLICT = "conflict"  # 409: same id, another body
    INVALID = "invalid"  # any other 4xx
    UNAVAILABLE = "unavailable"  # 503
    SERVER_ERROR = "server_error"  # any other 5xx: always a bug
    NO_ANSWER = "no_answer"  # timeout or connection error

    @classmethod
    def of_status(cls, status: int) -> Outcome:
        if status == 202:
            return cls.ACCEPTED
        if status == 409:
            return cls.CONFLICT
        if 400 <= status < 500:
            return cls.INVALID
        if status == 503:
            return cls.UNAVAILABLE
        return cls.SERVER_ERROR


class Intent(StrEnum):
    VALID = "valid"  # a well-formed order (may still be REJECTED for stock)
    INVALID = "invalid"  # malformed on purpose: the API must answer 4xx and do nothing
    CONFLICT = "conflict"  # an existing id with another body: 409, the original is unchanged


class Attempt(BaseModel):
    order_id: str
    intent: Intent = Intent.VALID
    started: float
    ended: float
    status: int | None = None
    outcome: Outcome
    detail: str | None = None


class SubmittedOrder(BaseModel):
    """The body as first submitted (the one the system must keep)."""

    order_id: str
    customer_id: str
    lines: list[dict[str, Any]]
    intent: Intent = Intent.VALID


class FaultEvent(BaseModel):
    at: float
    action: str  # "start" | "heal" | "instant"
    fault: str
    detail: str = ""


class History(BaseModel):
    initial_stock: dict[str, int] = Field(default_factory=dict)
    orders: dict[str, SubmittedOrder] = Field(default_factory=dict)
    attempts: list[Attempt] = Field(default_factory=list)
    faults: list[FaultEvent] = Field(default_factory=list)
    poison_messages: int = 0

    def submitted(self, order: SubmittedOrder) -> None:
        self.orders.setdefault(order.order_id, order)

    def attempts_of(self, order_id: str) -> list[Attempt]:
        return [a for a in self.attempts if a.order_id == order_id]

    def by_order(self) -> dict[str, list[Attempt]]:
        grouped: dict[str, list[Attempt]] = {}
        for attempt in self.attempts:
            grouped.setdefault(attempt.order_id, []).append(attempt)
        return grouped

    def accepted(self) -> set[str]:
        return {a.order_id for a in self.attempts if a.outcome is Outcome.ACCEPTED}

    def refused(self) -> set[str]:
        """Orders the API definitely turned away on every attempt (no 202, no doubt)."""
        return {
            order_id
            for order_id, attempts in self.by_order().items()
            if all(a.outcome is Outcome.INVALID for a in attempts)
        }

    def last_fault_at(self) -> float | None:
        return max((f.at for f in self.faults), default=None)

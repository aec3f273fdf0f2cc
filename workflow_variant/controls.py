"""Deliberately broken configurations (CC_CONTROL), used to show that the checks can fail.

- non-idempotent-deduct: the deduct activity skips its dedup row, so a re-run activity (its
  completion lost, or its worker killed after the commit) deducts a second time.
- api-writes-order: the API writes t_order and THEN starts the workflow -- the dual write that an
  outbox (or starting the workflow first) exists to avoid. A crash between the two leaves an order
  PENDING forever with nothing to finish it.
"""

from __future__ import annotations

from enum import StrEnum


class Control(StrEnum):
    NONE = ""
    NON_IDEMPOTENT_DEDUCT = "non-idempotent-deduct"
    API_WRITES_ORDER = "api-writes-order"


def parse_control(text: str) -> Control:
    try:
        return Control(text.strip())
    except ValueError:
        known = ", ".join(c.value for c in Control if c.value)
        raise ValueError(f"unknown control {text!r} for the workflow variant (known: {known})") from None

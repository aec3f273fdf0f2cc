"""Domain models at the edges (pydantic v2, strict: wrong types are errors, not coercions)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
Quantity = Annotated[StrictInt, Field(gt=0, le=1_000_000)]

MAX_LINES = 50


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"

    @property
    def terminal(self) -> bool:
        return self is not OrderStatus.PENDING


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Identifier
    quantity: Quantity


class PlaceOrder(BaseModel):
    """The command a client sends. order_id is the client-chosen idempotency key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: Identifier
    customer_id: Identifier
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=MAX_LINES)]

    @field_validator("lines")
    @classmethod
    def _one_line_per_sku(cls, lines: list[OrderLine]) -> list[OrderLine]:
        skus = [line.sku for line in lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each sku may appear in at most one line")
        return lines

    def fingerprint(self) -> str:
        """Stable hash of the body: same order_id with another fingerprint is a conflict."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class Order(BaseModel):
    order_id: str
    customer_id: str
    lines: list[OrderLine]
    status: OrderStatus
    reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class StockLevel(BaseModel):
    sku: str
    quantity: int


class SetStock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Annotated[StrictInt, Field(ge=0, le=2_000_000_000)]


class DeductionOutcome(BaseModel):
    """What inventory decided for one order: all lines deducted, or none and why."""

    order_id: str
    status: OrderStatus
    reason: str | None = None


class OrderConflict(Exception):
    """Same order_id submitted again with a different body."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} already exists with a different body")
        self.order_id = order_id

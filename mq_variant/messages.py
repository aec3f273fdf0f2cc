"""Message bodies on the wire. The AMQP message_id is the outbox row's message_id."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from common.domain import MAX_LINES, DeductionOutcome, Identifier, OrderLine


class DeductStock(BaseModel):
    """order-service -> inventory: deduct every line of this order, or none."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: Identifier
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=MAX_LINES)]


class StockResult(DeductionOutcome):
    """inventory -> order-service: the outcome, CONFIRMED or REJECTED with a reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

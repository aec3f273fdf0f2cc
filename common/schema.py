"""Tables with fixed names, so that anyone can inspect a run with psql.

orders database:    t_order, and for the MQ variant t_local_msg (outbox) and t_dedup (inbox)
inventory database: t_stock, t_dedup, t_deduction_log, and for the MQ variant t_local_msg
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB


def _order(md: MetaData) -> Table:
    return Table(
        "t_order",
        md,
        Column("order_id", Text, primary_key=True),
        Column("customer_id", Text, nullable=False),
        Column("lines", JSONB, nullable=False),
        Column("fingerprint", Text, nullable=False),
        Column("status", Text, nullable=False, server_default="PENDING"),
        Column("reason", Text),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        CheckConstraint("status IN ('PENDING', 'CONFIRMED', 'REJECTED')", name="ck_order_status"),
    )


def _outbox(md: MetaData) -> Table:
    """The local message table. id order is publish order; rows are deleted after confirm."""
    return Table(
        "t_local_msg",
        md,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("message_id", Text, nullable=False, unique=True),
        Column("routing_key", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def _dedup(md: MetaData) -> Table:
    """Ids of successfully processed messages / completed activity steps, with their result."""
    return Table(
        "t_dedup",
        md,
        Column("message_id", Text, primary_key=True),
        Column("result", JSONB),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def _stock(md: MetaData) -> Table:
    return Table(
        "t_stock",
        md,
        Column("sku", Text, primary_key=True),
        Column("quantity", Integer, nullable=False),
        CheckConstraint("quantity >= 0", name="ck_stock_non_negative"),
    )


def _deduction_log(md: MetaData) -> Table:
    """Insert-only audit. Deliberately NO unique constraint: a double deduction must show."""
    return Table(
        "t_deduction_log",
        md,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("order_id", Text, nullable=False, index=True),
        Column("sku", Text, nullable=False),
        Column("quantity", Integer, nullable=False),
        Column("source_id", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class OrdersSchema:
    def __init__(self, *, outbox: bool, dedup: bool) -> None:
        self.metadata = MetaData()
        self.order = _order(self.metadata)
        self.outbox = _outbox(self.metadata) if outbox else None
        self.dedup = _dedup(self.metadata) if dedup else None


class InventorySchema:
    def __init__(self, *, outbox: bool) -> None:
        self.metadata = MetaData()
        self.stock = _stock(self.metadata)
        self.dedup = _dedup(self.metadata)
        self.deduction_log = _deduction_log(self.metadata)
        self.outbox = _outbox(self.metadata) if outbox else None

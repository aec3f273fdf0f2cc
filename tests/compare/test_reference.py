"""The unsafe reference path (compare.targets.reference): the lower bound the variants are compared
against, so it must do the same work correctly and with no round trip a careful engineer would
remove. Run in-process on the local PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.domain import OrderConflict, OrderLine, OrderStatus, PlaceOrder
from common.settings import Settings
from compare.targets.reference import ReferenceService, init
from tests.conftest import fresh_settings


@pytest.fixture
async def service(base_settings: Settings, tmp_path: Path) -> AsyncIterator[ReferenceService]:
    settings = fresh_settings(base_settings, tmp_path)
    await init(settings, reset=True)
    svc = ReferenceService(settings)
    try:
        yield svc
    finally:
        await svc.close()


def order(order_id: str, *lines: tuple[str, int]) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id, customer_id="c1", lines=[OrderLine(sku=s, quantity=q) for s, q in lines]
    )


async def ledger(svc: ReferenceService) -> list[tuple[str, str, int, str]]:
    async with svc.inventory_db.connect() as conn:
        rows = await conn.execute(
            text("SELECT order_id, sku, quantity, source_id FROM t_deduction_log ORDER BY id")
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def on_hand(svc: ReferenceService, sku: str) -> int | None:
    level = await svc.get_stock(sku)
    return None if level is None else level.quantity


def count_statements(*engines: AsyncEngine) -> list[str]:
    """Every statement sent, plus BEGIN and COMMIT for each explicit transaction."""
    sent: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split()[0])

    def on_begin(conn: Any) -> None:
        if not conn.connection.dbapi_connection.autocommit:  # asyncpg sends BEGIN, then COMMIT
            sent.extend(["BEGIN", "COMMIT"])

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
        event.listen(engine.sync_engine, "begin", on_begin)
    return sent


async def test_a_new_order_costs_three_statements_and_no_transaction_block(service: ReferenceService) -> None:
    """Insert, deduct-and-log, settle: one statement each, none in an explicit transaction."""
    await service.set_stock("apple", 10)
    await service.set_stock("pear", 10)
    sent = count_statements(service.orders_db, service.inventory_db)
    placed = await service.place_order(order("o1", ("apple", 2), ("pear", 1)))
    assert placed.status is OrderStatus.CONFIRMED
    assert len(sent) == 3, sent


async def test_confirms_deducts_and_logs_each_line_in_order(service: ReferenceService) -> None:
    await service.set_stock("pear", 5)
    await service.set_stock("apple", 5)
    placed = await service.place_order(order("o1", ("pear", 2), ("apple", 3)))
    assert (placed.status, placed.reason) == (OrderStatus.CONFIRMED, None)
    assert (await on_hand(service, "pear"), await on_hand(service, "apple")) == (3, 2)
    assert await ledger(service) == [("o1", "pear", 2, "ref-o1"), ("o1", "apple", 3, "ref-o1")]
    stored = await service.get_order("o1")
    assert stored is not None and stored.status is OrderStatus.CONFIRMED


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ((("apple", 1), ("ghost", 1)), "unknown sku ghost"),
        ((("apple", 1), ("pear", 6)), "insufficient stock for pear: 5 < 6"),
    ],
)
async def test_rejects_all_or_nothing_with_the_rules_reason(
    service: ReferenceService, lines: tuple[tuple[str, int], ...], reason: str
) -> None:
    await service.set_stock("apple", 5)
    await service.set_stock("pear", 5)
    placed = await service.place_order(order("o1", *lines))
    assert (placed.status, placed.reason) == (OrderStatus.REJECTED, reason)
    assert (await on_hand(service, "apple"), await on_hand(service, "pear")) == (5, 5)
    assert await ledger(service) == []


async def test_a_resubmission_deducts_once_and_a_new_body_conflicts(service: ReferenceService) -> None:
    await service.set_stock("apple", 5)
    first = await service.place_order(order("o1", ("apple", 2)))
    again = await service.place_order(order("o1", ("apple", 2)))
    assert again.status is OrderStatus.CONFIRMED and again.order_id == first.order_id
    assert await on_hand(service, "apple") == 3
    with pytest.raises(OrderConflict):
        await service.place_order(order("o1", ("apple", 3)))


async def test_concurrent_orders_on_scarce_stock_never_oversell(service: ReferenceService) -> None:
    """Orders that take the two SKUs together (in either line order) race single-SKU ones:
    exactly the stock is sold, no deadlock, and the ledger matches the stock taken."""
    await service.set_stock("apple", 10)
    await service.set_stock("pear", 10)
    cmds = [order(f"a{i}", ("apple", 1)) for i in range(15)]
    cmds += [order(f"p{i}", ("pear", 1)) for i in range(15)]
    cmds += [order(f"b{i}", ("pear", 1), ("apple", 1)) for i in range(5)]
    cmds += [order(f"c{i}", ("apple", 1), ("pear", 1)) for i in range(5)]
    placed = await asyncio.gather(*(service.place_order(c) for c in cmds))
    taken = {"apple": 0, "pear": 0}
    for cmd, result in zip(cmds, placed, strict=True):
        assert result.status.terminal
        if result.status is OrderStatus.CONFIRMED:
            for line in cmd.lines:
                taken[line.sku] += line.quantity
    assert taken == {"apple": 10, "pear": 10}
    assert (await on_hand(service, "apple"), await on_hand(service, "pear")) == (0, 0)
    logged = await ledger(service)
    assert sum(q for _, s, q, _ in logged if s == "apple") == 10
    assert sum(q for _, s, q, _ in logged if s == "pear") == 10


async def until_a_statement_waits_for_a_lock(engine: AsyncEngine) -> None:
    """Polls ungranted locks from a connection of its own, in autocommit: a transaction that read
    pg_stat_activity or pg_locks once keeps seeing that first view."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(200):
            if await conn.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the order's statement never waited for the restock's row lock")


async def test_a_restock_committed_while_the_order_waits_is_deducted_from(service: ReferenceService) -> None:
    """The order's statement takes its snapshot, then waits for a row lock held by a restock
    (pear 0 -> 5). It must decide on, and subtract from, the restocked quantity: all lines or none."""
    await service.set_stock("apple", 10)
    await service.set_stock("pear", 0)
    other_client = create_async_engine(service.inventory_db.url)
    try:
        async with other_client.begin() as restock:
            await restock.execute(text("UPDATE t_stock SET quantity = 5 WHERE sku = 'pear'"))
            placing = asyncio.create_task(service.place_order(order("o1", ("apple", 1), ("pear", 3))))
            await until_a_statement_waits_for_a_lock(other_client)
            assert not placing.done()
    finally:
        await other_client.dispose()
    placed = await asyncio.wait_for(placing, 10)
    assert placed.status is OrderStatus.CONFIRMED
    assert (await on_hand(service, "apple"), await on_hand(service, "pear")) == (9, 2)
    assert await ledger(service) == [("o1", "apple", 1, "ref-o1"), ("o1", "pear", 3, "ref-o1")]

"""The MQ variant run for real: `python -m mq_variant up` as processes on the local servers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import drop_database, engine_for
from common.settings import Settings
from compare.target import MQ, VariantProcess
from tests.conftest import fresh_settings
from tests.support import free_port, wait_until


@dataclass
class MqRun:
    settings: Settings
    process: VariantProcess
    http: httpx.AsyncClient
    orders_db: AsyncEngine
    inventory_db: AsyncEngine

    async def place(self, order_id: str, lines: list[dict[str, Any]], customer: str = "c1") -> httpx.Response:
        body = {"order_id": order_id, "customer_id": customer, "lines": lines}
        return await self.http.post("/orders", json=body)

    async def set_stock(self, sku: str, quantity: int) -> None:
        response = await self.http.put(f"/stock/{sku}", json={"quantity": quantity})
        assert response.status_code == 200, response.text

    async def scalar(self, engine: AsyncEngine, sql: str, **params: Any) -> Any:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql), params)

    async def wait_terminal(self, order_ids: list[str], timeout: float = 60) -> None:
        async def all_terminal() -> bool:
            pending = await self.scalar(
                self.orders_db,
                "SELECT count(*) FROM t_order WHERE order_id = ANY(:ids) AND status <> 'PENDING'",
                ids=order_ids,
            )
            return pending == len(order_ids)

        await wait_until(all_terminal, timeout=timeout, what=f"{len(order_ids)} orders terminal")

    async def deducted(self, order_id: str) -> int:
        return await self.scalar(
            self.inventory_db,
            "SELECT coalesce(sum(quantity), 0) FROM t_deduction_log WHERE order_id = :o",
            o=order_id,
        )


StartMq = Callable[..., Any]


@pytest.fixture
async def start_mq(base_settings: Settings, tmp_path: Path) -> AsyncIterator[StartMq]:
    """Start the MQ variant (fresh databases and queues); call with env={"CC_FAULTS": ...}."""
    runs: list[MqRun] = []

    async def start(env: dict[str, str] | None = None, **overrides: Any) -> MqRun:
        settings = fresh_settings(
            base_settings, tmp_path / f"run{len(runs)}", api_port=free_port(), **overrides
        )
        process = VariantProcess(MQ, settings, tmp_path / f"mq{len(runs)}.log")
        process.start(env, reset=True)
        run = MqRun(
            settings=settings,
            process=process,
            http=httpx.AsyncClient(base_url=process.base_url, timeout=30),
            orders_db=engine_for(settings, settings.database("mq", "orders"), pool_size=2),
            inventory_db=engine_for(settings, settings.database("mq", "inventory"), pool_size=2),
        )
        runs.append(run)
        await process.wait_ready()
        return run

    yield start

    for run in runs:
        run.process.stop()
        await run.http.aclose()
        await run.orders_db.dispose()
        await run.inventory_db.dispose()
        with contextlib.suppress(Exception):
            for side in ("orders", "inventory"):
                await drop_database(run.settings, run.settings.database("mq", side))
        with contextlib.suppress(Exception):
            await delete_topology(run.settings)


async def delete_topology(settings: Settings) -> None:
    from mq_variant import topology

    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        await topology.delete(await connection.channel(), settings)

"""Helpers for integration tests: free ports and waiting. Variants run via compare.targets.target."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import drop_database, engine_for
from common.settings import Settings
from compare.targets.sandbox import free_dev_server_port
from compare.targets.target import Variant, VariantProcess, settings_env
from tests.conftest import fresh_settings

__all__ = ["VariantProcess", "VariantRun", "free_port", "settings_env", "variant_runs", "wait_until"]


def free_port() -> int:
    """A free port below the ephemeral range (compare.targets.sandbox.free_port), so that no socket bound
    to port 0 (a client, a fault proxy, in this or another xdist worker) takes it before the
    server it is meant for binds it; its web UI's port is free too, for a Temporal dev server."""
    return free_dev_server_port()


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.2, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(interval)


@dataclass
class VariantRun:
    """One started variant: its HTTP client, its two databases, and the checks tests share."""

    settings: Settings
    process: VariantProcess
    http: httpx.AsyncClient
    orders_db: AsyncEngine
    inventory_db: AsyncEngine

    def oid(self, name: str) -> str:
        """The order id a test's short name stands for (runs may namespace them)."""
        return name

    async def place(self, name: str, lines: list[dict[str, Any]], customer: str = "c1") -> httpx.Response:
        body = {"order_id": self.oid(name), "customer_id": customer, "lines": lines}
        return await self.http.post("/orders", json=body)

    async def order(self, name: str) -> dict[str, Any]:
        response = await self.http.get(f"/orders/{self.oid(name)}")
        assert response.status_code == 200, response.text
        return response.json()

    async def set_stock(self, sku: str, quantity: int) -> None:
        response = await self.http.put(f"/stock/{sku}", json={"quantity": quantity})
        assert response.status_code == 200, response.text

    async def stock(self, sku: str) -> int:
        return (await self.http.get(f"/stock/{sku}")).json()["quantity"]

    async def scalar(self, engine: AsyncEngine, sql: str, **params: Any) -> Any:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql), params)

    async def wait_terminal(self, names: list[str], timeout: float = 90) -> None:
        ids = [self.oid(n) for n in names]

        async def all_terminal() -> bool:
            done = await self.scalar(
                self.orders_db,
                "SELECT count(*) FROM t_order WHERE order_id = ANY(:ids) AND status <> 'PENDING'",
                ids=ids,
            )
            return done == len(ids)

        await wait_until(all_terminal, timeout=timeout, interval=0.3, what=f"{len(ids)} orders terminal")

    async def deducted(self, name: str) -> int:
        return await self.scalar(
            self.inventory_db,
            "SELECT coalesce(sum(quantity), 0) FROM t_deduction_log WHERE order_id = :o",
            o=self.oid(name),
        )

    async def double_deductions(self) -> int:
        return await self.scalar(
            self.inventory_db,
            "SELECT count(*) FROM (SELECT order_id, sku FROM t_deduction_log GROUP BY order_id, sku "
            "HAVING count(*) > 1) d",
        )

    async def close(self) -> None:
        self.process.stop()
        await self.http.aclose()
        await self.orders_db.dispose()
        await self.inventory_db.dispose()
        with contextlib.suppress(Exception):
            for side in ("orders", "inventory"):
                await drop_database(self.settings, self.settings.database(self.process.variant.db_code, side))


R = TypeVar("R", bound=VariantRun)


@contextlib.asynccontextmanager
async def variant_runs(
    variant: Variant,
    base: Settings,
    tmp_path: Path,
    make: Callable[..., R],
) -> AsyncIterator[Callable[..., Awaitable[R]]]:
    """A `start(env=None, **setting_overrides)` that starts the variant on fresh databases and
    names as real processes, waits until it is ready, and stops and drops everything at the end.
    `make(settings=..., process=..., http=..., orders_db=..., inventory_db=...)` builds the run."""
    runs: list[R] = []

    async def start(env: dict[str, str] | None = None, **overrides: Any) -> R:
        n = len(runs)
        settings = fresh_settings(base, tmp_path / f"run{n}", api_port=free_port(), **overrides)
        process = VariantProcess(variant, settings, tmp_path / f"{variant.name}{n}.log")
        process.start(env, reset=True)
        run = make(
            settings=settings,
            process=process,
            http=httpx.AsyncClient(base_url=process.base_url, timeout=30),
            orders_db=engine_for(settings, settings.database(variant.db_code, "orders"), pool_size=2),
            inventory_db=engine_for(settings, settings.database(variant.db_code, "inventory"), pool_size=2),
        )
        runs.append(run)
        await process.wait_ready()
        return run

    try:
        yield start
    finally:
        for run in runs:
            await run.close()

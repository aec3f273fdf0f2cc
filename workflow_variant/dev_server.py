"""`up` brings its own Temporal dev server when nothing listens at CC_TEMPORAL_ADDRESS, and
supervises it like a role: SIGKILLed or crashed, it is started again with backoff on the same
SQLite file (CC_TEMPORAL_DB_FILE), so the history survives and the workers reconnect by
themselves. Its pid is in <run_dir>/pids/temporal.pid, its log in <run_dir>/temporal.log.

Point the address at a Temporal cluster and nothing is started; nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from common.settings import Settings
from common.supervisor import KeptAlive
from common.temporal_dev import (
    QUICK_DELETES,
    UI_PORT_OFFSET,
    is_listening,
    split_address,
    start_dev_server,
)

DEV_SERVER = "temporal"  # its name in the supervisor's log and pid file


@contextlib.asynccontextmanager
async def temporal_dev_server(settings: Settings) -> AsyncIterator[None]:
    host, port = split_address(settings.temporal_address)
    if await is_listening(host, port):
        print(f"Temporal: using the server at {settings.temporal_address}", flush=True)
        yield
        return
    settings.run_dir.mkdir(parents=True, exist_ok=True)

    async def start() -> asyncio.subprocess.Process:
        return await start_dev_server(
            settings.temporal_address,
            settings.temporal_db_file,
            log_file=settings.run_dir / "temporal.log",
            dynamic_config=QUICK_DELETES,  # so that `--reset` deletes our workflows in seconds
        )

    async with KeptAlive(DEV_SERVER, start, settings.run_dir):
        print(
            f"Temporal: started a dev server at {settings.temporal_address} "
            f"(history in {settings.temporal_db_file}, restarted if it dies), "
            f"web UI http://{host}:{port + UI_PORT_OFFSET}",
            flush=True,
        )
        yield

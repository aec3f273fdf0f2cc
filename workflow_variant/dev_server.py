"""`up` brings its own Temporal dev server when nothing listens at CC_TEMPORAL_ADDRESS.

Point the address at a Temporal cluster and nothing is started; nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from common.settings import Settings
from common.temporal_dev import ensure_dev_server, split_address

STOP_GRACE_S = 10.0


@contextlib.asynccontextmanager
async def temporal_dev_server(settings: Settings) -> AsyncIterator[None]:
    proc = await ensure_dev_server(settings)
    host, port = split_address(settings.temporal_address)
    if proc is None:
        print(f"Temporal: using the server at {settings.temporal_address}", flush=True)
    else:
        print(
            f"Temporal: started a dev server at {settings.temporal_address} "
            f"(history in {settings.temporal_db_file}), web UI http://{host}:{port + 1000}",
            flush=True,
        )
    try:
        yield
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()

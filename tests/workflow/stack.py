"""A throwaway workflow stack for scripts: private Temporal dev server + the variant's processes.

Used by the benchmark and the history capture (`python -m tests.workflow.bench|capture_histories`).
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from common.db import drop_database
from common.settings import Settings
from common.temporal_dev import start_dev_server
from compare.targets.target import WORKFLOW, VariantProcess
from tests.support import free_port


@contextlib.asynccontextmanager
async def workflow_stack(
    tag: str, *, persist: bool, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[Settings, VariantProcess]]:
    """Yields (settings, ready process); stops everything and drops the databases afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        address = f"127.0.0.1:{free_port()}"
        db_file = home / "temporal.sqlite" if persist else None
        server = await start_dev_server(address, db_file, log_file=home / "temporal.log")
        prefix = f"{tag}{uuid.uuid4().hex[:8]}_"
        settings = Settings(
            db_prefix=prefix,
            temporal_queue_prefix=prefix,
            temporal_address=address,
            run_dir=home / "run",
            api_port=free_port(),
        )
        process = VariantProcess(WORKFLOW, settings, home / "variant.log")
        process.start(env, reset=True)
        try:
            await process.wait_ready()
            yield settings, process
        finally:
            process.stop()
            server.terminate()
            await server.wait()
            for side in ("orders", "inventory"):
                with contextlib.suppress(Exception):
                    await drop_database(settings, settings.database("wf", side))

"""The supervisor restarts a role that dies, with its pid on disk, and stops every role."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from common.supervisor import Role, Supervisor, read_pid
from tests.support import wait_until


async def test_killed_role_is_restarted_and_stop_ends_everything(tmp_path: Path) -> None:
    sleeper = Role("sleeper", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
    supervisor = Supervisor([sleeper], tmp_path)
    task = asyncio.create_task(supervisor.run())

    async def has_pid() -> bool:
        return read_pid(tmp_path, "sleeper") is not None

    await wait_until(has_pid, timeout=10, what="first pid")
    first = read_pid(tmp_path, "sleeper")
    assert first is not None
    os.kill(first, signal.SIGKILL)

    async def restarted() -> bool:
        return read_pid(tmp_path, "sleeper") not in (None, first)

    await wait_until(restarted, timeout=15, what="restart after SIGKILL")
    second = read_pid(tmp_path, "sleeper")
    supervisor.stop()
    await asyncio.wait_for(task, 20)
    assert second is not None
    try:
        os.kill(second, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError("role still running after stop")

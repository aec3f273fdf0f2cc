"""The supervisor restarts a role that dies, with its pid on disk, and stops every role."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from common.supervisor import KeptAlive, Role, Supervisor, read_pid
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
    _assert_gone(second, "role still running after stop")


async def test_kept_alive_process_is_restarted_until_the_block_ends(tmp_path: Path) -> None:
    """A dependency `up` starts itself (the Temporal dev server): SIGKILLed, it comes back."""
    starts = 0

    async def start() -> asyncio.subprocess.Process:
        nonlocal starts
        starts += 1
        return await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")

    async with KeptAlive("dep", start, tmp_path) as kept:
        first = read_pid(tmp_path, "dep")
        assert first is not None and first == kept.pid
        os.kill(first, signal.SIGKILL)

        async def restarted() -> bool:
            return read_pid(tmp_path, "dep") not in (None, first)

        await wait_until(restarted, timeout=15, what="restart after SIGKILL")
        second = kept.pid
    assert starts == 2
    _assert_gone(second, "kept-alive process still running after the block")


def _assert_gone(pid: int | None, message: str) -> None:
    assert pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    raise AssertionError(message)

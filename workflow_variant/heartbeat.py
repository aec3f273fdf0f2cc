"""Heartbeat from a background task while an activity runs.

Our activities are short transactions that may wait on row locks; they have no loop of their
own to heartbeat from. A background beat lets the server tell "slow" (still beating) from "dead"
(its worker was killed): the dead attempt is retried after heartbeat_timeout, not start_to_close.
The first beat goes out after a second, not at once: the server times an attempt's heartbeat
from its start, so a dead worker is noticed as soon, and the usual attempt (a few milliseconds)
sends none -- each heartbeat is a write to the workflow's state on the server.
A local activity (record and settle, see workflow.py) has no heartbeat: it runs inside its
workflow task, which the SDK keeps alive itself, so nothing is started for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

BEAT_EVERY_S = 1.0  # well under the 5 s heartbeat_timeout; the SDK throttles sends anyway


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    async def beat() -> None:
        while True:
            await asyncio.sleep(BEAT_EVERY_S)
            activity.heartbeat()

    if activity.info().is_local:
        yield
        return
    task = asyncio.create_task(beat())  # copies the activity context, so heartbeat() works there
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""Stopping a background task without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has finished.

    The usual `task.cancel(); with suppress(CancelledError): await task` also swallows a
    cancellation of the CALLER that arrives while it waits (Ctrl-C, SIGTERM), so the caller goes
    on as if nothing happened. Here the task's own CancelledError is absorbed and the caller's
    is raised again."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise

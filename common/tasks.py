"""Stopping a background task without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has finished.

    The usual `task.cancel(); with suppress(CancelledError): await task` also swallows a
    cancellation of the CALLER that arrives while it waits (Ctrl-C, SIGTERM), so the caller goes
    on as if nothing happened. Here the task's own CancelledError is absorbed and a cancellation
    of the caller that arrived during the wait is raised again. One that was already under way
    (the caller tearing down in a `finally`) is left to the caller, so its teardown goes on."""
    current = asyncio.current_task()
    before = current.cancelling() if current is not None else 0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if current is not None and current.cancelling() > before:
            raise
        return
    if current is not None and current.cancelling() > before:  # the task ignored its cancel
        raise asyncio.CancelledError

"""common.tasks.cancel_and_wait: the task stops, the caller's own cancellation survives."""

from __future__ import annotations

import asyncio

import pytest

from common.tasks import cancel_and_wait


async def _slow_to_stop(stopped: list[bool]) -> None:
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        await asyncio.sleep(0.2)  # cleanup that takes a while
        stopped.append(True)
        raise


async def test_the_task_is_stopped_and_the_caller_goes_on() -> None:
    stopped: list[bool] = []
    task = asyncio.create_task(_slow_to_stop(stopped))
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled() and stopped == [True]


async def test_a_cancellation_of_the_caller_while_it_waits_is_not_swallowed() -> None:
    stopped: list[bool] = []
    went_on: list[bool] = []

    async def caller() -> None:
        task = asyncio.create_task(_slow_to_stop(stopped))
        await asyncio.sleep(0)
        await cancel_and_wait(task)
        went_on.append(True)  # must not run: the caller itself was cancelled meanwhile

    outer = asyncio.create_task(caller())
    await asyncio.sleep(0.05)  # the caller is now waiting for the task's cleanup
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert went_on == []


async def test_teardown_after_it_goes_on_while_the_caller_is_being_cancelled() -> None:
    stopped: list[bool] = []
    torn_down: list[bool] = []

    async def caller() -> None:
        task = asyncio.create_task(_slow_to_stop(stopped))
        try:
            await asyncio.sleep(60)
        finally:  # the caller's own cancellation is under way here
            await cancel_and_wait(task)
            torn_down.append(True)  # must still run

    outer = asyncio.create_task(caller())
    await asyncio.sleep(0.05)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert stopped == [True] and torn_down == [True]

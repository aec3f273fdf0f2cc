"""Where a target's processes are: the pid sources the resource sampler reads each sample."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil

PidSource = Callable[[], Awaitable[list[int]]]


def pids_from_run_dir(run_dir: Path, *, exclude: tuple[str, ...] = ()) -> dict[str, PidSource]:
    """One group per role: the pid files are re-read each sample, so restarts are followed."""

    def source(path: Path) -> PidSource:
        async def pids() -> list[int]:
            with contextlib.suppress(OSError, ValueError):
                return [int(await asyncio.to_thread(path.read_bytes))]
            return []

        return pids

    return {
        path.stem: source(path)
        for path in sorted((run_dir / "pids").glob("*.pid"))
        if path.stem not in exclude
    }


def static_pids(pids: list[int]) -> PidSource:
    async def source() -> list[int]:
        return list(pids)

    return source


def pids_by_name(*names: str) -> list[int]:
    found: list[int] = []
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in names:
            found.append(p.pid)
    return found

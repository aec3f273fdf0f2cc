"""Helpers for integration tests: free ports and waiting. Variants run via compare.target."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

from compare.target import VariantProcess, settings_env

__all__ = ["VariantProcess", "free_port", "settings_env", "wait_until"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.2, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(interval)

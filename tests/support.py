"""Helpers for integration tests: free ports, waiting, and a variant run as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from common.settings import Settings
from common.supervisor import read_pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """The CC_* environment that makes a child process see exactly these settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        env[f"CC_{name.upper()}"] = str(value)
    return env


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


class VariantProcess:
    """`python -m <package> up` as a real OS process tree, with its roles' pids on disk."""

    def __init__(self, package: str, settings: Settings, log_path: Path) -> None:
        self.package = package
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://{settings.api_host}:{settings.api_port}"

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        env = {**os.environ, **settings_env(self.settings), **(extra_env or {})}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.package, "up", "--api-port", str(self.settings.api_port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:

            async def ready() -> bool:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"{self.package} exited: {self.log_tail()}")
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(ready, timeout=timeout, what=f"{self.package} ready")

    def pid(self, role: str) -> int:
        pid = read_pid(self.settings.run_dir, role)
        if pid is None:
            raise AssertionError(f"no pid file for role {role}")
        return pid

    def signal_role(self, role: str, sig: signal.Signals) -> int:
        pid = self.pid(role)
        os.kill(pid, sig)
        return pid

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

"""A variant as the comparison sees it: a package to run, its roles, its databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from common.settings import Settings
from common.supervisor import read_pid


@dataclass(frozen=True)
class Variant:
    name: str  # "mq" | "workflow"
    package: str
    db_code: str  # database names are <prefix><db_code>_orders / _inventory
    roles: tuple[str, ...]
    # The fault point (role/point) at the start of the work of one deduction, where
    # `compare run --inventory-delay-ms` slows it down; "" where there is none.
    deduction_point: str = ""

    def slow_deduction(self, delay_ms: float) -> str:
        """CC_FAULTS that make every deduction take `delay_ms` longer (a slow inventory service)."""
        if not self.deduction_point:
            raise ValueError(f"{self.name} has no separate deduction step to slow down")
        return f"{self.deduction_point}=delay,seconds={delay_ms / 1000:g}"


MQ = Variant(
    "mq",
    "mq_variant",
    "mq",
    ("api", "order-relay", "inventory-consumer", "inventory-relay", "order-result-consumer", "reconciler"),
    # inside the consumer's transaction, as slow work in the inventory service would be
    "inventory-consumer/before_consumer_commit",
)
WORKFLOW = Variant(
    "workflow",
    "workflow_variant",
    "wf",
    ("api", "order-worker", "inventory-worker"),
    "inventory-worker/activity_start",  # the inventory worker runs only the deduct activity
)
VARIANTS = {v.name: v for v in (MQ, WORKFLOW)}


def settings_env(settings: Settings) -> dict[str, str]:
    """The CC_* environment that makes a child process see exactly these settings."""
    return {f"CC_{name.upper()}": str(value) for name, value in settings.model_dump().items()}


class VariantProcess:
    """`python -m <package> up` as a real OS process tree, with its roles' pids on disk."""

    def __init__(self, variant: Variant, settings: Settings, log_path: Path) -> None:
        self.variant = variant
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://{settings.api_host}:{settings.api_port}"

    def start(self, extra_env: dict[str, str] | None = None, *, reset: bool = False) -> None:
        env = {**os.environ, **settings_env(self.settings), **(extra_env or {})}
        argv = [sys.executable, "-m", self.variant.package, "up", "--api-port", str(self.settings.api_port)]
        if reset:
            argv.append("--reset")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    async def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.variant.package} exited early:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.variant.package} not ready in {timeout}s:\n{self.log_tail()}")
                await asyncio.sleep(0.3)

    def pid(self, role: str) -> int:
        pid = read_pid(self.settings.run_dir, role)
        if pid is None:
            raise RuntimeError(f"no pid file for role {role}")
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

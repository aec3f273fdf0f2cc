"""A kernel partition drops the isolated role's packets on this machine: nothing else answers."""

from __future__ import annotations

import asyncio
import sys

import pytest

from compare.faults import netns
from compare.faults.netns import RoleNamespace

pytestmark = pytest.mark.skipif(not netns.available(), reason="network namespaces need root and iproute2")

PORT = 18080


async def _exchange(host: str, timeout: float) -> bytes | None:
    """The first bytes of an HTTP answer from host:PORT; None when nothing answers in time."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, PORT), timeout)
    except (TimeoutError, OSError):
        return None
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        return await asyncio.wait_for(reader.read(64), timeout)
    except (TimeoutError, OSError):
        return None
    finally:
        writer.close()


async def _route_device(ip: str) -> str:
    proc = await asyncio.create_subprocess_exec("ip", "route", "get", ip, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    words = out.decode().split()
    return words[words.index("dev") + 1] if "dev" in words else words[0]


async def test_partitioned_role_is_silent_and_traffic_stays_local() -> None:
    ns = await RoleNamespace.create()
    server = await asyncio.create_subprocess_exec(
        *ns.prefix, sys.executable, "-m", "http.server", str(PORT), "--bind", ns.ns_ip,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(50):
            if (answer := await _exchange(ns.ns_ip, 1.0)) is not None:
                break
            await asyncio.sleep(0.1)
        assert answer is not None and answer.startswith(b"HTTP/1.0 200"), answer

        await ns.partition()
        # packets for the role still go to its veth (and are dropped there), never off the machine
        assert await _route_device(ns.ns_ip) == ns.host_if
        assert await _exchange(ns.ns_ip, 2.0) is None

        await ns.heal()
        for _ in range(50):
            if (answer := await _exchange(ns.ns_ip, 1.0)) is not None:
                break
            await asyncio.sleep(0.1)
        assert answer is not None and answer.startswith(b"HTTP/1.0 200"), answer
    finally:
        server.kill()
        await server.wait()
        await ns.close()

"""Kernel-level partitions, Jepsen-style: a role runs in its own network namespace.

    ns = await RoleNamespace.create()      # netns cc<hex>, veth pair, 10.231.<k>.1 <-> .2/30
    ...                                    # run the role under ns.prefix, give it ns.host_ip addresses
    await ns.partition()                   # the namespace's end of the veth down: packets
    await ns.heal()                        # are dropped, no RST, TCP retransmits; up: resumes
    await ns.close()

The role reaches its dependencies through fault proxies listening on `host_ip` (the host end of
the veth), so every byte it exchanges crosses the veth. Needs root and iproute2 (`ip`); `tc netem`
and tc's matchall classifier are not available on every kernel, so the partition is a link going
down, which is what a pulled cable looks like.

Which end goes down matters. Taking the HOST end down deletes the host's route to the /30, and
packets for the role (clients calling an isolated API) then follow the default route off this
machine, where whatever answers them (a gateway's HTTP proxy answered 404 here) is mistaken for
the role. The namespace's end goes down instead: the host end loses its carrier, its route stays
(flagged linkdown) and packets for the role are dropped silently, as across a pulled cable; inside
the namespace the role's own sends find no route (its link is down). As a second guard, a
blackhole route for the whole SUBNET/16 keeps any 10.231 packet on this machine: traffic stays
inside namespaces this suite creates.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import uuid
from collections.abc import AsyncIterator

SUBNET = "10.231"
LOCK_FILE = "/tmp/cc-netns.lock"


class NetnsUnavailable(RuntimeError):
    pass


async def _ip(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "ip", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {text.strip()}")
    return text


@contextlib.asynccontextmanager
async def _subnet_lock() -> AsyncIterator[None]:
    """Machine-wide: choosing a free /30 and assigning it is two steps, and `ip` accepts the same
    address twice, so two runs creating namespaces at once could share a subnet and misroute."""
    with open(LOCK_FILE, "a") as handle:  # noqa: ASYNC230 (a lock file: opened, never read)
        await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


class RoleNamespace:
    def __init__(self, name: str, host_if: str, ns_if: str, k: int) -> None:
        self.name = name
        self.host_if = host_if
        self.ns_if = ns_if
        self.host_ip = f"{SUBNET}.{k}.1"
        self.ns_ip = f"{SUBNET}.{k}.2"
        self._holds = 0  # overlapping partitions: the link comes back when the last one heals

    @property
    def partitioned(self) -> bool:
        return self._holds > 0

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    @classmethod
    async def create(cls) -> RoleNamespace:
        if not available():
            raise NetnsUnavailable("network namespaces need root and iproute2")
        await _ip("route", "replace", "blackhole", f"{SUBNET}.0.0/16")  # never leave this machine
        async with _subnet_lock():  # another run on this machine may be picking a subnet too
            used = await _ip("-o", "-4", "addr", "show")
            k = next((k for k in range(1, 250) if f"inet {SUBNET}.{k}." not in used), None)
            if k is None:
                raise NetnsUnavailable(f"no free {SUBNET}.k.0/30 subnet")
            tag = uuid.uuid4().hex[:6]
            ns = cls(f"cc{tag}", f"cch{tag}", f"ccn{tag}", k)
            await _ip("netns", "add", ns.name)
            try:
                await _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if)
                await _ip("link", "set", ns.ns_if, "netns", ns.name)
                await _ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
                await _ip("link", "set", ns.host_if, "up")
                await _ip("-n", ns.name, "addr", "add", f"{ns.ns_ip}/30", "dev", ns.ns_if)
                await _ip("-n", ns.name, "link", "set", ns.ns_if, "up")
                await _ip("-n", ns.name, "link", "set", "lo", "up")
            except BaseException:
                await ns.close()
                raise
        return ns

    async def partition(self) -> None:
        self._holds += 1
        if self._holds == 1:
            await _ip("-n", self.name, "link", "set", self.ns_if, "down")

    async def heal(self, *, all_of_them: bool = False) -> None:
        self._holds = 0 if all_of_them else max(0, self._holds - 1)
        if self._holds == 0:
            await _ip("-n", self.name, "link", "set", self.ns_if, "up")

    async def close(self) -> None:
        for args in (("link", "del", self.host_if), ("netns", "del", self.name)):
            with contextlib.suppress(NetnsUnavailable):
                await _ip(*args)

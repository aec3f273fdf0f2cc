"""A TCP fault proxy with Toxiproxy-style toxics that can be switched while connections are open.

Toxiproxy itself is a Go server (its Python clients only drive it); nothing like it exists as a
maintained pure-Python library, so this is a small asyncio one that the suite runs in-process:

    proxy = FaultProxy("postgres", upstream=("127.0.0.1", 5432))
    await proxy.start()                       # listens on 127.0.0.1:<free port>
    name = proxy.add(Latency(seconds=0.2, jitter=0.05))
    proxy.add(Timeout(direction=Direction.UPSTREAM, seconds=2.0))   # the lost-ack case
    proxy.remove(name); proxy.clear()
    await proxy.stop()

Directions follow Toxiproxy: `upstream` is client -> server, `downstream` server -> client, `both`.

| toxic | effect |
| --- | --- |
| latency(seconds, jitter) | each chunk is delivered `seconds` +- `jitter` after it arrived (pipelined) |
| timeout(seconds) | data in that direction is held; `seconds` after the toxic met the connection, the |
|   | connection is reset; with 0 data is held until the toxic is removed, then flows on |
| reset_peer(seconds) | each connection is reset (TCP RST) `seconds` after the toxic met it |
| limit_data(bytes) | a connection is closed once `bytes` have passed in that direction |
| down | the partition: every connection is reset and new ones are reset on accept |

Unlike Toxiproxy, held data is kept, not dropped: dropping bytes in the middle of a TCP stream is
something no real network does (TCP retransmits), and it would corrupt the protocol framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CHUNK = 64 * 1024
QUEUE_CHUNKS = 64


class Direction(StrEnum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"
    BOTH = "both"

    def covers(self, other: Direction) -> bool:
        return self is Direction.BOTH or self is other


class _ToxicBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: Direction = Direction.BOTH


class Latency(_ToxicBase):
    kind: Literal["latency"] = "latency"
    seconds: float = Field(0.1, ge=0)
    jitter: float = Field(0.0, ge=0)


class Timeout(_ToxicBase):
    kind: Literal["timeout"] = "timeout"
    seconds: float = Field(0.0, ge=0)


class ResetPeer(_ToxicBase):
    kind: Literal["reset_peer"] = "reset_peer"
    seconds: float = Field(0.0, ge=0)


class LimitData(_ToxicBase):
    kind: Literal["limit_data"] = "limit_data"
    bytes: int = Field(..., ge=0)


class Down(_ToxicBase):
    kind: Literal["down"] = "down"


Toxic = Annotated[Latency | Timeout | ResetPeer | LimitData | Down, Field(discriminator="kind")]


class _Active:
    """A toxic as installed: when it was added, so resets can be timed per connection."""

    def __init__(self, toxic: Toxic) -> None:
        self.toxic = toxic
        self.added_at = time.monotonic()


class _Reset(Exception):
    pass


class _Cut(Exception):
    """limit_data reached: close both sides gracefully (FIN, not RST), as Toxiproxy does."""


class ProxyStats(BaseModel):
    connections: int = 0
    resets: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


class FaultProxy:
    def __init__(
        self,
        name: str,
        upstream: tuple[str, int],
        *,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        seed: int = 0,
    ) -> None:
        self.name = name
        self.upstream = upstream
        self._listen = listen
        self._rng = random.Random(seed)
        self._toxics: dict[str, _Active] = {}
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._counter = 0
        self.stats = ProxyStats()

    # --- lifecycle ---

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, *self._listen, reuse_address=True)
        self._listen = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.reset()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def host(self) -> str:
        return str(self._listen[0])

    @property
    def port(self) -> int:
        return int(self._listen[1])

    # --- toxics ---

    def add(self, toxic: Toxic, name: str | None = None) -> str:
        self._counter += 1
        key = name or f"{toxic.kind}-{self._counter}"
        self._toxics[key] = _Active(toxic)
        self._notify()
        return key

    def remove(self, name: str) -> None:
        if self._toxics.pop(name, None) is not None:
            self._notify()

    def clear(self) -> None:
        if self._toxics:
            self._toxics.clear()
            self._notify()

    @property
    def toxics(self) -> dict[str, Toxic]:
        return {k: a.toxic for k, a in self._toxics.items()}

    def _notify(self) -> None:
        old, self._changed = self._changed, asyncio.Event()
        old.set()

    def _active(self) -> list[_Active]:
        return list(self._toxics.values())

    def jitter(self, seconds: float, jitter: float) -> float:
        return max(0.0, seconds + (self._rng.uniform(-jitter, jitter) if jitter else 0.0))

    # --- connections ---

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        link = _Link(self, reader, writer)
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)


def _abort(writer: asyncio.StreamWriter | None) -> None:
    """Close with SO_LINGER 0, so the peer sees a TCP RST ("connection reset by peer")."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One client connection and its connection to the upstream server."""

    def __init__(self, proxy: FaultProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client_reader = reader
        self.client_writer = writer
        self.server_writer: asyncio.StreamWriter | None = None
        self.opened = time.monotonic()
        self._done = asyncio.Event()
        self._was_reset = False
        self._eofs: set[Direction] = set()
        self._baselines: dict[tuple[int, Direction], int] = {}

    def reset(self) -> None:
        if not self._was_reset:
            self._was_reset = True
            self.proxy.stats.resets += 1
        _abort(self.client_writer)
        _abort(self.server_writer)
        self._done.set()

    def close(self) -> None:
        for writer in (self.client_writer, self.server_writer):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
        self._done.set()

    def _met(self, active: _Active) -> float:
        """When the toxic first applied to this connection."""
        return max(self.opened, active.added_at)

    async def run(self) -> None:
        if any(a.toxic.kind == "down" for a in self.proxy._active()):
            self.reset()
            return
        try:
            server_reader, self.server_writer = await asyncio.open_connection(*self.proxy.upstream)
        except OSError:
            self.reset()
            return
        tasks = [
            asyncio.create_task(self._direction(self.client_reader, self.server_writer, Direction.UPSTREAM)),
            asyncio.create_task(self._direction(server_reader, self.client_writer, Direction.DOWNSTREAM)),
            asyncio.create_task(self._watch()),
        ]
        try:
            await self._done.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (self.client_writer, self.server_writer):
                with contextlib.suppress(Exception):
                    writer.close()

    async def _watch(self) -> None:
        """Resets the connection when a down / reset_peer / timeout toxic's time comes."""
        while not self._done.is_set():
            changed = self.proxy._changed
            deadline: float | None = None
            for active in self.proxy._active():
                toxic = active.toxic
                if toxic.kind == "down":
                    deadline = time.monotonic()
                elif toxic.kind == "reset_peer" or (toxic.kind == "timeout" and toxic.seconds > 0):
                    at = self._met(active) + toxic.seconds
                    deadline = at if deadline is None else min(deadline, at)
            if deadline is not None and deadline <= time.monotonic():
                self.reset()
                return
            wait = None if deadline is None else deadline - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)

    async def _direction(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

        async def read() -> None:
            while True:
                data = await reader.read(CHUNK)
                await queue.put((time.monotonic(), data))
                if not data:
                    return

        async def write() -> None:
            passed = 0
            while True:
                arrived, data = await queue.get()
                await self._gate(direction, arrived)
                if not data:
                    with contextlib.suppress(OSError, RuntimeError):
                        writer.write_eof()
                    return
                limit = self._limit(direction, passed)
                if limit is not None and passed + len(data) > limit:
                    writer.write(data[: max(0, limit - passed)])
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                    raise _Cut
                writer.write(data)
                await writer.drain()
                passed += len(data)
                if direction is Direction.UPSTREAM:
                    self.proxy.stats.bytes_up += len(data)
                else:
                    self.proxy.stats.bytes_down += len(data)

        tasks = [asyncio.create_task(read()), asyncio.create_task(write())]
        try:
            await asyncio.gather(*tasks)
        except _Cut:
            self.close()
            return
        except (_Reset, ConnectionError, OSError):
            self.reset()
            return
        finally:
            for task in tasks:
                task.cancel()
        self._eofs.add(direction)
        if len(self._eofs) == 2:  # both halves closed cleanly
            self._done.set()

    def _limit(self, direction: Direction, passed: int) -> int | None:
        """The byte count at which to cut: `bytes` more than had passed when the toxic met us."""
        limits = []
        for a in self.proxy._active():
            if a.toxic.kind == "limit_data" and a.toxic.direction.covers(direction):
                baseline = self._baselines.setdefault((id(a), direction), passed)
                limits.append(baseline + a.toxic.bytes)
        return min(limits) if limits else None

    async def _gate(self, direction: Direction, arrived: float) -> None:
        """Waits while a timeout toxic holds this direction, then applies latency."""
        while True:
            changed = self.proxy._changed
            active = [a for a in self.proxy._active() if a.toxic.direction.covers(direction)]
            if any(a.toxic.kind == "timeout" for a in active):
                await changed.wait()
                continue
            delay = 0.0
            for a in active:
                if a.toxic.kind == "latency":
                    delay += self.proxy.jitter(a.toxic.seconds, a.toxic.jitter)
            remaining = arrived + delay - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
                continue  # toxics changed while waiting: re-evaluate
            return

"""Open-loop load: arrival times fixed in advance, latency measured from the scheduled time.

A closed-loop client (send, wait, send) slows down with the system and so hides its stalls
(coordinated omission). Here the schedule is computed before the run from the offered rate
profile; a dispatcher releases each arrival at its time into a queue served by a pool of
keep-alive connections. When every connection is busy the arrival waits in the queue and its
latency keeps counting from the scheduled time, so a stall shows up in the percentiles.

The client is a minimal HTTP/1.1 writer/reader on asyncio streams: httpx costs several times
more CPU per request, and on a 2-core machine the load generator must not eat the system under
test. Every loop here is bounded in count (the schedule) and time (`drain_timeout_s`).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import BaseModel

from common.tasks import cancel_and_wait


class Phase(BaseModel):
    """`duration_s` seconds at `rate` arrivals per second (evenly spaced)."""

    duration_s: float
    rate: float


def schedule(phases: list[Phase]) -> list[float]:
    """Offsets in seconds from the start, one per arrival, in order."""
    offsets: list[float] = []
    start = 0.0
    for phase in phases:
        if phase.rate > 0:
            n = round(phase.duration_s * phase.rate)
            step = 1.0 / phase.rate
            offsets.extend(start + i * step for i in range(n))
        start += phase.duration_s
    return offsets


class OrderFactory:
    """Deterministic order bodies from a seed: 1-2 lines over `skus` SKUs, quantity 1-3."""

    def __init__(self, seed: int, run_tag: str, skus: int) -> None:
        self._rng = random.Random(seed)
        self._tag = run_tag
        self._skus = skus
        self._n = 0

    @staticmethod
    def sku(i: int) -> str:
        return f"sku-{i:04d}"

    def next(self) -> tuple[str, bytes]:
        self._n += 1
        order_id = f"{self._tag}-{self._n:07d}"
        n_lines = 1 if self._rng.random() < 0.7 else 2
        skus = self._rng.sample(range(self._skus), n_lines)
        body = {
            "order_id": order_id,
            "customer_id": f"c-{self._rng.randrange(1000):04d}",
            "lines": [{"sku": self.sku(s), "quantity": self._rng.randint(1, 3)} for s in skus],
        }
        return order_id, json.dumps(body, separators=(",", ":")).encode()


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection. Responses must carry Content-Length (uvicorn's do)."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.close()
        try:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        except OSError as exc:
            raise HttpError(f"connect: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request. A kept-alive connection the server has meanwhile closed (uvicorn
        closes idle ones after 5 s) is reopened and the request sent once more: every request
        this module sends is idempotent (PUT, and POST /orders keyed by order_id)."""
        if self._writer is None:
            await self._open()
            return await self._exchange(method, path, body)
        try:
            return await self._exchange(method, path, body)
        except HttpError:
            await self._open()
            return await self._exchange(method, path, body)

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            self._writer.write(head.encode() + body)
            status_line = await self._reader.readline()
            if not status_line:
                raise HttpError("connection closed")
            status = int(status_line.split(b" ", 2)[1])
            length = 0
            keep = True
            while True:
                line = await self._reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                key = name.strip().lower()
                if key == b"content-length":
                    length = int(value.strip())
                elif key == b"connection" and value.strip().lower() == b"close":
                    keep = False
            payload = await self._reader.readexactly(length) if length else b""
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        if not keep:
            self.close()
        return status, payload


@dataclass
class LoadRecord:
    """One arrival: when it was due (wall clock, epoch seconds) and what the API answered."""

    order_id: str
    scheduled: float
    done: float | None = None  # wall clock of the response
    status: int = 0  # HTTP status; 0 = no answer (connection error or never sent)
    error: str = ""

    @property
    def accept_ms(self) -> float | None:
        return None if self.done is None else (self.done - self.scheduled) * 1000


@dataclass
class LoadRun:
    records: list[LoadRecord] = field(default_factory=list)
    started: float = 0.0  # wall clock of offset 0
    ended: float = 0.0  # wall clock when the last answer came (or the drain timed out)
    unsent: int = 0  # arrivals dropped because the drain timed out

    @property
    def accepted(self) -> list[LoadRecord]:
        return [r for r in self.records if r.status == 202]


async def run_open_loop(
    base_url: str,
    phases: list[Phase],
    factory: OrderFactory,
    *,
    connections: int = 64,
    request_timeout_s: float = 30.0,
    drain_timeout_s: float = 30.0,
) -> LoadRun:
    """Offer the phases' arrivals to POST /orders; returns one record per arrival."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    offsets = schedule(phases)
    bodies = [factory.next() for _ in offsets]
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2
    run = LoadRun(started=time.time() + 0.2)
    run.records = [LoadRecord(oid, run.started + off) for (oid, _), off in zip(bodies, offsets, strict=True)]
    queue: asyncio.Queue[int | None] = asyncio.Queue()

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            while (i := await queue.get()) is not None:
                rec = run.records[i]
                try:
                    status, payload = await asyncio.wait_for(
                        conn.request("POST", "/orders", bodies[i][1]), request_timeout_s
                    )
                    rec.status = status
                    if status != 202:
                        rec.error = payload[:200].decode(errors="replace")
                except (HttpError, TimeoutError) as exc:
                    conn.close()
                    rec.error = str(exc) or type(exc).__name__
                rec.done = time.time()
        finally:
            conn.close()

    async def dispatch() -> None:
        i = 0
        n = len(offsets)
        while i < n:
            now = loop.time()
            while i < n and t0 + offsets[i] <= now:
                queue.put_nowait(i)
                i += 1
            if i < n:
                await asyncio.sleep(max(t0 + offsets[i] - loop.time(), 0))
        for _ in range(connections):
            queue.put_nowait(None)

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    await dispatch()
    _, pending = await asyncio.wait(workers, timeout=drain_timeout_s)
    for task in pending:
        task.cancel()
    for task in pending:
        await cancel_and_wait(task)
    run.unsent = sum(1 for r in run.records if r.done is None)
    run.ended = time.time()
    return run


async def put_stock(base_url: str, skus: int, quantity: int) -> None:
    parts = urlsplit(base_url)
    conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
    try:
        for i in range(skus):
            body = json.dumps({"quantity": quantity}).encode()
            status, payload = await conn.request("PUT", f"/stock/{OrderFactory.sku(i)}", body)
            if status != 200:
                raise RuntimeError(f"PUT /stock failed with {status}: {payload[:200]!r}")
    finally:
        conn.close()

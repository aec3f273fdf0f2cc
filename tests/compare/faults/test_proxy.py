"""The fault proxy's toxics on real sockets: an echo server behind the proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from compare.faults.proxy import Direction, Down, FaultProxy, Latency, LimitData, ResetPeer, Timeout


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"hello\n")  # the server speaks first, so downstream can be seen alone
    try:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with FaultProxy("echo", ("127.0.0.1", port), seed=1) as p:
        yield p
    server.close()


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    assert await asyncio.wait_for(reader.readline(), 5) == b"hello\n"
    return reader, writer


async def _roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), 5)


async def test_passthrough(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    assert await _roundtrip(reader, writer, b"x" * 200_000) == b"x" * 200_000
    writer.close()
    assert proxy.stats.bytes_up >= 200_000


async def test_latency_delays_each_direction(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.add(Latency(seconds=0.2, direction=Direction.UPSTREAM))
    started = time.monotonic()
    assert await _roundtrip(reader, writer, b"ping") == b"ping"
    assert time.monotonic() - started >= 0.2  # a lower bound: the proxy cannot be faster
    proxy.clear()
    writer.close()


async def test_timeout_zero_holds_data_until_removed(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    name = proxy.add(Timeout(seconds=0, direction=Direction.UPSTREAM))
    writer.write(b"held")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), 0.5)
    proxy.remove(name)
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"  # nothing was lost
    writer.close()


async def test_one_direction_only(proxy: FaultProxy) -> None:
    """Upstream held (the lost ack): the server's greeting still reaches the client."""
    proxy.add(Timeout(seconds=0, direction=Direction.UPSTREAM))
    reader, writer = await _connect(proxy)  # reads the greeting: downstream flows
    writer.write(b"ack")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(3), 0.5)
    proxy.clear()
    assert await asyncio.wait_for(reader.readexactly(3), 5) == b"ack"
    writer.close()


async def test_timeout_resets_after_seconds(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.add(Timeout(seconds=0.3))
    writer.write(b"lost")
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(4), 5)
    assert proxy.stats.resets == 1


async def test_reset_peer_resets_open_connections(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.add(ResetPeer(seconds=0))
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(10), 5)
        writer.write(b"x")
        await writer.drain()
        await asyncio.wait_for(reader.read(10), 5)


async def test_limit_data_cuts_after_n_bytes(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.add(LimitData(bytes=10, direction=Direction.DOWNSTREAM))
    writer.write(b"0123456789abcdef")
    received = b""
    while chunk := await asyncio.wait_for(reader.read(16), 5):
        received += chunk
    assert received == b"0123456789"  # then a clean close


async def test_down_is_a_partition_until_healed(proxy: FaultProxy) -> None:
    reader, _writer = await _connect(proxy)
    name = proxy.add(Down())
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(10), 5)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        r2, _ = await asyncio.open_connection(proxy.host, proxy.port)
        await asyncio.wait_for(r2.readexactly(6), 5)
    proxy.remove(name)
    r3, w3 = await _connect(proxy)
    assert await _roundtrip(r3, w3, b"back") == b"back"
    w3.close()

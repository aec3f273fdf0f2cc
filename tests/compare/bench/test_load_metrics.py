"""Pure parts of the benchmark: the open-loop schedule, the order factory, HDR histograms, cores."""

from __future__ import annotations

import asyncio
import json

from compare.bench.burst import busiest
from compare.bench.load import OrderFactory, Phase, run_open_loop, schedule
from compare.bench.metrics import CpuSample, LatencyHistogram, cores_between


def test_schedule_is_fixed_in_advance_and_evenly_spaced() -> None:
    offsets = schedule(
        [Phase(duration_s=1, rate=10), Phase(duration_s=2, rate=0), Phase(duration_s=1, rate=4)]
    )
    assert len(offsets) == 14
    assert offsets[:3] == [0.0, 0.1, 0.2]
    assert offsets[10:] == [3.0, 3.25, 3.5, 3.75]


def test_order_factory_is_deterministic_per_seed() -> None:
    a = [OrderFactory(7, "x", 10).next() for _ in range(1)]
    b = [OrderFactory(7, "x", 10).next() for _ in range(1)]
    assert a == b
    order_id, body = OrderFactory(7, "x", 10).next()
    assert order_id == "x-0000001"
    assert json.loads(body)["order_id"] == order_id


def test_cores_between_uses_the_samples_inside_the_window() -> None:
    series = [
        CpuSample(t=100.0, cpu_s={"api": 0.0, "postgres": 0.0}),
        CpuSample(t=101.0, cpu_s={"api": 0.5, "postgres": 0.1}),
        CpuSample(t=103.0, cpu_s={"api": 2.5, "postgres": 0.5}),  # api: 2 s of CPU in 2 s
        CpuSample(t=104.0, cpu_s={"api": 2.6, "postgres": 0.6}),
    ]
    assert cores_between(series, 100.5, 103.5) == {"api": 1.0, "postgres": 0.2}
    assert cores_between(series, 100.5, 101.5) == {}  # one sample: no rate
    assert busiest({"api": 1.0, "postgres": 0.2, "relay": 0.5}, top=2) == "api 1.00, relay 0.50"
    assert busiest({}) == "-"


def test_histogram_percentiles() -> None:
    h = LatencyHistogram()
    for ms in range(1, 1001):
        h.record_ms(float(ms))
    s = h.summary()
    assert s.count == 1000
    assert 495 <= s.p50_ms <= 505
    assert 985 <= s.p99_ms <= 995
    assert s.max_ms >= 999
    assert s.cdf[-1][1] == 1.0
    assert LatencyHistogram().summary().p99_ms is None


async def _stalling_server(stall_s: float) -> tuple[asyncio.Server, int]:
    """HTTP server answering 202; the first request stalls the only connection for stall_s."""
    state = {"first": True}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                return
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            if state["first"]:
                state["first"] = False
                await asyncio.sleep(stall_s)
            writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_open_loop_counts_a_stall_from_the_scheduled_time() -> None:
    """Coordinated omission: arrivals due during a stall wait, and their latency shows it."""
    server, port = await _stalling_server(1.0)
    try:
        run = await run_open_loop(
            f"http://127.0.0.1:{port}",
            [Phase(duration_s=0.5, rate=20)],
            OrderFactory(1, "co", 5),
            connections=1,
        )
    finally:
        server.close()
    assert all(r.status == 202 for r in run.records)
    # The 2nd arrival is due 50 ms after the 1st, which holds the only connection for >= 1 s:
    # measured from its scheduled time it waited >= 0.95 s (a closed-loop client would say ~0).
    assert run.records[1].accept_ms is not None and run.records[1].accept_ms >= 950
    assert run.records[-1].accept_ms is not None and run.records[-1].accept_ms >= 1000 - 450 - 50

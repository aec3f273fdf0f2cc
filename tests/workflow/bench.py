"""A small, bounded end-to-end measurement of the workflow variant (not the comparison's
benchmark, which lives in compare/).

    .venv/bin/python -m tests.workflow.bench [--orders 400] [--concurrency 50] [--rate 4] [--duration 30]

Starts a private Temporal dev server (SQLite file, as `up` does) and the variant on fresh
databases, then:
1. throughput: `--orders` orders through POST with `--concurrency` in flight; orders/s is counted
   between 10% and 90% of completions (end to end: POST to terminal state in t_order);
2. latency: open loop at `--rate` orders/s for `--duration` s, each latency measured from the
   order's scheduled send time (so a stall is not hidden) to its settle commit (t_order.updated_at).
Everything is bounded in count and time; databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import engine_for
from tests.workflow.stack import workflow_stack

MAX_WAIT_S = 300.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _settled_at(db: AsyncEngine, ids: list[str]) -> dict[str, float]:
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT order_id, extract(epoch FROM updated_at) AS settled FROM t_order "
                "WHERE order_id = ANY(:ids) AND status <> 'PENDING'"
            ),
            {"ids": ids},
        )
        return {r.order_id: float(r.settled) for r in rows}


async def _wait_all(db: AsyncEngine, ids: list[str]) -> dict[str, float]:
    deadline = time.monotonic() + MAX_WAIT_S
    while True:
        done = await _settled_at(db, ids)
        if len(done) == len(ids) or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.5)


async def _post(http: httpx.AsyncClient, order_id: str) -> None:
    body = {"order_id": order_id, "customer_id": "bench", "lines": [{"sku": "bench", "quantity": 1}]}
    response = await http.post("/orders", json=body)
    response.raise_for_status()


async def throughput(http: httpx.AsyncClient, db: AsyncEngine, prefix: str, n: int, conc: int) -> float:
    ids = [f"{prefix}tp{i}" for i in range(n)]
    gate = asyncio.Semaphore(conc)

    async def one(order_id: str) -> None:
        async with gate:
            await _post(http, order_id)

    await asyncio.gather(*(one(i) for i in ids))
    done = sorted((await _wait_all(db, ids)).values())
    if len(done) < n:
        raise RuntimeError(f"only {len(done)}/{n} orders terminal after {MAX_WAIT_S}s")
    lo, hi = done[n // 10], done[(9 * n) // 10]
    return (0.8 * n) / (hi - lo)


async def latency(
    http: httpx.AsyncClient, db: AsyncEngine, prefix: str, rate: float, duration: float
) -> list[float]:
    count = int(rate * duration)
    start = time.time() + 0.5
    scheduled = {f"{prefix}lat{i}": start + i / rate for i in range(count)}

    async def one(order_id: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.time()))
        await _post(http, order_id)

    await asyncio.gather(*(one(o, at) for o, at in scheduled.items()))
    done = await _wait_all(db, list(scheduled))
    if len(done) < count:
        raise RuntimeError(f"only {len(done)}/{count} orders terminal after {MAX_WAIT_S}s")
    return [done[o] - at for o, at in scheduled.items()]


async def main(args: argparse.Namespace) -> None:
    async with workflow_stack("b", persist=True) as (settings, process):
        prefix = settings.db_prefix
        db = engine_for(settings, settings.database("wf", "orders"), pool_size=2)
        try:
            async with httpx.AsyncClient(base_url=process.base_url, timeout=60) as http:
                (await http.put("/stock/bench", json={"quantity": 1_000_000})).raise_for_status()
                tps = await throughput(http, db, prefix, args.orders, args.concurrency)
                print(
                    f"throughput: {tps:.1f} orders/s end to end "
                    f"({args.orders} orders, {args.concurrency} in flight)",
                    flush=True,
                )
                lat = await latency(http, db, prefix, args.rate, args.duration)
                print(
                    f"latency at {args.rate}/s for {args.duration:.0f}s ({len(lat)} orders), "
                    f"POST -> CONFIRMED: "
                    f"p50 {percentile(lat, 0.5) * 1000:.0f} ms, p99 {percentile(lat, 0.99) * 1000:.0f} ms, "
                    f"max {max(lat) * 1000:.0f} ms",
                    flush=True,
                )
        finally:
            await db.dispose()


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.workflow.bench", description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--rate", type=float, default=4.0)
    p.add_argument("--duration", type=float, default=30.0)
    return p.parse_args(argv)


if __name__ == "__main__":
    try:
        asyncio.run(main(_args()))
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        sys.exit(1)

"""The fault run's workload: a bounded, paced, closed loop of orders over HTTP, recorded.

Order i is not sent before start + i / rate, and at most `concurrency` are in flight. A 503 or
no answer is retried with the same id and body (safe: the API is idempotent by order id), up to
`retries` times. Load-side faults are part of the workload: duplicate submissions, conflicting
resubmissions (same id, another body), invalid orders, and the hot SKU (one SKU, scarce stock).
Everything is drawn from a seeded RNG: same seed, same orders in the same order.

(The benchmark's precise open-loop latency load is compare.bench.load; this one only has to put
enough orders in flight while faults happen and to record what the API answered.)
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import httpx
from pydantic import BaseModel, Field

from compare.faults.checker import MIN_ACCEPTED
from compare.faults.history import Attempt, History, Intent, Outcome, SubmittedOrder


class WorkloadSpec(BaseModel):
    orders: int = Field(200, ge=1)
    rate: float = Field(25.0, gt=0, description="orders started per second at most")
    concurrency: int = Field(8, ge=1)
    skus: int = Field(4, ge=1)
    stock_per_sku: int = Field(100_000, ge=0)
    max_lines: int = Field(2, ge=1)
    max_quantity: int = Field(3, ge=1)
    hot_stock_ratio: float | None = Field(
        None, gt=0, description="hot SKU mode: every order wants sku 0, stocked for this fraction of orders"
    )
    duplicates: int = Field(0, ge=0, description="extra concurrent submissions of each order")
    conflict_ratio: float = Field(0.0, ge=0, le=1, description="orders resubmitted with another body")
    invalid_ratio: float = Field(0.0, ge=0, le=1, description="extra malformed requests, per order")
    retries: int = Field(4, ge=0)
    request_timeout_s: float = 5.0
    max_seconds: float = Field(120.0, gt=0, description="stop submitting after this long")
    min_accepted: float = Field(
        MIN_ACCEPTED,
        ge=0,
        le=1,
        description="the share of valid orders attempted that must get a 202, or the run made no "
        "progress and fails (each order once: duplicates and invalid requests aside)",
    )

    def duration_hint(self) -> float:
        return self.orders / self.rate


INVALID_BODIES: list[Any] = [
    {"customer_id": "c", "lines": [{"sku": "S", "quantity": 1}]},  # no order_id
    {"order_id": "ID", "customer_id": "c", "lines": []},  # no lines
    {"order_id": "ID", "customer_id": "c", "lines": [{"sku": "S", "quantity": -2}]},
    {"order_id": "ID", "customer_id": "c", "lines": [{"sku": "S", "quantity": "3"}]},
    {"order_id": "ID", "customer_id": "c", "lines": [{"sku": "S", "quantity": 1}], "price": 9},
    {
        "order_id": "ID",
        "customer_id": "c",
        "lines": [{"sku": "S", "quantity": 1}, {"sku": "S", "quantity": 2}],
    },
    {"order_id": "I D!", "customer_id": "c", "lines": [{"sku": "S", "quantity": 1}]},
    "{not json",
]


class Workload:
    def __init__(self, spec: WorkloadSpec, tag: str, seed: int) -> None:
        self.spec = spec
        self.tag = tag
        self._rng = random.Random(seed)
        self.skus = [f"{tag}-sku{k}" for k in range(spec.skus)]

    def initial_stock(self) -> dict[str, int]:
        stock = dict.fromkeys(self.skus, self.spec.stock_per_sku)
        if self.spec.hot_stock_ratio is not None:
            stock[self.skus[0]] = max(1, int(self.spec.orders * self.spec.hot_stock_ratio))
        return stock

    def _order(self, i: int) -> SubmittedOrder:
        spec = self.spec
        if spec.hot_stock_ratio is not None:
            lines = [{"sku": self.skus[0], "quantity": 1}]
            if spec.skus > 1 and self._rng.random() < 0.5:
                lines.append({"sku": self._rng.choice(self.skus[1:]), "quantity": 1})
        else:
            n = self._rng.randint(1, min(spec.max_lines, len(self.skus)))
            skus = self._rng.sample(self.skus, n)
            lines = [{"sku": s, "quantity": self._rng.randint(1, spec.max_quantity)} for s in skus]
        return SubmittedOrder(order_id=f"{self.tag}-{i:05d}", customer_id=f"c{i % 17}", lines=lines)

    def plan(self) -> list[tuple[SubmittedOrder, int, bool]]:
        """(order, extra duplicate submissions, resubmit with a conflicting body) per order."""
        return [
            (self._order(i), self.spec.duplicates, self._rng.random() < self.spec.conflict_ratio)
            for i in range(self.spec.orders)
        ]

    def invalid_requests(self) -> list[tuple[str, Any]]:
        count = round(self.spec.orders * self.spec.invalid_ratio)
        out: list[tuple[str, Any]] = []
        for i in range(count):
            order_id = f"{self.tag}-bad{i:04d}"
            body = self._rng.choice(INVALID_BODIES)
            if isinstance(body, dict):
                body = json.loads(json.dumps(body).replace('"ID"', json.dumps(order_id)))
                body = json.loads(json.dumps(body).replace('"S"', json.dumps(self.skus[0])))
            out.append((order_id, body))
        return out


class WorkloadRunner:
    """Runs a Workload against base_url, appending to `history`. Times relative to `t0`."""

    def __init__(self, workload: Workload, base_url: str, history: History, t0: float) -> None:
        self.workload = workload
        self.base_url = base_url
        self.history = history
        self.t0 = t0
        self.done = 0

    def _now(self) -> float:
        return time.monotonic() - self.t0

    async def _post(self, client: httpx.AsyncClient, order_id: str, body: Any, intent: Intent) -> Outcome:
        started = self._now()
        status: int | None = None
        detail: str | None = None
        try:
            if isinstance(body, str):
                r = await client.post("/orders", content=body, headers={"content-type": "application/json"})
            else:
                r = await client.post("/orders", json=body)
            status = r.status_code
            outcome = Outcome.of_status(status)
            if outcome is not Outcome.ACCEPTED:
                detail = r.text[:200]
        except httpx.HTTPError as exc:
            outcome = Outcome.NO_ANSWER
            detail = f"{type(exc).__name__}: {exc}"[:200]
        self.history.attempts.append(
            Attempt(
                order_id=order_id,
                intent=intent,
                started=started,
                ended=self._now(),
                status=status,
                outcome=outcome,
                detail=detail,
            )
        )
        return outcome

    async def _submit(self, client: httpx.AsyncClient, order: SubmittedOrder, intent: Intent) -> Outcome:
        body = order.model_dump(include={"order_id", "customer_id", "lines"})
        outcome = Outcome.NO_ANSWER
        for attempt in range(self.workload.spec.retries + 1):
            outcome = await self._post(client, order.order_id, body, intent)
            if outcome not in (Outcome.UNAVAILABLE, Outcome.NO_ANSWER):
                return outcome
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
        return outcome

    async def _job(self, client: httpx.AsyncClient, order: SubmittedOrder, dups: int, conflict: bool) -> None:
        self.history.submitted(order)
        await asyncio.gather(*(self._submit(client, order, Intent.VALID) for _ in range(1 + dups)))
        if conflict:
            other = order.model_copy(
                update={"lines": [{**line, "quantity": int(line["quantity"]) + 1} for line in order.lines]}
            )
            await self._post(
                client, order.order_id, other.model_dump(include={"order_id", "customer_id", "lines"}),
                Intent.CONFLICT,
            )  # fmt: skip
        self.done += 1

    async def run(self) -> None:
        spec = self.workload.spec
        plan = self.workload.plan()
        invalid = self.workload.invalid_requests()
        limit = asyncio.Semaphore(spec.concurrency)
        deadline = self.t0 + spec.max_seconds
        timeout = httpx.Timeout(spec.request_timeout_s)
        limits = httpx.Limits(max_connections=spec.concurrency * (2 + spec.duplicates))
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout, limits=limits) as client:

            async def paced(i: int, job: Any) -> None:
                start_at = self.t0 + i / spec.rate
                await asyncio.sleep(max(0.0, start_at - time.monotonic()))
                if time.monotonic() > deadline:
                    job.close()  # never started: the run's time bound is up
                    return
                async with limit:
                    await job

            jobs = [paced(i, self._job(client, o, d, c)) for i, (o, d, c) in enumerate(plan)]
            for k, (order_id, body) in enumerate(invalid):
                self.history.submitted(
                    SubmittedOrder(
                        order_id=order_id,
                        customer_id="c",
                        lines=body.get("lines", []) if isinstance(body, dict) else [],
                        intent=Intent.INVALID,
                    )
                )
                at = (k + 0.5) * len(plan) / max(1, len(invalid))
                jobs.append(paced(int(at), self._post(client, order_id, body, Intent.INVALID)))
            await asyncio.gather(*jobs)

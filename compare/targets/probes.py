"""Read-only probes of a running target: order outcomes, backlogs, leftovers, server-side pids.

Everything is read from the target's own stores (its databases, the broker, Temporal), never
from the variants' code. Probe connections carry application_name `compare-probe` so that the
resource sampler can leave their PostgreSQL backends out of the variant's figures.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.settings import Settings
from compare.targets.target import Variant

if TYPE_CHECKING:
    from aio_pika.abc import AbstractConnection
    from temporalio.client import Client

PROBE_APP = "compare-probe"


def probe_engine(settings: Settings, database: str) -> AsyncEngine:
    return create_async_engine(
        settings.database_url(database),
        pool_size=2,
        max_overflow=0,
        connect_args={"timeout": 5, "server_settings": {"application_name": PROBE_APP}},
    )


@dataclass(frozen=True)
class OrderTimes:
    status: dict[str, str]  # order_id -> status
    terminal_at: dict[str, float]  # order_id -> epoch seconds it became terminal (updated_at)
    deducted_at: dict[str, float]  # order_id -> epoch seconds of its first audit row


async def postgres_maintenance(settings: Settings) -> dict[str, str]:
    """The server's version and whether autovacuum runs: with it off, no table is vacuumed or
    analyzed during a run, and the dead rows of the outbox, the orders and the dedup table pile up
    (a figure taken late in the run pays for them). {"error": ...} when the server cannot say."""
    engine = probe_engine(settings, "postgres")
    try:
        async with engine.connect() as conn:
            version = await conn.scalar(text("SHOW server_version"))
            autovacuum = await conn.scalar(text("SHOW autovacuum"))
        return {"version": str(version), "autovacuum": str(autovacuum)}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    finally:
        await engine.dispose()


class Stores:
    """The target's two databases, opened once for the whole benchmark of that target."""

    def __init__(self, settings: Settings, variant: Variant) -> None:
        self.settings = settings
        self.variant = variant
        self.orders_db_name = settings.database(variant.db_code, "orders")
        self.inventory_db_name = settings.database(variant.db_code, "inventory")
        self.orders = probe_engine(settings, self.orders_db_name)
        self.inventory = probe_engine(settings, self.inventory_db_name)
        self.admin = probe_engine(settings, "postgres")

    async def close(self) -> None:
        for engine in (self.orders, self.inventory, self.admin):
            await engine.dispose()

    async def pending(self, tag: str | None = None) -> int:
        where = "status = 'PENDING'" + (" AND order_id LIKE :tag" if tag else "")
        async with self.orders.connect() as conn:
            return int(
                await conn.scalar(text(f"SELECT count(*) FROM t_order WHERE {where}"), {"tag": f"{tag}-%"})
            )

    async def terminal(self, tag: str) -> int:
        async with self.orders.connect() as conn:
            return int(
                await conn.scalar(
                    text("SELECT count(*) FROM t_order WHERE order_id LIKE :tag AND status <> 'PENDING'"),
                    {"tag": f"{tag}-%"},
                )
            )

    async def order_times(self, tag: str) -> OrderTimes:
        pattern = {"tag": f"{tag}-%"}
        async with self.orders.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT order_id, status, extract(epoch FROM updated_at) AS ts "
                        "FROM t_order WHERE order_id LIKE :tag"
                    ),
                    pattern,
                )
            ).all()
        async with self.inventory.connect() as conn:
            deducted = (
                await conn.execute(
                    text(
                        "SELECT order_id, extract(epoch FROM min(created_at)) AS ts "
                        "FROM t_deduction_log WHERE order_id LIKE :tag GROUP BY order_id"
                    ),
                    pattern,
                )
            ).all()
        return OrderTimes(
            status={r.order_id: r.status for r in rows},
            terminal_at={r.order_id: float(r.ts) for r in rows if r.status != "PENDING"},
            deducted_at={r.order_id: float(r.ts) for r in deducted},
        )

    async def audit_anomalies(self, tag: str) -> dict[str, int]:
        """Orders of `tag` deducted more than once, and CONFIRMED orders with no deduction."""
        pattern = {"tag": f"{tag}-%"}
        async with self.orders.connect() as conn:
            orders = (
                await conn.execute(
                    text(
                        "SELECT order_id, status, jsonb_array_length(lines) AS n "
                        "FROM t_order WHERE order_id LIKE :tag"
                    ),
                    pattern,
                )
            ).all()
        async with self.inventory.connect() as conn:
            audit = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT order_id, count(*) FROM t_deduction_log "
                            "WHERE order_id LIKE :tag GROUP BY order_id"
                        ),
                        pattern,
                    )
                ).all()
            )
        return {
            "double_deducted": sum(1 for o in orders if audit.get(o.order_id, 0) > o.n),
            "confirmed_without_deduction": sum(
                1 for o in orders if o.status == "CONFIRMED" and audit.get(o.order_id, 0) == 0
            ),
            "deducted_but_not_confirmed": sum(
                1 for o in orders if o.status != "CONFIRMED" and audit.get(o.order_id, 0) > 0
            ),
            "pending": sum(1 for o in orders if o.status == "PENDING"),
        }

    async def outbox_rows(self) -> int | None:
        """Rows left in t_local_msg of both databases (None when the variant has no outbox)."""
        total = 0
        found = False
        for engine in (self.orders, self.inventory):
            async with engine.connect() as conn:
                exists = await conn.scalar(text("SELECT to_regclass('t_local_msg') IS NOT NULL"))
                if exists:
                    found = True
                    total += int(await conn.scalar(text("SELECT count(*) FROM t_local_msg")))
        return total if found else None

    async def backend_pids(self) -> list[int]:
        """PostgreSQL backends serving this target's databases, the probes' own excluded."""
        async with self.admin.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = ANY(:names) "
                    "AND coalesce(application_name, '') <> :probe"
                ),
                {"names": [self.orders_db_name, self.inventory_db_name], "probe": PROBE_APP},
            )
            return [int(r.pid) for r in rows]

    async def tables(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for side, engine in (("orders", self.orders), ("inventory", self.inventory)):
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
                    )
                )
                out[side] = [r.table_name for r in rows]
        return out

    async def drop(self) -> None:
        async with self.admin.connect() as conn:
            await conn.execute(text("COMMIT"))
            for name in (self.orders_db_name, self.inventory_db_name):
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class BrokerProbe:
    """Queue depths of the MQ variant's queues (names per mq_variant/topology.py's docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queues = {
            "deduct": settings.amqp_name("inventory.deduct"),
            "results": settings.amqp_name("orders.results"),
            "deduct_dlq": settings.amqp_name("inventory.deduct.dlq"),
            "results_dlq": settings.amqp_name("orders.results.dlq"),
        }
        self._conn: AbstractConnection | None = None

    async def depths(self) -> dict[str, int]:
        import aio_pika

        if self._conn is None or self._conn.is_closed:
            self._conn = await aio_pika.connect(self.settings.amqp_url, timeout=5)
        out: dict[str, int] = {}
        for key, name in self.queues.items():
            channel = await self._conn.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                out[key] = int(queue.declaration_result.message_count or 0)
            except Exception:
                continue
            finally:
                with contextlib.suppress(Exception):
                    await channel.close()
        return out

    async def delete_topology(self) -> None:
        import aio_pika

        conn = await aio_pika.connect(self.settings.amqp_url, timeout=5)
        try:
            channel = await conn.channel()
            for name in self.queues.values():
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)
            for name in (self.settings.amqp_name("mq"), self.settings.amqp_name("mq.dlx")):
                with contextlib.suppress(Exception):
                    await channel.exchange_delete(name)
        finally:
            await conn.close()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()


class TemporalProbe:
    """Open workflows and task-queue backlogs of the workflow variant."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None

    async def _get(self) -> Client:
        from temporalio.client import Client

        if self._client is None:
            self._client = await Client.connect(
                self.settings.temporal_address, namespace=self.settings.temporal_namespace
            )
        return self._client

    async def workflows(self, status: str = "Running") -> int:
        """Workflows in `status` (the dev server is private to the run, so all are ours)."""
        client = await self._get()
        count = await client.count_workflows(f"ExecutionStatus='{status}'")
        return int(count.count)

    async def backlog(self) -> dict[str, int]:
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        client = await self._get()
        out: dict[str, int] = {}
        for queue in ("wf-orders", "wf-inventory"):
            for kind, qtype in (
                ("wf", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
                ("act", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
            ):
                resp = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=self.settings.temporal_namespace,
                        task_queue=TaskQueue(name=self.settings.task_queue(queue)),
                        task_queue_type=qtype,
                        report_stats=True,
                    )
                )
                out[f"{queue}/{kind}"] = int(resp.stats.approximate_backlog_count)
        return out


@contextlib.asynccontextmanager
async def opened(settings: Settings, variant: Variant) -> AsyncIterator[Stores]:
    stores = Stores(settings, variant)
    try:
        yield stores
    finally:
        await stores.close()

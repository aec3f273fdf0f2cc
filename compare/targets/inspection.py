"""After a target's load phases: what it left behind, its tables, and what an operator can see.

Leftovers are the manual interventions a run would hand to an operator: orders still PENDING,
outbox rows not relayed, dead-lettered messages, workflows still running or failed. The
operator view follows ONE real order of the run with the tool an operator would use.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Literal, NamedTuple

from sqlalchemy import text

from common.temporal_dev import temporal_executable
from compare.targets.stage import Staged


class RecoveryTool(NamedTuple):
    """What an operator must run or watch for the design to keep its promise (part of its cost)."""

    name: str
    runs: Literal["a person", "always on", "a setting"]
    what: str

    @property
    def text(self) -> str:
        return f"{self.name} ({self.runs}): {self.what}"


RECOVERY_TOOLS: dict[str, tuple[RecoveryTool, ...]] = {
    "mq": (
        RecoveryTool(
            "reconciler role",
            "always on",
            "re-sends the deduct message of orders PENDING past CC_RECONCILE_AFTER_S with nothing in "
            "flight (an order older than the dedup window needs a person)",
        ),
        RecoveryTool(
            "python -m mq_variant dlq list | replay",
            "a person",
            "reads why each message was dead-lettered, fixes the cause, replays",
        ),
        RecoveryTool(
            "dedup retention",
            "always on",
            "the reconciler role prunes t_dedup past CC_DEDUP_RETENTION_S (python -m mq_variant prune by "
            "hand); the window must exceed every redelivery delay",
        ),
        RecoveryTool("standby relays", "always on", "one per database, for a relay cut off without a reset"),
    ),
    "workflow": (
        RecoveryTool(
            "the Temporal UI / `temporal workflow list|show|reset`",
            "a person",
            "a failed or stuck workflow is found and retried there",
        ),
        RecoveryTool(
            "python -m workflow_variant prune",
            "a person",
            "dedup retention of the activities' t_dedup (no role runs it), bounded below by the "
            "workflow's own timeouts",
        ),
        RecoveryTool("Temporal's retention of closed workflows", "a setting", "a namespace setting"),
    ),
    "reference": (
        RecoveryTool("none", "a setting", "nothing is in flight, and nothing recovers what a crash loses"),
    ),
}

# What an operator has to look at to follow ONE order, per variant (the probe runs it for real).
OPERATOR_VIEW = {
    "mq": (
        "SQL on two databases: t_order (orders db), t_local_msg rows of both outboxes, t_dedup of both "
        "sides, "
        "t_deduction_log (inventory db); the broker only shows queue counts "
        "(rabbitmqctl list_queues / management UI), not where one order's message is."
    ),
    "workflow": (
        "`temporal workflow show --workflow-id order-<id>` (or the Temporal web UI): every step, attempt, "
        "failure and retry of that order's history; plus t_order / t_deduction_log for the data."
    ),
    "reference": "t_order and t_deduction_log; nothing is in flight (the request does everything).",
}


async def leftovers(st: Staged) -> dict[str, int | None]:
    out: dict[str, int | None] = {"pending_orders": await st.stores.pending()}
    out["outbox_rows"] = await st.stores.outbox_rows()
    anomalies = await st.stores.audit_anomalies("")
    out["double_deducted_orders"] = anomalies["double_deducted"]
    out["confirmed_without_deduction"] = anomalies["confirmed_without_deduction"]
    out["deducted_but_not_confirmed"] = anomalies["deducted_but_not_confirmed"]
    if st.broker is not None:
        with contextlib.suppress(Exception):
            depths = await st.broker.depths()
            out["dead_lettered"] = sum(v for k, v in depths.items() if k.endswith("dlq"))
            out["queued_messages"] = sum(v for k, v in depths.items() if not k.endswith("dlq"))
    if st.temporal is not None:
        for status in ("Running", "Failed", "Terminated", "TimedOut"):
            with contextlib.suppress(Exception):
                out[f"workflows_{status.lower()}"] = await st.temporal.workflows(status)
    return out


def temporal_tables(db_file: Path) -> int | None:
    if not db_file.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])


async def operator_view(st: Staged, order_id: str) -> dict[str, object]:
    """Run what an operator would run to follow `order_id`; keep the first lines of the output."""
    view: dict[str, object] = {
        "how": OPERATOR_VIEW.get(st.name, ""),
        "recovery_tools": [t.text for t in RECOVERY_TOOLS.get(st.name, ())],
        "order_id": order_id,
    }
    lines: list[str] = []
    async with st.stores.orders.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, reason, created_at, updated_at FROM t_order WHERE order_id = :id"),
                {"id": order_id},
            )
        ).first()
        lines.append(f"orders db t_order: {tuple(row) if row else 'no row'}")
    async with st.stores.inventory.connect() as conn:
        n = await conn.scalar(
            text("SELECT count(*) FROM t_deduction_log WHERE order_id = :id"), {"id": order_id}
        )
        lines.append(f"inventory db t_deduction_log rows: {n}")
    if st.name == "mq":
        like = {"p": f"%{order_id}%"}
        for side, engine in (("orders", st.stores.orders), ("inventory", st.stores.inventory)):
            async with engine.connect() as conn:
                dedup = await conn.scalar(
                    text("SELECT count(*) FROM t_dedup WHERE message_id LIKE :p OR result::text LIKE :p"),
                    like,
                )
                outbox = await conn.scalar(
                    text("SELECT count(*) FROM t_local_msg WHERE payload::text LIKE :p"), like
                )
                lines.append(f"{side} db: t_dedup rows mentioning it: {dedup}; t_local_msg rows: {outbox}")
        lines.append("broker: per-queue counts only; no lookup of one order's message by id")
        view["command"] = "psql on both databases (queries above); rabbitmqctl list_queues"
    if st.name == "workflow":
        argv = [
            temporal_executable(),
            "workflow",
            "show",
            "--workflow-id",
            f"order-{order_id}",
            "--address",
            st.settings.temporal_address,
            "--namespace",
            st.settings.temporal_namespace,
        ]
        view["command"] = " ".join(argv[1:5]) + " --address <server>"
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 20)
        except TimeoutError:
            proc.kill()
            out = b"(timed out)"
        shown = out.decode(errors="replace").splitlines()
        view["history_events"] = sum(1 for line in shown if line.strip()[:1].isdigit())
        lines += [f"temporal: {line}" for line in shown[:40]]
    view["output"] = lines
    return view

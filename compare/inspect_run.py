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

from sqlalchemy import text

from common.temporal_dev import temporal_executable
from compare.complexity import OPERATOR_VIEW, RECOVERY_TOOLS
from compare.stage import Staged


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
        "recovery_tools": list(RECOVERY_TOOLS.get(st.name, ())),
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

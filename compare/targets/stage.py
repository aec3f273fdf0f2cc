"""Bring one target (a variant or the reference) up in isolation for a benchmark, and down.

Each target gets fresh names (database, exchange/queue and task-queue prefixes), its own run
dir under the output dir, a free API port and, for the workflow variant, a private Temporal dev
server on a free port (persisting to a SQLite file, as the broker and PostgreSQL persist to
disk), so that its figures do not depend on what else runs on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from common.settings import Settings
from common.temporal_dev import start_dev_server
from compare.targets.pids import PidSource, pids_by_name, pids_from_run_dir, static_pids
from compare.targets.probes import BrokerProbe, Stores, TemporalProbe
from compare.targets.reference import REFERENCE
from compare.targets.sandbox import free_dev_server_port, free_port
from compare.targets.target import VARIANTS, Variant, VariantProcess

TARGETS: dict[str, Variant] = {"reference": REFERENCE, **VARIANTS}


@dataclass
class Staged:
    variant: Variant
    settings: Settings
    process: VariantProcess
    stores: Stores
    broker: BrokerProbe | None
    temporal: TemporalProbe | None
    temporal_pid: int | None
    temporal_store: str = "sqlite"
    label: str = ""  # how progress lines name this target (defaults to the variant's name)

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def title(self) -> str:
        return self.label or self.variant.name

    @property
    def base_url(self) -> str:
        return self.process.base_url

    def resource_groups(self) -> tuple[dict[str, PidSource], dict[str, str]]:
        """Process groups to sample: each role, the supervisor, and each dependency."""
        import os

        groups = dict(pids_from_run_dir(self.settings.run_dir))
        notes: dict[str, str] = {}
        if self.process.proc is not None:
            groups["supervisor"] = static_pids([self.process.proc.pid])
        groups["postgres"] = self.stores.backend_pids
        notes["postgres"] = "backends serving this target's two databases (shared server)"
        if self.variant.name == "mq":
            groups["rabbitmq"] = static_pids(pids_by_name("beam.smp"))
            notes["rabbitmq"] = "whole shared broker node: includes any other load on it"
        if self.temporal_pid is not None:
            groups["temporal"] = static_pids([self.temporal_pid])
            notes["temporal"] = f"private dev server for this run ({self.temporal_store} persistence)"
        groups["load generator"] = static_pids([os.getpid()])
        notes["load generator"] = "this process: load generator and probes"
        return groups, notes


def target_settings(base: Settings, name: str, out_dir: Path, *, faults: str = "") -> Settings:
    prefix = f"cr{uuid.uuid4().hex[:6]}_"
    run_dir = (out_dir / "run" / name).resolve()
    # A previous run into the same --out left its logs, pid files and Temporal store here: a
    # reused store would start the private server on someone else's history. Start empty.
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return base.model_copy(
        update={
            "db_prefix": prefix,
            "amqp_prefix": prefix,
            "temporal_queue_prefix": prefix,
            "run_dir": run_dir,
            "api_port": free_port(),
            "temporal_db_file": run_dir / "temporal.sqlite",
            "faults": faults,
            "control": "",
        }
    )


@contextlib.asynccontextmanager
async def staged(
    name: str,
    base: Settings,
    out_dir: Path,
    *,
    keep: bool = False,
    ready_timeout: float = 120.0,
    temporal_store: str = "sqlite",
    label: str | None = None,
    faults: str = "",
) -> AsyncIterator[Staged]:
    """temporal_store: "sqlite" (a file, durable like the broker and PostgreSQL) or "memory"
    (nothing persisted: an upper bound on what the dev server can do, NOT a durable setup).
    faults: CC_FAULTS for the variant's roles (compare run --inventory-delay-ms)."""
    variant = TARGETS[name]
    settings = target_settings(base, label or name, out_dir, faults=faults)
    temporal_proc: asyncio.subprocess.Process | None = None
    if name == "workflow":
        port = free_dev_server_port()
        settings = settings.model_copy(update={"temporal_address": f"127.0.0.1:{port}"})
        temporal_proc = await start_dev_server(
            settings.temporal_address,
            settings.temporal_db_file if temporal_store == "sqlite" else None,
            log_file=settings.run_dir / "temporal.log",
        )
    process = VariantProcess(variant, settings, settings.run_dir / f"{label or name}.log")
    stores = Stores(settings, variant)
    broker = BrokerProbe(settings) if name == "mq" else None
    temporal = TemporalProbe(settings) if name == "workflow" else None
    try:
        process.start(reset=True)
        await process.wait_ready(timeout=ready_timeout)
        yield Staged(
            variant,
            settings,
            process,
            stores,
            broker,
            temporal,
            temporal_proc.pid if temporal_proc else None,
            temporal_store,
            label or name,
        )
    finally:
        process.stop()
        if broker is not None:
            await broker.close()
            if not keep:
                with contextlib.suppress(Exception):
                    await broker.delete_topology()
        if temporal_proc is not None and temporal_proc.returncode is None:
            temporal_proc.terminate()
            try:
                await asyncio.wait_for(temporal_proc.wait(), 15)
            except TimeoutError:
                temporal_proc.kill()
                await temporal_proc.wait()
        if not keep:
            with contextlib.suppress(Exception):
                await stores.drop()
        await stores.close()

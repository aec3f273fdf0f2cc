"""Async SQLAlchemy engines on asyncpg, and database creation."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from common.settings import Settings

_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def server_settings(settings: Settings) -> dict[str, str]:
    """Per-session PostgreSQL settings that bound how long a cut-off client can hold anything:
    server-side TCP keepalives (a peer that vanished without a reset is dropped in about
    idle + interval * count seconds), a session idle inside a transaction is ended (its row locks
    and uncommitted dedup row freed), and no statement runs unbounded."""
    return {
        "tcp_keepalives_idle": str(settings.pg_keepalive_idle_s),
        "tcp_keepalives_interval": str(settings.pg_keepalive_interval_s),
        "tcp_keepalives_count": str(settings.pg_keepalive_count),
        "idle_in_transaction_session_timeout": str(int(settings.pg_idle_in_transaction_s * 1000)),
        "statement_timeout": str(int(settings.pg_statement_timeout_s * 1000)),
    }


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def engine_for(settings: Settings, database: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        settings.database_url(database),
        # A fixed pool: overflow connections are opened and closed again under load (a TLS
        # attempt, authentication and session setup each time); waiting for a pooled one is cheaper.
        pool_size=pool_size,
        max_overflow=0,
        # No pre-ping: it costs a round trip on every checkout. A connection that died meanwhile
        # (a database restart) fails on use instead; SQLAlchemy then invalidates it and the pool's
        # older connections, the request answers 503 (Retry-After) and the workers retry, as
        # they do for any transient database error (common.db_errors).
        pool_pre_ping=False,
        pool_timeout=10,
        json_serializer=_json_text,  # JSONB parameters (order lines, outbox payloads, dedup results)
        json_deserializer=orjson.loads,
        connect_args={
            "timeout": 5,
            "command_timeout": settings.pg_command_timeout_s,
            "server_settings": server_settings(settings),
        },
    )


@contextlib.asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection without BEGIN/COMMIT: each statement is its own transaction (one round
    trip). For single statements only; anything that needs two statements atomic uses begin()."""
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def asyncpg_dsn(settings: Settings, database: str) -> str:
    """The plain libpq-style URL asyncpg wants (for LISTEN/NOTIFY and advisory locks)."""
    return settings.database_url(database).replace("postgresql+asyncpg://", "postgresql://", 1)


async def ensure_database(settings: Settings, database: str, *, reset: bool = False) -> None:
    if not _SAFE_NAME.match(database):
        raise ValueError(f"unsafe database name {database!r}")
    admin = create_async_engine(settings.database_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            if reset:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        await admin.dispose()


async def drop_database(settings: Settings, database: str) -> None:
    if not _SAFE_NAME.match(database):
        raise ValueError(f"unsafe database name {database!r}")
    admin = create_async_engine(settings.database_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def create_schema(
    settings: Settings, database: str, metadata: MetaData, *, reset: bool = False
) -> None:
    await ensure_database(settings, database, reset=reset)
    engine = engine_for(settings, database, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()

"""Async SQLAlchemy engines on asyncpg, and database creation."""

from __future__ import annotations

import re

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.settings import Settings

_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def engine_for(settings: Settings, database: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        settings.database_url(database),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


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

"""Fixtures: real PostgreSQL and RabbitMQ (local servers when reachable, testcontainers else).

Every test session gets its own database names, exchange/queue names and task-queue names
(a random prefix), so runs never collide with each other or with a developer's `up`. Under
pytest-xdist each worker is a session of its own: own prefixes, own private servers (`sandbox`,
the workflow tests' Temporal dev server), own temporary directories.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from common.settings import Settings
from compare.targets.sandbox import Dependency, Sandbox


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tier first, each tier in collection order: with `-n 2 --dist loadfile
    --no-loadscope-reorder` the workers take files in this order, so the long fault and
    end-to-end runs start at once and the short files fill in at the end. The order is the same
    in every worker (xdist checks that)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), 2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = os.environ.get("CC_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")
    if _reachable(url, 5432):
        yield url
        return
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver="asyncpg") as pg:
        yield pg.get_connection_url().rsplit("/", 1)[0]


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    url = os.environ.get("CC_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if _reachable(url, 5672):
        yield url
        return
    from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3.13-management") as mq:
        params = mq.get_connection_params()
        yield f"amqp://guest:guest@{params.host}:{params.port}/"


@pytest.fixture(scope="session")
def base_settings(pg_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    return Settings(
        pg_url=pg_url,
        amqp_url=amqp_url,
        db_prefix=prefix,
        amqp_prefix=prefix,
        temporal_queue_prefix=prefix,
        run_dir=tmp_path_factory.mktemp("run"),
    )


def fresh_settings(base: Settings, tmp: Path, **overrides: object) -> Settings:
    """Settings for one test: own names and run dir, so its state starts empty."""
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    values: dict[str, object] = {
        "db_prefix": prefix,
        "amqp_prefix": prefix,
        "temporal_queue_prefix": prefix,
        "run_dir": tmp,
        # two idle processes fewer per MQ start; the fault suite's runs keep them (its own settings)
        "relay_standby": False,
    }
    values.update(overrides)
    return base.model_copy(update=values)


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    """Private PostgreSQL, RabbitMQ and Temporal servers owned by the tests (fault runs, attach)."""
    sb = await Sandbox.private_servers({Dependency.POSTGRES, Dependency.RABBITMQ, Dependency.TEMPORAL})
    try:
        yield sb
    finally:
        await sb.close()

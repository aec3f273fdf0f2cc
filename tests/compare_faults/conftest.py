"""A private sandbox (PostgreSQL, RabbitMQ, Temporal owned by the test) for the fault runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from compare.sandbox import Dependency, Sandbox


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    sb = await Sandbox.private_servers({Dependency.POSTGRES, Dependency.RABBITMQ, Dependency.TEMPORAL})
    try:
        yield sb
    finally:
        await sb.close()

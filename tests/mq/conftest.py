"""The MQ variant run for real: `python -m mq_variant up` as processes on the local servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aio_pika
import pytest

from common.settings import Settings
from compare.targets.sandbox import PrivatePostgres, PrivateRabbit
from compare.targets.target import MQ, settings_env
from mq_variant import topology
from tests.support import VariantRun, variant_runs


class MqRun(VariantRun):
    async def tool(self, *argv: str) -> str:
        """An operator command (`python -m mq_variant ...`), run as a person would, on this run."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mq_variant", *argv,
            env={**os.environ, **settings_env(self.settings)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, out.decode()
        return out.decode()

    async def close(self) -> None:
        await super().close()
        with contextlib.suppress(Exception):  # best effort: a test's private broker may be gone
            await delete_topology(self.settings)


StartMq = Callable[..., Awaitable[MqRun]]


@pytest.fixture
async def start_mq(base_settings: Settings, tmp_path: Path) -> AsyncIterator[StartMq]:
    """Start the MQ variant (fresh databases and queues); call with env={"CC_FAULTS": ...}."""
    async with variant_runs(MQ, base_settings, tmp_path, MqRun) as start:
        yield start


def _private_dir(kind: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=f"cc-test-{kind}-"))
    os.chmod(base, 0o755)  # the servers run as the rabbitmq / postgres users
    return base


@pytest.fixture
async def private_rabbit() -> AsyncIterator[PrivateRabbit]:
    """A RabbitMQ node of the test's own, so that stopping it never touches the shared one."""
    rabbit = PrivateRabbit(_private_dir("rabbit"))
    await rabbit.start()
    try:
        yield rabbit
    finally:
        await rabbit.stop()


@pytest.fixture
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own, so that crashing it never touches the shared one."""
    pg = PrivatePostgres(_private_dir("pg"))
    await pg.start()
    try:
        yield pg
    finally:
        await pg.stop(mode="immediate")


async def delete_topology(settings: Settings) -> None:
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        await topology.delete(await connection.channel(), settings)

"""The MQ variant's running API against its own OpenAPI document (schemathesis) and the body
limit. One variant run serves the module's tests: starting one is most of their cost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.settings import Settings
from compare.targets.target import MQ
from tests.contract.body import check_chunked_body_limit
from tests.contract.fuzz import run_fuzzer
from tests.mq.conftest import MqRun
from tests.support import variant_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def mq(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MqRun]:
    async with variant_runs(MQ, base_settings, tmp_path_factory.mktemp("mq-api"), MqRun) as start:
        yield await start()


async def test_chunked_body_over_the_limit_is_413(mq: MqRun) -> None:
    await check_chunked_body_limit(mq)


async def test_fuzzer_finds_no_contract_violation(mq: MqRun, tmp_path: Path) -> None:
    result = await asyncio.to_thread(run_fuzzer, mq.process.base_url, tmp_path)
    assert not result.problems(), "\n".join([*result.problems(), result.output[-6000:]])

"""The workflow variant's running API against its own OpenAPI document (schemathesis) and the
body limit. One variant run (own task queues on the session's private Temporal dev server)
serves the module's tests: starting one is most of their cost."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from common.settings import Settings
from compare.targets.target import WORKFLOW
from tests.contract.body import check_chunked_body_limit
from tests.contract.fuzz import run_fuzzer
from tests.support import variant_runs
from tests.workflow.conftest import WfRun

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def wf(
    wf_settings: Settings, temporal_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WfRun]:
    make = functools.partial(WfRun, temporal=temporal_client)
    async with variant_runs(WORKFLOW, wf_settings, tmp_path_factory.mktemp("wf-api"), make) as start:
        yield await start()


async def test_chunked_body_over_the_limit_is_413(wf: WfRun) -> None:
    await check_chunked_body_limit(wf)


async def test_fuzzer_finds_no_contract_violation(wf: WfRun, tmp_path: Path) -> None:
    result = await asyncio.to_thread(run_fuzzer, wf.process.base_url, tmp_path)
    assert not result.problems(), "\n".join([*result.problems(), result.output[-6000:]])

"""Connecting to Temporal: one place for the address, namespace and data converter.

The pydantic data converter makes our pydantic models cross the wire as JSON; the workers, the
API and the Replayer must all use this same converter (see tests/workflow/test_replay.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from common.backoff import Backoff
from common.settings import Settings

DATA_CONVERTER: DataConverter = pydantic_data_converter
RPC_TIMEOUT = timedelta(seconds=5)  # the API answers 503 after this rather than hanging


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    """lazy=True never touches the network here: the API must start (and answer 503 on its
    readiness probe) even while Temporal is down."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=DATA_CONVERTER,
        lazy=lazy,
    )


async def connect_with_retry(settings: Settings, who: str) -> Client:
    """Workers: wait for Temporal, however long it takes (the supervisor keeps us running)."""
    backoff = Backoff(initial=0.2, maximum=5.0)
    while True:
        try:
            return await connect(settings)
        except RuntimeError as exc:  # the SDK's "Failed client connect"
            delay = backoff.next_delay()
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(
                f"{who}: Temporal at {settings.temporal_address} unreachable ({first}); "
                f"retrying in {delay:.1f}s",
                flush=True,
            )
            await asyncio.sleep(delay)

"""Determinism guard: histories of real runs replay against the current OrderWorkflow.

A change to the workflow that would make a running order's history diverge (another activity,
another order of commands, ...) fails here, in CI, instead of in production as a stuck workflow.
Refresh the fixtures with `.venv/bin/python -m tests.workflow.capture_histories` (see there).
The Replayer uses the same data converter as the workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflow_variant.client import DATA_CONVERTER
from workflow_variant.workflow import OrderWorkflow

with workflow.unsafe.imports_passed_through():
    from common.domain import DeductionOutcome
    from workflow_variant.messages import RECORD_ORDER, SETTLE_ORDER, WORKFLOW_NAME, OrderWorkflowInput

HISTORIES = sorted(Path(__file__).with_name("histories").glob("*.json"))


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"fixture-{path.stem}", json.loads(path.read_text()))


def test_fixtures_cover_every_path() -> None:
    assert {p.stem for p in HISTORIES} >= {"confirmed", "confirmed_after_retry", "rejected", "conflict"}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=[OrderWorkflow], data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(_load(path))


@workflow.defn(name=WORKFLOW_NAME)
class _SkipsTheDeduction:
    """A plausible but incompatible edit: settle straight after recording."""

    @workflow.run
    async def run(self, inp: OrderWorkflowInput) -> DeductionOutcome:
        from datetime import timedelta

        await workflow.execute_activity(RECORD_ORDER, inp.order, start_to_close_timeout=timedelta(seconds=30))
        outcome = DeductionOutcome(order_id=inp.order.order_id, status="CONFIRMED")
        await workflow.execute_activity(SETTLE_ORDER, outcome, start_to_close_timeout=timedelta(seconds=30))
        return outcome


async def test_replay_catches_a_nondeterministic_change() -> None:
    """The guard can fail: the edited workflow does not replay the stored history."""
    replayer = Replayer(workflows=[_SkipsTheDeduction], data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(
        _load(Path(__file__).with_name("histories") / "confirmed.json"), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None

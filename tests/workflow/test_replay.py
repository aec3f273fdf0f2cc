"""Determinism guard: histories of real runs replay against the current OrderWorkflow.

A change to the workflow that would make a running order's history diverge (another activity,
another order of commands, ...) fails here, in CI, instead of in production as a stuck workflow.
Refresh the fixtures with `.venv/bin/python -m tests.workflow.capture_histories` (see there).
The Replayer uses the same data converter as the workers.

Two generations of fixtures: `<case>.json`, captured before the order-side steps became local
activities (runs started then must still replay and finish on the old path), and
`local_<case>.json`, the current path (patch LOCAL_ORDER_STEPS).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflow_variant.client import DATA_CONVERTER
from workflow_variant.workflow import OrderWorkflow

with workflow.unsafe.imports_passed_through():
    from common.domain import DeductionOutcome
    from workflow_variant.messages import (
        DEDUCT_STOCK,
        RECORD_ORDER,
        SETTLE_ORDER,
        WORKFLOW_NAME,
        DeductRequest,
        OrderWorkflowInput,
    )

HISTORIES = sorted(Path(__file__).with_name("histories").glob("*.json"))
CASES = {"confirmed", "confirmed_after_retry", "rejected", "conflict"}
LOCAL = "local_"  # capture_histories.PREFIX of the current path


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"fixture-{path.stem}", json.loads(path.read_text()))


def test_fixtures_cover_every_path() -> None:
    assert {p.stem for p in HISTORIES} >= CASES | {f"{LOCAL}{case}" for case in CASES}


def _record_steps(history: WorkflowHistory) -> tuple[int, int]:
    """(record_order as a regular activity, local activity markers) in the history."""
    regular = sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == RECORD_ORDER
    )
    local = sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    )
    return regular, local


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_each_generation_took_its_own_path(path: Path) -> None:
    """The old fixtures really hold regular order-side activities and the new ones local
    activities, so that test_history_replays exercises both branches of the patch."""
    regular, local = _record_steps(_load(path))
    if path.stem.startswith(LOCAL):
        assert (regular, local >= 1) == (0, True)
    else:
        assert (regular, local) == (1, 0)


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


@workflow.defn(name=WORKFLOW_NAME)
class _NoLocalSteps:
    """The workflow before the patch: every step a regular activity, no patch check."""

    @workflow.run
    async def run(self, inp: OrderWorkflowInput) -> DeductionOutcome:
        from datetime import timedelta

        timeout = timedelta(seconds=30)
        await workflow.execute_activity(RECORD_ORDER, inp.order, start_to_close_timeout=timeout)
        outcome = await workflow.execute_activity(
            DEDUCT_STOCK,
            DeductRequest(order_id=inp.order.order_id, lines=inp.order.lines),
            task_queue=inp.inventory_task_queue,
            result_type=DeductionOutcome,
            start_to_close_timeout=timeout,
        )
        await workflow.execute_activity(SETTLE_ORDER, outcome, start_to_close_timeout=timeout)
        return outcome


async def test_the_local_path_fixtures_bind_the_new_code() -> None:
    """Rolling back to code without the local steps would break the runs started since: the
    local_ fixtures catch it (and the old ones still replay on that old code)."""
    replayer = Replayer(workflows=[_NoLocalSteps], data_converter=DATA_CONVERTER)
    folder = Path(__file__).with_name("histories")
    local = _load(folder / f"{LOCAL}confirmed.json")
    assert (await replayer.replay_workflow(local, raise_on_replay_failure=False)).replay_failure is not None
    await replayer.replay_workflow(_load(folder / "confirmed.json"))

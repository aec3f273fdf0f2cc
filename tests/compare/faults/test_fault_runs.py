"""End to end: real variants under real faults (SIGKILL, partitions, lost acks, a restarted
broker / Temporal server) come out clean; deliberately broken controls show their anomaly.

A few scenarios, 60 orders each, one private sandbox: a few minutes in all. Every control runs,
with the same recovery window as the real scenarios (a control whose anomaly is an order left
PENDING waits the whole window).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compare.faults.checker import AnomalyKind
from compare.faults.runner import ScenarioResult, plan_cases, run_case, run_scenarios
from compare.faults.scenario import CONTROLS
from compare.targets.sandbox import Sandbox

ORDERS = 60
RECOVERY_S = 30.0
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def _run(
    variants: list[str], scenarios: list[str], sandbox: Sandbox, tmp_path: Path
) -> list[ScenarioResult]:
    return await run_scenarios(variants, scenarios, seed=3, orders=ORDERS, out_dir=tmp_path, sandbox=sandbox,
                               recovery_s=RECOVERY_S)


def _explain(r: ScenarioResult) -> str:
    return f"{r.label}: {r.status} {r.anomalies} {r.note} {r.verdict.anomalies if r.verdict else ''}"


async def test_mq_variant_survives_faults(sandbox: Sandbox, tmp_path: Path) -> None:
    results = await _run(
        ["mq"],
        [
            "crash-after_consumer_commit",
            "lost-publish-confirm",
            "crash-loop-consumer",  # five crashes holding a full prefetch: nothing dead-lettered
            "crash-rabbitmq",
        ],
        sandbox,
        tmp_path,
    )
    assert [r.status for r in results] == ["pass"] * 4, [_explain(r) for r in results]
    assert results[0].fired, "the armed crash never fired"
    assert all(r.verdict and r.verdict.summary.accepted == ORDERS for r in results)
    assert (tmp_path / "faults.json").exists()


async def test_workflow_variant_survives_faults(sandbox: Sandbox, tmp_path: Path) -> None:
    results = await _run(
        ["workflow"],
        ["crash-after_deduct_commit", "lost-ack", "kill-order-worker", "restart-temporal"],
        sandbox,
        tmp_path,
    )
    assert [r.status for r in results] == ["pass"] * 4, [_explain(r) for r in results]
    assert results[0].fired, "the armed crash never fired"


async def test_controls_show_their_anomaly(sandbox: Sandbox, tmp_path: Path) -> None:
    """Every control, with the same recovery window as the real runs, shows every kind it expects.

    Each of the five controls runs once, with its fault-point scenario (deterministic); the two
    network-only cases (lost-ack) run in the full matrix (`compare faults --controls`), to keep
    CI under 20 minutes."""
    controls = sorted({f"{c.variant}:{c.control}" for c in CONTROLS})
    assert len(controls) == 5
    cases = [case for case in plan_cases(controls, []) if case.scenario.name != "lost-ack"]
    results = [
        await run_case(case, sandbox, seed=3, orders=ORDERS, out_dir=tmp_path, say=print,
                       recovery_s=RECOVERY_S)
        for case in cases
    ]
    found = {(r.control, r.scenario): r for r in results}
    assert len(found) == 5
    for control, scenario in (
        ("no-dedup", "crash-after_consumer_commit"),
        ("non-idempotent-deduct", "crash-after_deduct_commit"),
    ):
        r = found[(control, scenario)]
        assert r.anomalies.get(AnomalyKind.DOUBLE_DEDUCTION, 0) > 0, _explain(r)
    for control, scenario in (
        ("direct-publish", "crash-after_order_commit"),
        ("ack-before-commit", "crash-before_consumer_commit"),
        ("api-writes-order", "crash-after_order_commit"),
    ):
        r = found[(control, scenario)]
        assert r.anomalies.get(AnomalyKind.STUCK, 0) > 0, _explain(r)
    assert found[("ack-before-commit", "crash-before_consumer_commit")].anomalies.get(AnomalyKind.LOST, 0) > 0
    assert all(r.status == "pass" for r in results), [_explain(r) for r in results]

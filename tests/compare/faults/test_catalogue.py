"""The scenario catalogue is consistent with the variant profiles; the nemesis is reproducible."""

from __future__ import annotations

from pathlib import Path

from compare.faults.injectors import KillRole, NetworkFault, PauseRole, RestartDependency
from compare.faults.nemesis import draw
from compare.faults.runner import plan_cases
from compare.faults.scenario import CONTROLS, PROFILES, catalogue, scenario_named


def test_every_plan_uses_the_variants_own_roles_points_and_dependencies() -> None:
    names = [s.name for s in catalogue()]
    assert len(names) == len(set(names))
    for scenario in catalogue():
        for variant, plan in scenario.plans.items():
            profile = PROFILES[variant]
            for arm in plan.arm:
                assert arm.point in profile.points, (scenario.name, variant, arm.point)
            for step in plan.schedule:
                fault = step.fault
                if isinstance(fault, KillRole | PauseRole):
                    assert fault.role in profile.roles, (scenario.name, variant)
                if isinstance(fault, NetworkFault | RestartDependency):
                    assert fault.dependency in profile.dependencies, (scenario.name, variant)
                if isinstance(fault, NetworkFault) and fault.roles:
                    assert set(fault.roles) <= set(profile.roles), (scenario.name, variant)


def test_the_issue_s_scenarios_exist_for_both_variants() -> None:
    for name in ("baseline", "duplicate-storm", "hot-sku", "lost-ack", "nemesis", "kill-api", "pause-api",
                 "restart-postgres", "partition-api-postgres", "invalid-orders"):  # fmt: skip
        assert scenario_named(name).applies_to("mq") and scenario_named(name).applies_to("workflow")
    for name in ("lost-publish-confirm", "poison-message", "restart-rabbitmq"):
        assert scenario_named(name).applies_to("mq")
    assert scenario_named("restart-temporal").applies_to("workflow")
    for variant, profile in PROFILES.items():
        for role in profile.roles:
            assert scenario_named(f"kill-{role}").applies_to(variant)
            for dep in profile.dependencies:
                assert scenario_named(f"partition-{role}-{dep}").applies_to(variant)
        for point in profile.points:
            assert scenario_named(f"crash-{point}").applies_to(variant)


def test_every_control_has_a_scenario_that_applies() -> None:
    for control in CONTROLS:
        assert scenario_named(control.scenario).applies_to(control.variant)
        assert control.expect
    cases = plan_cases(["mq", "workflow"], ["baseline"], controls=True)
    assert sum(c.control is not None for c in cases) == len(CONTROLS)


def test_nemesis_same_seed_same_schedule() -> None:
    for profile in PROFILES.values():
        a = draw(profile, 7, restarts=True)
        assert a == draw(profile, 7, restarts=True)
        assert a != draw(profile, 8, restarts=True)
        assert all(
            not isinstance(s.fault, RestartDependency) for s in draw(profile, 7, restarts=False).schedule
        )


def test_workload_same_seed_same_orders() -> None:
    from compare.faults.workload import Workload, WorkloadSpec

    spec = WorkloadSpec(orders=50, conflict_ratio=0.2, invalid_ratio=0.2, hot_stock_ratio=0.3)
    a, b = Workload(spec, "t", 5), Workload(spec, "t", 5)
    assert a.plan() == b.plan() and a.invalid_requests() == b.invalid_requests()
    assert a.initial_stock()["t-sku0"] == 15
    assert all(o.lines[0]["sku"] == "t-sku0" for o, _, _ in a.plan())  # hot SKU: everyone wants it


def test_fired_points_are_read_from_the_variant_log(tmp_path: Path) -> None:
    from compare.faults.runner import fired_points

    log = tmp_path / "variant.log"
    log.write_text(
        "[inventory-consumer] FAULT inventory-consumer/after_consumer_commit: crash\n"
        "[supervisor] inventory-consumer: exited with 137\n"
        "[inventory-consumer] FAULT inventory-consumer/after_consumer_commit: crash\n"
    )
    assert fired_points(log) == {"inventory-consumer/after_consumer_commit: crash": 2}


def test_nemesis_never_restarts_a_dependency_while_it_is_restarting() -> None:
    """Two restarts of one dependency overlap (a stop of a server already stopped fails: the run
    is then 'not applied'); the workflow profile drew two postgres restarts 0.4 s apart at seed 3."""
    for profile in PROFILES.values():
        for seed in range(300):
            restarted = [
                s.fault.dependency
                for s in draw(profile, seed, restarts=True).schedule
                if isinstance(s.fault, RestartDependency)
            ]
            assert len(restarted) == len(set(restarted)), (profile.name, seed, restarted)

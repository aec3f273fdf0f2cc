"""The runner's rules on hand-made runs: a fault that never applied fails the run, a control must
show every anomaly it expects, and `compare faults` exits non-zero on a skip unless told not to.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from compare.faults.checker import Anomaly, AnomalyKind, Verdict
from compare.faults.command import exit_code
from compare.faults.history import FaultEvent
from compare.faults.injectors import ArmPoint, KillRole, Step
from compare.faults.runner import ScenarioResult, control_status, not_applied, settle
from compare.faults.scenario import Plan

ROOT = Path(__file__).resolve().parents[3]
CRASH = ArmPoint(point="after_consumer_commit", action="crash", times=2)


def _result(
    status: str, *, control: str | None = None, anomalies: dict[str, int] | None = None
) -> ScenarioResult:
    return ScenarioResult(variant="mq", control=control, scenario="s", seed=1, orders=10, status=status,
                          anomalies=anomalies or {})  # fmt: skip


def test_an_armed_point_that_never_fired_was_not_applied() -> None:
    plan = Plan(arm=[CRASH])
    assert not_applied(plan, {}, []) == ["crash at after_consumer_commit never fired"]
    fired = {"inventory-consumer/after_consumer_commit: crash": 2}
    assert not_applied(plan, fired, []) == []
    only_one_role = Plan(arm=[CRASH.model_copy(update={"role": "order-result-consumer"})])
    assert not_applied(only_one_role, fired, []), "it fired, but in another role"
    another_action = {"inventory-consumer/after_consumer_commit: delay": 2}
    assert not_applied(plan, another_action, [])


def test_an_injector_that_missed_or_broke_was_not_applied() -> None:
    plan = Plan(schedule=[Step(at=0.2, fault=KillRole(role="api")), Step(at=0.5, fault=KillRole(role="api"))])
    ok = FaultEvent(at=1, action="instant", fault="SIGKILL api", detail="pid 42")
    missed = FaultEvent(at=2, action="instant", fault="SIGKILL api", detail="missed: no pid file")
    broke = FaultEvent(at=3, action="error", fault="SIGKILL api", detail="OSError: boom")
    assert not_applied(plan, {}, [ok, ok]) == []
    assert not_applied(plan, {}, [ok, missed]) == ["SIGKILL api: missed: no pid file"]
    assert not_applied(plan, {}, [ok, broke]) == ["SIGKILL api: error OSError: boom"]
    assert not_applied(plan, {}, [ok]) == ["1 of 2 scheduled faults never started"]


def test_not_applied_turns_a_pass_into_a_failure_and_keeps_real_anomalies() -> None:
    for control in (None, "no-dedup"):
        settled = settle(_result("pass", control=control), ["crash at x never fired"])
        assert settled.status == "not-applied" and "never fired" in (settled.note or "")
    clean_control = settle(_result("fail", control="no-dedup"), ["crash at x never fired"])
    assert clean_control.status == "not-applied"
    real = settle(_result("fail", anomalies={"lost": 3}), ["crash at x never fired"])
    assert real.status == "fail" and "not applied" in (real.note or "")
    assert settle(_result("error"), ["x"]).status == "error"
    assert settle(_result("pass"), []).status == "pass"


def test_a_control_must_show_every_anomaly_it_expects() -> None:
    expect = [AnomalyKind.LOST, AnomalyKind.STUCK]
    both = Verdict(
        anomalies=[Anomaly(kind=AnomalyKind.LOST, count=2), Anomaly(kind=AnomalyKind.STUCK, count=2)]
    )
    assert control_status(both, expect) == ("pass", None)
    only_stuck = Verdict(anomalies=[Anomaly(kind=AnomalyKind.STUCK, count=1)])
    status, note = control_status(only_stuck, expect)
    assert status == "fail" and note is not None and "lost" in note
    other = Verdict(anomalies=[Anomaly(kind=AnomalyKind.NO_PROGRESS, count=1)])
    assert control_status(other, [AnomalyKind.STUCK])[0] == "fail"
    status, note = control_status(Verdict(), expect)
    assert status == "fail" and "came out clean" in (note or "")


def test_a_skip_fails_the_command_unless_skips_are_allowed() -> None:
    passed, skipped = _result("pass"), _result("skipped")
    assert exit_code([passed], allow_skips=False) == 0
    assert exit_code([passed, skipped], allow_skips=False) == 1
    assert exit_code([passed, skipped], allow_skips=True) == 0
    for bad in ("fail", "error", "not-applied"):
        assert exit_code([passed, _result(bad)], allow_skips=True) == 1


def test_compare_faults_exits_1_on_a_skipped_scenario(tmp_path: Path) -> None:
    # Against the CC_* servers a dependency restart is skipped before anything starts: fast.
    argv = [sys.executable, "-m", "compare", "faults", "--variant", "mq", "--scenario", "restart-postgres",
            "--target", "external", "--out", str(tmp_path)]  # fmt: skip
    strict = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "1 skipped" in strict.stdout and "--allow-skips" in strict.stdout
    allowed = subprocess.run([*argv, "--allow-skips"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "1 skipped (of 1 runs)" in allowed.stdout  # counted apart from passes

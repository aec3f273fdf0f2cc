"""The decision page from hand-made results: the better side only outside the spread, failures
and anomalies shown, "not measured" where the run has no figure, links to sections that exist;
and the plots it relies on (one colour per target, CPU chart labels that do not collide)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from compare.bench.spread import SINGLE_RUN_GAP, Spread, claim, spread
from compare.report import plots
from compare.report.decision import (
    NO_DIFFERENCE,
    NOT_COMPARABLE,
    NOT_MEASURED,
    SECTIONS,
    Outcome,
    Row,
    by_spread,
    decision_blocks,
    decision_rows,
)
from compare.report.document import FAILED, LINK, Box, P, Table, Ul, to_html, to_markdown
from compare.report.render import render
from compare.report.summary import summary
from compare.targets.inspection import RECOVERY_TOOLS
from tests.compare.fake_results import fake_results, fake_step

# --------------------------------------------------------------------------- hand-made results


def repeated(results: dict[str, Any], side: str, p50s: list[float], max_rates: list[float]) -> None:
    """`side` measured over len(p50s) capacity searches: p50 (and p99 = 2 x p50) at 10/s each."""
    t = results["targets"][side]
    t["steps"] = []
    t["searches"] = []
    for i, (p50, top) in enumerate(zip(p50s, max_rates, strict=True)):
        t["steps"] += [
            {**fake_step(10, p50, 2 * p50, True), "search": i},
            {**fake_step(20, p50, 9000, False), "search": i},
        ]
        t["searches"].append({"search": i, "max_sustainable_rate": top, "confirmed": True, "log": []})
    t["max_sustainable_rate"] = sorted(max_rates)[len(max_rates) // 2]
    results["meta"]["repeat"] = len(p50s)


def fault_run(
    variant: str,
    scenario: str,
    status: str = "pass",
    anomalies: dict[str, int] | None = None,
    control: str | None = None,
    converge_s: float | None = 3.0,
    dead_letters: int = 0,
    converged: bool = True,
) -> dict[str, Any]:
    """What compare.faults.runner writes: a run that did not converge has no converge_s, nor has a
    baseline (no fault to converge from) although it converged."""
    return {
        "variant": variant,
        "control": control,
        "scenario": scenario,
        "status": status,
        "anomalies": anomalies or {},
        "converged": converged,
        "converge_s": converge_s if converged and scenario != "baseline" else None,
        "verdict": {"dead_letters": dead_letters, "outbox_rows": 0},
        "rate": 10.0 if scenario == "baseline" else 25.0,
    }


def with_faults(results: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    results["faults"] = {"available": True, "runs": runs, "description": "test runs", "verdict": []}
    return results


def shaving(verdict: str, behind: int, api: int, drain_s: float | None) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "reasons": [] if verdict == "held" else ["the backlog sat at the API"],
        "peak_rate": 30.0,
        "peak_completed_per_s": 12.0,
        "accepted_share": 1.0,
        "accept_p99_ms": 8.0,
        "api_in_flight_max": api,
        "behind_api_max": behind,
        "where_at_max": {"accepted, not terminal": behind, "queue inventory.deduct (ready)": behind - 5},
        "drain_s": drain_s,
    }


def with_burst(results: dict[str, Any], side: str, p99: float, drain_s: float | None, verdict: str) -> None:
    behind, api = (200, 3) if verdict == "held" else (4, 150)
    results["targets"][side]["burst"] = {
        "base_rate": 5.0,
        "peak_rate": 30.0,
        "accept_peak": {"p50_ms": p99 / 2, "p99_ms": p99},
        "drain_s": drain_s,
        "shaving": shaving(verdict, behind, api, drain_s),
    }


def with_disturb(
    results: dict[str, Any],
    side: str,
    rate: float = 5.0,
    recovery_s: float | None = 3.0,
    missing: int = 0,
    pending: int = 0,
    doubled: int = 0,
    counted: bool = True,
) -> None:
    """Faults under load as compare.bench.burst.disturb writes them (counted=False: an older run)."""
    window = {"label": "SIGKILL inventory", "role": "x", "start": 5.0, "end": 6.0, "recovery_s": recovery_s}
    d: dict[str, Any] = {
        "rate": rate,
        "duration_s": 20,
        "windows": [window],
        "anomalies": {"double_deducted": doubled, "confirmed_without_deduction": 0, "pending": pending},
    }
    if counted:
        d.update(accepted=200, accepted_missing=missing, accepted_pending=pending)
    results["targets"][side]["disturb"] = d


def caveat_items(results: dict[str, Any]) -> list[str]:
    return next(b for b in decision_blocks(results, summary(results)) if isinstance(b, Box)).items


def when_items(results: dict[str, Any]) -> list[str]:
    return next(b for b in decision_blocks(results, summary(results)) if isinstance(b, Ul)).items


def rows_by_key(results: dict[str, Any]) -> dict[str, Row]:
    return {r.key: r for r in decision_rows(results, summary(results))}


def page(results: dict[str, Any]) -> str:
    return to_markdown(decision_blocks(results, summary(results)))


# --------------------------------------------------------------------------- the better side


def test_overlapping_spreads_are_no_difference_and_nothing_is_marked() -> None:
    results = fake_results()
    repeated(results, "mq", [20, 30, 40], [10, 10, 10])
    repeated(results, "workflow", [35, 45, 50], [10, 10, 10])
    row = rows_by_key(results)["p50_ms"]
    assert row.outcome.winner is None
    assert row.outcome.text.startswith(NO_DIFFERENCE)
    assert row.cells["mq"].text == "30 ms (20-40 over 3 runs)"
    line = next(line for line in page(results).splitlines() if "p50 at 10/s" in line)
    assert "**" not in line  # neither figure marked


def test_ranges_apart_mark_the_better_side_in_its_cell_and_the_better_column() -> None:
    results = fake_results()
    repeated(results, "mq", [20, 22, 24], [40, 42, 44])
    repeated(results, "workflow", [200, 210, 220], [10, 12, 12])
    rows = rows_by_key(results)
    assert rows["p50_ms"].outcome.winner == "mq"
    assert rows["max_rate"].outcome.winner == "mq"  # higher is better there
    line = next(line for line in page(results).splitlines() if "p50 at 10/s" in line)
    assert (
        "| **22 ms (20-24 over 3 runs)** | 210 ms (200-220 over 3 runs) | **MQ** (ranges apart over 3 runs) |"
        in line
    )


def test_single_runs_are_marked_and_say_they_rest_on_one_run() -> None:
    rows = rows_by_key(fake_results())  # mq p50 20 ms, workflow 200 ms, one run each
    assert rows["p50_ms"].outcome.winner == "mq"
    assert "1 run each" in rows["p50_ms"].outcome.text
    assert rows["cpu"].outcome.text == f"{NO_DIFFERENCE} (1 run each, gap < 20 %)"  # 100 ms each


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([20, 30, 40], [35, 45, 50]),
        ([20, 22, 24], [200, 210]),
        ([5], [6]),
        ([5], [5.5]),
        ([7], [7]),
        ([1, 9], [5]),
    ],
)
def test_the_rule_is_the_verdicts_stricter_only_under_its_20_percent_on_one_run(
    a: list[float], b: list[float]
) -> None:
    sa, sb = spread(a), spread(b)
    line = claim("mq", sa, "workflow", sb, lower_is_better=True, what="x") or ""
    outcome = by_spread(sa, sb, lower_is_better=True)
    if outcome.winner is not None:
        assert f"**{outcome.winner}** wins" in line
    elif len(a) == len(b) == 1 and a != b:  # the verdict names a winner but asks for --repeat
        assert "wins" in line and "use --repeat before believing a gap under ~20 %" in line
        assert max(a + b) < SINGLE_RUN_GAP * min(a + b)
    else:
        assert "no measurable difference" in line or "a tie" in line


def test_a_figure_not_measured_on_one_side_marks_nothing() -> None:
    outcome = by_spread(Spread(n=1, min=1, median=1, max=1, values=[1]), None, lower_is_better=True)
    assert outcome.winner is None and outcome.text == NOT_MEASURED


# --------------------------------------------------------------------------- consistency and faults


def test_an_anomaly_and_a_missed_control_show_in_the_consistency_row() -> None:
    runs = [
        fault_run("mq", "baseline"),
        fault_run("mq", "restart-postgres", "fail", {"lost": 2}),
        fault_run("workflow", "baseline"),
        fault_run("workflow", "restart-postgres"),
        fault_run("mq", "duplicate-step", control="no-dedup", anomalies={"double_deduction": 3}),
        fault_run("workflow", "duplicate-step", "fail", control="no-dedup"),  # came out clean
    ]
    results = with_faults(fake_results(), runs)
    row = rows_by_key(results)["consistency"]
    mq, wf = row.cells["mq"].text, row.cells["workflow"].text
    assert "1/2 scenarios consistent (not: restart-postgres)" in mq and "lost 2" in mq
    assert "controls caught 1/1" in mq
    assert "2/2 scenarios consistent" in wf and "anomalies: none" in wf
    assert f"controls caught 0/1 ({FAILED} not caught: workflow:no-dedup duplicate-step)" in wf
    assert row.outcome.winner is None and row.outcome.text.startswith("not judged")
    when = next(b for b in decision_blocks(results, summary(results)) if isinstance(b, Ul))
    assert when.items[0].startswith(FAILED) and "workflow:no-dedup" in when.items[0]


def test_anomalies_on_one_side_only_make_the_other_better_and_say_when_to_choose_it() -> None:
    runs = [
        fault_run("mq", "baseline"),
        fault_run("mq", "restart-postgres", "fail", {"double_deduction": 1}),
        fault_run("workflow", "baseline"),
        fault_run("workflow", "restart-postgres"),
    ]
    results = with_faults(fake_results(), runs)
    row = rows_by_key(results)["consistency"]
    assert row.outcome.winner == "workflow"
    assert row.cells["mq"].text.startswith(
        "1/2 scenarios consistent (not: restart-postgres); anomalies: double_deduction 1"
    )
    assert (
        "Where a lost or double-applied order is unacceptable, choose workflow: in the 2 fault scenarios "
        "both completed, MQ double_deduction 1, workflow none" in page(results)
    )


def test_fault_kinds_where_one_design_needs_an_operator() -> None:
    runs = [
        fault_run("mq", "poison-message", dead_letters=2),  # the MQ variant alone has a plan for it
        fault_run("mq", "kill-inventory", "fail", {"stuck": 4}),
        fault_run("workflow", "kill-inventory"),
        fault_run("mq", "restart-postgres"),
        fault_run("workflow", "restart-postgres", "fail", {"stranded": 1}, dead_letters=1),
        fault_run("mq", "baseline"),
        fault_run("workflow", "baseline"),
    ]
    text = page(with_faults(fake_results(), runs))
    assert "MQ needed an operator and workflow did not after kill-inventory (stuck 4)" in text
    assert (
        "workflow needed an operator and MQ did not after restart-postgres (stranded 1, 1 dead-lettered"
        in text
    )
    assert "poison-message" not in text.split("When to choose which")[1].split("Caveats")[0]  # not both ran


def test_no_operator_work_in_common_scenarios_is_said_plainly() -> None:
    runs = [fault_run(v, s) for v in ("mq", "workflow") for s in ("baseline", "kill-api")]
    assert "In the 2 fault scenarios both ran, neither design left work for an operator" in page(
        with_faults(fake_results(), runs)
    )


def test_a_run_that_did_not_converge_is_the_worst_time() -> None:
    runs = [
        fault_run("mq", "restart-postgres", "fail", {"stuck": 3}, converged=False),
        fault_run("mq", "kill-api", converge_s=2.0),
        fault_run("workflow", "restart-postgres", converge_s=14.5),
        fault_run("workflow", "kill-api", converge_s=1.0),
    ]
    row = rows_by_key(with_faults(fake_results(), runs))["converge_suite"]
    assert row.cells["mq"].text == "did not converge: restart-postgres"
    assert row.cells["workflow"].text == "14.5 s (restart-postgres; worst of 2)"
    assert row.outcome.winner == "workflow"


# --------------------------------------------------------------------------- rate, burst, operations


def test_the_rate_above_which_one_design_loses_its_bound() -> None:
    results = fake_results()
    repeated(results, "mq", [20, 22, 24], [40, 42, 44])
    repeated(results, "workflow", [200, 210, 220], [10, 12, 12])
    assert (
        "Above 12/s, workflow no longer keeps p99 POST -> terminal within 2,000 ms while MQ keeps it up "
        "to 42/s: for a sustained rate above 12/s choose MQ" in page(results)
    )


def test_burst_rows_from_the_peak_shaving_verdict_and_the_drain() -> None:
    results = fake_results()
    with_burst(results, "mq", p99=8.0, drain_s=12.0, verdict="held")
    with_burst(results, "workflow", p99=400.0, drain_s=None, verdict="did not hold")
    rows = rows_by_key(results)
    assert rows["shaving"].outcome.winner == "mq"
    assert (
        rows["shaving"]
        .cells["mq"]
        .text.startswith("held: at most 200 behind the API (queue inventory.deduct")
    )
    assert rows["burst_accept"].cells["workflow"].text == "400 ms (peak 30/s)"
    assert rows["burst_accept"].outcome.winner == "mq"
    assert rows["burst_drain"].cells["workflow"].text == "not drained within the run"
    assert rows["burst_drain"].outcome.winner == "mq"
    assert "For traffic with peaks above the sustained rate, MQ absorbed the peak better" in page(results)


def test_moving_parts_tools_and_lines_are_exact_counts() -> None:
    results = fake_results()
    results["complexity"] = {
        "mq": {
            "deployment": {
                "app_services": ["api", "relay", "consumer"],
                "dependencies": ["postgres", "rabbitmq"],
            },
            "code": {"lines_by_class": {"plumbing": 900, "business": 200}},
        },
        "workflow": {
            "deployment": {"app_services": ["api", "worker"], "dependencies": ["postgres", "temporal"]},
            "code": {"lines_by_class": {"plumbing": 300, "business": 200}},
        },
    }
    rows = rows_by_key(results)
    assert (
        rows["moving_parts"].cells["mq"].text == "5: 3 services (api, relay, consumer) + postgres, rabbitmq"
    )
    assert rows["moving_parts"].outcome.winner == "workflow"
    assert rows["lines"].cells["mq"].text == "plumbing 900 vs business 200"
    assert rows["lines"].outcome.winner == "workflow"
    assert (
        rows["tools"]
        .cells["mq"]
        .text.startswith("1 a person runs: python -m mq_variant dlq list | replay; automatic: reconciler")
    )
    assert "\\|" in page(results)  # the pipe in a cell does not break the Markdown table


# --------------------------------------------------------------------------- missing data, caveats, links


def test_missing_sections_say_not_measured_never_a_figure() -> None:
    results = fake_results()  # no fault suite, no burst, no faults under load, no complexity
    rows = rows_by_key(results)
    for key in (
        "consistency",
        "converge_suite",
        "converge_load",
        "shaving",
        "burst_accept",
        "burst_drain",
        "moving_parts",
        "lines",
    ):
        assert rows[key].cells["mq"].text == rows[key].cells["workflow"].text == NOT_MEASURED, key
        assert rows[key].outcome.text == NOT_MEASURED
    box = next(b for b in decision_blocks(results, summary(results)) if isinstance(b, Box))
    joined = "\n".join(box.items)
    assert "Fault catalogue: not run (test)." in joined
    assert (
        "Not measured in this run: Consistency under the fault catalogue (scenarios both completed);"
        in joined
    )


def test_one_side_missing_a_figure_is_named_in_the_caveats() -> None:
    results = fake_results()
    with_burst(results, "mq", p99=8.0, drain_s=12.0, verdict="held")
    rows = rows_by_key(results)
    assert rows["burst_drain"].outcome.text == NOT_MEASURED and rows["burst_drain"].cells["mq"].text == "12 s"
    assert "Burst: drain time after the peak (workflow)" in page(results)


def test_caveats_name_the_machine_the_noise_and_what_temporal_and_rabbitmq_were() -> None:
    results = fake_results()
    results["meta"]["machine"] = {
        "logical_cpus": 2,
        "cpu_model": "Xeon",
        "load_avg_at_start": [0.5, 0.4, 0.3],
    }
    results["meta"]["temporal_store"] = "memory"
    results["meta"]["pressure_thresholds"] = {"idle_cpu_some_pct": 5}
    results["targets"]["mq"]["searches"] = [{"search": 0, "idle": {"flags": ["CPU pressure 30 % > 5 %"]}}]
    box = next(b for b in decision_blocks(results, summary(results)) if isinstance(b, Box))
    joined = "\n".join(box.items)
    assert "one host (Xeon, 2 logical CPUs)" in joined and "load average at start [0.5, 0.4, 0.3]" in joined
    assert "1 of 1 idle windows flagged (CPU pressure)" in joined
    assert "NOT durable" in joined and "single node" in joined


def test_a_postgres_without_autovacuum_is_a_caveat() -> None:
    def caveats_with(meta_postgres: dict[str, str]) -> str:
        results = fake_results()
        results["meta"]["postgres"] = meta_postgres
        box = next(b for b in decision_blocks(results, summary(results)) if isinstance(b, Box))
        return "\n".join(box.items)

    assert "autovacuum OFF" in caveats_with({"version": "15.19", "autovacuum": "off"})
    assert "autovacuum" not in caveats_with({"version": "15.19", "autovacuum": "on"})
    assert "autovacuum" not in caveats_with({"error": "OSError: refused"})


def test_one_variant_only_has_nothing_to_compare() -> None:
    results = fake_results()
    del results["targets"]["workflow"]
    text = page(results)
    assert "nothing to compare" in text and "| question |" not in text


def test_every_row_links_to_a_section_that_exists_in_the_report(tmp_path: Path) -> None:
    results = fake_results()
    blocks = decision_blocks(results, summary(results))
    table = next(b for b in blocks if isinstance(b, Table))
    anchors = set()
    for row in table.rows:
        link = LINK.fullmatch(row[0])
        assert link is not None, row[0]
        anchors.add(link.group(2))
    assert anchors <= set(SECTIONS)
    render(results, tmp_path)
    html = (tmp_path / "report.html").read_text()
    for anchor, heading in SECTIONS.items():
        assert f'<h2 id="{anchor}">{heading}</h2>' in html, anchor
    linked = set(re.findall(r'href="#([\w-]+)"', to_html(blocks, "t")))
    assert anchors <= linked <= set(SECTIONS)
    for anchor in linked:
        assert f'id="{anchor}"' in html, anchor


# --------------------------------------------------------------------------- loud failures, fair comparisons


def test_orders_lost_under_load_have_a_row_void_the_recovery_and_fail_loudly() -> None:
    results = fake_results()
    with_disturb(results, "mq", recovery_s=2.0, missing=4, pending=1)
    with_disturb(results, "workflow", recovery_s=9.0)
    rows = rows_by_key(results)
    lost = rows["lost_load"]
    assert lost.question.startswith("Accepted orders lost or double-applied under load")
    assert lost.cells["mq"].text == "5 of 200 lost (4 absent, 1 still PENDING); no double deduction"
    assert lost.cells["workflow"].text == "none of 200 lost; no double deduction"
    assert lost.outcome.winner == "workflow"
    recovery = rows["converge_load"]  # MQ recovered sooner, but it lost orders: no win on it
    assert recovery.outcome == Outcome(None, "not judged: MQ lost or double-applied orders")
    assert "not judged" in recovery.cells["mq"].text
    failed = [i for i in when_items(results) if i.startswith(FAILED)]
    assert len(failed) == 1 and "MQ" in failed[0] and "5 of 200 lost (4 absent, 1 still PENDING)" in failed[0]


def test_orders_not_counted_under_load_say_so_and_a_double_deduction_fails() -> None:
    results = fake_results()
    with_disturb(results, "mq", counted=False)
    with_disturb(results, "workflow", doubled=2)
    row = rows_by_key(results)["lost_load"]
    assert row.cells["mq"].text.startswith("not counted")
    assert row.cells["workflow"].text == "none of 200 lost; double_deducted 2"
    assert row.outcome.winner is None and row.outcome.text.startswith("not judged")
    assert any(
        i.startswith(FAILED) and "workflow" in i and "double_deducted 2" in i for i in when_items(results)
    )


def test_a_single_run_each_marks_a_side_only_on_a_gap_of_20_percent() -> None:
    assert SINGLE_RUN_GAP == 1.2
    assert "gap under ~20 %" in (
        claim("mq", spread([5]), "workflow", spread([9]), lower_is_better=True, what="x") or ""
    )
    small = by_spread(spread([10]), spread([11.5]), lower_is_better=True)
    assert small == Outcome(None, "no difference (1 run each, gap < 20 %)")
    big = by_spread(spread([10]), spread([12]), lower_is_better=True)
    assert big.winner == "mq" and "1 run each" in big.text
    mixed = by_spread(spread([10]), spread([30, 31, 32]), lower_is_better=True)  # one side measured 3 times
    assert mixed.winner == "mq" and "1 run each" not in mixed.text


def test_the_sentences_use_the_same_gap_and_say_they_rest_on_one_run() -> None:
    results = fake_results()  # MQ sustains 10/s
    results["targets"]["workflow"]["steps"].append(fake_step(11, 200, 900, True))
    results["targets"]["workflow"]["max_sustainable_rate"] = 11.0  # within 20 % of MQ's
    with_burst(results, "mq", p99=8.0, drain_s=10.0, verdict="held")
    with_burst(results, "workflow", p99=8.5, drain_s=11.0, verdict="held")
    text = page(results)
    assert "choose workflow" not in text and "The sustained rate does not decide (1 run)" in text
    assert "absorbed the peak better" not in text
    with_burst(results, "workflow", p99=8.5, drain_s=20.0, verdict="held")
    text = page(results)
    assert "MQ absorbed the peak better (1 run)" in text and "drained in 10 s" in text


def test_consistency_counts_only_the_scenarios_both_sides_completed() -> None:
    runs = [
        *(fault_run(v, s) for v in ("mq", "workflow") for s in ("baseline", "restart-postgres")),
        fault_run("mq", "kill-inventory-consumer", "fail", {"stuck": 2}),  # only MQ has this process
        fault_run("workflow", "kill-inventory-worker"),  # only the workflow has this one
    ]
    row = rows_by_key(with_faults(fake_results(), runs))["consistency"]
    assert row.cells["mq"].text.startswith("2/2 scenarios consistent; anomalies: none")
    assert (
        "ran alone: kill-inventory-consumer (anomalies: stuck 2)" in row.cells["mq"].text
    )  # shown, not counted
    assert row.outcome.winner is None and row.outcome.text.startswith(NO_DIFFERENCE)


def test_consistency_is_not_judged_while_a_run_did_not_complete() -> None:
    runs = [
        *(fault_run(v, "baseline") for v in ("mq", "workflow")),
        fault_run("mq", "restart-postgres", "fail", {"double_deduction": 1}),
        fault_run("workflow", "restart-postgres"),
        fault_run("workflow", "kill-api", "error"),
    ]
    results = with_faults(fake_results(), runs)
    row = rows_by_key(results)["consistency"]
    assert "did not complete: kill-api error" in row.cells["workflow"].text
    assert row.outcome.winner is None and row.outcome.text.startswith("not judged")
    assert (  # the lost order is still said, without a choice
        "Lost or double-applied orders in the 2 fault scenarios both completed: MQ double_deduction 1, "
        "workflow none (not judged: runs did not complete)" in page(results)
    )


def test_only_lost_double_applied_or_oversold_orders_say_choose_for_lost_orders() -> None:
    runs = [
        *(fault_run(v, "baseline") for v in ("mq", "workflow")),
        fault_run("mq", "restart-postgres", "fail", {"stuck": 3}),
        fault_run("workflow", "restart-postgres"),
    ]
    results = with_faults(fake_results(), runs)
    assert rows_by_key(results)["consistency"].outcome.winner == "workflow"  # any anomaly counts in the row
    assert "lost or double-applied order is unacceptable" not in page(results)


def test_runs_that_all_broke_and_a_missed_control_are_not_judged_never_not_measured() -> None:
    runs = [
        fault_run("mq", "baseline"),
        fault_run("mq", "restart-postgres"),
        fault_run("workflow", "baseline", "error"),
        fault_run("workflow", "restart-postgres", "error"),
        fault_run("workflow", "duplicate-step", "fail", control="no-dedup"),
    ]
    rows = rows_by_key(with_faults(fake_results(), runs))
    for key in ("consistency", "converge_suite"):
        assert rows[key].cells["workflow"].text.startswith("not judged"), key
        assert rows[key].outcome.text.startswith("not judged"), key


def test_a_fault_suite_that_failed_is_a_failed_caveat_and_one_skipped_is_not() -> None:
    results = fake_results()
    results["faults"] = {"available": False, "note": "the fault suite failed: OSError: boom", "runs": []}
    assert f"{FAILED} the fault suite failed: OSError: boom." in caveat_items(results)
    assert rows_by_key(results)["consistency"].cells["mq"].text.startswith("not judged")
    results["faults"]["note"] = "skipped (--no-faults)"
    items = caveat_items(results)
    assert "Fault catalogue: not run (skipped (--no-faults))." in items
    assert not any(i.startswith(FAILED) for i in items)
    assert rows_by_key(results)["consistency"].cells["mq"].text == NOT_MEASURED


def test_rows_run_at_each_targets_own_rate_are_labelled_and_not_compared() -> None:
    results = fake_results()
    results["meta"]["config"] = {"burst_factor": 3.0}
    with_burst(results, "mq", p99=8.0, drain_s=5.0, verdict="held")
    with_burst(results, "workflow", p99=400.0, drain_s=None, verdict="did not hold")
    results["targets"]["mq"]["burst"]["peak_rate"] = 300.0
    with_disturb(results, "mq", rate=50.0, recovery_s=1.0)
    with_disturb(results, "workflow", rate=9.0, recovery_s=9.0)
    rows = rows_by_key(results)
    for key in ("shaving", "burst_accept", "burst_drain"):
        assert rows[key].question.endswith("(at 3x its own max: MQ 300/s vs workflow 30/s)"), key
        assert rows[key].outcome == Outcome(None, NOT_COMPARABLE), key
    for key in ("converge_load", "lost_load"):
        assert rows[key].question.endswith("(at half its own max: MQ 50/s vs workflow 9/s)"), key
        assert rows[key].outcome == Outcome(None, NOT_COMPARABLE), key
    assert "absorbed the peak better" not in page(results)


def test_the_fault_suites_offered_rate_above_a_sides_max_is_a_caveat() -> None:
    runs = [fault_run(v, s) for v in ("mq", "workflow") for s in ("baseline", "kill-api")]
    items = caveat_items(with_faults(fake_results(), runs))  # both sustain 10/s; the suite offered 10-25/s
    assert any(
        "both variants, 10-25/s" in i and "above the measured max of MQ (10/s) and workflow (10/s)" in i
        for i in items
    )
    older = [{k: v for k, v in r.items() if k != "rate"} for r in runs]
    items = caveat_items(with_faults(fake_results(), older))
    assert any("offered rate was not recorded" in i for i in items)


def test_a_broken_target_fails_above_the_table_and_its_figures_are_not_compared() -> None:
    results = fake_results()
    results["targets"]["workflow"]["error"] = "RuntimeError: boom"
    blocks = decision_blocks(results, summary(results))
    above = blocks[: next(i for i, b in enumerate(blocks) if isinstance(b, Table))]
    assert any(
        isinstance(b, P) and f"{FAILED} Temporal workflow broke: RuntimeError: boom" in b.text for b in above
    )
    rows = rows_by_key(results)
    for key in ("max_rate", "p50_ms", "cpu"):
        assert rows[key].cells["workflow"].text.endswith("(broke: RuntimeError: boom)"), key
        assert rows[key].outcome == Outcome(None, "not judged: workflow broke"), key
    # only the design's fixed properties (its recovery tools) may still be compared, never the run's figures
    better = page(results).split("is better on", 1)[1].split(";", 1)[0]
    assert better.strip() == "[Recovery tools a person must run](#complexity)", better


def test_a_burst_that_did_not_exercise_the_claim_says_so() -> None:
    results = fake_results()
    with_burst(results, "mq", p99=8.0, drain_s=5.0, verdict="held")
    with_burst(results, "workflow", p99=8.0, drain_s=5.0, verdict="not exercised")
    row = rows_by_key(results)["shaving"]
    assert row.cells["workflow"].text.startswith("not exercised")
    assert row.outcome == Outcome(None, "not exercised")


def test_recovery_tools_are_compared_on_what_a_person_must_run() -> None:
    row = rows_by_key(fake_results())["tools"]  # the fixed list, whatever the run recorded
    manual = {s: [t.name for t in RECOVERY_TOOLS[s] if t.runs == "a person"] for s in ("mq", "workflow")}
    assert row.cells["mq"].text.startswith(f"{len(manual['mq'])} a person runs: {manual['mq'][0]}")
    assert "automatic: reconciler role" in row.cells["mq"].text  # always-on roles are listed, not counted
    fewer = min(manual, key=lambda s: len(manual[s]))
    assert len(manual["mq"]) != len(manual["workflow"]) and row.outcome.winner == fewer

def test_neither_design_sustaining_any_rate_is_said_plainly() -> None:
    results = fake_results()
    for side in ("mq", "workflow"):
        for step in results["targets"][side]["steps"]:
            step["passed"] = False
        results["targets"][side]["max_sustainable_rate"] = None
    text = page(results)
    assert "Neither design kept p99 POST -> terminal within 2,000 ms at any rate tried" in text
    assert "up to about" not in text


# --------------------------------------------------------------------------- plots


def test_one_colour_per_target_and_none_of_them_reused_for_other_things() -> None:
    assert plots.color("mq") == plots.COLORS["mq"] and plots.color("mq:no-dedup") == plots.COLORS["mq"]
    assert plots.color("someone-else") == plots.OTHER_TARGET
    assert not set(plots.PALETTE) & {*plots.COLORS.values(), plots.OTHER_TARGET}
    assert not set(plots.STAGE_COLORS) & set(plots.COLORS.values())


def test_cpu_chart_target_names_do_not_run_into_each_other() -> None:
    per = {"api": 3.0, "postgres": 4.0, "temporal": 5.0, "load generator": 1.0, "total": 13.0}
    names = ["reference", "mq", "workflow", "workflow-memory"]
    fig = plots.cpu_figure([(n, per) for n in names], 10)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.get_yticklabels()]
    assert len(boxes) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert all(b.width < 0.35 * fig.bbox.width for b in boxes)  # wrapped, not one long line
    assert [t.get_color() for t in ax.get_yticklabels()] == [plots.color(n) for n in names]
    legend = fig.legends[0].get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))  # the legend covers no bar
    plots.plt.close(fig)


def test_a_design_that_kept_the_bound_at_no_rate() -> None:
    results = fake_results()
    for step in results["targets"]["workflow"]["steps"]:
        step["passed"] = False
    results["targets"]["workflow"]["max_sustainable_rate"] = None
    row = rows_by_key(results)["max_rate"]
    assert row.cells["workflow"].text == "none within the bound" and row.outcome.winner == "mq"
    assert "workflow kept p99 POST -> terminal within 2,000 ms at none of the rates tried, MQ up to 10/s" in (
        page(results)
    )

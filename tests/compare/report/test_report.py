"""The report from a hand-made results.json: rendering, the verdict's rules, the code analysis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from compare.report.complexity import analyse_package, category, code_lines
from compare.report.render import render
from compare.report.summary import common_rate
from tests.compare.fake_results import fake_results

ROOT = Path(__file__).resolve().parents[3]


def test_code_lines_skip_docstrings_comments_and_blanks() -> None:
    src = '"""Module doc.\n\nmore"""\n\n# comment\nx = 1\n\n\ndef f():\n    """Doc."""\n    return x\n'
    assert code_lines(src) == 3


def test_every_variant_module_is_classified() -> None:
    for package in ("mq_variant", "workflow_variant"):
        if not (ROOT / package).exists():
            continue
        result = analyse_package(ROOT, package)
        unknown = [m.module for m in result.modules if m.category == "unclassified"]
        assert not unknown, f"add these modules to compare.report.complexity.MODULE_CATEGORY: {unknown}"
        assert result.lines_by_class.get("plumbing", 0) > 0
    assert category("nothing_like_this") == "unclassified"


def test_report_renders_markdown_html_and_plots(tmp_path: Path) -> None:
    results = fake_results()
    assert common_rate(results) == 10
    files = render(results, tmp_path)
    names = {f.name for f in files}
    assert {"report.md", "report.html", "latency_cdf.png", "latency_vs_rate.png"} <= names
    md = (tmp_path / "report.md").read_text()
    assert "UNSAFE" in md and "## Verdict" in md and "| target |" in md
    assert "Temporal workflow" in md and "wins" in md
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2
    assert 'src="http' not in page and "<script" not in page  # self-contained, opens offline


def test_report_command_rerenders_and_rejects_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(fake_results()))
    ok = subprocess.run(
        [sys.executable, "-m", "compare", "report", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "report.html").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    out = subprocess.run(
        [sys.executable, "-m", "compare", "report", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_fault_matrix_reshapes_suite_results_and_flags_controls() -> None:
    from compare.faults.matrix import matrix, table, verdict_lines

    runs = [
        {"variant": "mq", "control": None, "scenario": "baseline", "status": "pass", "anomalies": {},
         "converge_s": 1.0},
        {"variant": "mq", "control": "no-dedup", "scenario": "crash", "status": "pass",
         "anomalies": {"double_deduction": 2}, "expected": ["double_deduction"]},
        {"variant": "workflow", "control": None, "scenario": "baseline", "status": "error", "anomalies": {},
         "note": "boom"},
        {"variant": "workflow", "control": "api-writes-order", "scenario": "crash", "status": "fail",
         "anomalies": {}, "expected": ["lost"]},
    ]  # fmt: skip
    m = matrix(runs)
    assert m == {
        "baseline": {"mq": 0, "workflow": None},
        "crash": {"mq:no-dedup": 2, "workflow:api-writes-order": 0},
    }
    t = table(runs)
    assert len(t["rows"]) == 4 and t["rows"][1][3] == "double_deduction 2"
    lines = verdict_lines(runs)
    assert "mq: 1/1" in lines[0] and "workflow: 0/1" in lines[1] and "1/2 showed" in lines[2]


def test_a_slow_inventory_arms_one_delay_at_each_variants_deductionstep() -> None:
    from common.faults import FaultAction, FaultPoint, parse_faults
    from compare.targets.stage import TARGETS

    for name in ("mq", "workflow"):
        variant = TARGETS[name]
        (spec,) = parse_faults(variant.slow_deduction(150))
        assert spec.role in variant.roles and "inventory" in spec.role, (name, spec.role)
        assert FaultPoint(spec.point) and spec.action is FaultAction.DELAY
        assert (spec.seconds, spec.times) == (0.15, None), "every deduction, not only the first"
    try:
        TARGETS["reference"].slow_deduction(150)
    except ValueError as exc:
        assert "no separate deduction step" in str(exc)
    else:
        raise AssertionError("the reference has no deduction step to slow")


def test_a_report_of_a_slowed_run_says_so_above_the_verdict(tmp_path: Path) -> None:
    results = fake_results()
    del results["targets"]["reference"]
    results["meta"]["inventory_delay_ms"] = 150.0
    render(results, tmp_path)
    md = (tmp_path / "report.md").read_text()
    said = md.index("every deduction took 150 ms longer")
    assert said < md.index("## Verdict")


def test_the_inventory_delay_must_be_a_positive_number_of_milliseconds() -> None:
    for bad in ("0", "-5", "abc", "1e9"):
        out = subprocess.run(
            [sys.executable, "-m", "compare", "run", "--inventory-delay-ms", bad],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2, bad
        assert "--inventory-delay-ms" in out.stderr and "Traceback" not in out.stderr


def test_faults_under_load_count_accepted_orders_against_the_database() -> None:
    from compare.bench.burst import unfinished
    from compare.bench.load import LoadRecord, LoadRun

    run = LoadRun(records=[LoadRecord(f"d-{i}", 0.0, 1.0, 202) for i in range(4)] + [LoadRecord("d-9", 0.0)])
    status = {"d-0": "CONFIRMED", "d-1": "PENDING", "d-3": "REJECTED", "d-9": "PENDING"}
    assert unfinished(run, status) == (1, 1)  # d-2 absent, d-1 PENDING; d-9 never got a 202


def _disturbed(**counts: int | None) -> dict:
    return {"rate": 5.0, "windows": [{"label": "SIGKILL x", "recovery_s": 1.0}],
            "anomalies": {"double_deducted": 0, "pending": 0}, **counts}  # fmt: skip


def test_no_lost_order_is_claimed_only_when_every_accepted_order_is_terminal() -> None:
    from compare.report.summary import summary
    from compare.report.verdict import verdict

    cases = {
        "clean": (_disturbed(accepted=50, accepted_missing=0, accepted_pending=0), "no lost order"),
        "lost": (_disturbed(accepted=50, accepted_missing=2, accepted_pending=1), "3 of 50 accepted"),
        "uncounted": (_disturbed(), "not counted"),
    }
    for name, (disturbed, said) in cases.items():
        results = fake_results()
        results["targets"]["mq"]["disturb"] = disturbed
        results["targets"]["workflow"]["disturb"] = disturbed
        line = next(x for x in verdict(results, summary(results)) if "under process faults" in x)
        assert said in line, (name, line)
        assert ("no lost order" in line) == (name == "clean"), (name, line)


def test_a_control_that_comes_out_clean_fails_compare_run(tmp_path: Path) -> None:
    from compare.faults.matrix import failed_controls, verdict_lines

    runs = [
        {"variant": "mq", "control": "no-dedup", "scenario": "a", "status": "pass", "anomalies": {"x": 1}},
        {"variant": "mq", "control": "direct-publish", "scenario": "b", "status": "fail", "anomalies": {},
         "note": "control came out clean: the suite failed to expose it"},
    ]  # fmt: skip
    assert failed_controls(runs) == ["mq:direct-publish b"]
    assert failed_controls(runs[:1]) == []
    (line,) = [x for x in verdict_lines(runs) if "Controls" in x]
    assert line.startswith("FAILED") and "mq:direct-publish" in line
    results = fake_results()
    results["faults"] = {"available": True, "runs": runs, "verdict": verdict_lines(runs)}
    render(results, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert '<li class="fail">FAILED' in page  # the verdict line in red
    from compare.run import exit_status

    assert exit_status(results) == 1
    results["faults"]["runs"] = runs[:1]
    assert exit_status(results) == 0
    results["targets"]["mq"]["error"] = "boom"
    assert exit_status(results) == 1


def test_the_store_is_said_to_cost_throughput_only_when_the_max_rate_shows_it() -> None:
    from compare.report.verdict import _sensitivity_lines

    def lines(memory_max: float, memory_peak: float) -> str:
        t = {
            "workflow": {"max_sustainable_rate": 18, "peak_completed_per_s": 19},
            "workflow-memory": {"max_sustainable_rate": memory_max, "peak_completed_per_s": memory_peak},
        }
        (line,) = _sensitivity_lines(t)
        return line

    # a higher peak of completions, but a LOWER max sustainable rate: no cost is shown
    assert "persistence costs" not in lines(10, 23.4)
    assert "costs the workflow variant about 2.00x" in lines(36, 40)


def test_the_store_is_not_acquitted_when_a_max_rate_is_missing() -> None:
    from compare.report.verdict import _sensitivity_lines

    t = {
        "workflow": {"max_sustainable_rate": None, "peak_completed_per_s": 3},
        "workflow-memory": {"max_sustainable_rate": 30, "peak_completed_per_s": 31},
    }
    (line,) = _sensitivity_lines(t)
    assert "not what limits" not in line and "not judged" in line

"""Pure parts of the benchmark: schedule, histograms, code analysis, report rendering."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from compare.burst import busiest
from compare.complexity import analyse_package, category, code_lines
from compare.load import OrderFactory, Phase, run_open_loop, schedule
from compare.metrics import CpuSample, LatencyHistogram, cores_between
from compare.report import common_rate, render

ROOT = Path(__file__).resolve().parents[2]


def test_schedule_is_fixed_in_advance_and_evenly_spaced() -> None:
    offsets = schedule(
        [Phase(duration_s=1, rate=10), Phase(duration_s=2, rate=0), Phase(duration_s=1, rate=4)]
    )
    assert len(offsets) == 14
    assert offsets[:3] == [0.0, 0.1, 0.2]
    assert offsets[10:] == [3.0, 3.25, 3.5, 3.75]


def test_order_factory_is_deterministic_per_seed() -> None:
    a = [OrderFactory(7, "x", 10).next() for _ in range(1)]
    b = [OrderFactory(7, "x", 10).next() for _ in range(1)]
    assert a == b
    order_id, body = OrderFactory(7, "x", 10).next()
    assert order_id == "x-0000001"
    assert json.loads(body)["order_id"] == order_id


def test_cores_between_uses_the_samples_inside_the_window() -> None:
    series = [
        CpuSample(t=100.0, cpu_s={"api": 0.0, "postgres": 0.0}),
        CpuSample(t=101.0, cpu_s={"api": 0.5, "postgres": 0.1}),
        CpuSample(t=103.0, cpu_s={"api": 2.5, "postgres": 0.5}),  # api: 2 s of CPU in 2 s
        CpuSample(t=104.0, cpu_s={"api": 2.6, "postgres": 0.6}),
    ]
    assert cores_between(series, 100.5, 103.5) == {"api": 1.0, "postgres": 0.2}
    assert cores_between(series, 100.5, 101.5) == {}  # one sample: no rate
    assert busiest({"api": 1.0, "postgres": 0.2, "relay": 0.5}, top=2) == "api 1.00, relay 0.50"
    assert busiest({}) == "-"


def test_histogram_percentiles() -> None:
    h = LatencyHistogram()
    for ms in range(1, 1001):
        h.record_ms(float(ms))
    s = h.summary()
    assert s.count == 1000
    assert 495 <= s.p50_ms <= 505
    assert 985 <= s.p99_ms <= 995
    assert s.max_ms >= 999
    assert s.cdf[-1][1] == 1.0
    assert LatencyHistogram().summary().p99_ms is None


async def _stalling_server(stall_s: float) -> tuple[asyncio.Server, int]:
    """HTTP server answering 202; the first request stalls the only connection for stall_s."""
    state = {"first": True}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                return
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            if state["first"]:
                state["first"] = False
                await asyncio.sleep(stall_s)
            writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_open_loop_counts_a_stall_from_the_scheduled_time() -> None:
    """Coordinated omission: arrivals due during a stall wait, and their latency shows it."""
    server, port = await _stalling_server(1.0)
    try:
        run = await run_open_loop(
            f"http://127.0.0.1:{port}",
            [Phase(duration_s=0.5, rate=20)],
            OrderFactory(1, "co", 5),
            connections=1,
        )
    finally:
        server.close()
    assert all(r.status == 202 for r in run.records)
    # The 2nd arrival is due 50 ms after the 1st, which holds the only connection for >= 1 s:
    # measured from its scheduled time it waited >= 0.95 s (a closed-loop client would say ~0).
    assert run.records[1].accept_ms is not None and run.records[1].accept_ms >= 950
    assert run.records[-1].accept_ms is not None and run.records[-1].accept_ms >= 1000 - 450 - 50


def test_code_lines_skip_docstrings_comments_and_blanks() -> None:
    src = '"""Module doc.\n\nmore"""\n\n# comment\nx = 1\n\n\ndef f():\n    """Doc."""\n    return x\n'
    assert code_lines(src) == 3


def test_every_variant_module_is_classified() -> None:
    for package in ("mq_variant", "workflow_variant"):
        if not (ROOT / package).exists():
            continue
        result = analyse_package(ROOT, package)
        unknown = [m.module for m in result.modules if m.category == "unclassified"]
        assert not unknown, f"add these modules to compare.complexity.MODULE_CATEGORY: {unknown}"
        assert result.lines_by_class.get("plumbing", 0) > 0
    assert category("nothing_like_this") == "unclassified"


def _step(rate: float, p50: float, p99: float, passed: bool) -> dict:
    lat = {
        "count": 10,
        "p50_ms": p50,
        "p90_ms": p99,
        "p99_ms": p99,
        "p999_ms": p99,
        "max_ms": p99,
        "mean_ms": p50,
        "cdf": [[p50, 0.5], [p99, 1.0]],
        "encoded": None,
    }
    usage = {"cpu_s": 1.0, "peak_rss_mib": 50.0, "processes": 1, "note": ""}
    return {
        "offered_rate": rate,
        "duration_s": 5,
        "sent": 10,
        "accepted": 10,
        "errors": 0,
        "error_samples": [],
        "completed": 10,
        "confirmed": 10,
        "rejected": 0,
        "incomplete": 0,
        "accept": lat,
        "terminal": lat,
        "deducted": lat,
        "accepted_per_s": rate,
        "completed_per_s": rate,
        "resources": {"api": usage},
        "cpu_ms_per_order": {"api": 100.0, "total": 100.0},
        "passed": passed,
        "why": "ok",
        "timeline": [
            {
                "t": 0,
                "offered": 1,
                "accepted": 1,
                "completed": 1,
                "accept_p99_ms": 1.0,
                "terminal_p99_ms": 2.0,
            }
        ],
    }


def _results() -> dict:
    def target(name: str, steps: list) -> dict:
        return {
            "name": name,
            "unsafe": name == "reference",
            "error": None,
            "steps": steps,
            "max_sustainable_rate": max((s["offered_rate"] for s in steps if s["passed"]), default=None),
        }

    return {
        "meta": {
            "command": "python -m compare run --quick",
            "mode": "quick",
            "seed": 1,
            "p99_bound_ms": 2000,
            "machine": {"logical_cpus": 2},
            "config": {},
        },
        "targets": {
            "reference": target("reference", [_step(10, 5, 9, True), _step(20, 6, 12, True)]),
            "mq": target("mq", [_step(10, 20, 90, True), _step(20, 25, 3000, False)]),
            "workflow": target("workflow", [_step(10, 200, 900, True), _step(20, 900, 9000, False)]),
        },
        "faults": {"available": False, "note": "test"},
    }


def test_report_renders_markdown_html_and_plots(tmp_path: Path) -> None:
    results = _results()
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
    path.write_text(json.dumps(_results()))
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
    from compare.fault_matrix import matrix, table, verdict_lines

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


def test_a_slow_inventory_arms_one_delay_at_each_variants_deduction_step() -> None:
    from common.faults import FaultAction, FaultPoint, parse_faults
    from compare.stage import TARGETS

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
    results = _results()
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
    from compare.burst import unfinished
    from compare.load import LoadRecord, LoadRun

    run = LoadRun(records=[LoadRecord(f"d-{i}", 0.0, 1.0, 202) for i in range(4)] + [LoadRecord("d-9", 0.0)])
    status = {"d-0": "CONFIRMED", "d-1": "PENDING", "d-3": "REJECTED", "d-9": "PENDING"}
    assert unfinished(run, status) == (1, 1)  # d-2 absent, d-1 PENDING; d-9 never got a 202


def _disturbed(**counts: int | None) -> dict:
    return {"rate": 5.0, "windows": [{"label": "SIGKILL x", "recovery_s": 1.0}],
            "anomalies": {"double_deducted": 0, "pending": 0}, **counts}  # fmt: skip


def test_no_lost_order_is_claimed_only_when_every_accepted_order_is_terminal() -> None:
    from compare.report import summary, verdict

    cases = {
        "clean": (_disturbed(accepted=50, accepted_missing=0, accepted_pending=0), "no lost order"),
        "lost": (_disturbed(accepted=50, accepted_missing=2, accepted_pending=1), "3 of 50 accepted"),
        "uncounted": (_disturbed(), "not counted"),
    }
    for name, (disturbed, said) in cases.items():
        results = _results()
        results["targets"]["mq"]["disturb"] = disturbed
        results["targets"]["workflow"]["disturb"] = disturbed
        line = next(x for x in verdict(results, summary(results)) if "under process faults" in x)
        assert said in line, (name, line)
        assert ("no lost order" in line) == (name == "clean"), (name, line)


def test_a_control_that_comes_out_clean_fails_compare_run(tmp_path: Path) -> None:
    from compare.fault_matrix import failed_controls, verdict_lines

    runs = [
        {"variant": "mq", "control": "no-dedup", "scenario": "a", "status": "pass", "anomalies": {"x": 1}},
        {"variant": "mq", "control": "direct-publish", "scenario": "b", "status": "fail", "anomalies": {},
         "note": "control came out clean: the suite failed to expose it"},
    ]  # fmt: skip
    assert failed_controls(runs) == ["mq:direct-publish b"]
    assert failed_controls(runs[:1]) == []
    (line,) = [x for x in verdict_lines(runs) if "Controls" in x]
    assert line.startswith("FAILED") and "mq:direct-publish" in line
    results = _results()
    results["faults"] = {"available": True, "runs": runs, "verdict": verdict_lines(runs)}
    render(results, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert '<li class="fail">FAILED' in page  # the verdict line in red
    from compare.run_cli import exit_status

    assert exit_status(results) == 1
    results["faults"]["runs"] = runs[:1]
    assert exit_status(results) == 0
    results["targets"]["mq"]["error"] = "boom"
    assert exit_status(results) == 1

"""A hand-made results.json for the report and verdict tests."""

from __future__ import annotations


def fake_step(rate: float, p50: float, p99: float, passed: bool) -> dict:
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


def fake_results() -> dict:
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
            "reference": target("reference", [fake_step(10, 5, 9, True), fake_step(20, 6, 12, True)]),
            "mq": target("mq", [fake_step(10, 20, 90, True), fake_step(20, 25, 3000, False)]),
            "workflow": target("workflow", [fake_step(10, 200, 900, True), fake_step(20, 900, 9000, False)]),
        },
        "faults": {"available": False, "note": "test"},
    }

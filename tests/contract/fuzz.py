"""Schemathesis (the CLI from PyPI) against a running variant's /openapi.json, bounded in time.

Checks: no 5xx, every status and body as the OpenAPI document declares them, and schema-invalid
input rejected with a 4xx. All phases except `examples` (the schema has none): coverage,
fuzzing (positive and negative data) and stateful. The JSON report is what the test reads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
MAX_EXAMPLES = 12  # per operation and phase (CI time: about half a minute per variant)
REQUEST_TIMEOUT_S = 10
WALL_CLOCK_S = 80  # hard bound on the whole run; a clean run takes well under this


@dataclass(frozen=True)
class FuzzReport:
    exit_code: int
    report: dict[str, Any]
    output: str

    def problems(self) -> list[str]:
        """Everything that makes the run a failure, in words; empty for a clean, complete run."""
        found: list[str] = []
        if self.exit_code != 0:
            found.append(f"exit code {self.exit_code}")
        ops = self.report.get("operations") or {}
        if not ops.get("total") or ops.get("tested") != ops.get("total"):
            found.append(f"operations tested: {ops}")
        for failure in self.report.get("failures") or []:
            found.append(f"{failure['code']} {failure['title']}: {', '.join(failure['operations'])}")
        found += [f"error: {error}" for error in self.report.get("errors") or []]
        if not self.report.get("complete"):
            found.append(f"incomplete run: {self.report.get('stop_reason')}")
        return found


def executable() -> str:
    beside_python = Path(sys.executable).with_name("schemathesis")
    found = str(beside_python) if beside_python.exists() else shutil.which("schemathesis")
    if found is None:
        raise FileNotFoundError("the `schemathesis` CLI is missing: pip install -e '.[dev]'")
    return found


def command(base_url: str, report_path: Path) -> list[str]:
    return [
        executable(),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--request-timeout",
        str(REQUEST_TIMEOUT_S),
        "--generation-database",
        "none",
        "--suppress-health-check",
        "too_slow",  # slow data generation on 2 busy CI cores is not an API defect
        "--report",
        "json",
        "--report-json-path",
        str(report_path),
    ]


def run_fuzzer(base_url: str, workdir: Path) -> FuzzReport:
    """Run the CLI to completion (or kill it at WALL_CLOCK_S, which the caller sees as a failure)."""
    report_path = workdir / "schemathesis.json"
    try:
        done = subprocess.run(
            command(base_url, report_path),
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=WALL_CLOCK_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return FuzzReport(-1, {"stop_reason": f"killed after {WALL_CLOCK_S} s"}, _text(exc.stdout))
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return FuzzReport(done.returncode, report, done.stdout + done.stderr)


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""

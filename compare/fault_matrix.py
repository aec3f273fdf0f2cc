"""The anomaly matrix and recovery times for the report, from the fault suite's own API.

The scenarios, the nemesis and the checker belong to the fault suite (compare.scenario and
friends); this module only chooses which scenarios the benchmark runs, calls the suite and keeps
its JSON-serialisable results. When the suite is not importable the report says so instead of
showing anything made up.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from common.settings import Settings
from compare.bench import BenchConfig, Progress


async def run_fault_matrix(
    variants: list[str], cfg: BenchConfig, base: Settings, out: Path, progress: Progress
) -> dict[str, Any]:
    try:
        importlib.import_module("compare.scenario")
    except ModuleNotFoundError:
        progress("fault suite: compare.scenario is not available; the anomaly matrix is left out")
        return {
            "available": False,
            "note": "the fault suite (compare.scenario) was not available",
            "runs": [],
        }
    return {"available": False, "note": "the fault suite's API is not wired in yet", "runs": []}

"""compare/ is laid out by job, and its imports only go downward:
cli / run -> report -> bench, faults -> targets -> common. Never a variant package."""

from __future__ import annotations

import ast
from pathlib import Path

COMPARE = Path(__file__).resolve().parents[2] / "compare"
LAYER = {"targets": 0, "faults": 1, "bench": 1, "report": 2, "": 3}  # "": compare/*.py (cli, run)


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYER) else ""


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import in the file, function-level ones included."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def violations(root: Path = COMPARE) -> list[str]:
    bad: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        here = package_of(".".join(rel.parts))
        for module, names in imports(path):
            if module.split(".")[0] in ("mq_variant", "workflow_variant"):
                bad.append(f"{rel}: imports the variant {module}")
            if not module.startswith("compare."):
                continue
            there = package_of(module)
            if there == here:
                continue
            if LAYER[there] >= LAYER[here]:
                bad.append(f"{rel} ({here or 'top'}) imports {module} ({there or 'top'}): not downward")
            bad += [f"{rel}: imports {module}.{n}, a private name" for n in names if n.startswith("_")]
    return bad


def test_each_job_has_its_package() -> None:
    packages = {p.name for p in COMPARE.iterdir() if (p / "__init__.py").exists()}
    assert packages == {"targets", "faults", "bench", "report"}
    loose = {p.stem for p in COMPARE.glob("*.py")}
    assert loose == {"__init__", "__main__", "cli", "run"}


def test_imports_only_go_downward() -> None:
    assert violations() == []


def test_the_rule_sees_upward_sideways_private_and_variant_imports(tmp_path: Path) -> None:
    root = tmp_path / "compare"
    for package in ("targets", "faults", "bench"):
        (root / package).mkdir(parents=True)
    (root / "targets" / "stage.py").write_text("from compare.report.plots import label\n")
    (root / "faults" / "runner.py").write_text("def f():\n    from compare.bench.load import run\n")
    (root / "bench" / "load.py").write_text("from compare.targets.stage import _private\nimport mq_variant\n")
    assert sorted(violations(root)) == [
        "compare/bench/load: imports compare.targets.stage._private, a private name",
        "compare/bench/load: imports the variant mq_variant",
        "compare/faults/runner (faults) imports compare.bench.load (bench): not downward",
        "compare/targets/stage (targets) imports compare.report.plots (report): not downward",
    ]

"""Operational complexity measured from the code and the deployment files, not asserted.

- Lines of code per module of each variant package: non-blank lines that are neither comments
  nor docstrings, classified by the documented mapping MODULE_CATEGORY (module name -> category);
  a module the mapping does not know is reported as "unclassified", never silently dropped.
- Configuration knobs: the Settings fields a package reads (`settings.<field>`), plus its
  module-level UPPER_CASE numeric constants (knobs hard-coded in the code).
- Failure handling: exception handlers (syntax tree), and sites found by the patterns below,
  split into what the application implements itself (retry loops, dedup guards, ack decisions)
  and what it delegates to the platform by configuration (retry policies, timeouts, broker
  dead-lettering, heartbeats).
- Components and stateful stores: the services of docker-compose.yml per profile when the file
  exists (else the roles of compare.targets.target plus the dependencies).
Tables, leftovers and what an operator can see come from the runs (compare.run).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pydantic import BaseModel

from common.settings import Settings

# module stem -> category; the top-level class of each category is in CATEGORY_CLASS
MODULE_CATEGORY: dict[str, str] = {
    "deduction": "business: deduction handler",
    "settlement": "business: settlement handler",
    "activities": "business: activities",
    "workflow": "business: workflow (the flow)",
    "service": "API adapter (place order, read state)",
    "outbox": "plumbing: outbox",
    "relay": "plumbing: relay",
    "consumer": "plumbing: consumer, dedup, ack, DLQ",
    "deliveries": "plumbing: consumer, dedup, ack, DLQ",
    "placement": "plumbing: outbox",
    "topology": "plumbing: broker topology",
    "messages": "plumbing: message formats",
    "client": "plumbing: workflow glue (client)",
    "heartbeat": "plumbing: workflow glue (heartbeats)",
    "dev_server": "plumbing: workflow glue (dev server)",
    "roles": "wiring: roles, workers",
    "init": "wiring: init",
    "schema": "wiring: schema",
    "__main__": "wiring: CLI",
    "__init__": "wiring: package",
    "controls": "controls (deliberately broken configs)",
    "reconciler": "operations: reconciler (re-drives stranded orders)",
    "dlq": "operations: dead-letter list / replay",
    "tools": "operations: operator commands",
    "reset": "operations: reset (databases and Temporal state)",
}
CATEGORY_CLASS = ("business", "plumbing", "API adapter", "wiring", "operations", "controls", "unclassified")

# Failure handling found in the code (docstrings excluded), split by who does the work:
# the application's own code, or the platform (broker / Temporal) configured by the code.
APP_FAILURE_PATTERNS: dict[str, str] = {
    "own retry loops (Backoff)": r"\bBackoff\(",
    "dedup guards (common.dedup.once)": r"\bonce\(",
    "ack / nack / reject decisions": r"\.ack\(|\.nack\(|\.reject\(",
}
PLATFORM_FAILURE_PATTERNS: dict[str, str] = {
    "platform retry policies (RetryPolicy)": r"\bRetryPolicy\(",
    "platform timeouts (Temporal *_timeout)": r"\b\w+_timeout\b\s*[=:\"]",
    "broker dead-lettering / delivery limits": r"x-dead-letter-exchange|x-delivery-limit",
    "heartbeats": r"\bheartbeat\(",
}


class ModuleLines(BaseModel):
    module: str
    category: str
    lines: int


class PackageComplexity(BaseModel):
    package: str
    modules: list[ModuleLines]
    lines_by_class: dict[str, int]
    total_lines: int
    settings_read: list[str]
    hardcoded_knobs: list[str]
    except_handlers: int
    app_failure_sites: dict[str, int]
    platform_failure_sites: dict[str, int]


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def code_lines(source: str) -> int:
    skip = _docstring_lines(ast.parse(source))
    return sum(
        1
        for i, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#") and i not in skip
    )


def category(module: str) -> str:
    return MODULE_CATEGORY.get(module, "unclassified")


def class_of(cat: str) -> str:
    return next((c for c in CATEGORY_CLASS if cat.startswith(c)), "unclassified")


def analyse_package(root: Path, package: str) -> PackageComplexity:
    pkg = root / package
    fields = set(Settings.model_fields)
    modules: list[ModuleLines] = []
    settings_read: set[str] = set()
    knobs: list[str] = []
    handlers = 0
    app_sites = dict.fromkeys(APP_FAILURE_PATTERNS, 0)
    platform_sites = dict.fromkeys(PLATFORM_FAILURE_PATTERNS, 0)
    for path in sorted(pkg.rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        stem = path.stem
        modules.append(
            ModuleLines(
                module=f"{package}/{path.relative_to(pkg)}", category=category(stem), lines=code_lines(source)
            )
        )
        settings_read.update(m for m in re.findall(r"settings\.([a-z_]+)", source) if m in fields)
        handlers += sum(isinstance(n, ast.ExceptHandler) for n in ast.walk(tree))
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value
                for t in targets:
                    if (
                        isinstance(t, ast.Name)
                        and t.id.isupper()
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, int | float)
                        and not isinstance(value.value, bool)
                    ):
                        knobs.append(f"{path.stem}.{t.id}={value.value}")
        code = "\n".join(
            line for i, line in enumerate(source.splitlines(), 1) if i not in _docstring_lines(tree)
        )
        for name, pattern in APP_FAILURE_PATTERNS.items():
            app_sites[name] += len(re.findall(pattern, code))
        for name, pattern in PLATFORM_FAILURE_PATTERNS.items():
            platform_sites[name] += len(re.findall(pattern, code))
    by_class: dict[str, int] = {}
    for m in modules:
        by_class[class_of(m.category)] = by_class.get(class_of(m.category), 0) + m.lines
    return PackageComplexity(
        package=package,
        modules=modules,
        lines_by_class=by_class,
        total_lines=sum(m.lines for m in modules),
        settings_read=sorted(settings_read),
        hardcoded_knobs=knobs,
        except_handlers=handlers,
        app_failure_sites=app_sites,
        platform_failure_sites=platform_sites,
    )


class Deployment(BaseModel):
    source: str
    app_services: list[str]
    init_jobs: list[str]
    dependencies: list[str]
    stateful: list[str]  # services with a named volume (their data survives restarts)


def deployment(root: Path, profile: str, roles: tuple[str, ...], deps: tuple[str, ...]) -> Deployment:
    compose = root / "docker-compose.yml"
    try:
        import yaml

        doc = yaml.safe_load(compose.read_text())
    except (ImportError, OSError):
        doc = None
    if not isinstance(doc, dict):
        return Deployment(
            source="compare.targets.target roles",
            app_services=list(roles),
            init_jobs=[],
            dependencies=list(deps),
            stateful=[],
        )
    app: list[str] = []
    init: list[str] = []
    dep: list[str] = []
    stateful: list[str] = []
    for name, svc in (doc.get("services") or {}).items():
        if profile not in (svc.get("profiles") or []):
            continue
        command = " ".join(map(str, svc.get("command") or []))
        if "_variant" in command:
            (init if str(svc.get("restart")) == "no" else app).append(name)
        else:
            dep.append(name)
        volumes = [str(v) for v in svc.get("volumes") or []]
        if any(not v.startswith(("./", "/")) for v in volumes):
            stateful.append(name)
    return Deployment(
        source="docker-compose.yml", app_services=app, init_jobs=init, dependencies=dep, stateful=stateful
    )

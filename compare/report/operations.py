"""What it costs to run: operational complexity measured from the code and the runs, and the method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compare.faults.matrix import COMPLETED
from compare.report.document import Block, H, P, Pre, Table
from compare.report.figures import num
from compare.report.plots import label


def suite_recovery(results: dict[str, Any], variant: str) -> str:
    runs = (results.get("faults") or {}).get("runs") or []
    parts = [
        f"{r['scenario']} {num(r.get('converge_s'), ' s')}"
        for r in runs
        if r["variant"] == variant and not r.get("control") and r["status"] in COMPLETED
    ]
    return ", ".join(parts) or "not run"


Getter = Callable[[str], object]  # variant name -> the figure (KeyError / TypeError: not measured)


def _cell(n: str, f: Getter) -> str:
    try:
        return str(f(n))
    except (KeyError, TypeError):
        return "-"


def _tables(targets: dict[str, Any], n: str) -> str:
    t = targets.get(n, {}).get("tables") or {}
    app = sum(len(v) for v in t.values())
    extra = ""
    if n == "workflow" and targets.get(n, {}).get("temporal_tables") is not None:
        extra = f" + {targets[n]['temporal_tables']} in Temporal's store (dev server SQLite)"
    if n == "mq" and targets.get(n, {}).get("broker_queues"):
        extra = f" + {len(targets[n]['broker_queues'])} broker queues"
    listed = "; ".join(k + ": " + ", ".join(v) for k, v in t.items())
    return f"{app} ({listed}){extra}"


def _deployment_rows(comp: dict[str, Any], targets: dict[str, Any]) -> list[tuple[str, Getter]]:
    def listed(key: str) -> Getter:
        return lambda n: ", ".join(comp[n]["deployment"][key])

    return [
        ("deployable app services (docker-compose.yml)", listed("app_services")),
        ("one-shot init jobs", listed("init_jobs")),
        ("dependencies", listed("dependencies")),
        ("stateful services (named volumes)", listed("stateful")),
        ("tables (from the run's information_schema)", lambda n: _tables(targets, n)),
    ]


def _code_rows(comp: dict[str, Any], first: str) -> list[tuple[str, Getter]]:
    def lines(*classes: str) -> Getter:
        return lambda n: " / ".join(str(comp[n]["code"]["lines_by_class"].get(k, 0)) for k in classes)

    def code(key: str) -> Getter:
        return lambda n: comp[n]["code"][key]

    rows: list[tuple[str, Getter]] = [
        ("lines: business", lines("business")),
        ("lines: plumbing", lines("plumbing")),
        ("lines: API adapter / wiring / controls", lines("API adapter", "wiring", "controls")),
        ("lines: unclassified modules", lines("unclassified")),
        (
            "settings read (knobs)",
            lambda n: f"{len(code('settings_read')(n))}: " + ", ".join(code("settings_read")(n)),
        ),
        ("hard-coded knobs", lambda n: ", ".join(comp[n]["code"]["hardcoded_knobs"]) or "none"),
        ("exception handlers in app code", code("except_handlers")),
    ]
    for who, key in (
        ("handled by app code", "app_failure_sites"),
        ("delegated to the platform", "platform_failure_sites"),
    ):
        for k in comp[first]["code"].get(key, {}):
            rows.append((f"{who}: {k}", lambda n, key=key, k=k: comp[n]["code"][key][k]))
    return rows


def _run_rows(results: dict[str, Any]) -> list[tuple[str, Getter]]:
    targets = results.get("targets", {})

    def leftovers(n: str) -> str:
        return ", ".join(f"{k} {v}" for k, v in (targets[n].get("leftovers") or {}).items() if v is not None)

    def under_load(n: str) -> str:
        return ", ".join(
            f"{w['label']} {num(w['recovery_s'], ' s')}" for w in targets[n]["disturb"]["windows"]
        )

    return [
        ("left behind after the run (manual interventions)", leftovers),
        ("recovery per fault (under load)", under_load),
        ("recovery per fault (fault suite, after the last fault)", lambda n: suite_recovery(results, n)),
        ("one order in flight: how to see it", lambda n: targets[n]["operator_view"]["how"]),
    ]


def complexity_blocks(results: dict[str, Any]) -> list[Block]:
    comp = results.get("complexity") or {}
    targets = results.get("targets", {})
    b: list[Block] = [H(2, "Operational complexity (measured)", "complexity")]
    names = [n for n in ("mq", "workflow") if n in comp]
    if not names:
        return [*b, P("No variant analysed.")]
    getters = _deployment_rows(comp, targets) + _code_rows(comp, names[0]) + _run_rows(results)
    rows = [[what, *[_cell(n, f) for n in names]] for what, f in getters]
    b.append(Table(["", *[label(n) for n in names]], rows))
    return b + _module_blocks(comp, targets, names)


def _module_blocks(comp: dict[str, Any], targets: dict[str, Any], names: list[str]) -> list[Block]:
    """Shared code, the module classification, and one order followed for real."""
    b: list[Block] = []
    if "common" in comp:
        c = comp["common"]["code"]
        b.append(
            P(
                f"Shared by both (common/): {c['total_lines']} lines (domain, deduction rule, "
                "repositories, API contract, supervisor, faults), not counted above."
            )
        )
    b.append(P("Module classification (compare/report/complexity.py MODULE_CATEGORY):"))
    mrows = [
        [mod["module"], mod["category"], str(mod["lines"])]
        for n in names
        for mod in comp[n]["code"]["modules"]
    ]
    b.append(Table(["module", "category", "lines"], mrows))
    for n in names:
        view = targets.get(n, {}).get("operator_view") or {}
        if view.get("output"):
            b.append(
                P(f"{label(n)}: following order `{view.get('order_id')}` with `{view.get('command', '')}`:")
            )
            b.append(Pre("\n".join(view["output"])))
    return b


def method_blocks(meta: dict[str, Any]) -> list[Block]:
    b: list[Block] = []
    b.append(H(2, "Method", "method"))
    b.append(
        P(
            "Each target ran alone, one after the other, with fresh databases, queue and task-queue names "
            "and a free "
            "API port (`python -m <package> up --reset` as real processes under the supervisor); the "
            "workflow variant "
            f"got a private Temporal dev server ({meta.get('temporal_store', 'sqlite')} persistence). Load: "
            "open loop, arrivals evenly "
            "spaced at the "
            "offered rate and fixed before the run; an arrival that finds every connection busy waits and "
            "its latency "
            f"keeps counting. Orders: {meta.get('order_shape')}. Terminal and deduction times are read "
            "from the "
            "databases after each step; an order not terminal when the wait ends is recorded at the "
            "censored value. "
            "completed/s = the step's orders that became terminal / (time from the step's start until the "
            "last of them did), so a step that passes can show a little less than offered. "
            "Histograms: HdrHistogram, 3 significant digits. Resource use: psutil every 0.5 s on the role "
            "processes "
            "(from their pid files), the PostgreSQL backends of the target's databases, the RabbitMQ node "
            "(shared: "
            "includes any other load) and the private Temporal server."
        )
    )
    b.append(P("Configuration: `" + ", ".join(f"{k}={v}" for k, v in meta.get("config", {}).items()) + "`"))
    return b

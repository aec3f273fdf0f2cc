"""The decision page, first in the report: MQ vs workflow side by side, a row per question.

One table, a row per question an architect asks (consistency under the fault catalogue, time to
converge after a fault, recovery and lost orders under load, max sustainable rate, latency at the
common rate, burst, CPU and memory, moving parts, recovery tools, lines of plumbing vs business
code). Each cell holds the figure; the better side is marked by these rules and no others:
- a figure measured over the `--repeat` capacity searches: better only when the two min..max
  ranges do not overlap (compare.bench.spread.claim);
- a figure measured once on each side (one capacity search, the fault suite, the burst, the faults
  under load): better only when the larger is at least SINGLE_RUN_GAP x the smaller (a gap under
  20 % is within one host's run-to-run noise);
- a count (scenarios with anomalies, lost orders, services, lines): exact, any difference counts;
- peak shaving: "held" beats "did not hold".
Nothing is marked where the two sides ran at different rates (the burst peak and the faults under
load are set from each target's own max), where a side broke, lost orders, missed a control or has
runs that did not complete ("not judged"), or where the burst did not exercise the claim. A figure
the run did not produce says "not measured". Under the table, "When to choose which": sentences
generated from the rows; then the caveats in one box.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from compare.bench.spread import SINGLE_RUN_GAP, Spread, spread
from compare.faults.matrix import COMPLETED, failed_controls
from compare.report.document import FAILED, Block, Box, H, P, Table, Ul
from compare.report.figures import ms, num
from compare.report.plots import label  # summary imports plots (and matplotlib) anyway
from compare.report.summary import flag_text
from compare.targets.inspection import RECOVERY_TOOLS

SIDES = ("mq", "workflow")
SHORT = {"mq": "MQ", "workflow": "workflow"}
NOT_MEASURED = "not measured"
NO_DIFFERENCE = "no difference"
NOT_JUDGED = "not judged"
NOT_COMPARABLE = "not comparable: different rates"
GAP = f"{round((SINGLE_RUN_GAP - 1) * 100)} %"
DECISION_ANCHOR = "decision"
WHEN_ANCHOR = "when-to-choose"
# anchor -> the heading of the report's section a row links to (the report gives it that anchor)
SECTIONS = {
    "headline": "Headline figures",
    "burst": "Burst absorption",
    "faults-under-load": "Faults under load",
    "consistency": "Consistency under the fault catalogue",
    "complexity": "Operational complexity (measured)",
    "host": "Host pressure",
}
RUN_ANCHORS = ("headline", "burst", "faults-under-load")  # rows measured on the target's own run
# compare.faults.checker's kinds for an order lost or applied twice (not one merely late or stuck)
HARM_KINDS = ("lost", "double_deduction", "oversell")
# Anomalies that leave work only a person or a recovery tool clears (DLQ replay, reconciler, reset).
OPERATOR_KINDS = ("lost", "stuck", "stranded", "leftover_outbox")


@dataclass(frozen=True)
class Cell:
    text: str
    value: Spread | None = None  # compared by the spread rule
    count: float | None = None  # compared exactly
    why: str = ""  # why this side's figure cannot be compared: the "better" column says it


@dataclass(frozen=True)
class Outcome:
    winner: str | None  # "mq" / "workflow"; None: neither is better (or nothing to compare)
    text: str  # the "better" column


@dataclass(frozen=True)
class Row:
    key: str
    question: str
    anchor: str
    cells: dict[str, Cell]
    outcome: Outcome
    notes: list[str] = field(default_factory=list)  # facts the sentences reuse


# --------------------------------------------------------------------------- comparison rules


def one(value: float | None) -> Spread | None:
    """A figure measured once: a spread of one run."""
    return spread([value])


def apart(x: float, y: float) -> bool:
    """One run each: the larger at least SINGLE_RUN_GAP x the smaller (anything beats 0)."""
    low, high = sorted((x, y))
    return high != low and high >= SINGLE_RUN_GAP * low


def by_spread(a: Spread | None, b: Spread | None, lower_is_better: bool) -> Outcome:
    """Ranges apart (compare.bench.spread.claim); one run each: a gap of at least SINGLE_RUN_GAP."""
    if a is None or b is None:
        return Outcome(None, NOT_MEASURED)
    single = a.n == 1 and b.n == 1
    if not single and a.overlaps(b):
        return Outcome(None, f"{NO_DIFFERENCE} (ranges overlap)")
    if single and not apart(a.median, b.median):
        return Outcome(None, f"{NO_DIFFERENCE} (1 run each, gap < {GAP})")
    winner = SIDES[0] if (a.median < b.median) == lower_is_better else SIDES[1]
    runs = f"{a.n} runs" if a.n == b.n else f"{a.n} ({SHORT[SIDES[0]]}) and {b.n} ({SHORT[SIDES[1]]}) runs"
    basis = f"1 run each, gap >= {GAP}" if single else f"ranges apart over {runs}"
    return Outcome(winner, f"**{SHORT[winner]}** ({basis})")


def by_count(a: float | None, b: float | None, lower_is_better: bool = True) -> Outcome:
    """An exact count: any difference counts."""
    if a is None or b is None:
        return Outcome(None, NOT_MEASURED)
    if a == b:
        return Outcome(None, NO_DIFFERENCE)
    winner = SIDES[0] if (a < b) == lower_is_better else SIDES[1]
    return Outcome(winner, f"**{SHORT[winner]}**")


def compare_cells(cells: dict[str, Cell], lower_is_better: bool = True, why: str = "") -> Outcome:
    """The cells by their rule; a cell's own reason not to compare first, then the row's `why`."""
    a, b = (cells[s] for s in SIDES)
    if reason := a.why or b.why or why:
        return Outcome(None, reason)
    if a.value is not None or b.value is not None:
        return by_spread(a.value, b.value, lower_is_better)
    return by_count(a.count, b.count, lower_is_better)


def rates_of(rates: dict[str, float | None], how: str) -> tuple[str, str]:
    """(question suffix, why not compared) for rows run at each target's own rate ("" when equal)."""
    a, b = (rates.get(s) for s in SIDES)
    if a is None or b is None:
        return "", ""
    if a == b:
        return f" (at {num(a)}/s)", ""
    return f" ({how}: {SHORT[SIDES[0]]} {num(a)}/s vs {SHORT[SIDES[1]]} {num(b)}/s)", NOT_COMPARABLE


def figure_text(value: Spread, unit: str) -> str:
    """The median, and the range when there is one: "20 ms" or "20 ms (18-23 over 3 runs)"."""
    text = f"{value.median:,.4g}{unit}"
    return text if value.n == 1 else f"{text} ({value.min:,.4g}-{value.max:,.4g} over {value.n} runs)"


def _summary_spread(summ: dict[str, Any], side: str, key: str) -> Spread | None:
    value = ((summ["targets"].get(side) or {}).get("spread") or {}).get(key)
    return Spread(**value) if value else None


# --------------------------------------------------------------------------- fault suite rows


def suite_runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    faults = results.get("faults") or {}
    return list(faults.get("runs") or []) if faults.get("available") else []


def suite_failed(results: dict[str, Any]) -> str:
    """The note of a fault suite that failed ("" when it ran, or was skipped on purpose)."""
    faults = results.get("faults") or {}
    note = str(faults.get("note") or "")
    return note if not faults.get("available") and note.startswith("the fault suite failed") else ""


def own_runs(runs: list[dict[str, Any]], side: str) -> list[dict[str, Any]]:
    return [r for r in runs if r["variant"] == side and not r.get("control")]


def real_runs(runs: list[dict[str, Any]], side: str) -> list[dict[str, Any]]:
    """The variant's own runs (no control) that reached the checker's verdict."""
    return [r for r in own_runs(runs, side) if r["status"] in COMPLETED]


def common_scenarios(runs: list[dict[str, Any]]) -> set[str]:
    """The scenarios both variants completed: the only ones compared."""
    a, b = ({r["scenario"] for r in real_runs(runs, s)} for s in SIDES)
    return a & b


def incomplete(runs: list[dict[str, Any]], side: str) -> list[str]:
    return [f"{r['scenario']} {r['status']}" for r in own_runs(runs, side) if r["status"] not in COMPLETED]


def missed_controls(runs: list[dict[str, Any]], side: str) -> list[str]:
    return failed_controls([r for r in runs if r["variant"] == side])


def _anomaly_text(done: list[dict[str, Any]], kinds: tuple[str, ...] | None = None) -> str:
    total: Counter[str] = Counter()
    for r in done:
        total.update({k: v for k, v in (r.get("anomalies") or {}).items() if v and (not kinds or k in kinds)})
    return ", ".join(f"{k} {v}" for k, v in sorted(total.items())) or "none"


def unjudged_suite_cell(runs: list[dict[str, Any]], side: str, common: set[str]) -> Cell | None:
    """The cell of a side with no run, or none that completed, or none in common; else None."""
    if not own_runs(runs, side):
        return Cell(NOT_MEASURED)
    if not real_runs(runs, side):
        return Cell(f"{NOT_JUDGED}: no run completed ({', '.join(incomplete(runs, side))})", why=NOT_JUDGED)
    if not common:
        return Cell(f"{NOT_JUDGED}: no scenario completed by both", why=NOT_JUDGED)
    return None


def consistency_cell(runs: list[dict[str, Any]], side: str, common: set[str]) -> Cell:
    if cell := unjudged_suite_cell(runs, side, common):
        return cell
    shared = [r for r in real_runs(runs, side) if r["scenario"] in common]
    bad = [r["scenario"] for r in shared if r["status"] == "fail"]
    text = f"{len(shared) - len(bad)}/{len(shared)} scenarios consistent"
    text += f" (not: {', '.join(bad)})" if bad else ""
    text += f"; anomalies: {_anomaly_text(shared)}"
    alone = [
        f"{r['scenario']} (anomalies: {_anomaly_text([r])})" for r in real_runs(runs, side) if r not in shared
    ]
    text += f"; ran alone: {', '.join(alone)}" if alone else ""
    controls = [r for r in runs if r["variant"] == side and r.get("control")]
    missed = missed_controls(runs, side)
    text += (
        f"; controls caught {len(controls) - len(missed)}/{len(controls)}" if controls else "; no control run"
    )
    text += f" ({FAILED} not caught: {', '.join(missed)})" if missed else ""
    lost = incomplete(runs, side)
    text += f"; did not complete: {', '.join(lost)}" if lost else ""
    return Cell(text, count=len(bad), why=f"{NOT_JUDGED}: runs did not complete" if lost else "")


def suite_cells(
    results: dict[str, Any], cell: Callable[[list[dict[str, Any]], str, set[str]], Cell]
) -> dict[str, Cell]:
    """`cell(runs, side, common)` per side; "not judged" on both when the suite itself failed."""
    if failed := suite_failed(results):
        return {
            s: Cell(f"{NOT_JUDGED} ({failed})", why=f"{NOT_JUDGED}: the fault suite failed") for s in SIDES
        }
    runs = suite_runs(results)
    common = common_scenarios(runs)
    return {s: cell(runs, s, common) for s in SIDES}


def consistency_row(results: dict[str, Any], summ: dict[str, Any]) -> Row:
    cells = suite_cells(results, consistency_cell)
    runs = suite_runs(results)
    missed = [m for s in SIDES for m in missed_controls(runs, s)]
    outcome = compare_cells(cells, why=f"{NOT_JUDGED}: a control was not caught" if missed else "")
    question = "Consistency under the fault catalogue (scenarios both completed)"
    return Row("consistency", question, "consistency", cells, outcome, missed)


def converge_cell(runs: list[dict[str, Any]], side: str, common: set[str]) -> Cell:
    if cell := unjudged_suite_cell(runs, side, common):
        return cell
    shared = [r for r in real_runs(runs, side) if r["scenario"] in common]
    stuck = [r["scenario"] for r in shared if r.get("converged") is False]
    if stuck:
        return Cell(f"did not converge: {', '.join(stuck)}", value=one(math.inf))
    timed = [r for r in shared if r.get("converge_s") is not None]
    if not timed:
        return Cell(f"{NOT_MEASURED} (no fault scenario)")
    worst = max(timed, key=lambda r: r["converge_s"])
    return Cell(
        f"{worst['converge_s']:.1f} s ({worst['scenario']}; worst of {len(timed)})",
        value=one(worst["converge_s"]),
    )


def converge_suite_row(results: dict[str, Any], summ: dict[str, Any]) -> Row:
    cells = suite_cells(results, converge_cell)
    question = "Worst time to converge after a fault (fault catalogue)"
    return Row("converge_suite", question, "consistency", cells, compare_cells(cells))


# --------------------------------------------------------------------------- faults under load rows


def disturb_of(results: dict[str, Any], side: str) -> dict[str, Any]:
    return (results.get("targets", {}).get(side) or {}).get("disturb") or {}


def lost_cell(d: dict[str, Any]) -> Cell:
    """Accepted orders lost (against the client's 202s) and applied twice, as burst.disturb counts them."""
    if not d:
        return Cell(NOT_MEASURED)
    doubled = {k: v for k, v in (d.get("anomalies") or {}).items() if v and k != "pending"}
    twice = ", ".join(f"{k} {v}" for k, v in doubled.items()) or "no double deduction"
    accepted, missing, pending = d.get("accepted"), d.get("accepted_missing"), d.get("accepted_pending")
    if accepted is None or missing is None or pending is None:
        return Cell(f"not counted (an older run); {twice}", why=f"{NOT_JUDGED}: lost orders not counted")
    lost = missing + pending
    text = (
        f"{lost} of {accepted} lost ({missing} absent, {pending} still PENDING)"
        if lost
        else f"none of {accepted} lost"
    )
    return Cell(f"{text}; {twice}", count=lost + sum(doubled.values()))


def recovery_cell(d: dict[str, Any], lost: Cell) -> Cell:
    windows = d.get("windows") or []
    if not windows:
        return Cell(NOT_MEASURED)
    late = [w["label"] for w in windows if w.get("recovery_s") is None]
    worst = max(windows, key=lambda w: w["recovery_s"] if w.get("recovery_s") is not None else math.inf)
    cell = (
        Cell(f"not recovered within the run: {', '.join(late)}", value=one(math.inf))
        if late
        else Cell(f"{worst['recovery_s']:.1f} s ({worst['label']})", value=one(worst["recovery_s"]))
    )
    if lost.count:  # recovering fast by dropping orders is no recovery
        return Cell(f"{cell.text}; {NOT_JUDGED}: it lost or double-applied orders")
    return cell


def load_fault_rows(results: dict[str, Any], summ: dict[str, Any]) -> list[Row]:
    disturbs = {s: disturb_of(results, s) for s in SIDES}
    lost = {s: lost_cell(disturbs[s]) for s in SIDES}
    recovery = {s: recovery_cell(disturbs[s], lost[s]) for s in SIDES}
    harmed = " and ".join(SHORT[s] for s in SIDES if lost[s].count)
    rates, why = rates_of({s: d.get("rate") for s, d in disturbs.items()}, "at half its own max")
    void = f"{NOT_JUDGED}: {harmed} lost or double-applied orders" if harmed else why
    recovery_question = f"Worst recovery from a process fault under load{rates}"
    lost_question = f"Accepted orders lost or double-applied under load{rates}"
    return [
        Row(
            "converge_load",
            recovery_question,
            "faults-under-load",
            recovery,
            compare_cells(recovery, why=void),
        ),
        Row("lost_load", lost_question, "faults-under-load", lost, compare_cells(lost, why=why)),
    ]


# --------------------------------------------------------------------------- speed and cost rows


def max_rate_cell(results: dict[str, Any], summ: dict[str, Any], side: str) -> Cell:
    target = results.get("targets", {}).get(side) or {}
    value = _summary_spread(summ, side, "max_sustainable_rate")
    if value is not None:
        capped = "≥ " if (summ["targets"].get(side) or {}).get("capped_by_ladder") else ""
        return Cell(capped + figure_text(value, "/s"), value=value)
    if target.get("steps"):  # searched, and not even the lowest rate kept the bound
        runs = len(target.get("searches") or [0])
        return Cell("none within the bound", value=spread([0.0] * runs))
    return Cell(NOT_MEASURED)


def max_rate_row(results: dict[str, Any], summ: dict[str, Any]) -> Row:
    cells = {s: max_rate_cell(results, summ, s) for s in SIDES}
    bound = results.get("meta", {}).get("p99_bound_ms")
    question = f"Max sustainable rate (p99 to terminal <= {num(bound)} ms)"
    return Row("max_rate", question, "headline", cells, compare_cells(cells, lower_is_better=False))


def summary_cells(summ: dict[str, Any], key: str, unit: str) -> dict[str, Cell]:
    cells = {}
    for side in SIDES:
        value = _summary_spread(summ, side, key)
        cells[side] = Cell(figure_text(value, unit), value=value) if value else Cell(NOT_MEASURED)
    return cells


def at_rate(summ: dict[str, Any]) -> str:
    rate = summ.get("common_rate")
    return f"at {num(rate)}/s" if rate is not None else "at a common rate"


def common_rate_rows(results: dict[str, Any], summ: dict[str, Any]) -> list[Row]:
    """Latency, CPU and memory, both measured at the same (common) rate."""
    rows = []
    for key, what, unit in (
        ("p50_ms", "Latency to terminal, p50", " ms"),
        ("p99_ms", "Latency to terminal, p99", " ms"),
        ("cpu_ms_per_order_system", "CPU per order", " ms"),
        ("peak_rss_mib", "Peak memory", " MiB"),
    ):
        cells = summary_cells(summ, key, unit)
        short = {"cpu_ms_per_order_system": "cpu", "peak_rss_mib": "memory"}.get(key, key)
        rows.append(Row(short, f"{what} {at_rate(summ)}", "headline", cells, compare_cells(cells)))
    return rows


# --------------------------------------------------------------------------- burst rows


def burst_of(results: dict[str, Any], side: str) -> dict[str, Any]:
    return (results.get("targets", {}).get(side) or {}).get("burst") or {}


def where_text(shaving: dict[str, Any]) -> str:
    skip = ("accepted, not terminal", "unanswered at the API")
    parts = [f"{k} {v:,}" for k, v in shaving.get("where_at_max", {}).items() if k not in skip and v]
    return ", ".join(parts[:3])


def shaving_cell(results: dict[str, Any], side: str) -> Cell:
    sh = burst_of(results, side).get("shaving")
    if not sh:
        return Cell(NOT_MEASURED)
    where = where_text(sh)
    text = (
        f"{sh['verdict']}: at most {sh['behind_api_max']:,} behind the API"
        + (f" ({where})" if where else "")
        + f" vs {sh['api_in_flight_max']:,} unanswered at it"
    )
    if sh["verdict"] == "not exercised":  # the peak did not outrun completion: nothing to compare
        return Cell(text, why="not exercised")
    return Cell(text, count={"held": 0, "did not hold": 1}.get(sh["verdict"]))


def burst_cells(results: dict[str, Any], side: str) -> tuple[Cell, Cell]:
    """(202 p99 during the peak, drain time after it)."""
    bu = burst_of(results, side)
    if not bu:
        return Cell(NOT_MEASURED), Cell(NOT_MEASURED)
    p99 = (bu.get("accept_peak") or {}).get("p99_ms")
    late = bu.get("drain_s") is None
    return (
        Cell(f"{ms(p99)} (peak {bu['peak_rate']:g}/s)", value=one(p99)),
        Cell(
            "not drained within the run" if late else f"{bu['drain_s']:g} s",
            value=one(math.inf if late else bu["drain_s"]),
        ),
    )


def burst_rows(results: dict[str, Any], summ: dict[str, Any]) -> list[Row]:
    shaving = {s: shaving_cell(results, s) for s in SIDES}
    accept, drain = ({s: burst_cells(results, s)[i] for s in SIDES} for i in (0, 1))
    factor = (results.get("meta", {}).get("config") or {}).get("burst_factor")
    how = f"at {factor:g}x its own max" if factor else "at each one's own peak"
    rates, why = rates_of({s: burst_of(results, s).get("peak_rate") for s in SIDES}, how)
    return [
        Row(key, question + rates, "burst", cells, compare_cells(cells, why=why))
        for key, question, cells in (
            ("shaving", "Burst: where the backlog sat", shaving),
            ("burst_accept", "Burst: 202 p99 during the peak", accept),
            ("burst_drain", "Burst: drain time after the peak", drain),
        )
    ]


# --------------------------------------------------------------------------- operations rows


def moving_parts_cell(results: dict[str, Any], side: str) -> Cell:
    dep = ((results.get("complexity") or {}).get(side) or {}).get("deployment")
    if not dep:
        return Cell(NOT_MEASURED)
    apps, deps = dep.get("app_services", []), dep.get("dependencies", [])
    text = f"{len(apps) + len(deps)}: {len(apps)} services ({', '.join(apps)}) + {', '.join(deps)}"
    return Cell(text, count=len(apps) + len(deps))


def tools_cell(side: str) -> Cell:
    """compare.targets.inspection's fixed list; compared on what a person must run."""
    tools = RECOVERY_TOOLS.get(side, ())
    manual = [t.name for t in tools if t.runs == "a person"]
    automatic = [t.name for t in tools if t.runs != "a person"]
    text = f"{len(manual)} a person runs: " + ("; ".join(manual) or "none")
    return Cell(text + (f"; automatic: {'; '.join(automatic)}" if automatic else ""), count=len(manual))


def lines_cell(results: dict[str, Any], side: str) -> Cell:
    code = ((results.get("complexity") or {}).get(side) or {}).get("code")
    if not code:
        return Cell(NOT_MEASURED)
    by_class = code.get("lines_by_class", {})
    plumbing, business = by_class.get("plumbing", 0), by_class.get("business", 0)
    return Cell(f"plumbing {plumbing:,} vs business {business:,}", count=plumbing)


def operations_rows(results: dict[str, Any], summ: dict[str, Any]) -> list[Row]:
    parts = {s: moving_parts_cell(results, s) for s in SIDES}
    tools = {s: tools_cell(s) for s in SIDES}
    lines = {s: lines_cell(results, s) for s in SIDES}
    return [
        Row("moving_parts", "Moving parts", "complexity", parts, compare_cells(parts)),
        Row("tools", "Recovery tools a person must run", "complexity", tools, compare_cells(tools)),
        Row("lines", "Lines: plumbing vs business", "complexity", lines, compare_cells(lines)),
    ]


def broken(results: dict[str, Any]) -> dict[str, str]:
    """side -> why its run broke (results["targets"][side]["error"])."""
    targets = results.get("targets", {})
    return {s: str(err) for s in SIDES if (err := (targets.get(s) or {}).get("error"))}


def mark_broken(row: Row, errors: dict[str, str]) -> Row:
    """A row measured on a broken target's run: "(broke: ...)" in its cell, nothing compared."""
    if row.anchor not in RUN_ANCHORS or not errors:
        return row
    cells = {
        s: Cell(f"{'' if c.text == NOT_MEASURED else c.text + ' '}(broke: {errors[s]})") if s in errors else c
        for s, c in row.cells.items()
    }
    who = " and ".join(SHORT[s] for s in errors)
    return replace(row, cells=cells, outcome=Outcome(None, f"{NOT_JUDGED}: {who} broke"))


def decision_rows(results: dict[str, Any], summ: dict[str, Any]) -> list[Row]:
    rows = [
        consistency_row(results, summ),
        converge_suite_row(results, summ),
        *load_fault_rows(results, summ),
        max_rate_row(results, summ),
        *common_rate_rows(results, summ),
        *burst_rows(results, summ),
        *operations_rows(results, summ),
    ]
    return [mark_broken(row, broken(results)) for row in rows]


# --------------------------------------------------------------------------- the table


def table(rows: list[Row]) -> Table:
    body = []
    for row in rows:
        cells = [f"**{row.cells[s].text}**" if row.outcome.winner == s else row.cells[s].text for s in SIDES]
        body.append([f"[{row.question}](#{row.anchor})", *cells, row.outcome.text])
    return Table(["question", *(label(s) for s in SIDES), "better"], body)


# --------------------------------------------------------------------------- when to choose which


def _median(row: Row, side: str) -> float | None:
    value = row.cells[side].value
    return value.median if value is not None else None


def _other(side: str) -> str:
    return SIDES[1] if side == SIDES[0] else SIDES[0]


def one_run(row: Row) -> str:
    """ " (1 run)" when the row rests on a single run each."""
    values = [row.cells[s].value for s in SIDES]
    return " (1 run)" if all(v is not None and v.n == 1 for v in values) else ""


def rate_sentence(row: Row, results: dict[str, Any]) -> str | None:
    bound = num(results.get("meta", {}).get("p99_bound_ms"))
    link = f"([max sustainable rate](#{row.anchor}))"
    win, runs = row.outcome.winner, one_run(row)
    if win is None:
        if not row.outcome.text.startswith(NO_DIFFERENCE):
            return None
        if not any(_median(row, s) for s in SIDES):
            return (
                f"Neither design kept p99 POST -> terminal within {bound} ms at any rate tried{runs} {link}."
            )
        rates = " and ".join(f"{SHORT[s]} {num(_median(row, s))}/s" for s in SIDES)
        return (
            f"The sustained rate does not decide{runs}: both keep p99 <= {bound} ms up to about "
            f"{rates} {link}."
        )
    lose = _other(win)
    top = ("at least " if row.cells[win].text.startswith("≥") else "") + f"{num(_median(row, win))}/s"
    if not _median(row, lose):
        return (
            f"{SHORT[lose]} kept p99 POST -> terminal within {bound} ms at none of the rates tried, "
            f"{SHORT[win]} up to {top}{runs}: choose {SHORT[win]} {link}."
        )
    return (
        f"Above {num(_median(row, lose))}/s, {SHORT[lose]} no longer keeps p99 POST -> terminal within "
        f"{bound} ms while {SHORT[win]} keeps it up to {top}{runs}: for a sustained rate "
        f"above {num(_median(row, lose))}/s choose {SHORT[win]} {link}."
    )


def operator_work(run: dict[str, Any]) -> str:
    """What a run left that a person or a recovery tool must clear; "" when nothing."""
    left = [f"{k} {v}" for k, v in (run.get("anomalies") or {}).items() if k in OPERATOR_KINDS and v]
    dead = (run.get("verdict") or {}).get("dead_letters") or 0
    if dead:
        left.append(f"{dead} dead-lettered to read and replay")
    if run.get("converged") is False:
        left.append("did not converge")
    return ", ".join(left)


def operator_sentence(results: dict[str, Any]) -> str | None:
    runs = suite_runs(results)
    work = {s: {r["scenario"]: operator_work(r) for r in real_runs(runs, s)} for s in SIDES}
    common = sorted(common_scenarios(runs))
    if not common:
        return None
    parts = []
    for side in SIDES:
        other = _other(side)
        only = [f"{s} ({work[side][s]})" for s in common if work[side][s] and not work[other][s]]
        if only:
            parts.append(
                f"{SHORT[side]} needed an operator and {SHORT[other]} did not after {', '.join(only)}"
            )
    both = [s for s in common if all(work[side][s] for side in SIDES)]
    if both:
        parts.append(f"both needed one after {', '.join(both)}")
    link = "([consistency](#consistency))"
    if not parts:
        return (
            f"In the {len(common)} fault scenarios both ran, neither design left work for an operator "
            f"(no order lost or left PENDING, no dead letter, no outbox row left) {link}."
        )
    return "Operator needed after the recovery window: " + "; ".join(parts) + f" {link}."


def consistency_sentence(row: Row, results: dict[str, Any]) -> str | None:
    """Lost, double-applied or oversold orders (not late or stuck ones) in the scenarios both completed."""
    if row.notes:
        return f"{FAILED} consistency is not judged: controls not caught ({', '.join(row.notes)})."
    runs = suite_runs(results)
    common = common_scenarios(runs)
    harm = {
        s: _anomaly_text([r for r in real_runs(runs, s) if r["scenario"] in common], HARM_KINDS)
        for s in SIDES
    }
    bad = [s for s in SIDES if harm[s] != "none"]
    if not bad:
        return None
    where = f"in the {len(common)} fault scenarios both completed"
    link = f"([consistency](#{row.anchor}))"
    if len(bad) == 2 or row.outcome.text.startswith(NOT_JUDGED):
        found = ", ".join(f"{SHORT[s]} {harm[s]}" for s in SIDES)
        return f"Lost or double-applied orders {where}: {found} ({row.outcome.text}) {link}."
    lose, win = bad[0], _other(bad[0])
    return (
        f"Where a lost or double-applied order is unacceptable, choose {SHORT[win]}: {where}, "
        f"{SHORT[lose]} {harm[lose]}, {SHORT[win]} none {link}."
    )


def load_fault_sentences(rows: dict[str, Row], results: dict[str, Any]) -> list[str]:
    row = rows["lost_load"]
    return [
        f"{FAILED} under process faults at {num(disturb_of(results, s).get('rate'))}/s, {SHORT[s]}: "
        f"{row.cells[s].text} ([faults under load](#{row.anchor}))."
        for s in SIDES
        if row.cells[s].count
    ]


def drained(cell: Cell) -> str:
    return (
        f"drained in {cell.text}"
        if cell.value is not None and math.isfinite(cell.value.median)
        else cell.text
    )


def burst_sentence(rows: dict[str, Row]) -> str | None:
    shaving, drain = rows["shaving"], rows["burst_drain"]
    win = shaving.outcome.winner or drain.outcome.winner
    if win is None:
        return None
    lose = _other(win)
    return (
        f"For traffic with peaks above the sustained rate, {SHORT[win]} absorbed the peak better (1 run): "
        f"{shaving.cells[win].text}, {drained(drain.cells[win])}; {SHORT[lose]}: "
        f"{shaving.cells[lose].text}, {drained(drain.cells[lose])} ([burst](#{shaving.anchor}))."
    )


def tally_sentence(rows: list[Row]) -> str | None:
    """Which rows each side is better on, show no difference or are not judged (not measured: caveats)."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        if row.outcome.winner:
            key = f"{SHORT[row.outcome.winner]} is better on"
        elif row.outcome.text.startswith(NO_DIFFERENCE):
            key = "no difference on"
        elif row.outcome.text != NOT_MEASURED:
            key = "not judged or not comparable on"
        else:
            continue
        groups.setdefault(key, []).append(f"[{row.question}](#{row.anchor})")
    order = [f"{SHORT[s]} is better on" for s in SIDES] + [
        "no difference on",
        "not judged or not comparable on",
    ]
    parts = [f"{k} {', '.join(groups[k])}" for k in order if k in groups]
    return "In sum: " + "; ".join(parts) + "." if parts else None


def when_to_choose(results: dict[str, Any], rows: list[Row]) -> list[str]:
    by_key = {r.key: r for r in rows}
    sentences = [
        consistency_sentence(by_key["consistency"], results),
        *load_fault_sentences(by_key, results),
        operator_sentence(results),
        rate_sentence(by_key["max_rate"], results),
        burst_sentence(by_key),
        tally_sentence(rows),
    ]
    return [s for s in sentences if s]


# --------------------------------------------------------------------------- caveats


def machine_caveat(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    m = meta.get("machine", {})
    model = f"{m['cpu_model']}, " if m.get("cpu_model") else ""
    memory = f", {m['memory_gib']} GiB" if m.get("memory_gib") else ""
    loads = [
        f"{when} {value}"
        for when, value in (("at start", m.get("load_avg_at_start")), ("at end", meta.get("load_avg_at_end")))
        if value is not None
    ]
    return (
        f"Machine: one host ({model}{m.get('logical_cpus', '?')} logical CPUs{memory}) shared by the load "
        "generator, both variants' processes and PostgreSQL / RabbitMQ / Temporal"
        + (f"; load average {', '.join(loads)}." if loads else ".")
    )


def noise_caveats(results: dict[str, Any], summ: dict[str, Any]) -> list[str]:
    n = results.get("meta", {}).get("repeat", 1)
    runs = (
        f"A single capacity search per target: no spread; 'better' on one run needs a gap of at least {GAP}."
        if n == 1
        else f"{n} capacity searches per target: 'better' only where the min..max ranges do not overlap."
    )
    items = [runs + " The fault suite, the burst and the faults under load ran once each."]
    if not results.get("meta", {}).get("pressure_thresholds"):
        return [*items, "Host pressure: not recorded in this run."]
    flagged = [
        f"{label(name)}: {flag_text(row['host_flags'])}"
        for name, row in summ["targets"].items()
        if flag_text(row.get("host_flags") or {})
    ]
    if flagged:
        items.append("**Outside load flagged** ([host pressure](#host)): " + "; ".join(flagged) + ".")
    else:
        items.append("Host: no outside load flagged ([host pressure](#host)).")
    return items


def platform_caveat(results: dict[str, Any]) -> str:
    store = results.get("meta", {}).get("temporal_store", "sqlite")
    temporal = (
        "the single-binary dev server with SQLite persistence (durable, one writer process)"
        if store == "sqlite"
        else f"the single-binary dev server with {store} persistence (NOT durable: an upper bound)"
    )
    text = (
        f"Temporal here is {temporal}, not a cluster on PostgreSQL or Cassandra; RabbitMQ and PostgreSQL "
        "are the production servers, single node, no replication."
    )
    if results.get("meta", {}).get("postgres", {}).get("autovacuum") == "off":
        text += (
            " PostgreSQL ran with autovacuum OFF: nothing analyzed the tables during the run and only a"
            " wraparound vacuum could have vacuumed them, so the dead rows of the outboxes, the orders"
            " and the dedup tables piled up and a figure taken late in the run may have paid for them"
            " (most of all MQ's, whose outbox churns per message)."
        )
    return text


def fault_suite_caveat(results: dict[str, Any], summ: dict[str, Any]) -> str:
    faults = results.get("faults") or {}
    if failed := suite_failed(results):
        return f"{FAILED} {failed}."
    if not faults.get("available"):
        return f"Fault catalogue: not run ({faults.get('note', 'no fault data')})."
    offered = [r["rate"] for r in suite_runs(results) if r.get("rate")]
    if not offered:
        return "The fault suite's offered rate was not recorded (results from an older version)."
    top = max(offered)
    slower = [
        f"{SHORT[s]} ({num(m)}/s)"
        for s in SIDES
        if (m := (summ["targets"].get(s) or {}).get("max_sustainable_rate")) is not None and m < top
    ]
    rates = f"{num(min(offered))}-{num(top)}/s" if min(offered) < top else f"{num(top)}/s"
    return f"The fault suite offers the same workload to both variants, {rates}" + (
        f", above the measured max of {' and '.join(slower)}: there the time to converge includes draining "
        "the backlog (compare each run's drain_s in the fault suite's files)."
        if slower
        else "."
    )


def skipped_caveats(results: dict[str, Any], rows: list[Row]) -> list[str]:
    items = []
    if delay := results.get("meta", {}).get("inventory_delay_ms"):
        items.append(f"Every deduction was slowed by {num(delay, ' ms')} (--inventory-delay-ms).")
    missing = [not_measured_text(row) for row in rows if not_measured_text(row)]
    if missing:
        items.append("Not measured in this run: " + "; ".join(missing) + ".")
    return items


def not_measured_text(row: Row) -> str:
    """ "question" when neither side has the figure, "question (MQ)" when one lacks it, else ""."""
    sides = [SHORT[s] for s in SIDES if row.cells[s].text.startswith(NOT_MEASURED)]
    if not sides:
        return ""
    return row.question if len(sides) == len(SIDES) else f"{row.question} ({sides[0]})"


def caveats(results: dict[str, Any], summ: dict[str, Any], rows: list[Row]) -> Box:
    items = [
        machine_caveat(results),
        *noise_caveats(results, summ),
        platform_caveat(results),
        fault_suite_caveat(results, summ),
        *skipped_caveats(results, rows),
    ]
    return Box("Caveats", items)


# --------------------------------------------------------------------------- the page


def decision_blocks(results: dict[str, Any], summ: dict[str, Any]) -> list[Block]:
    """The decision page: the side-by-side table, when to choose which, the caveats."""
    head: list[Block] = [H(2, "Decision: outbox + RabbitMQ or Temporal workflow", DECISION_ANCHOR)]
    ran = [s for s in SIDES if s in results.get("targets", {}) or s in (results.get("complexity") or {})]
    if len(ran) < len(SIDES):
        return [*head, P(f"Only {', '.join(label(s) for s in ran) or 'no variant'} ran: nothing to compare.")]
    rows = decision_rows(results, summ)
    head += [
        P(f"**{FAILED} {label(s)} broke: {err}; its figures from this run are not compared.**")
        for s, err in broken(results).items()
    ]
    head.append(
        P(
            "A row per question; each links to its section below. The better side is marked only when "
            f"the difference is outside the run's measured spread (one run each: a gap of {GAP} or more) "
            "and both sides ran at the same rate; a figure the run did not produce says not measured, "
            "one that failed says not judged."
        )
    )
    return [
        *head,
        table(rows),
        H(3, "When to choose which", WHEN_ANCHOR),
        Ul(when_to_choose(results, rows)),
        caveats(results, summ, rows),
    ]

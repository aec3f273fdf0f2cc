"""The decision page, first in the report: MQ vs workflow side by side, a row per question.

One table, a row per question an architect asks (consistency under the fault catalogue, time to
converge after a fault, max sustainable rate, latency at the common rate, burst, CPU and memory,
moving parts, recovery tools, lines of plumbing vs business code). Each cell holds the figure; the
better side is marked by the rules the verdict already uses, never by new ones:
- a figure measured over the `--repeat` capacity searches: better only when the two min..max
  ranges do not overlap (compare.bench.spread.claim); with a single run each it is marked and says
  it rests on one run;
- a count (scenarios with anomalies, services, tools, lines): exact, any difference counts;
- a single-run figure (fault suite, burst, faults under load): as a single run of the spread rule;
- peak shaving: "held" beats "did not hold"; "not exercised" is compared with nothing.
A figure the run did not produce says "not measured", never a number. Under the table, "When to
choose which": sentences generated from the rows; then the caveats in one box.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from compare.bench.spread import Spread, spread
from compare.report.document import FAILED, Block, Box, H, P, Table, Ul
from compare.report.figures import ms, num
from compare.report.plots import label
from compare.report.summary import flag_text

SIDES = ("mq", "workflow")
SHORT = {"mq": "MQ", "workflow": "workflow"}
NOT_MEASURED = "not measured"
NO_DIFFERENCE = "no difference"
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
COMPLETED = ("pass", "fail")  # a fault-suite run that ran to the checker's verdict
# Anomalies that leave work only a person or a recovery tool clears (DLQ replay, reconciler, reset).
OPERATOR_KINDS = ("lost", "stuck", "stranded", "leftover_outbox")


@dataclass(frozen=True)
class Cell:
    text: str
    value: Spread | None = None  # compared by the spread rule
    count: float | None = None  # compared exactly


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


def by_spread(a: Spread | None, b: Spread | None, lower_is_better: bool) -> Outcome:
    """The verdict's rule (compare.bench.spread.claim): overlapping ranges are no difference."""
    if a is None or b is None:
        return Outcome(None, NOT_MEASURED)
    if (a.n > 1 or b.n > 1) and a.overlaps(b):
        return Outcome(None, f"{NO_DIFFERENCE} (ranges overlap)")
    if a.median == b.median:
        return Outcome(None, NO_DIFFERENCE)
    winner = SIDES[0] if (a.median < b.median) == lower_is_better else SIDES[1]
    runs = min(a.n, b.n)
    basis = "1 run each: no spread" if runs == 1 else f"ranges apart over {runs} runs"
    return Outcome(winner, f"**{SHORT[winner]}** ({basis})")


def by_count(a: float | None, b: float | None, lower_is_better: bool = True) -> Outcome:
    """An exact count: any difference counts."""
    if a is None or b is None:
        return Outcome(None, NOT_MEASURED)
    if a == b:
        return Outcome(None, NO_DIFFERENCE)
    winner = SIDES[0] if (a < b) == lower_is_better else SIDES[1]
    return Outcome(winner, f"**{SHORT[winner]}**")


def compare_cells(cells: dict[str, Cell], lower_is_better: bool = True) -> Outcome:
    a, b = (cells[s] for s in SIDES)
    if a.value is not None or b.value is not None:
        return by_spread(a.value, b.value, lower_is_better)
    return by_count(a.count, b.count, lower_is_better)


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


def real_runs(runs: list[dict[str, Any]], side: str) -> list[dict[str, Any]]:
    """The variant's own runs (no control) that reached the checker's verdict."""
    return [r for r in runs if r["variant"] == side and not r.get("control") and r["status"] in COMPLETED]


def missed_controls(runs: list[dict[str, Any]], side: str) -> list[str]:
    return [
        f"{side}:{r['control']} {r['scenario']}"
        for r in runs
        if r["variant"] == side and r.get("control") and r["status"] != "pass"
    ]


def _anomaly_text(done: list[dict[str, Any]]) -> str:
    total: Counter[str] = Counter()
    for r in done:
        total.update({k: v for k, v in (r.get("anomalies") or {}).items() if v})
    return ", ".join(f"{k} {v}" for k, v in sorted(total.items())) or "none"


def consistency_cell(runs: list[dict[str, Any]], side: str) -> Cell:
    done = real_runs(runs, side)
    if not done:
        return Cell(NOT_MEASURED)
    bad = [r["scenario"] for r in done if r["status"] == "fail"]
    text = f"{len(done) - len(bad)}/{len(done)} scenarios consistent"
    text += f" (not: {', '.join(bad)})" if bad else ""
    text += f"; anomalies: {_anomaly_text(done)}"
    controls = [r for r in runs if r["variant"] == side and r.get("control")]
    missed = missed_controls(runs, side)
    caught = len(controls) - len(missed)
    text += f"; controls caught {caught}/{len(controls)}" if controls else "; no control run"
    text += f" ({FAILED} not caught: {', '.join(missed)})" if missed else ""
    uncounted = sum(1 for r in runs if r["variant"] == side and not r.get("control")) - len(done)
    text += f"; {uncounted} run(s) not counted (not applied, skipped or error)" if uncounted else ""
    return Cell(text, count=len(bad))


def consistency_row(results: dict[str, Any], summ: dict[str, Any]) -> Row:
    runs = suite_runs(results)
    cells = {s: consistency_cell(runs, s) for s in SIDES}
    missed = [m for s in SIDES for m in missed_controls(runs, s)]
    outcome = compare_cells(cells)
    if missed and outcome.text != NOT_MEASURED:
        outcome = Outcome(None, "not judged: a control was not caught")
    return Row("consistency", "Consistency under the fault catalogue", "consistency", cells, outcome, missed)


def converge_cell(runs: list[dict[str, Any]], side: str) -> Cell:
    done = real_runs(runs, side)
    stuck = [r["scenario"] for r in done if r.get("converged") is False]
    if stuck:
        return Cell(f"did not converge: {', '.join(stuck)}", value=one(math.inf))
    timed = [r for r in done if r.get("converge_s") is not None]
    if not timed:
        return Cell(NOT_MEASURED)
    worst = max(timed, key=lambda r: r["converge_s"])
    return Cell(
        f"{worst['converge_s']:.1f} s ({worst['scenario']}; worst of {len(timed)})",
        value=one(worst["converge_s"]),
    )


def converge_suite_row(results: dict[str, Any], summ: dict[str, Any]) -> Row:
    runs = suite_runs(results)
    cells = {s: converge_cell(runs, s) for s in SIDES}
    question = "Worst time to converge after a fault (fault catalogue)"
    return Row("converge_suite", question, "consistency", cells, compare_cells(cells))


def recovery_cell(target: dict[str, Any]) -> Cell:
    windows = (target.get("disturb") or {}).get("windows") or []
    if not windows:
        return Cell(NOT_MEASURED)
    late = [w["label"] for w in windows if w.get("recovery_s") is None]
    if late:
        return Cell(f"not recovered within the run: {', '.join(late)}", value=one(math.inf))
    worst = max(windows, key=lambda w: w["recovery_s"])
    rate = target["disturb"].get("rate")
    return Cell(
        f"{worst['recovery_s']:.1f} s ({worst['label']}, at {num(rate)}/s)", value=one(worst["recovery_s"])
    )


def converge_load_row(results: dict[str, Any], summ: dict[str, Any]) -> Row:
    targets = results.get("targets", {})
    cells = {s: recovery_cell(targets.get(s) or {}) for s in SIDES}
    question = "Worst recovery from a process fault under load"
    return Row("converge_load", question, "faults-under-load", cells, compare_cells(cells))


# --------------------------------------------------------------------------- speed and cost rows


def max_rate_cell(results: dict[str, Any], summ: dict[str, Any], side: str) -> Cell:
    target = results.get("targets", {}).get(side) or {}
    row = summ["targets"].get(side) or {}
    value = _summary_spread(summ, side, "max_sustainable_rate")
    if value is not None:
        capped = "≥ " if row.get("capped_by_ladder") else ""
        return Cell(capped + figure_text(value, "/s"), value=value)
    if target.get("error"):
        return Cell(f"{NOT_MEASURED} (failed: {target['error']})")
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


def latency_rows(results: dict[str, Any], summ: dict[str, Any]) -> list[Row]:
    rows = []
    for key, what in (("p50_ms", "p50"), ("p99_ms", "p99")):
        cells = summary_cells(summ, key, " ms")
        question = f"Latency to terminal, {what} {at_rate(summ)}"
        rows.append(Row(key, question, "headline", cells, compare_cells(cells)))
    return rows


def cost_rows(results: dict[str, Any], summ: dict[str, Any]) -> list[Row]:
    cpu = summary_cells(summ, "cpu_ms_per_order_system", " ms")
    memory = summary_cells(summ, "peak_rss_mib", " MiB")
    return [
        Row(
            "cpu",
            f"CPU per order {at_rate(summ)}",
            "headline",
            cpu,
            compare_cells(cpu),
        ),
        Row(
            "memory",
            f"Peak memory {at_rate(summ)}",
            "headline",
            memory,
            compare_cells(memory),
        ),
    ]


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
    rank = {"held": 0, "did not hold": 1}.get(sh["verdict"])
    return Cell(text, count=rank)


def burst_rows(results: dict[str, Any], summ: dict[str, Any]) -> list[Row]:
    shaving = {s: shaving_cell(results, s) for s in SIDES}
    accept, drain = {}, {}
    for side in SIDES:
        bu = burst_of(results, side)
        if not bu:
            accept[side] = drain[side] = Cell(NOT_MEASURED)
            continue
        p99 = (bu.get("accept_peak") or {}).get("p99_ms")
        accept[side] = Cell(f"{ms(p99)} (peak {bu['peak_rate']:g}/s)", value=one(p99))
        late = bu.get("drain_s") is None
        drain[side] = Cell(
            "not drained within the run" if late else f"{bu['drain_s']:g} s",
            value=one(math.inf if late else bu["drain_s"]),
        )
    anchor = "burst"
    return [
        Row("shaving", "Burst: where the backlog sat", anchor, shaving, compare_cells(shaving)),
        Row("burst_accept", "Burst: 202 p99 during the peak", anchor, accept, compare_cells(accept)),
        Row("burst_drain", "Burst: drain time after the peak", anchor, drain, compare_cells(drain)),
    ]


# --------------------------------------------------------------------------- operations rows


def moving_parts_cell(results: dict[str, Any], side: str) -> Cell:
    dep = ((results.get("complexity") or {}).get(side) or {}).get("deployment")
    if not dep:
        return Cell(NOT_MEASURED)
    apps, deps = dep.get("app_services", []), dep.get("dependencies", [])
    text = f"{len(apps) + len(deps)}: {len(apps)} services ({', '.join(apps)}) + {', '.join(deps)}"
    return Cell(text, count=len(apps) + len(deps))


def tool_name(tool: str) -> str:
    """The tool's name, without its explanation: "python -m mq_variant dlq list | replay"."""
    return re.split(r":|,| \(", tool, maxsplit=1)[0].strip()


def tools_cell(results: dict[str, Any], side: str) -> Cell:
    view = (results.get("targets", {}).get(side) or {}).get("operator_view") or {}
    tools = view.get("recovery_tools")
    if tools is None:
        return Cell(NOT_MEASURED)
    return Cell(f"{len(tools)}: " + "; ".join(tool_name(t) for t in tools), count=len(tools))


def lines_cell(results: dict[str, Any], side: str) -> Cell:
    code = ((results.get("complexity") or {}).get(side) or {}).get("code")
    if not code:
        return Cell(NOT_MEASURED)
    by_class = code.get("lines_by_class", {})
    plumbing, business = by_class.get("plumbing", 0), by_class.get("business", 0)
    return Cell(f"plumbing {plumbing:,} vs business {business:,}", count=plumbing)


def operations_rows(results: dict[str, Any], summ: dict[str, Any]) -> list[Row]:
    parts = {s: moving_parts_cell(results, s) for s in SIDES}
    tools = {s: tools_cell(results, s) for s in SIDES}
    lines = {s: lines_cell(results, s) for s in SIDES}
    return [
        Row(
            "moving_parts",
            "Moving parts",
            "complexity",
            parts,
            compare_cells(parts),
        ),
        Row("tools", "Recovery tools an operator runs", "complexity", tools, compare_cells(tools)),
        Row("lines", "Lines: plumbing vs business", "complexity", lines, compare_cells(lines)),
    ]


def decision_rows(results: dict[str, Any], summ: dict[str, Any]) -> list[Row]:
    return [
        consistency_row(results, summ),
        converge_suite_row(results, summ),
        converge_load_row(results, summ),
        max_rate_row(results, summ),
        *latency_rows(results, summ),
        *burst_rows(results, summ),
        *cost_rows(results, summ),
        *operations_rows(results, summ),
    ]


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


def rate_sentence(row: Row, results: dict[str, Any]) -> str | None:
    bound = num(results.get("meta", {}).get("p99_bound_ms"))
    link = f"([max sustainable rate](#{row.anchor}))"
    win = row.outcome.winner
    if row.outcome.text == NOT_MEASURED:
        return None
    if win is None:
        rates = " and ".join(f"{SHORT[s]} {num(_median(row, s))}/s" for s in SIDES)
        return f"The sustained rate does not decide: both keep p99 <= {bound} ms up to about {rates} {link}."
    lose = _other(win)
    top = ("at least " if row.cells[win].text.startswith("≥") else "") + f"{num(_median(row, win))}/s"
    if not _median(row, lose):
        return (
            f"{SHORT[lose]} kept p99 POST -> terminal within {bound} ms at none of the rates tried, "
            f"{SHORT[win]} up to {top}: choose {SHORT[win]} {link}."
        )
    return (
        f"Above {num(_median(row, lose))}/s, {SHORT[lose]} no longer keeps p99 POST -> terminal within "
        f"{bound} ms while {SHORT[win]} keeps it up to {top}: for a sustained rate "
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
    common = sorted(set(work[SIDES[0]]) & set(work[SIDES[1]]))
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


def consistency_sentence(row: Row) -> str | None:
    if row.notes:
        return f"{FAILED} consistency is not judged: controls not caught ({', '.join(row.notes)})."
    win = row.outcome.winner
    if win is None:
        return None
    lose = _other(win)
    return (
        f"Where a lost or double-applied order is unacceptable, choose {SHORT[win]}: "
        f"{SHORT[win]} {row.cells[win].text}; {SHORT[lose]} {row.cells[lose].text} "
        f"([consistency](#{row.anchor}))."
    )


def burst_sentence(rows: dict[str, Row]) -> str | None:
    shaving, drain = rows["shaving"], rows["burst_drain"]
    win = shaving.outcome.winner or drain.outcome.winner
    if win is None:
        return None
    lose = _other(win)
    return (
        f"For traffic with peaks above the sustained rate, {SHORT[win]} absorbed the peak better: "
        f"{shaving.cells[win].text}, drained {drain.cells[win].text}; {SHORT[lose]}: "
        f"{shaving.cells[lose].text}, drained {drain.cells[lose].text} ([burst](#{shaving.anchor}))."
    )


def tally_sentence(rows: list[Row]) -> str | None:
    """Which rows each side is better on and which show no difference (not measured: the caveats)."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        if row.outcome.winner:
            key = f"{SHORT[row.outcome.winner]} is better on"
        elif row.outcome.text != NOT_MEASURED:
            key = "no difference on"
        else:
            continue
        groups.setdefault(key, []).append(f"[{row.question}](#{row.anchor})")
    order = [f"{SHORT[s]} is better on" for s in SIDES] + ["no difference on"]
    parts = [f"{k} {', '.join(groups[k])}" for k in order if k in groups]
    return "In sum: " + "; ".join(parts) + "." if parts else None


def when_to_choose(results: dict[str, Any], rows: list[Row]) -> list[str]:
    by_key = {r.key: r for r in rows}
    sentences = [
        consistency_sentence(by_key["consistency"]),
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
        "A single capacity search per target: no spread measured; a 'better' on one run says so."
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
    return (
        f"Temporal here is {temporal}, not a cluster on PostgreSQL or Cassandra; RabbitMQ and PostgreSQL "
        "are the production servers, single node, no replication."
    )


def skipped_caveats(results: dict[str, Any], rows: list[Row]) -> list[str]:
    items = []
    faults = results.get("faults") or {}
    if not faults.get("available"):
        items.append(f"Fault catalogue: not run ({faults.get('note', 'no fault data')}).")
    for name, t in results.get("targets", {}).items():
        if t.get("error"):
            items.append(f"{FAILED} {label(name)} broke: {t['error']}.")
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
    head.append(
        P(
            "A row per question; each links to its section below. The better side is marked only when "
            "the difference is outside the run's measured spread (else no difference); a figure the "
            "run did not produce says not measured."
        )
    )
    return [
        *head,
        table(rows),
        H(3, "When to choose which", WHEN_ANCHOR),
        Ul(when_to_choose(results, rows)),
        caveats(results, summ, rows),
    ]

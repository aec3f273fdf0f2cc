"""Pure parts of how compare run measures: capacity search, host pressure, spread, breakdown,
peak shaving."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from compare.bench.breakdown import Milestones, published_at, stage_breakdown
from compare.bench.burst import BacklogSample, peak_shaving
from compare.bench.capacity import capacity_search
from compare.bench.pressure import Snapshot, between, idle_flags, judged, parse_psi, parse_stat, snapshot
from compare.bench.spread import claim, spread
from compare.report.render import render
from compare.report.summary import summary
from compare.report.verdict import verdict
from tests.compare.fake_results import fake_results, fake_step

# --------------------------------------------------------------------------- capacity search


@dataclass
class FakeStep:
    offered_rate: float
    passed: bool
    kind: str


class FakeTarget:
    """Passes every rate <= capacity, except the attempts listed in `flaky` (rate, nth attempt)."""

    def __init__(self, capacity: float, flaky: tuple[tuple[float, int], ...] = ()) -> None:
        self.capacity = capacity
        self.flaky = set(flaky)
        self.calls: list[tuple[float, str]] = []

    async def measure(self, rate: float, kind: str) -> FakeStep:
        self.calls.append((rate, kind))
        nth = sum(1 for r, _ in self.calls if r == rate)
        return FakeStep(rate, rate <= self.capacity and (rate, nth) not in self.flaky, kind)


LADDER = [5.0, 10, 25, 50, 100, 150, 200, 300, 400, 600, 800, 1000, 1500]


def test_the_search_bisects_below_the_first_failure_and_confirms() -> None:
    target = FakeTarget(capacity=340)
    found = asyncio.run(capacity_search(LADDER, target.measure, gap=0.1, max_bisect=4))
    kinds = [k for _, k in target.calls]
    assert kinds[:9] == ["ladder"] * 9 and target.calls[8] == (400, "ladder")  # stops at 1st failure
    bisected = [r for r, k in target.calls if k == "bisect"]
    assert bisected == [350, 325]  # 300..400 -> 350 fails -> 325 passes; 325..350 is under 10 %
    assert target.calls[-1] == (325, "confirm")
    assert found.max_rate == 325 and found.confirmed and not found.capped_by_ladder
    assert 340 - found.max_rate < 0.1 * found.max_rate


def test_a_failed_confirmation_steps_down_to_the_next_lower_passing_rate() -> None:
    target = FakeTarget(capacity=340, flaky=((325, 2),))  # 325 passes once, not when re-run
    found = asyncio.run(capacity_search(LADDER, target.measure, gap=0.1, max_bisect=4))
    confirms = [r for r, k in target.calls if k == "confirm"]
    assert confirms == [325, 300]
    assert found.max_rate == 300 and found.highest_passed == 325 and found.confirmed


def test_a_failed_confirmation_far_above_the_rung_below_steps_down_by_the_gap() -> None:
    # 400 passes on the ladder, 425 fails in the bisection, 400's confirmation fails: the rung
    # below (300) is 25 % lower, so the search confirms 10 % below 400 instead.
    target = FakeTarget(capacity=420, flaky=((400, 2),))
    found = asyncio.run(capacity_search(LADDER, target.measure, gap=0.1, max_bisect=4))
    confirms = [r for r, k in target.calls if k == "confirm"]
    assert confirms == [400, 360]
    assert found.max_rate == 360 and found.highest_passed == 400 and found.confirmed


def test_step_downs_go_by_the_gap_until_a_rate_that_passed_is_closer() -> None:
    target = FakeTarget(capacity=420, flaky=((400, 2), (360, 1), (324, 1)))
    found = asyncio.run(capacity_search(LADDER, target.measure, gap=0.1, max_bisect=4, max_confirm=5))
    assert [r for r, k in target.calls if k == "confirm"] == [400, 360, 324, 300]  # 292 < 300
    assert found.max_rate == 300 and found.confirmed


def test_no_confirmed_rate_is_no_max_rate() -> None:
    target = FakeTarget(capacity=12, flaky=((10, 2),))  # 10 passes, its confirmation fails
    found = asyncio.run(capacity_search([5.0, 10, 25], target.measure, gap=0.1, max_bisect=0, max_confirm=1))
    assert found.max_rate is None and not found.confirmed and found.highest_passed == 10
    nothing = asyncio.run(capacity_search([5.0, 10], FakeTarget(capacity=1).measure))
    assert nothing.max_rate is None and len(nothing.steps) == 1


def test_the_top_of_the_ladder_is_confirmed_and_said_to_cap() -> None:
    target = FakeTarget(capacity=10_000)
    found = asyncio.run(capacity_search(LADDER, target.measure))
    assert found.max_rate == 1500 and found.capped_by_ladder
    assert [k for _, k in target.calls].count("bisect") == 0


# --------------------------------------------------------------------------- host pressure

PSI = (
    "some avg10={avg:.2f} avg60=0.00 avg300=0.00 total={total}\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
)


def _stat(busy: int, idle: int, steal: int) -> str:
    # user nice system idle iowait irq softirq steal guest guest_nice
    return f"cpu  {busy} 0 0 {idle} 0 0 0 {steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"


def _snap(t: float, cpu_total_us: int, busy: int, idle: int, steal: int = 0) -> Snapshot:
    return Snapshot(
        t=t,
        cpu=parse_psi(PSI.format(avg=1.0, total=cpu_total_us)),
        io=parse_psi(PSI.format(avg=0.0, total=0)),
        stat=parse_stat(_stat(busy, idle, steal)),
        load1=1.5,
    )


def test_idle_pressure_is_flagged_above_its_thresholds() -> None:
    # 2 s, 2 CPUs at 100 ticks/s = 400 ticks. Quiet: 50 ms stalled (2.5 %), 20 busy ticks (0.1 core).
    quiet = between(_snap(0, 0, 0, 0), _snap(2, 50_000, 20, 380), hz=100)
    assert (quiet.cpu_some_pct, quiet.busy_cores, quiet.steal_pct) == (2.5, 0.1, 0.0)
    assert idle_flags(quiet) == []
    # Someone else's load: 400 ms stalled in 2 s (20 %), 1.2 cores busy, 8 % steal.
    busy = between(_snap(0, 0, 0, 0), _snap(2, 400_000, 240, 128, 32), hz=100)
    assert (busy.cpu_some_pct, busy.busy_cores, busy.steal_pct) == (20.0, 1.2, 8.0)
    flags = idle_flags(busy)
    assert len(flags) == 3 and "CPU pressure 20 %" in flags[0] and "steal 8 %" in flags[2]


def test_a_step_is_flagged_for_steal_and_for_cores_busy_outside_the_target() -> None:
    window = between(_snap(0, 0, 0, 0), _snap(10, 6_000_000, 1800, 200), hz=100)  # 1.8 cores busy
    own = judged(window.model_copy(update={"own_cores": 1.6}), "step")
    assert own.flags == []  # the target's own load makes CPU pressure: not a flag in a step
    other = judged(window.model_copy(update={"own_cores": 1.0}), "step")
    assert other.unattributed_cores == 0.8 and "0.8 cores busy outside the target" in other.flags[0]


def test_pressure_is_read_from_proc_files(tmp_path: Path) -> None:
    (tmp_path / "pressure").mkdir()
    (tmp_path / "pressure" / "cpu").write_text(PSI.format(avg=12.5, total=123))
    (tmp_path / "stat").write_text(_stat(10, 20, 3))
    (tmp_path / "loadavg").write_text("3.10 2.00 1.00 2/100 42\n")
    snap = snapshot(tmp_path)
    assert snap.cpu["some"]["avg10"] == 12.5 and snap.cpu["some"]["total"] == 123
    assert snap.io == {} and snap.load1 == 3.1  # no io file: no figure, no error
    assert (snap.stat.busy, snap.stat.idle, snap.stat.steal) == (10, 20, 3)
    assert between(snap, snap).cpu_some_pct is None  # an empty window has no share
    with pytest.raises(ValueError):
        parse_stat("intr 1 2 3\n")


# --------------------------------------------------------------------------- spread rule


def test_overlapping_ranges_make_no_claim() -> None:
    a, b = spread([300, 340, 320]), spread([310, 400, 380])
    line = claim("mq", a, "workflow", b, lower_is_better=False, what="Max rate")
    assert line is not None and "no measurable difference" in line and "wins" not in line
    apart = claim("mq", spread([300, 320]), "workflow", spread([100, 150]), lower_is_better=False, what="x")
    assert apart is not None and "**mq** wins" in apart and "do not overlap" in apart
    single = claim("mq", spread([300]), "workflow", spread([290]), lower_is_better=False, what="x")
    assert single is not None and "wins" in single and "single run" in single
    lower = claim("mq", spread([50, 60]), "workflow", spread([10, 20]), lower_is_better=True, what="p99")
    assert lower is not None and "**workflow** wins" in lower
    assert claim("mq", None, "workflow", spread([1]), lower_is_better=True, what="x") is None
    s = spread([3, None, 1, 2])
    assert s is not None and (s.n, s.min, s.median, s.max) == (3, 1, 2, 3)


def _repeated(mq_rates: list[float], wf_rates: list[float]) -> dict:
    """Two capacity searches per target: the max sustainable rates given, p50 at 10/s alike."""
    results = fake_results()
    for name, rates in (("mq", mq_rates), ("workflow", wf_rates)):
        t = results["targets"][name]
        t["steps"] = []
        t["searches"] = []
        for i, top in enumerate(rates):
            for rate in (10.0, top):
                t["steps"].append({**fake_step(rate, 20 + i, 90, True), "search": i, "kind": "ladder"})
            t["searches"].append({"search": i, "max_sustainable_rate": top, "confirmed": True, "log": []})
        t["max_sustainable_rate"] = sorted(rates)[len(rates) // 2]
    results["meta"]["repeat"] = len(mq_rates)
    return results


def test_the_verdict_claims_a_faster_variant_only_when_the_ranges_do_not_overlap(tmp_path: Path) -> None:
    overlapping = _repeated([100, 150], [120, 140])
    lines = verdict(overlapping, summary(overlapping))
    rate_line = next(x for x in lines if x.startswith("Max sustainable rate"))
    assert "no measurable difference" in rate_line, rate_line
    apart = _repeated([300, 320], [100, 150])
    lines = verdict(apart, summary(apart))
    rate_line = next(x for x in lines if x.startswith("Max sustainable rate"))
    assert "wins" in rate_line and "do not overlap" in rate_line, rate_line
    render(apart, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "min / median / max of 2" in md  # the spread table


# --------------------------------------------------------------------------- breakdown arithmetic


def test_stage_means_add_up_to_the_mean_end_to_end() -> None:
    orders = [
        Milestones(scheduled=100.0, accepted=100.010, published=100.030, deducted=100.070, terminal=100.100),
        Milestones(scheduled=200.0, accepted=200.020, published=200.050, deducted=200.040, terminal=200.300),
    ]
    stages, total = stage_breakdown(orders)
    # the 2nd order was deducted (at +40 ms) before its outbox row went (+50 ms): published at +40
    assert [s.mean_ms for s in stages] == pytest.approx([15.0, 20.0, 20.0, 145.0])
    assert sum(s.mean_ms for s in stages) == pytest.approx(total.mean_ms) == pytest.approx(200.0)
    assert [s.p50_ms for s in stages] == pytest.approx([10.0, 20.0, 0.0, 30.0])
    assert all(s.negative == 0 for s in stages)
    wf, _ = stage_breakdown([Milestones(0.0, 0.005, None, 0.050, 0.080)])  # workflow: nothing to publish
    assert wf[1].mean_ms == 0.0 and wf[2].mean_ms == pytest.approx(45.0)


def test_published_is_between_the_last_poll_that_saw_the_row_and_the_next() -> None:
    polls = [10.00, 10.02, 10.04, 10.06]
    assert published_at(10.01, 10.04, polls) == pytest.approx(10.05)  # seen at 10.04, gone at 10.06
    assert published_at(10.01, None, polls) == pytest.approx(10.015)  # never seen: after the 202
    assert published_at(10.05, 10.04, polls) == pytest.approx(10.055)  # the 202 came after the last sight
    assert published_at(10.07, None, polls) is None  # no poll after: unknown


# --------------------------------------------------------------------------- peak shaving


def _samples(api: list[int], behind: list[int]) -> list[BacklogSample]:
    return [
        BacklogSample(t=float(i), pending=b, api_in_flight=a, outbox=0, queues={"deduct": b})
        for i, (a, b) in enumerate(zip(api, behind, strict=True))
    ]


def test_peak_shaving_holds_fails_or_is_not_exercised() -> None:
    common = {"peak_rate": 300.0, "burst_s": 10.0, "peak_arrivals": 3000, "drain_s": 12.0}
    held = peak_shaving(
        **common, peak_accepted=3000, accept_p99_ms=20.0, completed_in_peak=1000,
        samples=_samples([2, 3, 1], [10, 2000, 50]),
    )  # fmt: skip
    assert held.verdict == "held" and held.reasons == [] and held.where_at_max["queue deduct (ready)"] == 2000
    at_api = peak_shaving(
        **common, peak_accepted=3000, accept_p99_ms=900.0, completed_in_peak=1000,
        samples=_samples([10, 1500, 4], [10, 300, 50]),
    )  # fmt: skip
    assert at_api.verdict == "did not hold"
    assert any("p99" in r for r in at_api.reasons) and any("sat at the API" in r for r in at_api.reasons)
    kept_up = peak_shaving(
        **common, peak_accepted=3000, accept_p99_ms=20.0, completed_in_peak=2950,
        samples=_samples([2, 3, 1], [5, 8, 5]),
    )  # fmt: skip
    assert kept_up.verdict == "not exercised" and "kept up" in kept_up.reasons[0]
    undrained = peak_shaving(
        **{**common, "drain_s": None}, peak_accepted=3000, accept_p99_ms=20.0, completed_in_peak=1000,
        samples=_samples([2, 3, 1], [10, 2000, 1900]),
    )  # fmt: skip
    assert undrained.verdict == "did not hold" and "did not drain" in undrained.reasons[0]


def test_repeat_must_be_a_small_whole_number() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    for bad in ("0", "two", "21"):
        argv = [sys.executable, "-m", "compare", "run", "--repeat", bad]
        out = subprocess.run(argv, cwd=root, capture_output=True, text=True)
        assert out.returncode == 2, bad
        assert "--repeat" in out.stderr and "Traceback" not in out.stderr

"""A fault armed `times=N` fires N times in all, also when several processes of one role (the
API's copies, which share its name) reach its point at the same moment: one shared counter."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

from common.faults import FaultAction, Faults, FaultSpec

ROUNDS = 200
PROCESSES = 4
ONCE = FaultSpec(point="after_order_commit", action=FaultAction.DELAY, times=1)


def _race(state_dir: str, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:
    start.wait()
    # one fresh counter per round (its own state directory), every process racing for it
    fired = [i for i in range(ROUNDS) if Faults([ONCE], "api", Path(state_dir) / f"r{i}")._consume(ONCE)]
    out.put(fired)


def test_a_fault_armed_once_fires_once_across_processes_of_one_role(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), start, out)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    start.set()
    fired = Counter(i for _ in procs for i in out.get(timeout=60))
    for p in procs:
        p.join(timeout=30)
    assert sorted(fired) == list(range(ROUNDS)), "some round fired nowhere"
    assert max(fired.values()) == 1, f"fired more than once in {sum(v > 1 for v in fired.values())} rounds"

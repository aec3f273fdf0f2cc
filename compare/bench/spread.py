"""Run-to-run spread of a figure (compare run --repeat) and the rule for claiming a difference.

"X is faster than Y" is said only when X's range (min..max over the repeated capacity searches)
and Y's range do not overlap; overlapping ranges are "no measurable difference". With one search
each the ranges are single points: the claim is made but says it rests on a single run.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

# A single run each has no spread: below this ratio of the larger figure to the smaller, a gap is within
# one host's run-to-run noise (claim() says so; the report's decision page marks no better side).
SINGLE_RUN_GAP = 1.2


class Spread(BaseModel):
    n: int
    min: float
    median: float
    max: float
    values: list[float]

    def overlaps(self, other: Spread) -> bool:
        return self.min <= other.max and other.min <= self.max

    def text(self, unit: str = "") -> str:
        if self.n == 1:
            return f"{self.median:,.4g}{unit} (1 run)"
        low, mid, high = (f"{v:,.4g}" for v in (self.min, self.median, self.max))
        return f"{low} / {mid} / {high}{unit} (min / median / max of {self.n})"


def spread(values: Iterable[float | None]) -> Spread | None:
    known = [float(v) for v in values if v is not None]
    if not known:
        return None
    return Spread(n=len(known), min=min(known), median=statistics.median(known), max=max(known), values=known)


def claim(
    a_name: str,
    a: Spread | None,
    b_name: str,
    b: Spread | None,
    *,
    lower_is_better: bool,
    what: str,
    label: Any = str,
) -> str | None:
    """One verdict line comparing two spreads, or None when either has no figure."""
    if a is None or b is None or a.median <= 0 or b.median <= 0:
        return None
    runs = min(a.n, b.n)
    if a.n > 1 or b.n > 1:
        if a.overlaps(b):
            return (
                f"{what}: no measurable difference ({label(a_name)} {a.min:,.4g}-{a.max:,.4g}, "
                f"{label(b_name)} {b.min:,.4g}-{b.max:,.4g} over {runs} runs: the ranges overlap)."
            )
    elif a.median == b.median:
        return f"{what}: a tie ({a.median:,.4g}, a single run each)."
    a_wins = (a.median < b.median) == lower_is_better
    win, lose = ((a_name, a), (b_name, b)) if a_wins else ((b_name, b), (a_name, a))
    factor = max(win[1].median, lose[1].median) / min(win[1].median, lose[1].median)
    if runs > 1:
        basis = (
            f"medians of {runs} runs, ranges {win[1].min:,.4g}-{win[1].max:,.4g} vs "
            f"{lose[1].min:,.4g}-{lose[1].max:,.4g} do not overlap"
        )
    else:
        basis = (
            "a single run each, no spread measured: use --repeat before believing a gap under "
            f"~{round((SINGLE_RUN_GAP - 1) * 100)} %"
        )
    return (
        f"{what}: **{label(win[0])}** wins, {win[1].median:,.4g} vs {lose[1].median:,.4g} "
        f"({factor:.2f}x; {basis})."
    )

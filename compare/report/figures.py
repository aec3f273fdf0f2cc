"""How a figure is written in the report: milliseconds, numbers, ratios, percentages, host cells."""

from __future__ import annotations

from typing import Any


def ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f} ms" if abs(v) >= 100 else f"{v:.1f} ms"


def num(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:,.4g}{unit}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def pct(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def step_host(host: dict[str, Any] | None) -> str:
    if not host:
        return "-"
    figures = (
        f"steal {num(host.get('steal_pct'), ' %')}, {num(other_cores(host))} cores outside, "
        f"CPU psi {num(host.get('cpu_some_pct'), ' %')}"
    )
    return ("**outside load**: " if host.get("flags") else "ok: ") + figures


def other_cores(host: dict[str, Any]) -> float | None:
    busy, own = host.get("busy_cores"), host.get("own_cores")
    return None if busy is None or own is None else round(max(busy - own, 0.0), 2)


def pressure_cells(p: dict[str, Any]) -> list[str]:
    """CPU and IO pressure, busy cores, steal, load: the host table's measurement columns."""
    return [
        num(p.get("cpu_some_pct"), " %"),
        num(p.get("io_some_pct"), " %"),
        num(p.get("busy_cores")),
        num(p.get("steal_pct"), " %"),
        num(p.get("load1")),
    ]


def usage_rows(step: dict[str, Any]) -> list[list[str]]:
    return [
        [
            g,
            f"{u['cpu_s']:.2f}",
            f"{step['cpu_ms_per_order'].get(g, 0):.2f}",
            f"{u['peak_rss_mib']:.0f}",
            str(u["processes"]),
            u.get("note", ""),
        ]
        for g, u in step["resources"].items()
    ]

"""Latency histograms (HDR) and resource sampling (CPU seconds, peak RSS) per process group.

Latencies are recorded in microseconds in an HdrHistogram (1 us .. 1 h, 3 significant digits)
and summarised in milliseconds. Resource use is sampled with psutil on the pids of a run's
role processes (<run_dir>/pids/*.pid), the supervisor, and the dependency processes. A process
that appears during the window counts from zero; one already running counts from its first
sample, so the figures are CPU seconds spent inside the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from hdrh.histogram import HdrHistogram
from pydantic import BaseModel

from common.tasks import cancel_and_wait
from compare.targets.pids import PidSource

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
_MAX_US = 3_600_000_000


class LatencySummary(BaseModel):
    count: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    cdf: list[tuple[float, float]]  # (latency ms, fraction <= it), for plots
    encoded: str | None = None  # HdrHistogram's compressed form, to re-read without re-running


class LatencyHistogram:
    def __init__(self) -> None:
        self._h = HdrHistogram(1, _MAX_US, 3)

    def record_ms(self, ms: float) -> None:
        self._h.record_value(min(max(int(ms * 1000), 1), _MAX_US))

    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def summary(self) -> LatencySummary:
        n = self.count
        if n == 0:
            return LatencySummary(
                count=0,
                p50_ms=None,
                p90_ms=None,
                p99_ms=None,
                p999_ms=None,
                max_ms=None,
                mean_ms=None,
                cdf=[],
            )
        pv = self._h.get_percentile_to_value_dict(list(PERCENTILES))
        return LatencySummary(
            count=n,
            p50_ms=pv[50.0] / 1000,
            p90_ms=pv[90.0] / 1000,
            p99_ms=pv[99.0] / 1000,
            p999_ms=pv[99.9] / 1000,
            max_ms=self._h.get_max_value() / 1000,
            mean_ms=self._h.get_mean_value() / 1000,
            cdf=self._cdf(),
            encoded=self._h.encode().decode(),
        )

    def _cdf(self) -> list[tuple[float, float]]:
        points: list[tuple[float, float]] = []
        for item in self._h.get_percentile_iterator(5):
            points.append((item.value_iterated_to / 1000, item.percentile_level_iterated_to / 100))
            if len(points) > 400:
                break
        return points


# --------------------------------------------------------------------------- resources


class GroupUsage(BaseModel):
    cpu_s: float
    peak_rss_mib: float
    processes: int  # distinct processes seen in the window
    note: str = ""


@dataclass
class _Proc:
    proc: psutil.Process
    base_cpu: float
    last_cpu: float


@dataclass
class _Group:
    source: PidSource
    note: str = ""
    private_only: bool = False  # count RSS minus shared pages (PostgreSQL: shared_buffers)
    procs: dict[tuple[int, float], _Proc] = field(default_factory=dict)
    peak_rss: int = 0


class CpuSample(BaseModel):
    t: float  # wall clock (time.time())
    cpu_s: dict[str, float]  # per group, cumulative since the sampler started


def cores_between(series: list[CpuSample], start: float, end: float) -> dict[str, float]:
    """Cores each group kept busy between two wall-clock times (the samples closest inside)."""
    inside = [s for s in series if start <= s.t <= end]
    if len(inside) < 2 or inside[-1].t <= inside[0].t:
        return {}
    first, last = inside[0], inside[-1]
    span = last.t - first.t
    return {
        name: round(max(last.cpu_s.get(name, 0.0) - first.cpu_s.get(name, 0.0), 0.0) / span, 2)
        for name in last.cpu_s
    }


def _cpu_s(g: _Group) -> float:
    return sum(max(p.last_cpu - p.base_cpu, 0.0) for p in g.procs.values())


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


class ResourceSampler:
    """Samples every `interval` seconds until stopped; usage() gives the window's figures."""

    def __init__(
        self,
        groups: dict[str, PidSource],
        *,
        interval: float = 0.5,
        notes: dict[str, str] | None = None,
        private_only: tuple[str, ...] = ("postgres",),
    ) -> None:
        self._groups = {
            name: _Group(source, (notes or {}).get(name, ""), name in private_only)
            for name, source in groups.items()
        }
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.started = 0.0
        self.stopped = 0.0
        self.series: list[CpuSample] = []  # cumulative CPU per group, for cores_between

    async def __aenter__(self) -> ResourceSampler:
        self.started = time.monotonic()
        await self.sample(first=True)
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        await self.sample()
        self.stopped = time.monotonic()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.sample()

    async def sample(self, *, first: bool = False) -> None:
        for group in self._groups.values():
            try:
                pids = await group.source()
            except Exception:  # a dependency query failing must not stop the benchmark
                pids = []
            rss = 0
            for pid in pids:
                try:
                    proc = psutil.Process(pid)
                    key = (pid, proc.create_time())
                    known = group.procs.get(key)
                    with proc.oneshot():
                        cpu = _cpu(proc)
                        mem = proc.memory_info()
                        rss += mem.rss - (mem.shared if group.private_only else 0)
                    if known is None:
                        group.procs[key] = _Proc(proc, cpu if first else 0.0, cpu)
                    else:
                        known.last_cpu = cpu
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            group.peak_rss = max(group.peak_rss, rss)
        self.series.append(
            CpuSample(t=time.time(), cpu_s={name: _cpu_s(g) for name, g in self._groups.items()})
        )

    def usage(self) -> dict[str, GroupUsage]:
        return {
            name: GroupUsage(
                cpu_s=round(_cpu_s(g), 3),
                peak_rss_mib=round(g.peak_rss / 2**20, 1),
                processes=len(g.procs),
                note=g.note,
            )
            for name, g in self._groups.items()
        }


def machine_info() -> dict[str, object]:
    import os
    import platform

    mem = psutil.virtual_memory()
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(mem.total / 2**30, 1),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }

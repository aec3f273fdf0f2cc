"""The ports the suite chooses for a staged target -- its API port, and for a workflow target the
dev server's gRPC and web UI ports -- lie outside Linux's ephemeral range: a port picked by binding
port 0 could be handed to any client socket (a database connection, a Temporal gRPC channel, a
test in another xdist worker) before the server binds it. Seen: "Address already in use" for
120 s. (The dev server also opens metrics and internal ports of its own choosing, in that range:
those the suite does not pick.)"""

from __future__ import annotations

from pathlib import Path

from common.settings import Settings
from common.temporal_dev import UI_PORT_OFFSET
from compare.targets.sandbox import free_dev_server_port
from compare.targets.stage import target_settings


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_staged_api_ports_stay_out_of_the_ephemeral_range(tmp_path: Path) -> None:
    low, high = _ephemeral_range()
    ports = {target_settings(Settings(), "reference", tmp_path).api_port for _ in range(20)}
    assert not [p for p in ports if low <= p <= high], f"ports in {low}-{high}: {sorted(ports)}"


def test_the_temporal_dev_server_ports_stay_out_of_the_ephemeral_range() -> None:
    # the staged dev server listens on p (gRPC) and p + UI_PORT_OFFSET (its web UI)
    low, high = _ephemeral_range()
    ports = {p + off for p in (free_dev_server_port() for _ in range(1000)) for off in (0, UI_PORT_OFFSET)}
    assert not [p for p in ports if low <= p <= high], f"ports in {low}-{high}: {sorted(ports)}"

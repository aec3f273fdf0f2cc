"""Container health probe: `python -m common.probe TARGET...`, exit 0 when every target answers.

Targets, all taken from the settings (env CC_*), so a probe never hard-codes an address:
  http      GET http://127.0.0.1:<api_port>/healthz answers 200 (the API role)
  pg        a TCP connection to the PostgreSQL server of CC_PG_URL opens
  amqp      a TCP connection to the broker of CC_AMQP_URL opens
  temporal  a TCP connection to CC_TEMPORAL_ADDRESS opens

Roles without an HTTP port (relays, consumers, workers) are probed on the path to their
dependencies: a container whose process died is restarted by its restart policy anyway; what the
probe adds is "this container can reach what it needs". One readable line on failure, exit 1.
"""

from __future__ import annotations

import socket
import sys
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

from common.settings import Settings

TIMEOUT_S = 3.0


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _tcp(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=TIMEOUT_S):
        pass


def _http(settings: Settings) -> None:
    url = f"http://127.0.0.1:{settings.api_port}/healthz"
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        if response.status != 200:
            raise OSError(f"{url} answered {response.status}")


def _temporal(settings: Settings) -> None:
    host, _, port = settings.temporal_address.rpartition(":")
    _tcp(host or "127.0.0.1", int(port))


PROBES: dict[str, Callable[[Settings], None]] = {
    "http": _http,
    "pg": lambda s: _tcp(*_host_port(s.pg_url, 5432)),
    "amqp": lambda s: _tcp(*_host_port(s.amqp_url, 5672)),
    "temporal": _temporal,
}


def main(argv: list[str]) -> int:
    unknown = [t for t in argv if t not in PROBES]
    if not argv or unknown:
        print(f"usage: python -m common.probe {{{','.join(PROBES)}}}...", file=sys.stderr)
        return 2
    settings = Settings()
    for target in argv:
        try:
            PROBES[target](settings)
        except (OSError, ValueError) as exc:
            print(f"unhealthy: {target}: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

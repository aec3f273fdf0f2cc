"""Compose services run as local processes: no Docker engine here, so the next best thing.

Each service's own command and environment come from the resolved compose configuration; only
what a container network changes is rewritten: the dependency addresses point at this machine's
servers, the API binds 127.0.0.1 on a free port, names get the test's prefixes (isolation), and
each replica gets its own run directory. Everything else a service sets is passed unchanged, so
a missing or misspelt setting in the compose file shows up here as a role that does not work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.settings import Settings
from tests.deploy.compose import ROOT, python_command
from tests.support import free_port

# The only CC_* variables a container network makes different from this machine.
REWRITTEN = frozenset(
    {"CC_PG_URL", "CC_AMQP_URL", "CC_TEMPORAL_ADDRESS", "CC_API_HOST", "CC_API_PORT", "CC_RUN_DIR"}
)


@dataclass
class Replica:
    service: str
    index: int
    proc: subprocess.Popen[bytes]
    log: Path
    api_url: str | None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@dataclass
class ServicesAsProcesses:
    config: dict[str, Any]
    settings: Settings  # addresses of the local servers and the test's prefixes
    workdir: Path
    replicas: list[Replica] = field(default_factory=list)

    def env(self, service: str, index: int, api_port: int | None) -> dict[str, str]:
        declared: dict[str, str] = dict(self.config["services"][service].get("environment") or {})
        local = {
            "CC_PG_URL": self.settings.pg_url,
            "CC_AMQP_URL": self.settings.amqp_url,
            "CC_TEMPORAL_ADDRESS": self.settings.temporal_address,
            "CC_RUN_DIR": str(self.workdir / f"{service}-{index}"),
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
        for key, value in declared.items():
            env[key] = local.get(key, value)
        if api_port is not None:
            assert declared.get("CC_API_HOST") == "0.0.0.0", (
                f"{service} would not be reachable in a container"
            )
            env.update(CC_API_HOST="127.0.0.1", CC_API_PORT=str(api_port))
        env.update(
            CC_DB_PREFIX=self.settings.db_prefix,
            CC_AMQP_PREFIX=self.settings.amqp_prefix,
            CC_TEMPORAL_QUEUE_PREFIX=self.settings.temporal_queue_prefix,
        )
        return env

    def argv(self, service: str) -> list[str]:
        command = python_command(self.config["services"][service])
        assert command is not None, f"{service} does not run a python module"
        return [sys.executable, "-m", command.module, *command.args]

    def run_once(self, service: str) -> None:
        """An init step: must exit 0 (compose starts the roles only then)."""
        done = subprocess.run(
            self.argv(service),
            env=self.env(service, 0, None),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{service} failed: {done.stdout}{done.stderr}"

    def start(self, service: str, *, replicas: int | None = None) -> list[Replica]:
        svc = self.config["services"][service]
        count = replicas if replicas is not None else (svc.get("deploy") or {}).get("replicas", 1)
        is_api = python_command(svc) is not None and python_command(svc).args == ("role", "api")  # type: ignore[union-attr]
        started = []
        for index in range(len([r for r in self.replicas if r.service == service]), count):
            port = free_port() if is_api else None
            log = self.workdir / f"{service}-{index}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    self.argv(service), env=self.env(service, index, port), cwd=ROOT,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            replica = Replica(service, index, proc, log, f"http://127.0.0.1:{port}" if port else None)
            self.replicas.append(replica)
            started.append(replica)
        return started

    def stop_all(self) -> None:
        for replica in self.replicas:
            if replica.proc.poll() is None:
                replica.proc.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            try:
                replica.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(replica.proc.pid, signal.SIGKILL)
                replica.proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {r.service}[{r.index}]\n{r.output()[-3000:]}" for r in self.replicas)

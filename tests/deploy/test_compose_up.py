"""`docker compose up` for real, where a Docker engine answers: README's curl session per profile,
then an order across a partition of the role that deducts (the fault suite's container partition).

Each test runs its own compose project (own name, own volumes, free host ports) and removes it.
The images come from the files' defaults, or from CC_COMPOSE_ENV_FILE (for example
deploy/standins/standins.env, the stand-ins deploy/standins/build.sh builds where no image
registry is reachable). Without an engine, or when an image can neither be found nor pulled
because no registry answers, the tests skip and say why.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from compare.targets.compose import ComposeProject
from compare.targets.roles import ComposeRoles
from tests.deploy.compose import BASE, ROOT, compose_binary, engine_problem
from tests.support import free_port

PORT_VARS = ("PG_HOST_PORT", "AMQP_HOST_PORT", "RABBITMQ_UI_HOST_PORT", "TEMPORAL_HOST_PORT",
             "TEMPORAL_UI_HOST_PORT", "MQ_API_HOST_PORT", "WF_API_HOST_PORT")  # fmt: skip
# What README's curl session needs (the Temporal web UI is not part of it).
FLOW_SERVICES = {
    "mq": (
        "mq-api",
        "mq-order-relay",
        "mq-inventory-consumer",
        "mq-inventory-relay",
        "mq-order-result-consumer",
    ),
    "workflow": ("wf-api", "wf-order-worker", "wf-inventory-worker"),
}
API_PORT_VAR = {"mq": "MQ_API_HOST_PORT", "workflow": "WF_API_HOST_PORT"}
DEDUCER = {
    "mq": ("inventory-consumer", "mq-inventory-consumer"),
    "workflow": ("inventory-worker", "wf-inventory-worker"),
}
UNREACHABLE = re.compile(r"no such host|dial tcp|i/o timeout|connection refused|TLS handshake timeout")


def problem() -> str | None:
    return "needs a Compose v2 binary" if compose_binary() is None else engine_problem()


pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(why := problem()), reason=str(why))]


@dataclass
class Project:
    name: str
    env: dict[str, str]
    profile: str

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [compose_binary() or "docker-compose", "--project-directory", str(ROOT), "-f", str(BASE),
                "-p", self.name, "--profile", self.profile]  # fmt: skip
        if env_file := os.environ.get("CC_COMPOSE_ENV_FILE"):
            argv += ["--env-file", str(ROOT / env_file)]
        return subprocess.run(
            [*argv, *args], capture_output=True, text=True, cwd=ROOT, env=self.env, timeout=timeout
        )

    def check(self, *args: str, timeout: float = 120) -> str:
        done = self.compose(*args, timeout=timeout)
        assert done.returncode == 0, f"compose {' '.join(args)}:\n{done.stderr[-3000:]}"
        return done.stdout

    def needed_images(self, services: tuple[str, ...]) -> set[str]:
        config: dict[str, Any] = json.loads(self.check("config", "--format", "json"))["services"]
        todo, seen = list(services), set()
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += list(config[name].get("depends_on", {}))
        return {config[n]["image"] for n in seen if "build" not in config[n]}


def ensure_image(image: str) -> None:
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0:
        return
    pulled = subprocess.run(["docker", "pull", "-q", image], capture_output=True, text=True, timeout=900)
    if pulled.returncode != 0:
        if UNREACHABLE.search(pulled.stderr):
            pytest.skip(
                f"image {image} is not here and no registry answers; deploy/standins/build.sh builds "
                "stand-ins, CC_COMPOSE_ENV_FILE=deploy/standins/standins.env uses them"
            )
        raise AssertionError(f"docker pull {image}: {pulled.stderr.strip()}")


def settled(http: httpx.Client, order_id: str, within_s: float = 60) -> str:
    deadline = time.monotonic() + within_s
    while (status := http.get(f"/orders/{order_id}").json()["status"]) == "PENDING":
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return status


@pytest.fixture(params=["mq", "workflow"])
def project(request: pytest.FixtureRequest) -> Iterator[Project]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG")}
    env |= {var: str(free_port()) for var in PORT_VARS}
    project = Project(f"cc-test-{secrets.token_hex(3)}", env, request.param)
    for image in project.needed_images(FLOW_SERVICES[project.profile]):
        ensure_image(image)
    try:
        yield project
    finally:
        project.compose("down", "-v", "--remove-orphans", timeout=300)


def test_readme_curl_session_confirms_an_order_in_containers(project: Project) -> None:
    services = FLOW_SERVICES[project.profile]
    project.check("up", "-d", "--build", "--wait", "--wait-timeout", "400", *services, timeout=900)
    states = json.loads("[" + ",".join(project.check("ps", "-a", "--format", "json").split()) + "]")
    assert {s["Service"] for s in states if s["State"] == "running"} >= set(services)
    api = f"http://127.0.0.1:{project.env[API_PORT_VAR[project.profile]]}"
    with httpx.Client(base_url=api, timeout=10) as http:
        assert http.get("/readyz").status_code == 200
        assert http.put("/stock/sku-1", json={"quantity": 10}).json()["quantity"] == 10
        order = {"order_id": "o-1", "customer_id": "c-1", "lines": [{"sku": "sku-1", "quantity": 2}]}
        assert http.post("/orders", json=order).status_code == 202
        assert settled(http, "o-1") == "CONFIRMED"
        assert http.get("/stock/sku-1").json()["quantity"] == 8

        # The fault suite's partition of a container: the role that deducts is cut off its network
        # (compare.targets.roles.ComposeRoles); an order waits, and goes through once the role is back.
        role, service = DEDUCER[project.profile]
        env = project.env | {"COMPOSE_PROJECT_NAME": project.name}
        compose = ComposeProject(files=[BASE], profiles=[project.profile], project_dir=ROOT, env=env)
        roles = ComposeRoles(compose, {role: service})
        assert "disconnected" in asyncio.run(roles.partition(role))
        try:
            assert http.post("/orders", json=order | {"order_id": "o-2"}).status_code == 202
            time.sleep(5)
            assert http.get("/orders/o-2").json()["status"] == "PENDING"
        finally:
            asyncio.run(roles.heal(role))
        assert settled(http, "o-2", within_s=120) == "CONFIRMED"
        assert http.get("/stock/sku-1").json()["quantity"] == 6
    # The roles are separate containers of one image, running as the image's non-root user.
    for service in services:
        user = project.check("exec", "-T", service, "id", "-u").strip()
        assert user == "10001", (service, user)

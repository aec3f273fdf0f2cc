"""A deployment the fault suite attaches to instead of starting the variants itself.

Two ways to name one:

- `from_compose(files, variants)`: a `docker compose` deployment of this repository's compose
  files; its host addresses come from the resolved configuration (compare.targets.compose). With a
  Docker engine the suite also kills, pauses and restarts its containers; without one it runs
  only the faults that need no process control.
- `from_addresses(api_urls, run_dirs)`: variants started by hand (`python -m mq_variant up`),
  dependencies from the CC_* settings; given a variant's run directory (its CC_RUN_DIR) the suite
  signals its roles through the supervisor's pid files.

What the suite cannot do against a deployment, and so skips (with the reason in the result):
arm fault points (CC_FAULTS is fixed when the deployment starts), put its TCP fault proxies or
network namespaces between roles and dependencies, run the controls (CC_CONTROL likewise). Each
run keeps to its own order ids and SKUs (a random tag), reads only those back, and counts the
dead-letter queues from their depth at its start; it drops nothing, so the deployment's data
stays for a person to look at. The deployment should carry no other traffic while the suite
runs (the outbox is counted as a whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from common.settings import Settings
from compare.targets.compose import ComposeProject
from compare.targets.roles import ComposeRoles, Roles, SupervisedRoles
from compare.targets.sandbox import Dependency


class DeploymentError(RuntimeError):
    """The deployment cannot be used (not reachable, not configured for the chosen variant)."""


@dataclass(frozen=True)
class DeployedVariant:
    api_url: str
    settings: Settings  # host-side addresses and the names the deployment uses


@dataclass
class Deployment:
    kind: str  # "compose" | "addresses"
    variants: dict[str, DeployedVariant]
    roles: dict[str, Roles] = field(default_factory=dict)  # variants whose roles can be acted on
    dependencies: ComposeProject | None = None  # restarts of postgres / rabbitmq / temporal
    no_roles_reason: str = ""
    no_restarts_reason: str = "the suite does not own these servers"

    def describe(self) -> str:
        apis = ", ".join(f"{v} at {d.api_url}" for v, d in self.variants.items())
        via = "docker compose" if self.kind == "compose" else "the supervisor's pid files"
        acts = f"process faults through {via}"
        if not self.roles:
            acts = f"no process faults ({self.no_roles_reason})"
        return f"{self.kind} deployment: {apis}; {acts}"


class NoRestarts:
    """A deployment whose dependencies the suite may not restart (compare.faults.runner skips those)."""

    def can_restart(self, dep: Dependency) -> bool:
        return False

    async def restart(
        self, dep: Dependency, downtime_s: float, *, recovery_s: float = 0.0, crash: bool = False
    ) -> None:
        raise DeploymentError(f"cannot restart {dep}: the suite does not own it")


async def from_compose(
    files: list[Path],
    variants: list[str],
    *,
    project_dir: Path | None = None,
    env: dict[str, str] | None = None,
    env_files: list[Path] | None = None,
) -> Deployment:
    """`env` is what compose interpolates the files with (default: this process's environment),
    `env_files` what the deployment was given with `docker compose --env-file`."""
    profiles = sorted(set(variants))
    project = ComposeProject(files, profiles, project_dir=project_dir, env=env, env_files=env_files or [])
    targets = {v: await project.target(v) for v in variants}
    problem = await project.engine_problem()
    deployment = Deployment(
        kind="compose",
        variants={v: DeployedVariant(t.api_url, t.settings) for v, t in targets.items()},
        no_roles_reason=problem or "",
        no_restarts_reason=problem or "",
    )
    if problem is None:
        deployment.roles = {v: ComposeRoles(project, t.services) for v, t in targets.items()}
        deployment.dependencies = project
    return deployment


def from_addresses(api_urls: dict[str, str], run_dirs: dict[str, Path]) -> Deployment:
    settings = Settings()
    return Deployment(
        kind="addresses",
        variants={v: DeployedVariant(url.rstrip("/"), settings) for v, url in api_urls.items()},
        roles={v: SupervisedRoles(d) for v, d in run_dirs.items()},
        no_roles_reason="give the variant's run directory (--run-dir, its CC_RUN_DIR) to signal its roles",
    )


async def wait_ready(api_url: str, timeout: float = 60.0) -> None:
    """Until GET /readyz answers 200; a DeploymentError naming the last answer otherwise."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    async with httpx.AsyncClient(base_url=api_url, timeout=3.0) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get("/readyz")
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code} {r.text[:120]}"
            if time.monotonic() > deadline:
                raise DeploymentError(f"the API at {api_url} is not ready after {timeout:g}s: {last}")
            await asyncio.sleep(0.5)

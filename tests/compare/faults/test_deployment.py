"""The fault suite attached to variants it did not start (`--target addresses`): real processes on
the private sandbox's servers, started here the way an operator would (`python -m ... up`), then
loaded, faulted (SIGKILL / SIGSTOP through the supervisor's pid files, poison messages) and
checked from outside; and a broken deployment is reported as broken.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from common.settings import Settings
from compare.faults.runner import ScenarioResult, run_scenarios
from compare.targets.deployment import DeployedVariant, Deployment
from compare.targets.roles import SupervisedRoles
from compare.targets.sandbox import Sandbox
from compare.targets.target import VARIANTS, VariantProcess, settings_env
from tests.support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[3]

Deploy = Callable[[str], Awaitable[Deployment]]


@pytest.fixture
async def deployed(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Deploy]:
    """Starts a variant like an operator would; the suite only gets its addresses."""
    started: list[VariantProcess] = []

    async def deploy(variant: str) -> Deployment:
        prefix = f"dep{len(started)}_"
        settings = Settings(
            pg_url=sandbox.pg_url,
            amqp_url=sandbox.amqp_url,
            temporal_address=sandbox.temporal_address,
            db_prefix=prefix,
            amqp_prefix=prefix,
            temporal_queue_prefix=prefix,
            run_dir=tmp_path / f"{variant}-run",
            api_port=free_port(),
        )
        process = VariantProcess(VARIANTS[variant], settings, tmp_path / f"{variant}.log")
        process.start(reset=True)
        started.append(process)
        await process.wait_ready(timeout=120)
        return Deployment(
            kind="addresses",
            variants={variant: DeployedVariant(process.base_url, settings)},
            roles={variant: SupervisedRoles(settings.run_dir)},
        )

    yield deploy
    for process in started:
        process.stop()


def _by_scenario(results: list[ScenarioResult]) -> dict[str, ScenarioResult]:
    return {r.scenario: r for r in results}


def _explain(r: ScenarioResult) -> str:
    return f"{r.label}: {r.status} {r.anomalies} {r.note} {r.verdict.anomalies if r.verdict else ''}"


async def test_mq_deployment_survives_process_faults(deployed: Deploy, tmp_path: Path) -> None:
    deployment = await deployed("mq")
    results = _by_scenario(
        await run_scenarios(
            ["mq"],
            ["baseline", "kill-inventory-consumer", "pause-order-relay", "poison-message", "lost-ack",
             "crash-after_publish"],
            seed=5, orders=60, out_dir=tmp_path / "out", deployment=deployment, recovery_s=45,
        )
    )  # fmt: skip
    for name in ("baseline", "kill-inventory-consumer", "pause-order-relay", "poison-message"):
        assert results[name].status == "pass", _explain(results[name])
        assert results[name].verdict is not None and results[name].verdict.summary.confirmed > 0
    kill = results["kill-inventory-consumer"].faults
    assert any(f.fault == "SIGKILL inventory-consumer" and f.detail.startswith("pid ") for f in kill), kill
    assert results["lost-ack"].status == "skipped" and "proxies" in (results["lost-ack"].note or "")
    assert results["crash-after_publish"].status == "skipped"

    # A second poison run on the same deployment: the first run's dead letters are still there and
    # must not count against it; and every run's orders are still in the deployment's database.
    again = await run_scenarios(["mq"], ["poison-message"], seed=6, orders=30, out_dir=tmp_path / "again",
                                deployment=deployment, recovery_s=45)  # fmt: skip
    assert again[0].status == "pass", _explain(again[0])
    assert again[0].verdict is not None and again[0].verdict.summary.submitted == 30


async def test_a_broken_deployment_is_reported_broken(deployed: Deploy, tmp_path: Path) -> None:
    deployment = await deployed("mq")
    roles = deployment.roles["mq"]
    await roles.pause("inventory-consumer")  # the deployment's consumer is frozen for the whole run
    try:
        results = await run_scenarios(["mq"], ["baseline"], seed=7, orders=30, out_dir=tmp_path / "out",
                                      deployment=deployment, recovery_s=4)  # fmt: skip
    finally:
        await roles.resume("inventory-consumer")
    r = results[0]
    assert r.status == "fail", _explain(r)
    assert r.anomalies.get("lost", 0) > 0 and not r.converged


async def test_workflow_deployment_through_the_command_line(deployed: Deploy, tmp_path: Path) -> None:
    deployed_wf = (await deployed("workflow")).variants["workflow"]
    out = tmp_path / "out"
    argv = [
        sys.executable, "-m", "compare", "faults", "--variant", "workflow", "--target", "addresses",
        "--api-url", deployed_wf.api_url, "--run-dir", str(deployed_wf.settings.run_dir),
        "--scenario", "baseline", "--scenario", "kill-inventory-worker", "--scenario", "restart-temporal",
        "--orders", "30", "--recovery", "60", "--out", str(out), "--allow-skips",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")} | settings_env(
        deployed_wf.settings
    )
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output = (await asyncio.wait_for(proc.communicate(), 400))[0].decode()
    assert proc.returncode == 0, output[-4000:]
    assert "addresses deployment: workflow at" in output
    results = {r["scenario"]: r for r in json.loads((out / "faults.json").read_text())}
    assert results["baseline"]["status"] == "pass"
    assert results["kill-inventory-worker"]["status"] == "pass"
    assert results["restart-temporal"]["status"] == "skipped"
    assert "does not own" in results["restart-temporal"]["note"]


def test_an_unreachable_deployment_is_one_line_and_exit_2(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "compare", "faults", "--variant", "mq", "--target", "addresses",
            "--api-url", f"http://127.0.0.1:{free_port()}", "--scenario", "baseline",
            "--wait-ready", "1", "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "is not ready" in done.stderr

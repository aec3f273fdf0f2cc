"""`compare run` against real processes, and the HTML report in a real headless browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from common.db import drop_database
from common.settings import Settings
from compare.report.render import render
from compare.targets.reference import REFERENCE
from compare.targets.target import VariantProcess, settings_env
from tests.compare.fake_results import fake_results
from tests.conftest import fresh_settings
from tests.support import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


async def test_reference_writes_both_databases_synchronously(base_settings: Settings, tmp_path: Path) -> None:
    settings = fresh_settings(base_settings, tmp_path, api_port=free_port())
    proc = VariantProcess(REFERENCE, settings, tmp_path / "ref.log")
    proc.start(reset=True)
    try:
        await proc.wait_ready()
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=10) as client:
            assert (await client.put("/stock/a", json={"quantity": 5})).status_code == 200
            body = {"order_id": "o1", "customer_id": "c1", "lines": [{"sku": "a", "quantity": 2}]}
            placed = await client.post("/orders", json=body)
            assert placed.status_code == 202
            assert placed.json()["status"] == "CONFIRMED"  # terminal in the response: no messaging
            assert (await client.get("/stock/a")).json()["quantity"] == 3
            again = await client.post("/orders", json=body)
            assert again.json()["status"] == "CONFIRMED"
            assert (await client.get("/stock/a")).json()["quantity"] == 3
            missing = {"order_id": "o2", "customer_id": "c1", "lines": [{"sku": "nope", "quantity": 1}]}
            assert (await client.post("/orders", json=missing)).json()["status"] == "REJECTED"
            assert (await client.post("/orders", json={"order_id": "o3"})).status_code == 422
    finally:
        proc.stop()
        for side in ("orders", "inventory"):
            await drop_database(settings, settings.database(REFERENCE.db_code, side))


def test_compare_run_end_to_end_reference_only(base_settings: Settings, tmp_path: Path) -> None:
    """The whole pipeline on the reference path: sweep, probes, results.json, report, plots."""
    run_dir = tmp_path / "out"
    env = {**os.environ, **settings_env(fresh_settings(base_settings, tmp_path))}
    argv = [sys.executable, "-m", "compare", "run", "--variants", "--no-faults", "--rates", "5", "10"]
    argv += ["--step-s", "2", "--out", str(run_dir), "--seed", "7"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "reference: [ladder] 10/s" in done.stderr  # progress is shown
    results = json.loads((run_dir / "results.json").read_text())
    ref = results["targets"]["reference"]
    assert ref["error"] is None
    # the ladder, then the top rung once more (the confirmation)
    steps = [(s["offered_rate"], s["kind"]) for s in ref["steps"]]
    assert steps == [(5, "ladder"), (10, "ladder"), (10, "confirm")]
    assert ref["max_sustainable_rate"] == 10 and ref["searches"][0]["confirmed"]
    assert ref["searches"][0]["idle"]["wall_s"] >= 2  # the idle window before the search
    assert all(s["host"]["busy_cores"] is not None for s in ref["steps"])
    for step in ref["steps"]:
        assert (
            step["sent"]
            == step["accepted"]
            == step["completed"]
            == step["confirmed"]
            == 2 * step["offered_rate"]
        )
        assert step["terminal"]["count"] == step["sent"]
        assert step["resources"]["api"]["cpu_s"] > 0
    assert ref["leftovers"]["pending_orders"] == 0
    assert ref["leftovers"]["double_deducted_orders"] == 0
    assert results["meta"]["seed"] == 7 and "--seed 7" in results["meta"]["command"]
    assert results["summary"]["common_rate"] in (5, 10)
    assert {"report.md", "report.html", "latency_cdf.png", "latency_vs_rate.png"} <= {
        p.name for p in run_dir.iterdir()
    }


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(
    _chromium() is None, reason="chromium not installed (Debian: apt-get install -y chromium)"
)
def test_html_report_in_headless_chromium(tmp_path: Path) -> None:
    render(fake_results(), tmp_path)
    url = (tmp_path / "report.html").as_uri()
    base = [
        str(_chromium()),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) >= 3  # CDF, vs rate, CPU
    assert html.count("<table>") >= 3
    for heading in ("Verdict", "Headline figures", "Rate sweep", "Operational complexity (measured)"):
        assert f">{heading}</h2>" in html
    assert "UNSAFE" in html
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*base, "--window-size=1200,3000", f"--screenshot={shot}", url], capture_output=True, timeout=60
    )
    assert shot.exists() and shot.stat().st_size > 50_000  # the page painted plots, not a blank page

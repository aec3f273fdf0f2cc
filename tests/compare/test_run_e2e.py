"""`compare run` against real processes, and the HTML report in a real headless browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from PIL import Image

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


FIRST_SCREEN = (1280, 800)  # a laptop's browser window, CSS pixels
DECISION_PAGE = """(() => {
  const table = document.querySelector("h2#decision ~ table");
  if (!table) return null;
  const rect = table.getBoundingClientRect();
  const head = table.querySelector("thead").getBoundingClientRect();
  const first = table.querySelector("tbody tr").getBoundingClientRect();
  const links = [...table.querySelectorAll("a")].map(a => a.getAttribute("href").slice(1));
  return {
    top: rect.top, header_bottom: head.bottom, first_row_bottom: first.bottom, right: rect.right,
    text: table.innerText, links: links, missing: links.filter(id => !document.getElementById(id)),
    before: [...document.body.children].slice(0, [...document.body.children].indexOf(table))
      .map(e => e.tagName),
    images_broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
  };
})()"""


@pytest.mark.skipif(
    _chromium() is None, reason="chromium not installed (Debian: apt-get install -y chromium)"
)
def test_html_report_in_headless_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    render(fake_results(), tmp_path)
    url = (tmp_path / "report.html").as_uri()
    width, height = FIRST_SCREEN
    first, whole = tmp_path / "decision.png", tmp_path / "shot.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, wait_until="load")
            html = page.content()
            decision = page.evaluate(DECISION_PAGE)
            page.screenshot(path=first)
            page.screenshot(path=whole, full_page=True)
        finally:
            browser.close()
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) >= 3  # CDF, vs rate, CPU
    assert html.count("<table>") >= 3
    for heading in ("Verdict", "Headline figures", "Rate sweep", "Operational complexity (measured)"):
        assert re.search(rf"<h2[^>]*>{re.escape(heading)}</h2>", html), heading
    assert "UNSAFE" in html
    assert whole.stat().st_size > 50_000  # the page painted plots, not a blank page

    # The decision page: first, its table on the first screen, its text there, its links resolving.
    assert isinstance(decision, dict), "no decision table under the heading #decision"
    # nothing but the title, a few lines and the decision heading before it: no verdict list, no table
    assert set(decision["before"]) <= {"H1", "P", "H2"} and decision["before"].count("H2") == 1, decision
    assert decision["top"] >= 0 and decision["first_row_bottom"] <= height, decision  # header + a row
    assert decision["right"] <= width  # the whole width of the table on screen: no sideways scroll
    for text in (
        "question",
        "MQ (outbox + RabbitMQ + dedup)",
        "Temporal workflow",
        "better",
        "Consistency under the fault catalogue",
        "Max sustainable rate",
        "not measured",
    ):
        assert text in decision["text"], text
    assert decision["links"] and not decision["missing"], decision["missing"]
    assert decision["images_broken"] == 0
    assert "When to choose which" in html and "Caveats" in html
    with Image.open(first) as img:
        assert img.size == FIRST_SCREEN
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 20  # text and table drawn, not a blank screen


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_a_terminated_run_stops_what_it_started(base_settings: Settings, tmp_path: Path, sigint: str) -> None:
    """SIGTERM (a timeout, a CI runner, `kill`) ends `compare run` the way Ctrl-C does: the
    services it staged are stopped, not left running as orphans. Also when it was started in
    the background by a shell, which makes it ignore SIGINT."""
    env = {**os.environ, **settings_env(fresh_settings(base_settings, tmp_path))}
    argv = [sys.executable, "-m", "compare", "run", "--variants", "--no-faults", "--rates", "5"]
    argv += ["--step-s", "120", "--out", str(tmp_path / "out")]
    ignore = _ignore_sigint if sigint == "ignored" else None
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=ignore)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # bounded by the timeout below if it never comes
            if "[ladder]" in line or "warm-up" in line:
                break
        staged = psutil.Process(proc.pid).children(recursive=True)
        assert staged, "compare run staged no process"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
        _, alive = psutil.wait_procs(staged, timeout=15)
        assert not alive, f"left running: {[' '.join(p.cmdline()[:5]) for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

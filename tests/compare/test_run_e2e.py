"""`compare run` against real processes, and the HTML report in a real headless browser."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
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


class _DevTools:
    """Chromium driven over --remote-debugging-pipe (the DevTools protocol on fds 3 and 4, messages
    ended by NUL): no websocket, no network."""

    def __init__(self, argv: list[str]) -> None:
        to_chrome, self._out = os.pipe()
        self._in, from_chrome = os.pipe()
        # at 10 and above, so that placing them on 3 and 4 in the child cannot clobber one another
        low = (to_chrome, from_chrome)
        to_chrome, from_chrome = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in low)
        for fd in low:
            os.close(fd)

        def onto_3_and_4() -> None:
            os.dup2(to_chrome, 3)
            os.dup2(from_chrome, 4)

        self.proc = subprocess.Popen(
            [*argv, "--remote-debugging-pipe"],
            pass_fds=(3, 4),
            preexec_fn=onto_3_and_4,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._next, self._buffer = 0, b""

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            while b"\0" not in self._buffer:
                ready, _, _ = select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))
                assert ready, f"no answer from chromium to {method}"
                chunk = os.read(self._in, 1 << 20)
                assert chunk, "chromium closed the DevTools pipe"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def evaluate(self, session: str, expression: str) -> object:
        params = {"expression": expression, "returnByValue": True}
        return self.send("Runtime.evaluate", params, session)["result"].get("value")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            self.proc.kill()
        os.close(self._in)
        os.close(self._out)


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


def _decision_page(url: str, argv: list[str], shot: Path) -> dict:
    """The decision table as laid out on the first screen, and a screenshot of that screen."""
    chrome = _DevTools(argv)
    try:
        target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = chrome.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        width, height = FIRST_SCREEN
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        chrome.send("Emulation.setDeviceMetricsOverride", metrics, session)
        chrome.send("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + 30
        while chrome.evaluate(session, "document.readyState") != "complete":
            assert time.monotonic() < deadline, "the report did not finish loading"
            time.sleep(0.1)
        found = chrome.evaluate(session, DECISION_PAGE)
        png = chrome.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
        shot.write_bytes(base64.b64decode(png))
        assert isinstance(found, dict), "no decision table under the heading #decision"
        return found
    finally:
        chrome.close()


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

    # The decision page: first, its table on the first screen, its text there, its links resolving.
    first = tmp_path / "decision.png"
    page = _decision_page(url, [*base[:-1], f"--user-data-dir={tmp_path / 'profile-cdp'}"], first)
    width, height = FIRST_SCREEN
    # nothing but the title, a few lines and the decision heading before it: no verdict list, no table
    assert set(page["before"]) <= {"H1", "P", "H2"} and page["before"].count("H2") == 1, page["before"]
    assert page["top"] >= 0 and page["first_row_bottom"] <= height, page  # header and a row on screen
    assert page["right"] <= width  # the whole width of the table on screen: no sideways scroll
    for text in (
        "question",
        "MQ (outbox + RabbitMQ + dedup)",
        "Temporal workflow",
        "better",
        "Consistency under the fault catalogue",
        "Max sustainable rate",
        "not measured",
    ):
        assert text in page["text"], text
    assert page["links"] and not page["missing"], page["missing"]
    assert page["images_broken"] == 0
    assert "When to choose which" in html and "Caveats" in html
    with Image.open(first) as img:
        assert img.size == FIRST_SCREEN
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 20  # text and table drawn, not a blank screen

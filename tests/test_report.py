"""`fib report` in a real headless Chromium, driven over the DevTools protocol, served on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict

import pytest

import query_data as qd

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1280,900"]


def expected_top(rows, definition, hardware):
    """The leaderboard's first solution, from the rows: best geometric-mean speedup of newest passes."""
    speeds = defaultdict(list)
    for e in qd.newest(rows["evaluations"]):
        if (e["definition"], e["environment"]["hardware"]) == (definition, hardware) and e["status"] == "PASSED":
            speeds[e["solution"]].append(math.log(e["speedup_factor"]))
    return max(speeds, key=lambda s: sum(speeds[s]) / len(speeds[s]))


@pytest.fixture
def site(tmp_path):
    rows = qd.tables()
    ds = qd.write(tmp_path / "ds", rows)
    out = subprocess.run([sys.executable, "-m", "fib_data", "report", str(ds.root), "--out", str(tmp_path / "site")],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    return tmp_path / "site", rows


@pytest.fixture
def server(site):
    root, _ = site
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Browser:
    """Just enough of the DevTools protocol: evaluate JS, click at a point, take a screenshot."""

    def __init__(self, url: str, profile):
        from websockets.sync.client import connect

        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", url],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = self._devtools_port()
        page = next(t for t in self._targets(port) if t["type"] == "page")
        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30))
        self.next_id = 0

    def _devtools_port(self) -> int:
        deadline = time.monotonic() + 60
        for line in self.proc.stderr:
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # keep the pipe drained
                return int(found.group(1))
            if time.monotonic() > deadline:
                break
        raise RuntimeError("chromium did not open its DevTools port")

    @staticmethod
    def _targets(port: int) -> list[dict]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            return json.load(r)

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.js(expression):
                    return
            except RuntimeError:
                pass  # the page is navigating; ask again
            time.sleep(0.1)
        raise TimeoutError(expression)

    def click(self, selector: str) -> None:
        """A real mouse press and release at the element's centre, as a user would click."""
        box = self.js(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
            el.scrollIntoView({{block: 'center'}}); const r = el.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def close(self) -> None:
        self.stack.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_in_headless_chromium(site, server, tmp_path):
    root, rows = site
    assert not re.search(r"(src|href)=\"(https?:)?//", (root / "index.html").read_text())  # nothing remote
    browser = Browser(f"{server}/index.html", tmp_path / "profile")
    try:
        browser.wait_for("document.readyState === 'complete' && !!document.querySelector('table.leaderboard')")
        board = 'table.leaderboard[data-definition="rmsnorm_h4096"][data-hardware="%s"]' % qd.H100
        first = f"document.querySelector('{board} tbody tr td.solution').textContent"
        assert browser.js(first) == expected_top(rows, "rmsnorm_h4096", qd.H100)
        assert browser.js("document.querySelectorAll('#fast-p svg path').length") > 3

        # Sorting is done by the page's own script: ascending speedup puts the slowest first.
        browser.click(f"{board} thead th:nth-child(5)")
        browser.wait_for(f"document.querySelector('{board} thead th:nth-child(5)').getAttribute('aria-sort') === 'ascending'")
        speeds = browser.js(f"Array.from(document.querySelectorAll('{board} tbody td.geomean_speedup')).map(td => td.textContent)")
        numbers = [float(s) for s in speeds if s]
        assert numbers == sorted(numbers) and len(numbers) >= 2

        browser.click('h3 a.definition[href$="rmsnorm_h4096.html"]')
        browser.wait_for("location.pathname.endsWith('/definitions/rmsnorm_h4096.html') && document.readyState === 'complete'")
        assert browser.js("document.querySelector('h1').textContent") == "rmsnorm_h4096"
        n_workloads = sum(1 for w in rows["workloads"] if w["definition"] == "rmsnorm_h4096")
        uuids = browser.js("new Set(Array.from(document.querySelectorAll('#workloads td.workload_uuid')).map(td => td.textContent)).size")
        assert uuids == n_workloads
        assert browser.js("getComputedStyle(document.querySelector('table.sortable th')).cursor") == "pointer"  # CSS loaded

        shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    finally:
        browser.close()
    path = tmp_path / "definition.png"
    path.write_bytes(shot)
    width, height = png_size(shot)
    assert width >= 800 and height >= 400 and path.stat().st_size > 10_000


def test_report_pages_exist_for_every_definition(site):
    root, rows = site
    for d in rows["definitions"]:
        text = (root / "definitions" / f"{d['name']}.html").read_text()
        assert f"<h1>{d['name']}</h1>" in text
    assert (root / "assets" / "sort.js").is_file()
    assert not list(root.parent.glob(".site.*"))  # staging folders are gone

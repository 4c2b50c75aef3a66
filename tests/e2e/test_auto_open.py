"""Auto-open: ``antiapi serve`` starts the web dashboard and opens the browser when the Settings
switch ``ui.auto_open`` is on (antiapi/webview_launcher.py).

The real ``antiapi serve --headless`` runs as a subprocess with a stand-in browser (``$BROWSER``
is a script that records the link it is given). Every wait is bounded; only the processes these
tests start (the gateway, Chromium) are signalled, by PID — plus, in the restart test, the web
view the gateway started, killed by its PID to see it come back.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

pytest.importorskip("textual_serve")

from antiapi.store import Store  # noqa: E402
from tests.harness import free_port

ROOT = str(Path(__file__).resolve().parents[2])
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(cond, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def gone(pid: int) -> bool:
    """The process has exited (or is a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def web_view_of(gateway_pid: int) -> int | None:
    for pid in children(gateway_pid):
        if "antiapi.tui --web" in cmdline(pid):
            return pid
    return None


class Gateway:
    """``antiapi serve --headless`` with a stand-in browser."""

    def __init__(self, tmp_path: Path, *, auto_open: bool | None, extra: tuple[str, ...] = ()) -> None:
        self.data = tmp_path / "data"
        self.data.mkdir()
        if auto_open is not None:
            store = Store(self.data / "antiapi.db")
            store.open()
            store.put_setting("ui.auto_open", auto_open)
            assert store.flush_sync(10)
            store.close()
        self.opened = tmp_path / "browser-calls.txt"
        browser = tmp_path / "browser.sh"
        browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {self.opened}\n')
        browser.chmod(0o700)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "gateway.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONPATH": ROOT, "BROWSER": str(browser)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "antiapi", "serve", "--headless", "--port", str(self.port), "--data-dir", str(self.data), *extra],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
        )
        wait_until(lambda: answers(self.port) or self.proc.poll() is not None, 30, "the gateway")
        assert self.proc.poll() is None, self.output()
        self.token = (self.data / "admin_token").read_text().strip()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def browser_calls(self) -> list[str]:
        try:
            return self.opened.read_text().split()
        except FileNotFoundError:
            return []

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@pytest.fixture
def gateways():
    started: list[Gateway] = []
    yield started
    for gw in started:
        gw.stop(signal.SIGKILL if gw.proc.poll() is None else signal.SIGTERM)


def test_auto_open_starts_the_web_dashboard_opens_the_browser_and_stops_with_the_gateway(tmp_path, gateways):
    gw = Gateway(tmp_path, auto_open=True)
    gateways.append(gw)
    calls = wait_until(gw.browser_calls, 40, "the browser to be called")
    assert len(calls) == 1
    link = calls[0]
    parts = urlsplit(link)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port
    assert re.fullmatch(r"code=[A-Za-z0-9_-]{20,}", parts.query), link
    assert gw.token not in link  # a one-time code, not the admin token
    base = f"http://127.0.0.1:{parts.port}"
    assert f"web dashboard: {base}/" in gw.output()

    # the web view runs as the gateway's child, with no secret on its command line
    view = web_view_of(gw.proc.pid)
    assert view is not None
    assert f"--url {gw.url}" in cmdline(view) and "--token-file" in cmdline(view) and gw.token not in cmdline(view)

    with httpx.Client(follow_redirects=False, trust_env=False, timeout=10) as c:
        # the link lets the browser in once: a session cookie, then the dashboard page
        r = c.get(link)
        assert r.status_code == 303 and "antiapi_web" in r.cookies
        cookie = r.cookies["antiapi_web"]
        with httpx.Client(cookies={"antiapi_web": cookie}, trust_env=False, timeout=10) as browser:
            page = browser.get(base + "/")
        assert page.status_code == 200 and f"ws://127.0.0.1:{parts.port}/ws/quota" in page.text
        # used up: the same link now asks for the token, and so does the bare address
        again = httpx.get(link, follow_redirects=False, trust_env=False, timeout=10)
        assert again.status_code == 401 and "Admin token required" in again.text
        bare = httpx.get(base + "/", trust_env=False, timeout=10)
        assert bare.status_code == 401 and "Admin token required" in bare.text and "/ws" not in bare.text
        # the admin token works as with antiapi tui --web
        r = httpx.get(f"{base}/?token={gw.token}", follow_redirects=False, trust_env=False, timeout=10)
        assert r.status_code == 303 and "antiapi_web" in r.cookies

        # the gateway's dashboard paths redirect to the web view while it runs
        for path, screen in (("/quota", "quota"), ("/routing", "routing"), ("/settings", "settings"), ("/remote-panel", "remote")):
            r = c.get(gw.url + path)
            assert r.status_code == 307 and r.headers["location"] == f"{base}/?screen={screen}", path

    # stopping the gateway stops the web view (the gateway does it, not the view's parent watch)
    gw.stop(signal.SIGTERM)
    assert gw.proc.returncode in (0, -signal.SIGTERM)
    assert f"stopping the web dashboard (pid {view})" in gw.output()
    wait_until(lambda: gone(view), 10, "the web view process to end")
    wait_until(lambda: not answers(parts.port), 10, "the web view port to close")
    assert len(gw.browser_calls()) == 1


def test_a_web_view_that_dies_is_restarted(tmp_path, gateways):
    gw = Gateway(tmp_path, auto_open=True)
    gateways.append(gw)
    link = wait_until(gw.browser_calls, 40, "the browser to be called")[0]
    port = urlsplit(link).port
    view = wait_until(lambda: web_view_of(gw.proc.pid), 10, "the web view")
    os.kill(view, signal.SIGKILL)  # the web view this test's gateway started
    wait_until(lambda: not answers(port), 10, "the dead view's port to close")
    # while it is down (a backoff of a second or more) the gateway explains instead of redirecting
    wait_until(lambda: httpx.get(gw.url + "/quota", follow_redirects=False, trust_env=False, timeout=10).status_code == 200,
               3, "the explanation page while the view is down", step=0.05)
    new = wait_until(lambda: (p := web_view_of(gw.proc.pid)) not in (None, view) and answers(port) and p, 30, "a new web view")
    wait_until(lambda: httpx.get(gw.url + "/quota", follow_redirects=False, trust_env=False, timeout=10).status_code == 307,
               10, "the redirect to come back")
    assert "restarting in" in gw.output()
    assert len(gw.browser_calls()) == 1  # the browser is not opened again
    gw.stop(signal.SIGINT)
    wait_until(lambda: gone(new), 10, "the new web view to end")
    assert not answers(port)


@pytest.mark.parametrize(("auto_open", "extra"), [(None, ()), (False, ()), (True, ("--no-open",))],
                         ids=["never-set", "off", "on-but-no-open"])
def test_without_auto_open_nothing_is_started(tmp_path, gateways, auto_open, extra):
    gw = Gateway(tmp_path, auto_open=auto_open, extra=extra)
    gateways.append(gw)
    r = httpx.get(gw.url + "/quota", follow_redirects=False, trust_env=False, timeout=10)
    assert r.status_code == 200 and "antiapi tui --web" in r.text
    time.sleep(3)  # the web view would have started and the browser been called by now
    assert gw.browser_calls() == [] and not gw.opened.exists()
    assert web_view_of(gw.proc.pid) is None
    assert "web dashboard" not in gw.output()
    r = httpx.get(gw.url + "/quota", follow_redirects=False, trust_env=False, timeout=10)
    assert r.status_code == 200 and "antiapi tui --web" in r.text
    gw.stop()
    assert gw.proc.returncode in (0, -signal.SIGTERM)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
async def test_the_link_opens_the_live_dashboard_in_chromium(tmp_path, gateways):
    aiohttp = pytest.importorskip("aiohttp")
    from tests.tui.test_web import dashboard_page, headless_chromium

    gw = Gateway(tmp_path, auto_open=True)
    gateways.append(gw)
    link = await asyncio.to_thread(wait_until, gw.browser_calls, 40, "the browser to be called")
    link = link[0]
    view = web_view_of(gw.proc.pid)
    assert view is not None
    async with headless_chromium(tmp_path) as devtools, aiohttp.ClientSession() as http:
        async with dashboard_page(http, devtools) as cdp:
            await cdp.call("Page.navigate", url=link)
            await cdp.wait_js("document.body && document.body.classList.contains('-first-byte')")
            assert await cdp.js("location.search") == ""  # the code left the address bar
            deadline = time.monotonic() + 30
            while "● live" not in (screen := await cdp.screen_text()) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert "● live" in screen and gw.url in screen
            dashboards = children(view)
            assert len(dashboards) == 1  # the tab's dashboard, in the web view's process group
            # the gateway stops: the web view and the tab's dashboard end with it
            await asyncio.to_thread(gw.stop, signal.SIGTERM)
            for pid in (view, *dashboards):
                await asyncio.to_thread(wait_until, lambda pid=pid: gone(pid), 10, f"process {pid} to end")

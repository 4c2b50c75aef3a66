"""``antiapi tui --web``: the token gate (plain HTTP) and the page in Debian's headless Chromium,
driven over the DevTools protocol (the terminal is drawn with WebGL, so the test reads what the
dashboard sent through the page's WebSocket and takes a screenshot)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("textual_serve")
aiohttp = pytest.importorskip("aiohttp")

from tests.harness import free_port  # noqa: E402
from tests.tui.server import AdminServer  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[PX^_].*?\x1b\\|\x1b.")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.fixture
def web(tmp_path):
    server = AdminServer().start()
    token_file = tmp_path / "admin_token"
    token_file.write_text(server.token + "\n")
    os.chmod(token_file, 0o600)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    log_path = tmp_path / "web.log"
    log = open(log_path, "wb")  # noqa: SIM115  (closed in teardown)
    proc = subprocess.Popen(
        [sys.executable, "-m", "antiapi.tui", "--web", "--url", server.url, "--token-file", str(token_file), "--web-port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(base + "/", timeout=1)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                raise RuntimeError(f"web view did not start: {log_path.read_text()}")
            time.sleep(0.1)
    yield types_ns(server=server, base=base, port=port, proc=proc, token=server.token)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    server.stop()


class types_ns:  # noqa: N801  (a tiny namespace)
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


def test_the_web_view_requires_the_admin_token(web):
    with httpx.Client(base_url=web.base, follow_redirects=False, trust_env=False) as c:
        r = c.get("/")
        assert r.status_code == 401 and "Admin token required" in r.text and "/ws" not in r.text
        assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
        assert c.get("/?token=wrong").status_code == 401
        for path in ("/static/js/textual.js", "/ws", "/ws/quota"):
            assert c.get(path).status_code == 401, path
        assert c.post("/login", data={"token": "wrong"}).status_code == 401
        r = c.get("/?token=" + web.token + "&screen=routing")
        assert r.status_code == 303 and r.headers["location"] == "/?screen=routing"
        cookie = r.cookies["antiapi_web"]
        assert web.token not in cookie
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    with httpx.Client(base_url=web.base, cookies={"antiapi_web": cookie}, trust_env=False) as c:
        page = c.get("/?screen=routing")
        assert page.status_code == 200 and f"ws://127.0.0.1:{web.port}/ws/routing" in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert c.get("/static/js/textual.js").status_code == 200
        # DNS rebinding: a foreign Host name is refused even with the cookie
        assert c.get("/", headers={"host": f"evil.example:{web.port}"}).status_code == 421
        # a WebSocket from another origin is refused
        ws = c.get("/ws/quota", headers={"origin": "http://evil.example", "connection": "upgrade", "upgrade": "websocket",
                                         "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="})
        assert ws.status_code == 403
    with httpx.Client(base_url=web.base, follow_redirects=False, trust_env=False) as c:
        r = c.post("/login", data={"token": web.token, "screen": "accounts"})
        assert r.status_code == 303 and r.headers["location"] == "/?screen=accounts" and "antiapi_web" in r.cookies


_CAPTURE_FRAMES = """
(() => {
  const Orig = window.WebSocket;
  window.__frames = [];
  function Wrapped(url, protocols) {
    const ws = protocols === undefined ? new Orig(url) : new Orig(url, protocols);
    ws.addEventListener('message', (e) => {
      window.__frames.push(typeof e.data === 'string' ? e.data : new TextDecoder().decode(e.data));
    });
    return ws;
  }
  Wrapped.prototype = Orig.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Wrapped[k] = Orig[k];
  window.WebSocket = Wrapped;
})();
"""


class CDP:
    """The few DevTools calls the test needs."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.n = 0

    async def call(self, method: str, **params):
        self.n += 1
        my = self.n
        await self.ws.send_json({"id": my, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("id") == my:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def js(self, expression: str):
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r["result"].get("value")

    async def wait_js(self, expression: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")

    async def screen_text(self) -> str:
        raw = await self.js("(window.__frames || []).join('')") or ""
        return _ANSI.sub("", raw)

    async def key(self, char: str) -> None:
        for kind in ("keyDown", "keyUp"):
            params = {"type": kind, "key": char, "code": f"Digit{char}" if char.isdigit() else f"Key{char.upper()}",
                      "windowsVirtualKeyCode": ord(char.upper())}
            if kind == "keyDown":
                params["text"] = char
            await self.call("Input.dispatchKeyEvent", **params)


@contextlib.asynccontextmanager
async def headless_chromium(tmp_path: Path) -> AsyncIterator[int]:
    """Debian's Chromium, headless, with no network beyond 127.0.0.1; yields its DevTools port and
    is killed (its profile removed) afterwards."""
    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--window-size=1000,640",
        "--remote-debugging-port=0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        devtools = None
        deadline = time.monotonic() + 20
        while devtools is None and time.monotonic() < deadline:
            line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode(errors="replace")
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                devtools = int(m.group(1))
        assert devtools, "chromium did not open its DevTools port"
        yield devtools
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.asynccontextmanager
async def dashboard_page(http: Any, devtools: int) -> AsyncIterator[CDP]:
    """The browser's page over the DevTools protocol, set up to read the web dashboard's terminal."""
    targets = await (await http.get(f"http://127.0.0.1:{devtools}/json/list")).json()
    page = next(t for t in targets if t["type"] == "page")
    async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
        cdp = CDP(ws)
        await cdp.call("Page.enable")
        await cdp.call("Page.addScriptToEvaluateOnNewDocument", source=_CAPTURE_FRAMES)
        yield cdp


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
async def test_the_dashboard_in_headless_chromium(web, tmp_path):
    async with headless_chromium(tmp_path) as devtools, aiohttp.ClientSession() as http:
        async with dashboard_page(http, devtools) as cdp:
            # without the token: the login page, and no dashboard started
            await cdp.call("Page.navigate", url=web.base + "/")
            text = await cdp.wait_js("document.readyState === 'complete' && document.body.innerText")
            assert "Admin token required" in text
            assert _children(web.proc.pid) == []
            calls_before = web.server.backend.status_calls
            # with the token: the dashboard, live, drawn from the gateway's data
            await cdp.call("Page.navigate", url=f"{web.base}/?token={web.token}")
            await cdp.wait_js("document.body && document.body.classList.contains('-first-byte')")
            deadline = time.monotonic() + 20
            while "● live" not in (screen := await cdp.screen_text()) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert "● live" in screen and "codex:me@example.com" in screen and "42%" in screen
            assert web.server.backend.status_calls > calls_before  # the dashboard used the token file
            await cdp.js("document.querySelector('.xterm-helper-textarea').focus()")
            await cdp.key("2")
            deadline = time.monotonic() + 10
            while "claude-sonnet-4" not in (screen := await cdp.screen_text()) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert "claude-sonnet-4" in screen
            await asyncio.sleep(0.5)
            shot = await cdp.call("Page.captureScreenshot", format="png")
            png = base64.b64decode(shot["data"])
            (tmp_path / "web.png").write_bytes(png)
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 15_000
            assert len(_children(web.proc.pid)) == 1  # one dashboard process for the tab
            await cdp.call("Page.navigate", url="about:blank")
        # the tab is gone: its dashboard process ends too
        deadline = time.monotonic() + 8
        while _children(web.proc.pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert _children(web.proc.pid) == []


def test_web_view_refuses_non_loopback_addresses(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "antiapi.tui", "--web", "--token", "t", "--web-host", "0.0.0.0"],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert out.returncode == 2 and "refusing to listen on 0.0.0.0" in out.stderr and "ssh -L" in out.stderr

"""Remote access through the real gateway: client keys and the tunnel managed over the admin API,
real clients (SDKs, Claude Code, Codex CLI) reaching the gateway *through* the tunnel.

The tunnel tools are stand-ins (tests/tunnels/standins.py) because the real ngrok, cloudflared
and localtunnel services cannot be reached from the test machines. In ``forward`` mode a stand-in
prints its public URL the way the real tool does and really relays TCP to the gateway, so the
requests below arrive at antiapi from 127.0.0.1, exactly like real tunnel traffic does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest

from tests.e2e.cli_helpers import run_claude, run_codex
from tests.harness import free_port
from tests.mocks import Reply, Text
from tests.tunnels.standins import forward_port, make_bindir

pytestmark = pytest.mark.e2e

MSGS = [{"role": "user", "content": "hi"}]


def _config(root: str) -> str:
    return (
        f"providers:\n  up: {{type: openai, base_url: '{root}/v1', api_key: test-key}}\n"
        "models:\n  - {name: m, provider: up, model: gpt-4.1}\n"
    )


@pytest.fixture
def standins(tmp_path, monkeypatch):
    """Stand-in tunnel tools first on PATH, forwarding for real; returns the forward-port file."""
    d = make_bindir(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ.get('PATH', '')}")
    f = tmp_path / "forward-port"
    monkeypatch.setenv("STANDIN_MODE", "forward")
    monkeypatch.setenv("STANDIN_FORWARD_FILE", str(f))
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "runs.jsonl"))
    return f


@pytest.fixture
def gw(mock_upstream, gateway_factory, standins):
    g = gateway_factory(_config(mock_upstream.root_url))
    mock_upstream.default = Reply([Text("through the tunnel")])
    token = (g.data_dir / "admin_token").read_text().strip()
    g.admin = httpx.Client(base_url=g.url + "/admin", headers={"authorization": f"Bearer {token}"}, timeout=60)
    g.forward_file = standins
    yield g
    try:
        g.admin.delete("/remote/tunnel")
    finally:
        g.admin.close()


def test_tunnel_needs_a_key_then_every_request_through_it_needs_one(gw, mock_upstream):
    admin = gw.admin
    # choose the tool; no key exists yet: the tunnel refuses to open and says how to fix it
    assert admin.patch("/remote", json={"provider": "cloudflared"}).json()["provider"] == "cloudflared"
    r = admin.post("/remote/tunnel", json={})
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "client_key_required" and "client key" in err["message"]
    view = admin.get("/remote").json()
    assert view["tunnel"]["state"] == "stopped" and view["keys_required"] is False

    # a key made on the dashboard is shown once; listings never show it (nor its hash)
    r = admin.post("/keys", json={"name": "phone", "rpm_limit": 100})
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    created = r.json()
    key = created["secret"]
    assert key.startswith("aa-") and created["key"]["name"] == "phone" and created["key"]["rpm_limit"] == 100
    listing = admin.get("/keys").text
    assert key not in listing and key[3:] not in listing and "hash" not in listing
    assert [k["name"] for k in admin.get("/keys").json()] == ["phone"]

    r = admin.post("/remote/tunnel", json={})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["tunnel"]["state"] == "running"
    assert view["tunnel"]["url"] == "https://run1-calm-words.trycloudflare.com"
    assert view["keys_required"] is True and view["active_keys"] == 1
    assert admin.get("/status").json()["tunnel_url"] == "https://run1-calm-words.trycloudflare.com"

    # traffic through the tunnel arrives from 127.0.0.1: still no key, no answer
    via = f"http://127.0.0.1:{forward_port(gw.forward_file)}"
    with pytest.raises(openai.AuthenticationError) as e:
        openai.OpenAI(base_url=via + "/v1", api_key="unused", max_retries=0).chat.completions.create(model="m", messages=MSGS)
    assert e.value.body["code"] == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError) as e2:
        anthropic.Anthropic(base_url=via, api_key="aa-guessed", max_retries=0).messages.create(model="m", max_tokens=9, messages=MSGS)
    assert e2.value.body["error"]["type"] == "authentication_error"
    assert mock_upstream.requests == []
    # the admin API through the tunnel: its token or nothing, whatever client key is sent
    assert httpx.get(via + "/admin/keys").status_code == 401
    r = httpx.get(via + "/admin/status", headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 401 and "phone" not in r.text

    # with the key: served, and the usage is counted for that key
    ok = openai.OpenAI(base_url=via + "/v1", api_key=key, max_retries=0).chat.completions.create(model="m", messages=MSGS)
    assert ok.choices[0].message.content == "through the tunnel"
    ok2 = anthropic.Anthropic(base_url=via, api_key=key, max_retries=0).messages.create(model="m", max_tokens=9, messages=MSGS)
    assert ok2.content[0].text == "through the tunnel"
    gw.records(2)
    by_key = {a["key"]: a for a in admin.get("/usage", params={"by": "client_key"}).json()}
    assert by_key["phone"]["requests"] == 2
    assert admin.get("/keys").json()[0]["requests_today"] == 2

    # the last key cannot be revoked while the tunnel is open (every client would be locked out)
    r = admin.delete(f"/keys/{created['key']['id']}")
    assert r.status_code == 409 and "last active client key" in r.json()["error"]["message"]

    # stop: the public URL is gone; the key still guards loopback because it exists
    view = admin.delete("/remote/tunnel").json()
    assert view["tunnel"]["state"] == "stopped" and view["tunnel"]["url"] is None
    assert httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": MSGS}).status_code == 401


def test_limits_and_revocation_from_the_dashboard_apply_at_once(gw):
    admin = gw.admin
    a = admin.post("/keys", json={"name": "a"}).json()
    b = admin.post("/keys", json={"name": "b"}).json()
    assert admin.post("/keys", json={"name": "a"}).status_code == 409  # a duplicate name
    bad = admin.post("/keys", json={"name": "c", "rpm_limit": 0})
    assert bad.status_code == 422 and "positive" in bad.json()["error"]["message"]
    assert admin.patch(f"/keys/{b['key']['id']}", json={"rpm_limit": 1}).json()["rpm_limit"] == 1
    client_b = openai.OpenAI(base_url=gw.url + "/v1", api_key=b["secret"], max_retries=0)
    assert client_b.chat.completions.create(model="m", messages=MSGS).choices[0].message.content
    with pytest.raises(openai.RateLimitError) as e:
        client_b.chat.completions.create(model="m", messages=MSGS)
    assert "1 requests per minute" in e.value.body["message"]
    # removing the limit (null) lifts it
    assert admin.patch(f"/keys/{b['key']['id']}", json={"rpm_limit": None}).json()["rpm_limit"] is None
    assert client_b.chat.completions.create(model="m", messages=MSGS).choices[0].message.content
    # revoke a (by name): refused at once, b still works; unknown ids are 404
    revoked = admin.delete("/keys/a").json()
    assert revoked["revoked"] is True and revoked["id"] == a["key"]["id"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gw.url + "/v1", api_key=a["secret"], max_retries=0).chat.completions.create(model="m", messages=MSGS)
    assert client_b.chat.completions.create(model="m", messages=MSGS).choices[0].message.content
    assert admin.delete("/keys/999").status_code == 404


def test_missing_tool_is_explained_and_authtoken_is_never_shown(gw, tmp_path, monkeypatch):
    admin = gw.admin
    admin.post("/keys", json={"name": "k"})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no tunnel tool anywhere
    r = admin.patch("/remote", json={"provider": "ngrok", "authtoken": "2abcSECRETtoken_xyz"})
    view = r.json()
    assert view["authtoken_set"] is True and "SECRETtoken" not in r.text
    tok = gw.data_dir / "tunnel_authtoken"
    assert tok.stat().st_mode & 0o777 == 0o600 and tok.read_text().strip() == "2abcSECRETtoken_xyz"
    assert {t["kind"]: t["installed"] for t in view["tools"]} == {"ngrok": False, "cloudflared": False, "localtunnel": False}
    r = admin.post("/remote/tunnel", json={})
    assert r.status_code == 422
    msg = r.json()["error"]["message"]
    assert "ngrok is not installed" in msg and "ngrok.com/download" in msg
    assert "SECRETtoken" not in admin.get("/remote").text
    assert admin.patch("/remote", json={"provider": "nope"}).status_code == 422
    assert admin.patch("/remote", json={"authtoken": None}).json()["authtoken_set"] is False
    assert not tok.exists()


def test_a_crashed_tunnel_is_restarted_and_its_new_url_reaches_the_dashboard(gw, monkeypatch):
    admin = gw.admin
    monkeypatch.setenv("STANDIN_MODE", "forward,crash_once")
    admin.post("/keys", json={"name": "k"})
    with httpx.stream("GET", gw.url + "/admin/events", headers=admin.headers, timeout=30) as events:
        r = admin.post("/remote/tunnel", json={"provider": "localtunnel"})
        assert r.json()["tunnel"]["url"] == "https://run1.loca.lt"
        seen = []
        deadline = time.monotonic() + 20
        for line in events.iter_lines():
            if line.startswith("data:") and '"type":"remote"' in line:
                seen.append(line)
                if "https://run2.loca.lt" in line and '"state":"running"' in line:
                    break
            assert time.monotonic() < deadline, f"no remote event with the new URL; saw {seen[-3:]}"
    assert any('"state":"restarting"' in s for s in seen)
    assert admin.get("/remote").json()["tunnel"]["restarts"] == 1


@pytest.mark.cli
def test_claude_code_and_codex_through_the_tunnel_with_a_dashboard_key(gw, tmp_path):
    admin = gw.admin
    key = admin.post("/keys", json={"name": "cli"}).json()["secret"]
    admin.post("/remote/tunnel", json={"provider": "ngrok"}).raise_for_status()
    via = f"http://127.0.0.1:{forward_port(gw.forward_file)}"
    cc = run_claude(via, "Say hi.", tmp_path / "cc", model="m", allowed_tools=None,
                    env_extra={"ANTHROPIC_API_KEY": None, "ANTHROPIC_AUTH_TOKEN": key})
    assert cc.returncode == 0, cc.describe()
    assert cc.json["result"] == "through the tunnel"
    cx = run_codex(via, "Say hi.", tmp_path / "cx", model="m", env_extra={"ANTIAPI_KEY": key}, retries=0)
    assert cx.returncode == 0, cx.describe()
    assert cx.stdout.strip() == "through the tunnel"
    assert {r.client_key for r in gw.records(2)} == {"cli"}


def _wait_json(url: str, headers: dict, cond, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, headers=headers, timeout=2).json()
            if cond(last):
                return last
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out; last answer {last}")


def test_auto_start_setting_starts_the_saved_tunnel_with_antiapi_serve(tmp_path, standins):
    """`antiapi serve --headless` with the dashboard's "auto-start tunnel" on: the saved tool starts
    with the server only once a key exists, and stops with it."""
    from antiapi.security.keys import KeyStore
    from antiapi.store import Store

    data = tmp_path / "data"
    data.mkdir()
    store = Store(data / "antiapi.db")
    store.open()
    store.put_setting("ui.auto_start_tunnel", True)
    store.put_setting("tunnel.provider", "cloudflared")
    store.flush_sync()
    store.close()
    env = {**os.environ, "ANTI_API_DATA_DIR": str(data)}

    def serve():
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "antiapi", "serve", "--headless", "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        return proc, f"http://127.0.0.1:{port}"

    # no key yet: antiapi serves locally, the tunnel refuses and the dashboard says why
    proc, url = serve()
    try:
        token_file = data / "admin_token"
        deadline = time.monotonic() + 20
        while not token_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        headers = {"authorization": f"Bearer {token_file.read_text().strip()}"}
        view = _wait_json(url + "/admin/remote", headers, lambda v: v.get("tunnel", {}).get("error"))
        assert view["tunnel"]["state"] == "stopped" and view["auto_start"] is True
        assert "client key" in view["tunnel"]["error"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert "did not start" in err and "client key" in err

    store = Store(data / "antiapi.db")
    store.open()
    KeyStore(store).create("laptop")
    store.close()
    proc, url = serve()
    try:
        view = _wait_json(url + "/admin/remote", headers, lambda v: v.get("tunnel", {}).get("state") == "running")
        assert view["tunnel"]["url"] == "https://run1-calm-words.trycloudflare.com"  # the first run never launched it
        pid = view["tunnel"]["pid"]
        assert pid and os.path.exists(f"/proc/{pid}")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "tunnel cloudflared is up" in err
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), "the tunnel tool outlived the gateway"


async def test_dashboard_creates_a_key_and_opens_the_tunnel_that_an_sdk_then_uses(gw):
    """The Remote screen against the real gateway: a key made in the dashboard (shown once), the
    tunnel tool chosen and started there; an SDK reaches the gateway through the tunnel with that
    key, and the Usage screen counts the request under the key's name."""
    import asyncio

    from textual.widgets import DataTable, Input, Select, Static

    from antiapi.tui.app import AntiapiApp
    from antiapi.tui.client import HttpAdminClient
    from antiapi.tui.screens.remote import (
        KeyCreateScreen,
        KeyShownScreen,
        RemotePane,
        TunnelSettingsScreen,
    )
    from tests.tui.test_app import text_of, until

    token = (gw.data_dir / "admin_token").read_text().strip()
    app = AntiapiApp(HttpAdminClient(gw.url, token), close_client=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.connected, timeout=10)
        await pilot.press("6")
        pane = app.query_one(RemotePane)
        info = app.query_one("#remote-info", Static)
        await until(pilot, lambda: pane.view is not None, timeout=10)
        assert "Client keys: not required" in text_of(info) and "Tunnel: ○ stopped" in text_of(info)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, KeyCreateScreen))
        await pilot.press(*"tablet", "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, KeyShownScreen), timeout=10)
        key = app.screen.query_one("#keyshown-secret", Input).value
        assert key.startswith("aa-") and len(key) == 46
        await pilot.press("escape")
        table = app.query_one("#keys-table", DataTable)
        await until(pilot, lambda: table.row_count == 1, timeout=10)
        assert table.get_row_at(0)[1] == "tablet" and table.get_row_at(0)[2] == key[:7] + "…"
        await until(pilot, lambda: "required on every request (1 active key)" in text_of(info), timeout=10)
        # no tool chosen yet: s opens the settings
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, TunnelSettingsScreen))
        app.screen.query_one("#tunnel-tool", Select).value = "cloudflared"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, TunnelSettingsScreen))
        await until(pilot, lambda: "tool: cloudflared" in text_of(info), timeout=10)
        await pilot.press("s")
        await until(pilot, lambda: "Public URL: https://run1-calm-words.trycloudflare.com" in text_of(info), timeout=20)

        via = f"http://127.0.0.1:{forward_port(gw.forward_file)}"

        def call() -> str:
            c = openai.OpenAI(base_url=via + "/v1", api_key=key, max_retries=0)
            return c.chat.completions.create(model="m", messages=MSGS).choices[0].message.content

        assert await asyncio.to_thread(call) == "through the tunnel"
        await until(pilot, lambda: table.get_row_at(0)[4].startswith("1 · "), timeout=10)
        await pilot.press("7")
        for _ in range(4):  # account -> model -> upstream model -> day -> client key
            await pilot.press("g")
        usage = app.query_one("#usage-table", DataTable)
        await until(pilot, lambda: usage.row_count == 1 and usage.get_row_at(0)[0] == "tablet", timeout=10)
        assert usage.get_row_at(0)[1] == "1"


def _tmux_available() -> bool:
    import shutil

    return shutil.which("tmux") is not None


@pytest.mark.skipif(not _tmux_available(), reason="tmux is not installed (apt-get install -y tmux)")
def test_antiapi_tui_remote_screen_in_a_real_terminal(tmp_path, standins):
    """`antiapi serve --headless --tunnel cloudflared` and `antiapi tui --screen remote` in tmux."""
    from tests.e2e.test_admin_integration import Tmux, shell

    data = tmp_path / "data"
    data.mkdir()
    key = subprocess.run([sys.executable, "-m", "antiapi", "keys", "--data-dir", str(data), "create", "--name", "tmux"],
                         capture_output=True, text=True, timeout=30)
    assert key.returncode == 0, key.stderr
    port = free_port()
    env = {**os.environ, "ANTI_API_DATA_DIR": str(data)}
    proc = subprocess.Popen([sys.executable, "-m", "antiapi", "serve", "--headless", "--port", str(port), "--tunnel",
                             "cloudflared"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    term = None
    try:
        token = None
        deadline = time.monotonic() + 20
        while token is None and time.monotonic() < deadline:
            f = data / "admin_token"
            token = f.read_text().strip() if f.exists() else None
            time.sleep(0.05)
        _wait_json(f"http://127.0.0.1:{port}/admin/remote", {"authorization": f"Bearer {token}"},
                   lambda v: v.get("tunnel", {}).get("state") == "running")
        term = Tmux(shell(sys.executable, "-m", "antiapi", "tui", "--url", f"http://127.0.0.1:{port}", "--data-dir",
                          str(data), "--screen", "remote") + "; echo EXIT=$?; sleep 60")
        screen = term.wait_for("Public URL", timeout=30)
        assert "https://run1-calm-words.trycloudflare.com" in screen and "tmux" in screen
        assert "required on every request" in screen
        term.keys("x")
        term.wait_for("Stop the tunnel?", timeout=10)
        term.keys("y")
        screen = term.wait_for("Tunnel: ○ stopped", timeout=15)
        term.keys("q")
        term.wait_for("EXIT=0", timeout=15)
    finally:
        if term is not None:
            term.kill()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_a_hanging_tunnel_tool_never_delays_serving_and_is_stopped_with_the_gateway(
        mock_upstream, gateway_factory, standins, monkeypatch, tmp_path):
    """Auto-start runs beside serving: a tool that never prints its URL (here: for its whole start
    timeout) does not hold the gateway's start, and is ended when the gateway stops."""
    from antiapi.security.keys import KeyStore
    from antiapi.store import Store

    monkeypatch.setenv("STANDIN_MODE", "hang")
    box = {}

    def prepare(data_dir):
        store = Store(data_dir / "antiapi.db")
        store.open()
        store.put_setting("ui.auto_start_tunnel", True)
        store.put_setting("tunnel.provider", "ngrok")
        box["key"] = KeyStore(store).create("k")[1]
        store.close()

    t0 = time.monotonic()
    gw = gateway_factory(_config(mock_upstream.root_url), prepare=prepare)  # waits for /health
    assert time.monotonic() - t0 < 10
    mock_upstream.default = Reply([Text("served while the tunnel starts")])
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=box["key"], max_retries=0)
    assert c.chat.completions.create(model="m", messages=MSGS).choices[0].message.content == "served while the tunnel starts"
    token = (gw.data_dir / "admin_token").read_text().strip()
    view = _wait_json(gw.url + "/admin/remote", {"authorization": f"Bearer {token}"},
                      lambda v: v["tunnel"]["state"] == "starting" and v["tunnel"]["pid"])
    pid = view["tunnel"]["pid"]
    gw.stop()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), "the hanging tunnel tool outlived the gateway"

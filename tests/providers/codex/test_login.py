"""Sign-in against the OAuth mock: the browser flow (a real HTTP GET to the loopback listener, the
PKCE verifier checked by the mock), wrong and replayed state, the paste path, the device path, and
the ``antiapi login codex`` command run as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from antiapi.accounts import CredentialStore
from antiapi.providers.codex.login import BrowserSignIn, DeviceSignIn, LoginSettings
from antiapi.providers.codex.oauth import Endpoints, SignInError, jwt_claims
from tests.providers.codex.conftest import A, B

REPO = Path(__file__).resolve().parents[3]


def _settings(mock, tmp_path: Path) -> LoginSettings:
    return LoginSettings(data_dir=tmp_path, endpoints=Endpoints.resolve({"auth_base": mock.auth_base}, mock.base_url))


def _check_saved(tmp_path: Path, mock, email: str) -> dict:
    store = CredentialStore(tmp_path)
    path = store.path("codex", email)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rec = json.loads(path.read_text())
    acc = mock.accounts[email]
    assert (rec["label"], rec["email"], rec["account_id"], rec["plan"]) == (email, email, acc.account_id, acc.plan)
    # the stored tokens are the ones the mock issued (and work at the backend)
    assert mock.access[rec["access_token"]]["email"] == email
    assert mock.refresh_tokens[rec["refresh_token"]]["active"] is True
    assert jwt_claims(rec["id_token"])["email"] == email
    return rec


async def test_browser_sign_in_end_to_end(codex_mock, tmp_path):
    flow = BrowserSignIn(_settings(codex_mock, tmp_path), port=0)
    info = await flow.start()
    assert info["method"] == "browser" and info["port"] > 0
    assert info["redirect_uri"] == f"http://localhost:{info['port']}/auth/callback"
    waiting = asyncio.ensure_future(flow.wait(20))
    async with httpx.AsyncClient() as browser:
        r = await browser.get(info["url"])          # the OAuth server (mock) signs alice in
        assert r.status_code == 302
        location = r.headers["location"]
        assert location.startswith(info["redirect_uri"] + "?code=")
        cb = await browser.get(location)             # the browser follows to the loopback listener
    assert cb.status_code == 200 and f"Signed in to antiapi as {A}" in cb.text
    assert await waiting == A
    [code] = codex_mock.codes.values()
    assert code["verified"] is True and code["used"] is True   # the mock checked the PKCE verifier
    _check_saved(tmp_path, codex_mock, A)
    # the listener is gone afterwards
    with pytest.raises(httpx.ConnectError):
        httpx.get(location.replace("localhost", "127.0.0.1"), timeout=2)


async def test_wrong_state_is_refused_and_replay_is_refused(codex_mock_factory, tmp_path):
    mock = codex_mock_factory(exchange_delay=0.5)
    mock.add_account(A)
    refused: list[str] = []
    flow = BrowserSignIn(_settings(mock, tmp_path), port=0, on_refused=refused.append)
    info = await flow.start()
    waiting = asyncio.ensure_future(flow.wait(20))
    async with httpx.AsyncClient(timeout=10) as browser:
        location = (await browser.get(info["url"])).headers["location"]
        forged = location.split("&state=")[0] + "&state=forged-by-someone"
        bad = await browser.get(forged)
        assert bad.status_code == 400 and "State mismatch" in bad.text
        assert not waiting.done()                          # a stray request does not end the sign-in
        first = asyncio.ensure_future(browser.get(location))
        while not flow.server._consumed:
            await asyncio.sleep(0.01)
        replay = await browser.get(location)               # same code + state again
        assert replay.status_code == 400 and "already used" in replay.text
        assert (await first).status_code == 200
    assert await waiting == A
    assert len(refused) == 2 and "State mismatch" in refused[0] and "already used" in refused[1]
    assert mock.token_exchanges == 1


async def test_callback_error_ends_the_sign_in(codex_mock, tmp_path):
    flow = BrowserSignIn(_settings(codex_mock, tmp_path), port=0)
    info = await flow.start()
    waiting = asyncio.ensure_future(flow.wait(20))
    async with httpx.AsyncClient() as browser:
        r = await browser.get(f"http://127.0.0.1:{info['port']}/auth/callback",
                              params={"error": "access_denied", "error_description": "User said no", "state": flow.state})
    assert r.status_code == 400 and "User said no" in r.text
    with pytest.raises(SignInError, match="User said no"):
        await waiting
    assert CredentialStore(tmp_path).labels("codex") == []


async def test_paste_path_checks_state_and_refuses_a_replay(codex_mock, tmp_path):
    flow = BrowserSignIn(_settings(codex_mock, tmp_path), listen=False)
    info = await flow.start()
    assert info["method"] == "paste" and info["port"] is None
    assert info["redirect_uri"] == "http://localhost:1455/auth/callback"
    location = httpx.get(info["url"]).headers["location"]
    with pytest.raises(SignInError, match="State mismatch"):
        await flow.complete(location.replace(f"state={flow.state}", "state=other"))
    assert await flow.complete(location) == A
    with pytest.raises(SignInError, match="already used"):
        await flow.complete(location)
    _check_saved(tmp_path, codex_mock, A)


async def test_device_sign_in_polls_through_pending(codex_mock_factory, tmp_path):
    mock = codex_mock_factory(device_pending=2, device_interval="0.2")
    mock.add_account(B, plan="pro")
    flow = DeviceSignIn(_settings(mock, tmp_path))
    info = await flow.start()
    assert info["verification_uri"] == mock.auth_base + "/codex/device"
    assert info["interval"] == 0.2 and len(info["user_code"]) == 9
    assert await flow.wait(20) == B
    assert flow.polls == 3                        # two 403 "pending" answers, then the code
    [code] = mock.codes.values()
    assert code["verified"] is True and code["redirect_uri"] == mock.auth_base + "/deviceauth/callback"
    _check_saved(tmp_path, mock, B)


async def test_redirect_override_and_relogin_replaces_the_account(codex_mock, tmp_path):
    s = _settings(codex_mock, tmp_path)
    s.env = {"ANTI_API_OAUTH_REDIRECT_URL": "http://localhost:0/auth/callback"}
    # the override names the redirect; the listener still needs a port: take the override's path
    flow = BrowserSignIn(s, port=0)
    info = await flow.start()
    assert info["redirect_uri"] == "http://localhost:0/auth/callback"
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A0%2Fauth%2Fcallback" in info["url"]
    await flow.cancel()
    # signing in twice keeps one account (label = email) with the newest tokens
    for _ in range(2):
        f = BrowserSignIn(s, listen=False)
        await f.start()
        await f.complete(httpx.get(f.url).headers["location"])
    assert CredentialStore(tmp_path).labels("codex") == [A]


# ---------------------------------------------------------------------- the command, as a process


def _config(mock, tmp_path: Path) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("providers:\n" + mock.provider_yaml("codex"))
    return cfg


def _login(tmp_path: Path, mock, *args: str, env: dict | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "antiapi", "login", "--data-dir", str(tmp_path / "data"),
           "--config", str(_config(mock, tmp_path)), "codex", *args]
    e = {k: v for k, v in os.environ.items() if not k.startswith("ANTI_API_")}
    e.update({"ANTI_API_OAUTH_NO_OPEN": "1", "PYTHONUNBUFFERED": "1", **(env or {})})
    return subprocess.Popen(cmd, cwd=REPO, env=e, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _read_until(proc: subprocess.Popen, pred, timeout: float = 20) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if pred(line):
            return lines
    proc.kill()
    raise AssertionError(f"expected output not seen: {lines} / {proc.stderr.read()}")


def _url_line(line: str) -> bool:
    return line.strip().startswith("http://127.0.0.1") and "/oauth/authorize?" in line


@pytest.mark.e2e
def test_login_command_browser_flow(codex_mock, tmp_path):
    proc = _login(tmp_path, codex_mock, "--port", "0")
    try:
        lines = _read_until(proc, _url_line)
        url = lines[-1].strip()
        assert any("Open this URL in a browser" in x for x in lines)      # NO_OPEN: printed, not opened
        r = httpx.get(url)
        assert r.status_code == 302
        cb = httpx.get(r.headers["location"], timeout=10)
        assert cb.status_code == 200
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"Signed in as {A} (plus plan)." in out
    assert "terms and usage limits apply" in out
    rec = _check_saved(tmp_path / "data", codex_mock, A)
    assert rec["access_token"] not in out + err and rec["refresh_token"] not in out + err


@pytest.mark.e2e
def test_login_command_paste_flow_and_wrong_state(codex_mock, tmp_path):
    proc = _login(tmp_path, codex_mock, "--paste")
    url = _read_until(proc, _url_line)[-1].strip()
    location = httpx.get(url).headers["location"]
    out, err = proc.communicate(location.replace("state=", "state=x") + "\n", timeout=20)
    assert proc.returncode == 1
    assert "State mismatch" in err and "refused" in err
    assert CredentialStore(tmp_path / "data").labels("codex") == []

    proc = _login(tmp_path, codex_mock, "--paste")
    url = _read_until(proc, _url_line)[-1].strip()
    location = httpx.get(url).headers["location"]
    assert location.startswith("http://localhost:1455/auth/callback?code=")
    out, err = proc.communicate(location + "\n", timeout=20)
    assert proc.returncode == 0, err
    assert f"Signed in as {A}" in out
    _check_saved(tmp_path / "data", codex_mock, A)


@pytest.mark.e2e
def test_login_command_device_flow(codex_mock_factory, tmp_path):
    mock = codex_mock_factory(device_pending=1, device_interval="1")
    mock.add_account(B, plan="team")
    proc = _login(tmp_path, mock, "--device")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    [code] = [d["user_code"] for d in mock.devices.values()]
    assert f"    {mock.auth_base}/codex/device\n" in out and f"    {code}\n" in out
    assert f"Signed in as {B} (team plan)." in out
    _check_saved(tmp_path / "data", mock, B)


@pytest.mark.e2e
def test_login_command_reports_an_unreachable_server(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text('providers:\n  codex:\n    type: codex\n    endpoints:\n      auth_base: "http://127.0.0.1:9"\n')
    cmd = [sys.executable, "-m", "antiapi", "login", "--data-dir", str(tmp_path / "d"), "--config", str(cfg), "codex", "--device"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30,
                       env={**{k: v for k, v in os.environ.items() if not k.startswith("ANTI_API_")}})
    assert r.returncode == 1
    assert "sign-in failed: codex: cannot reach the sign-in server 127.0.0.1" in r.stderr

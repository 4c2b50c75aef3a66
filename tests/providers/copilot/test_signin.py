"""``antiapi login copilot`` and the DeviceSignIn object, against the GitHub device-flow mock."""

from __future__ import annotations

import io
import json
import os
import stat

import pytest

from antiapi.accounts import CredentialStore
from antiapi.config import load_config
from antiapi.config.schema import ProviderConfig
from antiapi.providers.copilot import login
from antiapi.providers.copilot.settings import from_config
from antiapi.providers.copilot.signin import DeviceSignIn, SignInFailed


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.now += s


def _flow(mock, tmp_path, fake: FakeTime | None = None) -> tuple[DeviceSignIn, CredentialStore]:
    pc = ProviderConfig(name="copilot", type="copilot", base_url="https://api.githubcopilot.com",
                        endpoints={"github": mock.root_url, "github_api": mock.root_url})
    store = CredentialStore(tmp_path / "data")
    fake = fake or FakeTime()
    return DeviceSignIn(from_config(pc), store, clock=fake.clock, sleep=fake.sleep), store


async def test_pending_slow_down_then_success_saves_the_account(copilot_mock, tmp_path):
    acct = copilot_mock.add_account("alice")
    copilot_mock.script_device("alice", interval=5, pending=2, slow_down=(1,), user_code="WDJB-MJHT")
    flow, store = _flow(copilot_mock, tmp_path)
    info = await flow.start()
    assert info == {"user_code": "WDJB-MJHT", "verification_uri": "https://github.com/login/device",
                    "expires_in": 900, "interval": 5.0}
    # polling before the interval is up sends nothing
    assert await flow.poll() is None
    assert copilot_mock.calls("/login/oauth/access_token") == []
    label = await flow.wait()
    await flow.aclose()
    assert label == "alice" and flow.status == "done"
    # pending (5 s), slow_down (+5 s -> 10 s from then on), pending, success
    assert flow.waits == [5.0, 5.0, 10.0, 10.0]
    polls = copilot_mock.calls("/login/oauth/access_token")
    assert len(polls) == 4
    assert polls[0].form == {"client_id": "Iv1.b507a08c87ecfe98", "device_code": polls[0].form["device_code"],
                             "grant_type": "urn:ietf:params:oauth:grant-type:device_code"}
    assert copilot_mock.calls("/login/device/code")[0].form == {"client_id": "Iv1.b507a08c87ecfe98", "scope": "read:user"}
    assert copilot_mock.calls("/user")[0].headers["authorization"] == f"token {acct.github_token}"
    # saved atomically, 0600, under the GitHub login
    path = store.path("copilot", "alice")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["github_token"] == acct.github_token and data["login"] == "alice" and data["label"] == "alice"
    assert data["plan"] == "yearly_subscriber"
    assert acct.github_token not in repr(flow)


@pytest.mark.parametrize("outcome,reason", [("expired", "expired"), ("denied", "denied")])
async def test_expired_or_denied_code_saves_nothing(copilot_mock, tmp_path, outcome, reason):
    copilot_mock.add_account("alice")
    copilot_mock.script_device("alice", interval=5, pending=1, outcome=outcome)
    flow, store = _flow(copilot_mock, tmp_path)
    await flow.start()
    with pytest.raises(SignInFailed) as ei:
        await flow.wait()
    await flow.aclose()
    assert ei.value.reason == reason and "antiapi login copilot" in ei.value.message
    assert flow.status == "failed" and store.labels("copilot") == []
    with pytest.raises(SignInFailed):  # the object stays failed
        await flow.poll()


async def test_code_expires_by_time_while_pending(copilot_mock, tmp_path):
    copilot_mock.add_account("alice")
    copilot_mock.script_device("alice", interval=5, pending=100, expires_in=12)
    flow, store = _flow(copilot_mock, tmp_path)
    await flow.start()
    with pytest.raises(SignInFailed, match="expired") as ei:
        await flow.wait()
    await flow.aclose()
    assert ei.value.reason == "expired"
    assert len(copilot_mock.calls("/login/oauth/access_token")) == 2  # at 5 s and 10 s; 15 s is past expiry


async def test_account_without_copilot_is_not_saved(copilot_mock, tmp_path):
    copilot_mock.add_account("nocop", copilot_access=False)
    copilot_mock.script_device("nocop")
    flow, store = _flow(copilot_mock, tmp_path)
    await flow.start()
    with pytest.raises(SignInFailed) as ei:
        await flow.wait()
    await flow.aclose()
    assert ei.value.reason == "no_copilot"
    assert "nocop" in ei.value.message and "You do not have access to GitHub Copilot" in ei.value.message
    assert store.labels("copilot") == []


async def test_several_accounts_side_by_side(copilot_mock, tmp_path):
    for login_name in ("alice", "bob"):
        copilot_mock.add_account(login_name)
        copilot_mock.script_device(login_name)
    for _ in range(2):
        flow, store = _flow(copilot_mock, tmp_path)
        await flow.start()
        await flow.wait()
        await flow.aclose()
    assert sorted(store.labels("copilot")) == ["alice", "bob"]
    assert store.load("copilot", "bob")["github_token"] == copilot_mock.accounts["bob"].github_token


def test_login_command_prints_code_and_url_and_saves(copilot_mock, tmp_path):
    acct = copilot_mock.add_account("octocat")
    copilot_mock.script_device("octocat", interval=0, pending=1, user_code="ABCD-EFGH")
    data = tmp_path / "d"
    data.mkdir()
    cfg_file = data / "config.yaml"
    cfg_file.write_text(f'providers:\n  copilot: {{type: copilot, endpoints: {{github: "{copilot_mock.root_url}", '
                        f'github_api: "{copilot_mock.root_url}"}}}}\n')
    cfg = load_config(cfg_file, data_dir=data, env={})
    out = io.StringIO()
    rc = login.main([], cfg, out=out)
    text = out.getvalue()
    assert rc == 0, text
    assert "https://github.com/login/device" in text and "ABCD-EFGH" in text
    assert "Signed in to GitHub as octocat" in text and "copilot:octocat" in text
    assert "terms and limits apply" in text
    assert acct.github_token not in text
    assert CredentialStore(data).labels("copilot") == ["octocat"]


def test_login_command_reports_failure(copilot_mock, tmp_path, capsys):
    copilot_mock.add_account("octocat")
    copilot_mock.script_device("octocat", interval=0, outcome="denied")
    data = tmp_path / "d"
    data.mkdir()
    (data / "config.yaml").write_text(f'providers:\n  copilot: {{type: copilot, endpoints: {{github: "{copilot_mock.root_url}", '
                                      f'github_api: "{copilot_mock.root_url}"}}}}\n')
    cfg = load_config(data / "config.yaml", data_dir=data, env={})
    rc = login.main([], cfg, out=io.StringIO())
    assert rc == 1
    assert "denied" in capsys.readouterr().err
    assert login.main(["--provider", "nope"], cfg, out=io.StringIO()) == 2


def test_antiapi_login_copilot_command_line(copilot_mock, tmp_path):
    """The real ``antiapi login copilot --data-dir X`` process, signing in against the mock."""
    import subprocess
    import sys

    acct = copilot_mock.add_account("octo")
    copilot_mock.script_device("octo", interval=0, pending=1, user_code="QWER-TYUI")
    data = tmp_path / "d"
    data.mkdir()
    (data / "config.yaml").write_text(f'providers:\n  copilot: {{type: copilot, endpoints: {{github: "{copilot_mock.root_url}", '
                                      f'github_api: "{copilot_mock.root_url}"}}}}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTI_API_")}
    r = subprocess.run([sys.executable, "-m", "antiapi", "login", "copilot", "--data-dir", str(data)],
                       capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "QWER-TYUI" in r.stdout and "https://github.com/login/device" in r.stdout
    assert acct.github_token not in r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "antiapi", "accounts", "--data-dir", str(data)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.stdout.strip() == "copilot:octo"

"""The GitHub/Copilot mock behaves as upstreams.md §2 / §4.2 describe (raw HTTP, no antiapi code)."""

from __future__ import annotations

import json

import httpx

from tests.mocks import Error
from tests.providers.copilot.mock import EXPIRE

EDITOR = {"editor-version": "vscode/1.104.3", "editor-plugin-version": "copilot-chat/0.31.5",
          "copilot-integration-id": "vscode-chat"}


def _token(mock, login="alice", **kw):
    a = mock.accounts.get(login) or mock.add_account(login, **kw)
    r = httpx.get(mock.root_url + "/copilot_internal/v2/token", headers={"authorization": f"token {a.github_token}", **EDITOR})
    assert r.status_code == 200, r.text
    return a, r.json()


def _chat(mock, tok, body, **headers):
    h = {"authorization": f"Bearer {tok}", **EDITOR, **headers}
    return httpx.post(mock.api_url + "/chat/completions", json=body, headers=h)


def test_device_flow_accepts_json_bodies_and_scripts_outcomes(copilot_mock):
    copilot_mock.add_account("alice")
    copilot_mock.script_device("alice", pending=1, slow_down=(1,), interval=5)
    dc = httpx.post(copilot_mock.root_url + "/login/device/code", json={"client_id": "x", "scope": "read:user"},
                    headers={"accept": "application/json"}).json()
    assert set(dc) == {"device_code", "user_code", "verification_uri", "expires_in", "interval"}
    poll = {"client_id": "x", "device_code": dc["device_code"], "grant_type": "urn:ietf:params:oauth:grant-type:device_code"}
    answers = [httpx.post(copilot_mock.root_url + "/login/oauth/access_token", json=poll) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert [r.json().get("error") for r in answers] == ["authorization_pending", "slow_down", None]
    assert answers[1].json()["interval"] == 10
    assert answers[2].json()["access_token"].startswith("ghu_")


def test_token_exchange_envelope_and_errors(copilot_mock):
    a, env = _token(copilot_mock)
    assert env["endpoints"]["api"] == copilot_mock.api_url and env["refresh_in"] > 0 and env["expires_at"] > 0
    assert env["token"].startswith("tid=") and ";exp=" in env["token"]
    r = httpx.get(copilot_mock.root_url + "/copilot_internal/v2/token", headers={"authorization": f"token {a.github_token}"})
    assert (r.status_code, r.text) == (400, "bad request: missing Editor-Version header for IDE auth")
    b = copilot_mock.add_account("nocop", copilot_access=False)
    r = httpx.get(copilot_mock.root_url + "/copilot_internal/v2/token", headers={"authorization": f"Bearer {b.github_token}", **EDITOR})
    assert r.status_code == 403 and r.json()["error_details"]["notification_id"] == "no_copilot_access"
    a.revoked = True
    r = httpx.get(copilot_mock.root_url + "/user", headers={"authorization": f"token {a.github_token}"})
    assert r.status_code == 401 and r.json()["message"] == "Bad credentials"


def test_chat_checks_headers_token_and_endpoint(copilot_mock):
    _, env = _token(copilot_mock)
    tok = env["token"]
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(copilot_mock.api_url + "/chat/completions", json=body, headers={"authorization": f"Bearer {tok}"})
    assert (r.status_code, r.text) == (400, "bad request: missing Editor-Version header for IDE auth")
    r = _chat(copilot_mock, tok, body, **{"editor-version": "antiapi/1"})
    assert (r.status_code, r.text) == (400, "bad request: unknown Editor-Version header for IDE auth")
    r = _chat(copilot_mock, tok, {**body, "model": "gpt-5.3-codex"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_api_for_model"
    img = {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]}
    assert _chat(copilot_mock, tok, img).status_code == 400
    assert _chat(copilot_mock, tok, img, **{"copilot-vision-request": "true"}).status_code == 200
    copilot_mock.expire_tokens()
    r = _chat(copilot_mock, tok, body)
    assert (r.status_code, r.headers["content-type"].split(";")[0], r.text) == (401, "text/plain", "unauthorized: token expired")


def test_stream_shape_and_premium_accounting(copilot_mock):
    a, env = _token(copilot_mock, premium_remaining=2)
    tok = env["token"]
    body = {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    r = _chat(copilot_mock, tok, body, **{"x-initiator": "agent"})
    assert a.premium_remaining == 2
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    first, *_, last_json, done = events
    assert json.loads(first)["choices"] == [] and "prompt_filter_results" in json.loads(first)
    assert json.loads(last_json)["usage"]["total_tokens"] > 0 and done == "[DONE]"
    assert r.headers["x-quota-snapshot-premium_interactions"].startswith("ent=300&ov=0.0&ovPerm=false&rem=0.7")
    for _ in range(2):
        assert _chat(copilot_mock, tok, body, **{"x-initiator": "user"}).status_code == 200
    r = _chat(copilot_mock, tok, body, **{"x-initiator": "user"})
    assert (r.status_code, r.json()) == (402, {"message": "You have no quota", "code": "quota_exceeded"})
    assert _chat(copilot_mock, tok, {**body, "model": "gpt-4.1"}, **{"x-initiator": "user"}).status_code == 200
    q = httpx.get(copilot_mock.root_url + "/copilot_internal/user", headers={"authorization": f"token {a.github_token}"}).json()
    assert q["quota_snapshots"]["premium_interactions"]["remaining"] == 0


def test_faults(copilot_mock):
    a, env = _token(copilot_mock)
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    a.faults.extend([Error(429, retry_after=7), Error(503), EXPIRE])
    r = _chat(copilot_mock, env["token"], body)
    assert r.status_code == 429 and r.headers["retry-after"] == "7" and r.headers["x-ratelimit-exceeded"]
    assert r.json()["error"]["type"] == "rate_limit_error"
    r = _chat(copilot_mock, env["token"], body)
    assert (r.status_code, r.text) == (503, "upstream provider rate limit")
    r = _chat(copilot_mock, env["token"], body)
    assert (r.status_code, r.text) == (401, "unauthorized: token expired")
    assert _chat(copilot_mock, env["token"], body).status_code == 200

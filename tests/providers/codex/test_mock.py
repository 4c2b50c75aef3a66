"""The Codex mock itself behaves as upstreams.md §1 / §4.1 describe (raw HTTP, no antiapi code)."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx

from tests.mocks import Reply, Text, Thinking, ToolCall
from tests.providers.codex.conftest import A
from tests.providers.codex.mock import CLIENT_ID, b64url


def _body(**over):
    b = {"model": "gpt-5.5", "instructions": "", "input": [{"type": "message", "role": "user",
                                                             "content": [{"type": "input_text", "text": "hi"}]}],
         "store": False, "stream": True, "include": ["reasoning.encrypted_content"],
         "reasoning": {"effort": "medium", "summary": "auto"}}
    b.update(over)
    return b


def _auth(mock, email=A):
    t = mock.issue_tokens(email)
    return t, {"authorization": f"Bearer {t['access_token']}", "chatgpt-account-id": mock.accounts[email].account_id}


def _events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        ev = lines[0].removeprefix("event: ")
        data = json.loads(lines[1].removeprefix("data: "))
        assert data["type"] == ev
        out.append((ev, data))
    return out


def test_responses_validation_rules(codex_mock):
    _, h = _auth(codex_mock)
    url = codex_mock.base_url + "/responses"
    cases = [
        (_body(store=True), 400, "Store must be set to false"),
        ({k: v for k, v in _body().items() if k != "store"}, 400, "Store must be set to false"),
        (_body(stream=False), 400, "Stream must be set to true"),
        ({k: v for k, v in _body().items() if k != "instructions"}, 400, "Instructions are required"),
        (_body(temperature=0.2), 400, "Unsupported parameter: temperature"),
        (_body(max_output_tokens=9), 400, "Unsupported parameter: max_output_tokens"),
        (_body(model="gpt-4o"), 400, "not supported when using Codex with a ChatGPT account"),
        (_body(reasoning={"effort": "minimal"}), 400, "Unsupported value: 'minimal'"),
        (_body(input=[{"type": "message", "role": "system", "content": "x"}]), 400, "Invalid value: 'system'"),
        (_body(input=[{"type": "reasoning", "id": "rs_1", "summary": []}]), 404, "Items are not persisted"),
    ]
    for body, status, text in cases:
        r = httpx.post(url, json=body, headers=h)
        assert (r.status_code, text in r.text) == (status, True), (body, r.text)
        assert "x-codex-primary-used-percent" in r.headers
    assert httpx.post(url, json=_body(), headers={**h, "authorization": "Bearer nope"}).json() == {"detail": "Unauthorized"}
    other = codex_mock.add_account("other@example.com")
    r = httpx.post(url, json=_body(), headers={**h, "chatgpt-account-id": other.account_id})
    assert r.status_code == 401
    codex_mock.expire_access_tokens()
    assert httpx.post(url, json=_body(), headers=h).status_code == 401


def test_sse_order_sequence_numbers_and_headers(codex_mock):
    _, h = _auth(codex_mock)
    codex_mock.enqueue(Reply([Thinking("hmm"), Text("Hi"), ToolCall("f", {"a": 1}, id="call_1")]))
    r = httpx.post(codex_mock.base_url + "/responses", json=_body(tools=[{"type": "function", "name": "f", "parameters": {}}]), headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    evs = _events(r.text)
    assert [d["sequence_number"] for _, d in evs] == list(range(len(evs)))
    types = [t for t, _ in evs]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types.index("response.reasoning_summary_text.delta") < types.index("response.output_text.delta") \
        < types.index("response.function_call_arguments.delta")
    assert types[-1] == "response.completed" and "[DONE]" not in r.text
    done = [d["item"] for t, d in evs if t == "response.output_item.done"]
    assert [i["type"] for i in done] == ["reasoning", "message", "function_call"]
    assert done[0]["encrypted_content"] in codex_mock.issued_signatures
    assert done[2]["call_id"] == "call_1"
    assert evs[-1][1]["response"]["usage"]["output_tokens"] > 0
    for k in ("x-codex-primary-used-percent", "x-codex-primary-window-minutes", "x-codex-primary-reset-at",
              "x-codex-secondary-used-percent", "x-codex-secondary-reset-after-seconds", "x-codex-plan-type",
              "x-codex-active-limit", "x-codex-credits-has-credits", "x-models-etag", "x-request-id"):
        assert k in r.headers
    assert r.headers["x-codex-primary-used-percent"] == "1.5"
    usage = httpx.get(codex_mock.root_url + "/backend-api/wham/usage", headers=h).json()
    assert usage["rate_limit"]["primary_window"]["used_percent"] == 1.5


def test_oauth_pkce_rotation_reuse_and_device(codex_mock):
    verifier = "v" * 64
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    redirect = "http://localhost:1455/auth/callback"
    r = httpx.get(codex_mock.auth_base + "/oauth/authorize", params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect, "code_challenge": challenge,
        "code_challenge_method": "S256", "state": "S1", "scope": "openid"})
    assert r.status_code == 302 and "state=S1" in r.headers["location"]
    code = httpx.URL(r.headers["location"]).params["code"]
    tok = codex_mock.auth_base + "/oauth/token"
    bad = httpx.post(tok, data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                                "client_id": CLIENT_ID, "code_verifier": "wrong"})
    assert bad.status_code == 400 and "PKCE" in bad.text
    # the code is single-use, even after a failed exchange
    again = httpx.post(tok, data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                                  "client_id": CLIENT_ID, "code_verifier": verifier})
    assert again.status_code == 400
    t = codex_mock.issue_tokens(A)
    r1 = httpx.post(tok, json={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": t["refresh_token"]})
    assert r1.status_code == 200 and r1.json()["refresh_token"] != t["refresh_token"]
    r2 = httpx.post(tok, data={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": r1.json()["refresh_token"]})
    assert r2.status_code == 200                                   # form bodies work too
    reuse = httpx.post(tok, json={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": t["refresh_token"]})
    assert reuse.status_code == 401 and reuse.json()["error"]["code"] == "refresh_token_reused"
    codex_mock.accounts[A].refresh_error = "refresh_token_invalidated"
    dead = httpx.post(tok, json={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": r2.json()["refresh_token"]})
    assert dead.json()["error"]["code"] == "refresh_token_invalidated"
    claims = json.loads(base64.urlsafe_b64decode(t["id_token"].split(".")[1] + "=="))
    assert claims["email"] == A and claims["https://api.openai.com/auth"]["chatgpt_plan_type"] == "plus"
    d = httpx.post(codex_mock.auth_base + "/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID}).json()
    assert isinstance(d["interval"], str)
    poll = {"device_auth_id": d["device_auth_id"], "user_code": d["user_code"]}
    url = codex_mock.auth_base + "/api/accounts/deviceauth/token"
    assert [httpx.post(url, json=poll).status_code for _ in range(3)] == [403, 403, 200]


def test_models_etag_and_version_filter(codex_mock_factory):
    mock = codex_mock_factory(min_version_filter=True)
    mock.add_account(A)
    _, h = _auth(mock)
    r = httpx.get(mock.base_url + "/models", params={"client_version": "0.100.0"}, headers=h)
    assert r.headers["etag"] == 'W/"mock-models-1"'
    slugs = [m["slug"] for m in r.json()["models"]]
    assert "gpt-5.9-mock" not in slugs and "gpt-5.5" in slugs
    r = httpx.get(mock.base_url + "/models", params={"client_version": "0.144.1"}, headers=h)
    assert "gpt-5.9-mock" in [m["slug"] for m in r.json()["models"]]
    c = httpx.post(mock.base_url + "/responses/compact", json={"model": "gpt-5.5", "input": [], "stream": True}, headers=h)
    assert c.status_code == 400

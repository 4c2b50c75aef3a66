"""Real clients (openai and anthropic SDKs) through a real antiapi server to the Codex mock:
request shape and headers, tool round trips, reasoning, aliases and effort, models sync, usage
limits and failover, token refresh under concurrency, revoked sign-in, stream faults."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest

from antiapi.accounts import CredentialStore
from tests.e2e.clients import CLIENTS, AnthropicClient, ChatClient, ResponsesClient
from tests.mocks import DropAfter, Error, MidStreamError, Reply, Text, Thinking, ToolCall, Usage
from tests.providers.codex.conftest import A, B, codex_config, signed_in
from tests.providers.codex.mock import Delay, Overloaded, RateLimited, UsageLimit

pytestmark = pytest.mark.e2e

MODEL = "gpt-5.5"
THOUGHT = "The user wants the weather; call the tool."


def _has_output(body: dict) -> bool:
    return any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in body.get("input", []))


def _tool_handler(req):
    body = req.json
    if _has_output(body):
        return Reply([Text("It is sunny in Paris.", chunks=3)], usage=Usage(input_tokens=120, output_tokens=8, cached_tokens=100))
    if body.get("tools"):
        return Reply([Thinking(THOUGHT, chunks=2), Text("Checking."),
                      ToolCall("get_weather", {"city": "Paris"}, id="call_codex_1", chunks=3)],
                     usage=Usage(input_tokens=100, output_tokens=30, reasoning_tokens=12))
    return None


def _assert_backend_shape(req, stored: dict) -> None:
    b, h = req.json, req.headers
    assert b["store"] is False and b["stream"] is True and isinstance(b["instructions"], str)
    assert "reasoning.encrypted_content" in b["include"]
    for k in ("temperature", "top_p", "max_output_tokens", "max_tokens", "metadata", "user"):
        assert k not in b
    assert b["reasoning"]["effort"] in ("low", "medium", "high", "xhigh")
    assert h["authorization"] == f"Bearer {stored['access_token']}"
    assert h["chatgpt-account-id"] == stored["account_id"]
    assert h["accept"] == "text/event-stream" and h["content-type"] == "application/json"
    assert h["originator"] == "antiapi"
    assert h["user-agent"].startswith("antiapi/")
    assert h["session_id"] == b["prompt_cache_key"]


@pytest.mark.parametrize("stream", [False, True], ids=["nonstream", "stream"])
@pytest.mark.parametrize("dialect", ["openai_chat", "openai_responses", "anthropic"])
def test_sdk_tool_round_trip(codex_gateway, codex_mock, dialect, stream):
    gw = codex_gateway()
    stored = CredentialStore(gw.data_dir).load("codex", A)
    codex_mock.handler = _tool_handler
    client = CLIENTS[dialect](gw.url)
    kw: dict = {"temperature": 0.3}
    if dialect == "openai_responses":
        kw.update(max_output_tokens=500, reasoning={"summary": "auto"}, include=["reasoning.encrypted_content"])
    if dialect == "anthropic":
        kw = {"extra_body": {"temperature": 1.0}}
        kw["thinking"] = {"type": "enabled", "budget_tokens": 16000}
        kw["max_tokens"] = 20000
    first_msgs = [client.user("Weather in Paris?")]
    r1 = client.send(MODEL, first_msgs, stream=stream, tools=True, system="Be brief.", **kw)
    assert [(n, a) for _, n, a in r1.tool_calls] == [("get_weather", {"city": "Paris"})]
    call_id = r1.tool_calls[0][0]
    assert "Checking." in r1.text
    if dialect in ("anthropic", "openai_responses"):
        assert r1.reasoning == THOUGHT           # reasoning summary surfaced as thinking / summary
    msgs = first_msgs + ([r1.assistant] if dialect != "openai_responses" else r1.assistant) + \
        client.tool_results(r1.tool_calls, ["sunny, 24C"])
    r2 = client.send(MODEL, msgs, stream=stream, tools=True, system="Be brief.", **kw)
    assert r2.text == "It is sunny in Paris."
    assert codex_mock.errors == []
    reqs = codex_mock.responses_requests()
    assert [r.status for r in reqs] == [200, 200], [(r.status, r.body[:300]) for r in reqs]
    for r in reqs:
        _assert_backend_shape(r, stored)
    b1, b2 = reqs[0].json, reqs[1].json
    assert b1["model"] == MODEL and [t["name"] for t in b1["tools"]] == ["get_weather"]
    assert b1["input"][0]["role"] == "developer" and "Be brief." in json.dumps(b1["input"][0])
    assert b1["reasoning"]["effort"] == ("high" if dialect == "anthropic" else "medium")
    assert b1["reasoning"]["summary"] == "auto"
    # the follow-up carries the call and its output with the same call_id, same conversation key
    calls = [i for i in b2["input"] if i.get("type") == "function_call"]
    outs = [i for i in b2["input"] if i.get("type") == "function_call_output"]
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert outs[0]["call_id"] == calls[0]["call_id"] and "sunny, 24C" in json.dumps(outs[0]["output"])
    assert b2["prompt_cache_key"] == b1["prompt_cache_key"]
    if dialect in ("anthropic", "openai_responses"):
        # the reasoning item (encrypted_content the mock issued) is replayed; the mock verified it
        [rs] = [i for i in b2["input"] if i.get("type") == "reasoning"]
        assert rs["encrypted_content"] in codex_mock.issued_signatures
    assert call_id
    recs = gw.records(at_least=2)
    assert [(x.status, x.provider, x.upstream_dialect) for x in recs] == [(200, f"codex:{A}", "openai_responses")] * 2
    assert recs[1].cached_tokens == 100 and recs[1].output_tokens == 8


def test_chat_reasoning_content_is_surfaced(codex_gateway, codex_mock):
    gw = codex_gateway()
    codex_mock.default = Reply([Thinking("Pondering deeply."), Text("42")])
    for stream in (False, True):
        r = ChatClient(gw.url).send(MODEL, [{"role": "user", "content": "answer?"}], stream=stream, reasoning_effort="high")
        assert (r.text, r.reasoning) == ("42", "Pondering deeply.")
    efforts = [r.json["reasoning"]["effort"] for r in codex_mock.responses_requests()]
    assert efforts == ["high", "high"]


def test_aliases_and_effort_resolution(codex_mock, gateway_factory):
    gw = gateway_factory(codex_config(codex_mock), env={"ANTI_API_CODEX_REASONING_EFFORT": "low"},
                         prepare=signed_in(codex_mock, A))
    chat = ChatClient(gw.url)
    cases = [
        ("gpt-5.5", {}, ("gpt-5.5", "low")),                           # the env default
        ("gpt-5.5", {"reasoning_effort": "high"}, ("gpt-5.5", "high")),  # the request's effort
        ("gpt-5.5-xhigh", {"reasoning_effort": "low"}, ("gpt-5.5", "xhigh")),  # the alias's effort
        ("gpt-5.3-max-high", {}, ("gpt-5.5", "high")),                 # older seed name
        ("gpt-5.2-codex-low", {}, ("gpt-5.5", "low")),
        ("gpt-5.4-mini-medium", {}, ("gpt-5.4-mini", "medium")),
    ]
    for model, kw, _ in cases:
        r = chat.send(model, [{"role": "user", "content": "hi"}], stream=False, **kw)
        assert r.text == "mock reply: hi"
    got = [(r.json["model"], r.json["reasoning"]["effort"]) for r in codex_mock.responses_requests()]
    assert got == [want for *_, want in cases]
    # Anthropic thinking budgets map to efforts
    AnthropicClient(gw.url).send("gpt-5.5", [{"role": "user", "content": "hi"}], stream=True,
                                 thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=4096)
    assert codex_mock.responses_requests()[-1].json["reasoning"]["effort"] == "low"


def test_models_are_synced_from_the_backend(codex_gateway, codex_mock):
    gw = codex_gateway()
    ids = [m["id"] for m in httpx.get(gw.url + "/v1/models").json()["data"]]
    assert "gpt-5.9-mock" in ids and "gpt-5.9-mock-high" in ids   # only the backend lists this one
    assert "gpt-5.6-terra" not in ids                                # only the static fallback has it
    assert "codex-auto-review" not in ids                            # visibility: hide
    assert "gpt-5.3-max-high" in ids and "gpt-5" in ids              # older names stay accepted
    [mreq] = [r for r in codex_mock.requests if r.path.endswith("/models")]
    assert mreq.query == {"client_version": "0.144.1"}
    assert mreq.headers["chatgpt-account-id"] == codex_mock.accounts[A].account_id


@pytest.mark.parametrize("fault", [Error(500, message="boom"), Delay(30)], ids=["error", "slow"])
def test_models_fall_back_to_the_static_list(codex_mock, gateway_factory, fault):
    codex_mock.models_fault = fault
    t0 = time.monotonic()
    gw = gateway_factory(codex_config(codex_mock, options={"models_timeout": 0.5}), prepare=signed_in(codex_mock, A))
    assert time.monotonic() - t0 < 5
    ids = [m["id"] for m in httpx.get(gw.url + "/v1/models").json()["data"]]
    assert "gpt-5.6-terra" in ids and "gpt-5.5" in ids and "gpt-5.9-mock" not in ids
    # a fallback name the account's backend does not serve: its 400 reaches the client, clearly
    with pytest.raises(Exception) as ei:
        ChatClient(gw.url).send("gpt-5.6-terra", [{"role": "user", "content": "hi"}], stream=False)
    assert ei.value.status_code == 400
    assert "The 'gpt-5.6-terra' model is not supported when using Codex with a ChatGPT account" in str(ei.value)


def test_quota_from_headers_and_usage_endpoint(codex_mock, gateway_factory):
    codex_mock.accounts[A].primary_used = 30.0
    codex_mock.accounts[A].secondary_used = 70.0
    gw = gateway_factory(codex_config(codex_mock), prepare=signed_in(codex_mock, A))
    p = gw.providers[f"codex:{A}"]
    deadline = time.monotonic() + 5
    while (p.quota().source != "usage-endpoint") and time.monotonic() < deadline:
        time.sleep(0.02)
    q = p.quota()
    assert (q.source, q.status, q.plan) == ("usage-endpoint", "ok", "plus")
    assert [(w.name, w.used_percent, w.window_minutes) for w in q.windows] == [("primary", 30.0, 300), ("secondary", 70.0, 10080)]
    ChatClient(gw.url).send(MODEL, [{"role": "user", "content": "hi"}], stream=True)
    q = p.quota()
    assert q.source == "headers"
    assert [(w.name, w.used_percent) for w in q.windows] == [("primary", 31.5), ("secondary", 70.15)]
    assert q.windows[0].resets_at == pytest.approx(time.time() + 9000, abs=5)


def test_usage_limit_fails_over_to_the_second_account(codex_mock, gateway_factory):
    codex_mock.add_account(B, plan="pro")
    codex_mock.enqueue(UsageLimit(resets_in=3600), account=A)
    gw = gateway_factory(codex_config(codex_mock), prepare=signed_in(codex_mock, A, B))
    chat = ChatClient(gw.url)
    r = chat.sdk.chat.completions.with_raw_response.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert r.headers["x-antiapi-provider"] == f"codex:{B}"
    assert r.parse().choices[0].message.content == "mock reply: hi"
    rec = gw.records()[-1]
    assert rec.attempts == [f"codex:{A}/{MODEL}: 429 rate_limit"]
    qa = gw.providers[f"codex:{A}"].quota()
    assert qa.status == "limited" and qa.limited_until == pytest.approx(time.time() + 3600, abs=5)
    assert qa.windows[0].used_percent == 100.0
    # while A cools down, requests go straight to B: A is not asked again
    for stream in (False, True):
        assert chat.send(MODEL, [{"role": "user", "content": "again"}], stream=stream).text == "mock reply: again"
    assert [r.status for r in codex_mock.responses_requests(A)] == [429]
    assert [r.status for r in codex_mock.responses_requests(B)] == [200, 200, 200]
    assert [x.provider for x in gw.records(at_least=3)] == [f"codex:{B}"] * 3


def test_usage_limit_on_the_only_account_reaches_the_client(codex_gateway, codex_mock):
    gw = codex_gateway()
    codex_mock.enqueue(UsageLimit(resets_in=7200))
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 429
    assert 7190 <= int(r.headers["retry-after"]) <= 7200
    err = r.json()["error"]
    assert err["code"] == "usage_limit_reached" and f"account {A} reached its usage limit (plus plan)" in err["message"]
    # the account stays benched until the reset: the next request does not reach the backend
    r2 = httpx.post(gw.url + "/v1/messages", json={"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]})
    assert r2.status_code == 429 and r2.json()["error"]["type"] == "rate_limit_error"
    assert 7100 <= int(r2.headers["retry-after"]) <= 7200
    assert len(codex_mock.responses_requests()) == 1


def test_plain_429_is_retryable_with_retry_after(codex_gateway, codex_mock):
    gw = codex_gateway()
    codex_mock.enqueue(RateLimited(retry_after=7))
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    # a transient 429 is not a used-up plan: the account's own state stays "ok" (the router may
    # still rest it for the retry-after)
    q = gw.providers[f"codex:{A}"].quota()
    assert q.status == "ok" and q.limited_until is None


@pytest.mark.parametrize("fault", [Overloaded(), RateLimited(retry_after=None)], ids=["503", "429"])
def test_transient_errors_fail_over(codex_mock, gateway_factory, fault):
    codex_mock.add_account(B)
    codex_mock.enqueue(fault, account=A)
    gw = gateway_factory(codex_config(codex_mock), prepare=signed_in(codex_mock, A, B))
    r = AnthropicClient(gw.url).send(MODEL, [{"role": "user", "content": "hi"}], stream=True)
    assert r.text == "mock reply: hi"
    assert [x.status for x in codex_mock.responses_requests(B)] == [200]


def test_concurrent_requests_share_one_refresh_after_401(codex_mock_factory, gateway_factory):
    mock = codex_mock_factory(refresh_delay=0.3)
    mock.add_account(A)
    gw = gateway_factory(codex_config(mock), prepare=signed_in(mock, A))
    old = CredentialStore(gw.data_dir).load("codex", A)
    mock.expire_access_tokens()            # the backend now answers 401 to the token in use
    n = 50

    async def burst():
        async with httpx.AsyncClient(timeout=30) as c:
            return await asyncio.gather(*(
                c.post(gw.url + "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": f"q{i}"}]})
                for i in range(n)))

    results = asyncio.run(burst())
    assert [r.status_code for r in results] == [200] * n
    assert sorted(r.json()["choices"][0]["message"]["content"] for r in results) == sorted(f"mock reply: q{i}" for i in range(n))
    assert mock.refreshes == 1                                  # exactly one refresh for 50 requests
    statuses = [r.status for r in mock.responses_requests()]
    assert statuses.count(200) == n and set(statuses) <= {200, 401}
    new = CredentialStore(gw.data_dir).load("codex", A)          # the rotated refresh token is persisted
    assert new["refresh_token"] != old["refresh_token"] and mock.refresh_tokens[new["refresh_token"]]["active"]
    assert mock.refresh_tokens[old["refresh_token"]]["active"] is False


def test_proactive_refresh_before_expiry_is_single_flight(codex_mock_factory, gateway_factory):
    mock = codex_mock_factory(refresh_delay=0.2)
    mock.add_account(A)
    lead = 4.0
    gw = gateway_factory(codex_config(mock, options={"refresh_lead_seconds": lead}),
                         prepare=signed_in(mock, A, access_ttl=lead + 2.5))
    assert mock.refreshes == 0
    exp = CredentialStore(gw.data_dir).load("codex", A)["expires_at"]
    time.sleep(max(0.0, exp - lead - time.time() + 0.1))     # now inside the refresh lead

    async def burst():
        async with httpx.AsyncClient(timeout=30) as c:
            return await asyncio.gather(*(
                c.post(gw.url + "/v1/responses", json={"model": MODEL, "input": f"q{i}", "stream": i % 2 == 0})
                for i in range(50)))

    results = asyncio.run(burst())
    assert [r.status_code for r in results] == [200] * 50
    assert mock.refreshes == 1
    assert [r.status for r in mock.responses_requests()] == [200] * 50   # no 401 at all


def test_revoked_refresh_token_needs_sign_in_and_server_keeps_serving(codex_mock, gateway_factory):
    gw = gateway_factory(codex_config(codex_mock), prepare=signed_in(codex_mock, A))
    p = gw.providers[f"codex:{A}"]
    codex_mock.accounts[A].refresh_error = "refresh_token_invalidated"
    codex_mock.expire_access_tokens()
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 401
    msg = r.json()["error"]["message"]
    assert f"The Codex (ChatGPT) account {A} needs to sign in again: its refresh token was revoked" in msg
    assert "Run `antiapi login codex`" in msg
    # later requests are refused at once (the account is benched while it needs a sign-in)
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code in (401, 503)
    msg = r.json()["error"]["message"]
    assert "needs sign-in" in msg or "antiapi login codex" in msg
    assert codex_mock.refreshes == 1                    # a dead token is not retried
    q = p.quota()
    assert q.status == "needs_sign_in" and "antiapi login codex" in q.detail
    assert httpx.get(gw.url + "/health").json()["status"] == "ok"
    stored = CredentialStore(gw.data_dir).load("codex", A)
    assert stored["needs_sign_in"] == "its refresh token was revoked"
    # signing in again (a new credentials file) is seen without a restart: the account reports
    # "ok" again, so the router takes it back once its own short backoff is over
    CredentialStore(gw.data_dir).save("codex", A, codex_mock.credentials_record(A))
    assert p.quota().status == "ok"


def test_dead_account_fails_over_to_a_live_one(codex_mock, gateway_factory):
    codex_mock.add_account(B)
    codex_mock.accounts[A].refresh_error = "refresh_token_expired"
    gw = gateway_factory(codex_config(codex_mock), prepare=signed_in(codex_mock, A, B))
    codex_mock.expire_access_tokens(A)
    r = ResponsesClient(gw.url).send(MODEL, [{"role": "user", "content": "hi"}], stream=True)
    assert r.text == "mock reply: hi"
    assert gw.records()[-1].attempts == [f"codex:{A}/{MODEL}: 401 authentication"]
    assert gw.providers[f"codex:{A}"].quota().detail.startswith("its refresh token expired")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
def test_mid_stream_disconnect_is_reported(codex_gateway, codex_mock, stream):
    gw = codex_gateway()
    codex_mock.enqueue(DropAfter(4, Reply([Text("partial answer that never ends", chunks=6)])))
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=30,
                   json={"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "x"}]})
    if stream:
        assert r.status_code == 200
        assert '"error"' in r.text and "broke mid-response" in r.text
        assert "data: [DONE]" not in r.text
    else:
        assert r.status_code == 502 and "broke mid-response" in r.json()["error"]["message"]


def test_in_stream_failure_and_empty_completed_output(codex_mock_factory, gateway_factory):
    mock = codex_mock_factory(empty_completed_output=True)
    mock.add_account(A)
    gw = gateway_factory(codex_config(mock), prepare=signed_in(mock, A))
    # response.completed with an empty output: the answer is rebuilt from the output items
    r = ResponsesClient(gw.url).send(MODEL, [{"role": "user", "content": "hi"}], stream=False)
    assert r.text == "mock reply: hi"
    mock.enqueue(MidStreamError(3, code="rate_limit_exceeded", message="Rate limit reached. Please try again in 1.5s."))
    s = httpx.post(gw.url + "/v1/messages", timeout=30, json={"model": MODEL, "max_tokens": 50, "stream": True,
                                                              "messages": [{"role": "user", "content": "x"}]})
    assert "event: error" in s.text and "try again in 1.5s" in s.text


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def codex_log():
    lg = logging.getLogger("antiapi")
    h, old = _Collect(), lg.level
    lg.addHandler(h)
    lg.setLevel(logging.DEBUG)
    yield h.messages
    lg.removeHandler(h)
    lg.setLevel(old)


def test_insecure_tls_switch_warns_loudly(codex_mock, gateway_factory, codex_log):
    gw = gateway_factory(codex_config(codex_mock), env={"ANTI_API_CODEX_INSECURE_TLS": "1"},
                         prepare=signed_in(codex_mock, A))
    p = gw.providers[f"codex:{A}"]
    assert p.verify_tls is False
    assert any("TLS CERTIFICATE VERIFICATION IS OFF (ANTI_API_CODEX_INSECURE_TLS=1)" in m for m in codex_log)
    default = gateway_factory(codex_config(codex_mock), prepare=signed_in(codex_mock, A))
    assert default.providers[f"codex:{A}"].verify_tls is True


def test_tokens_never_appear_in_logs_or_errors(codex_mock, gateway_factory, codex_log):
    codex_mock.accounts[A].refresh_error = "refresh_token_reused"
    gw = gateway_factory(codex_config(codex_mock), prepare=signed_in(codex_mock, A))
    stored = CredentialStore(gw.data_dir).load("codex", A)
    codex_mock.expire_access_tokens()
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 401 and "already used" in r.json()["error"]["message"]
    assert any("needs to sign in again" in m for m in codex_log)
    text = r.text + "\n".join(codex_log) + repr(gw.providers)
    for secret in (stored["access_token"], stored["refresh_token"], stored["id_token"]):
        assert secret not in text

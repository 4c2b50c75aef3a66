"""CopilotProvider against the GitHub/Copilot mock (in-process, no gateway)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from antiapi.accounts import CredentialStore
from antiapi.config.schema import ProviderConfig
from antiapi.errors import ErrorKind, LimitReached, NeedsSignIn, StreamInterrupted, Unsupported, UpstreamHTTPError
from antiapi.providers.base import UpstreamCall
from antiapi.providers.copilot import CopilotProvider
from antiapi.providers.copilot.quota import parse_time
from tests.mocks import DropAfter, Error, Reply, Text, ToolCall
from tests.providers.copilot.mock import EXPIRE, RESET_DATE

USER = [{"role": "user", "content": "hi"}]
TOOL_TURN = USER + [
    {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                                                           "function": {"name": "get_weather", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]
IMAGE = [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]


def provider(mock, tmp_path, login="alice", *, options=None, endpoints=None, env=None, **acct):
    a = mock.accounts.get(login) or mock.add_account(login, **acct)
    CredentialStore(tmp_path).save("copilot", login, {"github_token": a.github_token, "login": login})
    pc = ProviderConfig(name=f"copilot:{login}", type="copilot", base_url="https://api.githubcopilot.com",
                        account=login, endpoints=endpoints or {"github": mock.root_url, "github_api": mock.root_url},
                        options={"quota_interval": 0, **(options or {})})
    return CopilotProvider(pc, data_dir=tmp_path, env=env or {})


def call(model, messages=USER, *, stream=False, **extra):
    body = {"model": model, "messages": messages, **extra}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return UpstreamCall("openai_chat", model, json.dumps(body).encode(), stream, request_id="req_test")


async def text_of(p, c) -> str:
    resp = await p.send(c)
    try:
        raw = (await resp.aread()).decode()
    finally:
        await resp.aclose()
    if not c.stream:
        return json.loads(raw)["choices"][0]["message"]["content"]
    out = ""
    for line in raw.splitlines():
        if line.startswith("data: {"):
            for ch in json.loads(line[6:]).get("choices") or []:
                out += ch["delta"].get("content") or ""
    return out


def chat_calls(mock):
    return [r for r in mock.requests if r.path.endswith("/chat/completions")]


async def test_headers_model_mapping_initiator_and_api_base_from_the_exchange(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path)
    copilot_mock.enqueue("one", "two", "three")
    assert await text_of(p, call("claude-sonnet-4-5-20250929", stream=True)) == "one"
    assert await text_of(p, call("claude-sonnet-4-5", TOOL_TURN, tools=TOOLS)) == "two"
    assert await text_of(p, call("gpt-4o", IMAGE)) == "three"
    await p.aclose()
    first, second, third = chat_calls(copilot_mock)
    # the Copilot base came from the token exchange's endpoints.api
    assert first.path == "/api-individual/chat/completions"
    assert first.json["model"] == second.json["model"] == "claude-sonnet-4.5"
    h = first.headers
    assert h["authorization"].startswith("Bearer tid=")
    assert h["editor-version"].startswith("vscode/") and h["editor-plugin-version"].startswith("copilot-chat/")
    assert h["copilot-integration-id"] == "vscode-chat"
    assert h["user-agent"].startswith("antiapi/")
    uuid.UUID(h["x-request-id"])
    assert h["x-request-id"] != second.headers["x-request-id"]
    assert (h["x-initiator"], second.headers["x-initiator"]) == ("user", "agent")
    assert "copilot-vision-request" not in h and third.headers["copilot-vision-request"] == "true"
    # one exchange served all three; it sent the editor headers GitHub requires
    assert copilot_mock.exchanges("alice") == 1
    ex = copilot_mock.calls("/copilot_internal/v2/token")[0].headers
    assert ex["authorization"] == f"token {copilot_mock.accounts['alice'].github_token}" and ex["editor-version"]


async def test_configured_api_base_overrides_the_exchange(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path, endpoints={"github": copilot_mock.root_url, "github_api": copilot_mock.root_url,
                                                    "api": copilot_mock.root_url + "/my-proxy"})
    with pytest.raises(UpstreamHTTPError) as ei:
        await p.send(call("gpt-4.1"))
    await p.aclose()
    assert ei.value.status == 404
    assert [r.path for r in chat_calls(copilot_mock)] == ["/my-proxy/chat/completions"]


async def test_premium_accounting_only_for_user_initiated_requests(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path)
    acct = copilot_mock.accounts["alice"]
    await text_of(p, call("claude-opus-4-5"))  # user turn, 3x model
    assert acct.premium_remaining == 297
    await text_of(p, call("claude-opus-4-5", TOOL_TURN, tools=TOOLS))  # agent continuation: free
    await text_of(p, call("gpt-4.1"))  # not a premium model
    assert acct.premium_remaining == 297 and acct.premium_used == 3
    # the x-quota-snapshot header of the last answer is the account's quota state
    q = p.quota()
    [w] = [w for w in q.windows if w.name == "premium_interactions"]
    assert (q.source, w.entitlement, w.remaining, w.used_percent) == ("headers", 300.0, 297.0, 1.0)
    assert w.resets_at == parse_time(RESET_DATE)
    await p.aclose()


async def test_fifty_concurrent_requests_across_token_expiry_share_one_exchange(copilot_factory, tmp_path):
    mock = copilot_factory(token_ttl=2.0, refresh_in=1, exchange_delay=0.2)
    p = provider(mock, tmp_path)
    assert (await text_of(p, call("gpt-4.1"))).startswith("copilot mock reply")
    assert mock.exchanges() == 1
    await asyncio.sleep(1.0)  # past refresh_in (the token is due for renewal)
    texts = await asyncio.gather(*(text_of(p, call("gpt-4.1", [{"role": "user", "content": f"n{i}"}])) for i in range(50)))
    assert texts == [f"copilot mock reply: n{i}" for i in range(50)]
    assert mock.exchanges() == 2
    # server-side expiry mid-session: all 50 get 401 "token expired", one exchange fixes them all
    mock.expire_tokens()
    texts = await asyncio.gather(*(text_of(p, call("gpt-4.1", [{"role": "user", "content": f"m{i}"}], stream=True))
                                   for i in range(50)))
    assert texts == [f"copilot mock reply: m{i}" for i in range(50)]
    assert mock.exchanges() == 3
    assert sum(1 for r in chat_calls(mock) if r.status == 401) >= 1
    await p.aclose()


async def test_token_expired_401_refreshes_once_then_gives_up(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path)
    acct = copilot_mock.accounts["alice"]
    acct.faults.append(EXPIRE)
    assert await text_of(p, call("gpt-4.1")) == "copilot mock reply: hi"
    assert [r.status for r in chat_calls(copilot_mock)] == [401, 200]
    assert copilot_mock.exchanges() == 2
    acct.faults.extend([EXPIRE, EXPIRE])
    with pytest.raises(UpstreamHTTPError) as ei:
        await p.send(call("gpt-4.1"))
    assert ei.value.status == 401 and ei.value.retryable  # another account may serve it
    assert copilot_mock.exchanges() == 3
    await p.aclose()


async def test_revoked_github_token_needs_sign_in_and_recovers_after_login(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path)
    acct = copilot_mock.accounts["alice"]
    acct.revoked = True
    with pytest.raises(NeedsSignIn) as ei:
        await p.send(call("gpt-4.1"))
    e = ei.value
    assert e.retryable and e.account == "alice" and e.provider == "copilot:alice" and e.status == 401
    assert "antiapi login copilot" in e.message and acct.github_token not in e.message
    q = p.quota()
    assert q.status == "needs_sign_in" and "antiapi login copilot" in q.detail
    # no more exchanges are tried with the revoked token; list_models still answers
    n = len(copilot_mock.calls("/copilot_internal/v2/token"))
    with pytest.raises(NeedsSignIn):
        await p.send(call("gpt-4.1"))
    assert "gpt-4.1" in await p.list_models()
    assert len(copilot_mock.calls("/copilot_internal/v2/token")) == n
    # `antiapi login copilot` again writes a new token: picked up without a restart
    acct.revoked = False
    acct.github_token = "ghu_new_token_after_login"
    CredentialStore(tmp_path).save("copilot", "alice", {"github_token": acct.github_token})
    assert p.quota().status == "ok"  # the router sees the account usable again at once
    assert await text_of(p, call("gpt-4.1")) == "copilot mock reply: hi"
    await p.aclose()


async def test_quota_exhausted_is_a_limit_with_reset_time_and_is_not_hammered(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path, premium_remaining=0)
    await p.refresh_quota()
    assert "claude-sonnet-4-5" in await p.list_models()
    with pytest.raises(LimitReached) as ei:
        await p.send(call("claude-sonnet-4-5"))
    e = ei.value
    assert e.retryable and e.code == "quota_exceeded" and e.resets_at == parse_time(RESET_DATE)
    q = p.quota()
    assert (q.status, q.limited_until) == ("limited", parse_time(RESET_DATE))
    n = len(chat_calls(copilot_mock))
    with pytest.raises(LimitReached):
        await p.send(call("claude-opus-4-5"))  # premium: not sent while the quota is out
    assert len(chat_calls(copilot_mock)) == n
    # models that do not use premium requests still work
    assert await text_of(p, call("gpt-4.1")) == "copilot mock reply: hi"
    await p.aclose()


async def test_quota_exhausted_with_retry_after(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path, premium_remaining=0, quota_retry_after="120")
    t0 = time.time()
    with pytest.raises(LimitReached) as ei:
        await p.send(call("claude-sonnet-4.5"))
    assert t0 + 119 <= ei.value.resets_at <= time.time() + 121 and ei.value.retry_after == 120
    await p.aclose()


async def test_rate_limit_is_retryable_and_honours_retry_after(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path)
    copilot_mock.accounts["alice"].faults.append(Error(429, retry_after=30))
    with pytest.raises(UpstreamHTTPError) as ei:
        await p.send(call("gpt-4.1"))
    e = ei.value
    assert not isinstance(e, LimitReached)
    assert (e.status, e.kind, e.retryable, e.retry_after) == (429, ErrorKind.RATE_LIMIT, True, 30.0)
    assert e.headers["x-ratelimit-exceeded"] == "global-chat"
    n = len(chat_calls(copilot_mock))
    with pytest.raises(UpstreamHTTPError) as ei:
        await p.send(call("gpt-4.1"))
    assert ei.value.status == 429 and 0 < ei.value.retry_after <= 30
    assert len(chat_calls(copilot_mock)) == n  # not sent during the retry-after
    await p.aclose()


async def test_per_model_capabilities_fail_fast(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path)
    await p.list_models()
    assert p.model_capabilities("gpt-4o-mini").images is False
    assert p.model_capabilities("o3-mini-text").tools is False
    assert p.model_capabilities("claude-sonnet-4-5").images is True
    assert p.model_capabilities("unknown-model") == p.capabilities
    n = len(copilot_mock.requests)
    with pytest.raises(Unsupported) as ei:
        await p.send(call("gpt-4o-mini", IMAGE))
    assert ei.value.status == 400 and "does not accept images" in ei.value.message
    with pytest.raises(Unsupported, match="does not support tools"):
        await p.send(call("o3-mini-text", tools=TOOLS))
    assert len(copilot_mock.requests) == n
    await p.aclose()


async def test_responses_only_model_goes_to_responses(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path)
    copilot_mock.enqueue(Reply([Text("from responses", chunks=3)]), "unknown catalog", "whole")
    # before the model list is known: /chat/completions says unsupported_api_for_model, then /responses
    assert await text_of(p, call("gpt-5.3-codex", stream=True)) == "from responses"
    calls = [(r.path, r.status) for r in copilot_mock.requests if r.method == "POST"]
    assert calls == [("/api-individual/chat/completions", 400), ("/api-individual/responses", 200)]
    body = copilot_mock.requests[-1].json
    assert body["model"] == "gpt-5.3-codex" and body["stream"] is True and body["input"][-1]["role"] == "user"
    assert "messages" not in body and body.get("service_tier") is None
    # afterwards straight to /responses, streamed or not
    await p.list_models()
    assert await text_of(p, call("gpt-5.3-codex", TOOL_TURN, tools=TOOLS)) == "unknown catalog"
    assert copilot_mock.requests[-1].headers["x-initiator"] == "agent"
    assert await text_of(p, call("gpt-5.3-codex")) == "whole"
    assert [r.path for r in copilot_mock.requests if r.method == "POST"][-2:] == ["/api-individual/responses"] * 2
    await p.aclose()


async def test_responses_bridge_carries_tool_calls(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path)
    await p.list_models()
    copilot_mock.enqueue(Reply([ToolCall("get_weather", {"city": "Paris"}, id="call_abc")]))
    resp = await p.send(call("gpt-5.3-codex", tools=TOOLS, stream=True))
    raw = (await resp.aread()).decode()
    await resp.aclose()
    chunks = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]
    calls = [tc for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or []]
    assert calls[0]["id"] == "call_abc" and calls[0]["function"]["name"] == "get_weather"
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"city":"Paris"}'
    assert raw.rstrip().endswith("data: [DONE]")
    await p.aclose()


async def test_list_models_soft_timeout_falls_back_then_fills_the_cache(copilot_factory, tmp_path):
    mock = copilot_factory(models_delay=1.0)
    p = provider(mock, tmp_path, options={"models_timeout": 0.2})
    t0 = time.monotonic()
    names = await p.list_models()
    assert time.monotonic() - t0 < 0.9
    assert names[:2] == ["claude-opus-4.5", "claude-opus-4-5"] and "claude-opus-4-5-thinking" in names
    assert "gpt-5.3-codex" not in names
    for _ in range(40):  # the sync goes on in the background
        if p.model_info("gpt-5.3-codex") is not None:
            break
        await asyncio.sleep(0.05)
    assert p.model_info("gpt-5.3-codex").responses_only
    names = await p.list_models()
    assert "gpt-5.3-codex" in names and "claude-sonnet-4-5-20250929" in names
    assert len(mock.calls("/models")) == 1  # cached
    await p.aclose()


async def test_mid_stream_drop_surfaces_as_stream_interrupted(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path)
    copilot_mock.enqueue(DropAfter(3, reply=Reply([Text("a long answer in many parts", chunks=8)])))
    resp = await p.send(call("gpt-4.1", stream=True))
    got = b""
    with pytest.raises(StreamInterrupted):
        async for chunk in resp.aiter_bytes():
            got += chunk
    await resp.aclose()
    assert got.count(b"data: ") == 3 and b"[DONE]" not in got
    await p.aclose()


async def test_background_quota_refresh_runs_on_a_schedule_and_after_429(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path, options={"quota_interval": 10})
    await p.start()
    for _ in range(100):
        if p.quota().source:
            break
        await asyncio.sleep(0.02)
    q = p.quota()
    assert (q.source, q.plan) == ("usage-endpoint", "individual")
    assert [w.name for w in q.windows] == ["premium_interactions", "chat", "completions"]
    polls = len(copilot_mock.calls("/copilot_internal/user"))
    copilot_mock.accounts["alice"].faults.append(Error(429, retry_after=1))
    with pytest.raises(UpstreamHTTPError):
        await p.send(call("gpt-4.1"))
    for _ in range(150):  # woken by the 429 (debounced by 1 s here)
        if len(copilot_mock.calls("/copilot_internal/user")) > polls:
            break
        await asyncio.sleep(0.02)
    assert len(copilot_mock.calls("/copilot_internal/user")) == polls + 1
    await p.aclose()
    assert p._bg is None
    n = len(copilot_mock.requests)
    await asyncio.sleep(0.1)
    assert len(copilot_mock.requests) == n


async def test_no_stored_sign_in_never_crashes(copilot_mock, tmp_path):
    pc = ProviderConfig(name="copilot:ghost", type="copilot", base_url="https://api.githubcopilot.com", account="ghost",
                        endpoints={"github": copilot_mock.root_url, "github_api": copilot_mock.root_url},
                        options={"quota_interval": 5})
    p = CopilotProvider(pc, data_dir=tmp_path, env={})
    await p.start()
    names = await p.list_models()
    assert "gpt-4.1" in names
    with pytest.raises(NeedsSignIn, match="antiapi login copilot"):
        await p.send(call("gpt-4.1"))
    assert p.quota().status == "needs_sign_in"
    await p.aclose()


async def test_secrets_stay_out_of_repr(copilot_mock, tmp_path):
    p = provider(copilot_mock, tmp_path)
    await text_of(p, call("gpt-4.1"))
    tok = p.tokens.current
    for obj in (p, p.tokens, tok, p.settings, p.quota()):
        r = repr(obj)
        assert copilot_mock.accounts["alice"].github_token not in r and tok.value not in r
    await p.aclose()


def test_insecure_tls_env_turns_verification_off(copilot_mock, tmp_path, caplog):
    p = provider(copilot_mock, tmp_path, env={"ANTI_API_COPILOT_INSECURE_TLS": "1"})
    assert p.settings.verify_tls is False
    assert "TLS CERTIFICATE VERIFICATION IS OFF" in caplog.text
    asyncio.run(p.aclose())

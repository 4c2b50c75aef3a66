"""Real SDK clients -> a real antiapi server -> the GitHub/Copilot mock."""

from __future__ import annotations

import asyncio
import json

import anthropic
import httpx
import openai
import pytest

from tests.e2e.clients import CLIENTS
from tests.mocks import DropAfter, Reply, Text, ToolCall, Usage
from tests.providers.copilot.conftest import pinned_config, sign_in, template_config

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")]

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture
def single(copilot_mock, gateway_factory):
    gw = gateway_factory(template_config(copilot_mock), prepare=sign_in(copilot_mock, "alice"))
    return gw, copilot_mock


def _chat_reqs(mock):
    return [r for r in mock.requests if r.path.endswith("/chat/completions") and r.status == 200]


def test_models_endpoint_lists_both_name_forms(single):
    gw, _ = single
    ids = {m["id"] for m in httpx.get(gw.url + "/v1/models").json()["data"]}
    assert {"claude-sonnet-4.5", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "claude-opus-4-5-thinking",
            "gpt-4.1", "gpt-5.3-codex"} <= ids
    assert "text-embedding-3-small" not in ids and "gpt-4o-2024-11-20" not in ids


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("client", list(CLIENTS))
def test_text(single, client, stream):
    gw, mock = single
    mock.enqueue(Reply([Text("Hello from Copilot, in pieces.", chunks=3)], usage=Usage(input_tokens=20, output_tokens=7)))
    c = CLIENTS[client](gw.url)
    r = c.send("claude-sonnet-4-5", [c.user("Say hello")], stream=stream, system="Be brief.")
    assert r.text == "Hello from Copilot, in pieces."
    [req] = _chat_reqs(mock)
    assert req.json["model"] == "claude-sonnet-4.5" and req.headers["x-initiator"] == "user"
    assert req.json["messages"][0] == {"role": "system", "content": "Be brief."}
    rec = gw.records()[-1]
    assert (rec.status, rec.model, rec.provider, rec.upstream_model) == (200, "claude-sonnet-4-5", "copilot:alice", "claude-sonnet-4-5")
    assert rec.output_tokens == 7


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("client", list(CLIENTS))
def test_tool_round_trip(single, client, stream):
    gw, mock = single
    mock.enqueue(Reply([Text("Let me check."), ToolCall("get_weather", {"city": "Paris"}, chunks=3)]),
                 Reply([Text("It is sunny in Paris.")]))
    c = CLIENTS[client](gw.url)
    msgs = [c.user("Weather in Paris?")]
    r1 = c.send("gpt-4.1", msgs, stream=stream, tools=True)
    assert [(n, a) for _, n, a in r1.tool_calls] == [("get_weather", {"city": "Paris"})]
    if client == "openai_responses":
        msgs = msgs + r1.assistant + c.tool_results(r1.tool_calls, ["sunny, 24C"])
    else:
        msgs = msgs + [r1.assistant] + c.tool_results(r1.tool_calls, ["sunny, 24C"])
    r2 = c.send("gpt-4.1", msgs, stream=stream, tools=True)
    assert r2.text == "It is sunny in Paris."
    first, second = _chat_reqs(mock)
    assert (first.headers["x-initiator"], second.headers["x-initiator"]) == ("user", "agent")
    assert first.json["tools"][0]["function"]["name"] == "get_weather"
    tool_msg = second.json["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["content"] == "sunny, 24C"
    assert tool_msg["tool_call_id"] == second.json["messages"][-2]["tool_calls"][0]["id"]


def test_image_to_a_vision_model_and_to_a_text_only_model(single):
    gw, mock = single
    c = CLIENTS["anthropic"](gw.url)
    mock.enqueue("A single pixel.")
    assert c.send("gpt-4o", [c.user("What is it?", image_b64=PNG_1PX)], stream=True).text == "A single pixel."
    assert _chat_reqs(mock)[-1].headers["copilot-vision-request"] == "true"
    n = len(mock.requests)
    with pytest.raises(anthropic.BadRequestError) as ei:
        c.send("gpt-4o-mini", [c.user("What is it?", image_b64=PNG_1PX)], stream=False)
    assert "does not accept images" in str(ei.value)
    assert len(mock.requests) == n  # failed fast, nothing sent


def test_responses_only_model_through_the_gateway(single):
    gw, mock = single
    mock.enqueue(Reply([Text("codex model here", chunks=2)]))
    c = CLIENTS["openai_responses"](gw.url)
    assert c.send("gpt-5.3-codex", [c.user("hi")], stream=True).text == "codex model here"
    assert mock.requests[-1].path == "/api-individual/responses" and mock.requests[-1].status == 200


def test_quota_exhausted_on_account_a_is_served_by_account_b(copilot_mock, gateway_factory):
    copilot_mock.add_account("alice", premium_remaining=0)
    copilot_mock.add_account("bob")
    gw = gateway_factory(pinned_config(copilot_mock, ["alice", "bob"], ["claude-sonnet-4-5"]),
                         prepare=sign_in(copilot_mock, "alice", "bob"))
    sdk = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    for i in range(2):
        resp = sdk.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=50,
                                                      messages=[{"role": "user", "content": f"q{i}"}])
        assert resp.headers["x-antiapi-provider"] == "cp-bob"
        assert resp.parse().content[0].text == f"copilot mock reply: q{i}"
    posts = [(r.account, r.status) for r in copilot_mock.requests if r.path.endswith("/chat/completions")]
    # alice answered 402 once; after that she is skipped until her quota resets (not hammered)
    assert posts == [("alice", 402), ("bob", 200), ("bob", 200)]
    assert copilot_mock.accounts["bob"].premium_used == 2
    recs = gw.records(at_least=2)
    assert recs[0].attempts and recs[0].attempts[0].startswith("cp-alice/claude-sonnet-4-5: 429")


def test_every_account_exhausted_gives_the_client_a_rate_limit(copilot_mock, gateway_factory):
    copilot_mock.add_account("alice", premium_remaining=0)
    gw = gateway_factory(pinned_config(copilot_mock, ["alice"], ["claude-sonnet-4-5"]), prepare=sign_in(copilot_mock, "alice"))
    sdk = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as ei:
        sdk.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    assert "quota" in str(ei.value)
    with pytest.raises(openai.RateLimitError) as ei:  # now skipped without asking Copilot
        sdk.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    assert len(copilot_mock.calls("/chat/completions")) == 1


def test_revoked_account_fails_over_and_alone_asks_to_sign_in(copilot_mock, gateway_factory):
    copilot_mock.add_account("alice", revoked=True)
    copilot_mock.add_account("bob")
    gw = gateway_factory(pinned_config(copilot_mock, ["alice", "bob"], ["gpt-4.1"]), prepare=sign_in(copilot_mock, "alice", "bob"))
    sdk = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    r = sdk.chat.completions.with_raw_response.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert r.headers["x-antiapi-provider"] == "cp-bob"
    assert gw.providers["cp-alice"].quota().status == "needs_sign_in"
    gw2 = gateway_factory(pinned_config(copilot_mock, ["alice"], ["gpt-4.1"]), prepare=sign_in(copilot_mock, "alice"))
    sdk2 = openai.OpenAI(base_url=gw2.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIStatusError) as ei:
        sdk2.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    # the router skips an account whose quota() says needs_sign_in; the provider's own error and
    # its quota detail name the command that fixes it
    assert ei.value.status_code in (401, 503) and "sign" in str(ei.value)
    q = gw2.providers["cp-alice"].quota()
    assert q.status == "needs_sign_in" and "antiapi login copilot" in q.detail
    assert httpx.get(gw2.url + "/health").status_code == 200  # the server is fine


def test_fifty_concurrent_requests_across_token_expiry_one_exchange(copilot_factory, gateway_factory):
    mock = copilot_factory(exchange_delay=0.1)
    gw = gateway_factory(template_config(mock), prepare=sign_in(mock, "alice"))
    assert mock.exchanges() == 1  # the model sync at start
    mock.expire_tokens()  # every Copilot token issued so far is now refused: 401 "token expired"

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/v1/chat/completions", json={
                "model": "gpt-4.1", "stream": i % 2 == 0, "messages": [{"role": "user", "content": f"n{i}"}]})
                for i in range(50)))

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 50
    for i, r in enumerate(responses):
        if i % 2:
            assert r.json()["choices"][0]["message"]["content"] == f"copilot mock reply: n{i}"
        else:
            assert f"n{i}" in "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                                      for line in r.text.splitlines()
                                      if line.startswith("data: {") and json.loads(line[6:])["choices"])
    assert mock.exchanges() == 2  # exactly one exchange for all 50


def test_mid_stream_drop_reaches_the_client_as_a_stream_error(single):
    gw, mock = single
    mock.enqueue(DropAfter(4, reply=Reply([Text("this answer is cut off halfway through", chunks=8)])))
    sdk = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    got = ""
    with pytest.raises(openai.APIError):
        for chunk in sdk.chat.completions.create(model="gpt-4.1", stream=True,
                                                 messages=[{"role": "user", "content": "hi"}]):
            for ch in chunk.choices:
                got += ch.delta.content or ""
    assert got and "this answer is cut off halfway through".startswith(got) and got != "this answer is cut off halfway through"
    rec = gw.records()[-1]
    assert rec.status >= 500 and rec.provider == "copilot:alice"


def test_max_tokens_is_clamped_to_the_model_limit(single):
    gw, mock = single
    sdk = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    sdk.chat.completions.create(model="gpt-4.1", max_tokens=64000, messages=[{"role": "user", "content": "hi"}])
    assert _chat_reqs(mock)[-1].json["max_tokens"] == 16384

"""Every client dialect x every upstream dialect, streamed and not, through a real antiapi
server, with the official SDKs as clients and the faithful mocks as upstreams."""

from __future__ import annotations

import json

import pytest

from tests.e2e.clients import CLIENTS
from tests.mocks import Reply, Text, Thinking, ToolCall, Usage

pytestmark = pytest.mark.e2e

UPSTREAMS = {
    # model name: (provider block, upstream model, mock path fragment)
    "m-chat": ("up-chat", "gpt-4.1", "/v1/chat/completions"),
    "m-resp": ("up-resp", "gpt-5.2", "/v1/responses"),
    "m-anthropic": ("up-anthropic", "claude-sonnet-4-5", "/v1/messages"),
    "m-gemini": ("up-gemini", "gemini-2.5-pro", "enerateContent"),
}

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def matrix_config(root: str) -> str:
    return f"""
providers:
  up-chat: {{type: openai, base_url: "{root}/v1", api_key: test-key}}
  up-resp: {{type: openai, base_url: "{root}/v1", api_key: test-key, api: responses}}
  up-anthropic: {{type: anthropic, base_url: "{root}", api_key: test-key}}
  up-gemini: {{type: gemini, base_url: "{root}", api_key: test-key}}
models:
  - {{name: m-chat, provider: up-chat, model: gpt-4.1}}
  - {{name: m-resp, provider: up-resp, model: gpt-5.2}}
  - {{name: m-anthropic, provider: up-anthropic, model: claude-sonnet-4-5}}
  - {{name: m-gemini, provider: up-gemini, model: gemini-2.5-pro}}
"""


@pytest.fixture
def env(mock_upstream, gateway_factory):
    gw = gateway_factory(matrix_config(mock_upstream.root_url))
    return gw, mock_upstream


def _last(mock, fragment):
    reqs = [r for r in mock.requests if fragment in r.path]
    assert reqs, f"no upstream request to {fragment}: {[r.path for r in mock.requests]}"
    return reqs[-1]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("model", list(UPSTREAMS))
@pytest.mark.parametrize("client", list(CLIENTS))
def test_text(env, client, model, stream):
    gw, mock = env
    mock.enqueue(Reply([Text("Hello from the upstream, in three pieces.", chunks=3)], usage=Usage(input_tokens=21, output_tokens=9)))
    c = CLIENTS[client](gw.url)
    r = c.send(model, [c.user("Say hello")], stream=stream, system="Be brief.")
    assert r.text == "Hello from the upstream, in three pieces."
    assert r.tool_calls == []
    up = _last(mock, UPSTREAMS[model][2])
    body = up.json
    # the system prompt reached the upstream in its own place
    assert "Be brief." in json.dumps(body)
    if "model" in body:
        assert body["model"] == UPSTREAMS[model][1]
    rec = gw.records()[-1]
    assert (rec.status, rec.model, rec.provider) == (200, model, UPSTREAMS[model][0])
    assert rec.output_tokens == 9


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("model", list(UPSTREAMS))
@pytest.mark.parametrize("client", list(CLIENTS))
def test_tool_round_trip(env, client, model, stream):
    gw, mock = env
    mock.enqueue(Reply([Text("Let me check."), ToolCall("get_weather", {"city": "Paris"}, chunks=3)]))
    mock.enqueue(Reply([Text("It is sunny in Paris.")]))
    c = CLIENTS[client](gw.url)
    history = [c.user("Weather in Paris?")]
    r1 = c.send(model, history, stream=stream, tools=True)
    assert [(n, a) for _, n, a in r1.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert r1.stop in ("tool_use", "tool_calls", "completed")
    # send the result back; the mock validates the history the way the real API does
    history = history + (r1.assistant if isinstance(r1.assistant, list) else [r1.assistant])
    history += c.tool_results(r1.tool_calls, ["sunny, 24C"])
    r2 = c.send(model, history, stream=stream, tools=True)
    assert r2.text == "It is sunny in Paris."
    assert "sunny, 24C" in json.dumps(_last(mock, UPSTREAMS[model][2]).json)


@pytest.mark.parametrize("model", ["m-chat", "m-resp", "m-anthropic", "m-gemini"])
@pytest.mark.parametrize("client", list(CLIENTS))
def test_parallel_tools_interleaved(env, client, model):
    gw, mock = env
    mock.enqueue(Reply(
        [ToolCall("get_weather", {"city": "Paris"}, chunks=4), ToolCall("get_weather", {"city": "Tokyo"}, chunks=4)],
        parallel_interleaved=True,
    ))
    c = CLIENTS[client](gw.url)
    r = c.send(model, [c.user("Weather in Paris and Tokyo?")], stream=True, tools=True)
    assert [a for _, _, a in r.tool_calls] == [{"city": "Paris"}, {"city": "Tokyo"}]
    assert len({i for i, _, _ in r.tool_calls}) == 2


@pytest.mark.parametrize("model", list(UPSTREAMS))
@pytest.mark.parametrize("client", list(CLIENTS))
def test_image_reaches_upstream(env, client, model):
    gw, mock = env
    mock.enqueue(Reply([Text("A single pixel.")]))
    c = CLIENTS[client](gw.url)
    r = c.send(model, [c.user("What is this?", image_b64=PNG_1PX)], stream=True)
    assert r.text == "A single pixel."
    assert PNG_1PX in json.dumps(_last(mock, UPSTREAMS[model][2]).json)


@pytest.mark.parametrize("client", list(CLIENTS))
def test_reasoning_from_a_chat_upstream_is_surfaced(env, client):
    gw, mock = env
    mock.enqueue(Reply([Thinking("Paris is in France."), Text("Paris.")]))
    c = CLIENTS[client](gw.url)
    kw = {}
    if client == "anthropic":
        kw = {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 4096}
    elif client == "openai_responses":
        kw = {"reasoning": {"effort": "medium", "summary": "auto"}}
    r = c.send("m-chat", [c.user("Capital of France?")], stream=True, **kw)
    assert r.text == "Paris."
    if client != "openai_chat":
        assert r.reasoning == "Paris is in France."

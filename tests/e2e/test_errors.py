"""Errors reach each client in its own wire format, with the right status, through a real
server: bad input, unknown models, upstream errors and limits, drops, stalls, disconnects."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import openai
import pytest

from tests.e2e.test_sdk_matrix import matrix_config
from tests.mocks import DropAfter, Error, MidStreamError, Reply, Stall, Text

pytestmark = pytest.mark.e2e

ENDPOINTS = {
    "openai_chat": ("/v1/chat/completions", {"model": "m-chat", "messages": [{"role": "user", "content": "hi"}]}),
    "openai_responses": ("/v1/responses", {"model": "m-chat", "input": "hi"}),
    "anthropic": ("/v1/messages", {"model": "m-chat", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}),
}


@pytest.fixture
def env(mock_upstream, gateway_factory):
    gw = gateway_factory(matrix_config(mock_upstream.root_url))
    return gw, mock_upstream


def _assert_dialect_error(resp: httpx.Response, dialect: str, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers.get("request-id", "").startswith("req_")
    assert resp.headers.get("x-request-id") == resp.headers["request-id"]
    body = resp.json()
    if dialect == "anthropic":
        assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}
    else:
        assert set(body["error"]) >= {"message", "type"}
    assert "Traceback" not in resp.text
    return body["error"]


@pytest.mark.parametrize("dialect", list(ENDPOINTS))
def test_malformed_json_is_400_in_the_callers_format(env, dialect):
    gw, _ = env
    path, _ = ENDPOINTS[dialect]
    r = httpx.post(gw.url + path, content=b'{"model": "m-chat", "messages": [', headers={"content-type": "application/json"})
    err = _assert_dialect_error(r, dialect, 400)
    assert "not valid JSON" in err["message"]


@pytest.mark.parametrize("dialect", list(ENDPOINTS))
def test_missing_model_and_wrong_types_are_400_naming_the_field(env, dialect):
    gw, _ = env
    path, body = ENDPOINTS[dialect]
    r = httpx.post(gw.url + path, json={k: v for k, v in body.items() if k != "model"})
    assert "model" in _assert_dialect_error(r, dialect, 400)["message"]
    r = httpx.post(gw.url + path, json={**body, "model": 42})
    assert "model" in _assert_dialect_error(r, dialect, 400)["message"]


@pytest.mark.parametrize("dialect", ["openai_responses", "anthropic"])
def test_invalid_content_is_400_with_a_path_before_reaching_the_upstream(env, dialect):
    gw, mock = env
    path, body = ENDPOINTS[dialect]
    bad = dict(body)
    if dialect == "anthropic":
        bad["messages"] = [{"role": "wizard", "content": "hi"}]
    else:
        bad["input"] = [{"type": "message", "role": "user", "content": 7}]
    r = httpx.post(gw.url + path, json=bad)
    err = _assert_dialect_error(r, dialect, 400)
    assert "[0]" in err["message"]
    assert mock.requests == []


def test_unknown_model_lists_what_exists(env):
    gw, _ = env
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "hi"}])
    msg = e.value.body["message"]
    assert "gpt-nope" in msg and "m-chat" in msg and "m-anthropic" in msg
    assert e.value.body["code"] == "model_not_found"
    ac = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as e2:
        ac.messages.create(model="claude-nope", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert e2.value.body["error"]["type"] == "invalid_request_error"
    assert gw.records()[-1].status == 400


def test_body_too_large_is_413(mock_upstream, gateway_factory):
    cfg = matrix_config(mock_upstream.root_url) + "server:\n  max_body_mb: 0.01\n"
    gw = gateway_factory(cfg)
    big = {"model": "m-chat", "max_tokens": 10, "messages": [{"role": "user", "content": "x" * 50_000}]}
    r = httpx.post(gw.url + "/v1/messages", json=big)
    assert "too large" in _assert_dialect_error(r, "anthropic", 413)["message"]
    r = httpx.post(gw.url + "/v1/chat/completions", json=big)
    _assert_dialect_error(r, "openai_chat", 413)


def test_unknown_endpoint_is_404_in_openai_format(env):
    gw, _ = env
    r = httpx.post(gw.url + "/v1/embeddings", json={"model": "m-chat", "input": "x"})
    assert "Unknown endpoint" in _assert_dialect_error(r, "openai_chat", 404)["message"]


@pytest.mark.parametrize("model", ["m-chat", "m-anthropic", "m-gemini"])
def test_upstream_429_keeps_retry_after_and_is_the_sdks_rate_limit_error(env, model):
    gw, mock = env
    mock.enqueue(Error.rate_limit(retry_after=7))
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert e.value.response.headers["retry-after"] == "7"
    mock.enqueue(Error.rate_limit(retry_after=7))
    ac = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as e2:
        ac.messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert e2.value.response.headers["retry-after"] == "7"
    assert e2.value.body["error"]["type"] == "rate_limit_error"
    rec = gw.records(2)[-1]
    assert rec.status == 429 and rec.error


def test_anthropic_overloaded_529_is_503_for_openai_clients_and_529_for_anthropic_clients(env):
    gw, mock = env
    mock.enqueue(Error.overloaded())
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="m-anthropic", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 503
    mock.enqueue(Error.overloaded())
    r = httpx.post(gw.url + "/v1/messages", json=ENDPOINTS["anthropic"][1] | {"model": "m-anthropic"})
    assert _assert_dialect_error(r, "anthropic", 529)["type"] == "overloaded_error"


def test_upstream_400_keeps_status_and_the_upstream_message(env):
    gw, mock = env
    mock.enqueue(Error(400, message="This model's maximum context length is 8192 tokens.", code="context_length_exceeded"))
    ac = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as e:
        ac.messages.create(model="m-chat", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert "maximum context length" in e.value.body["error"]["message"]
    assert e.value.body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("model", ["m-chat", "m-anthropic", "m-resp"])
def test_drop_mid_stream_ends_with_an_error_event_for_anthropic_clients(env, model):
    gw, mock = env
    mock.enqueue(DropAfter(3, reply=Reply([Text("one two three four five six seven eight", chunks=8)])))
    with httpx.stream("POST", gw.url + "/v1/messages", json={**ENDPOINTS["anthropic"][1], "model": model, "stream": True}) as r:
        assert r.status_code == 200
        raw = r.read().decode()
    events = [line[7:] for line in raw.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start"
    assert events[-1] == "error"
    assert "message_stop" not in events
    last = json.loads(raw.strip().splitlines()[-1][6:])
    assert last["type"] == "error" and last["error"]["type"] == "api_error"
    assert gw.records()[-1].status >= 500


@pytest.mark.parametrize("model", ["m-chat", "m-anthropic"])
def test_drop_mid_stream_raises_in_the_openai_sdk(env, model):
    gw, mock = env
    mock.enqueue(DropAfter(6, reply=Reply([Text("one two three four five six seven eight", chunks=8)])))
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    got = ""
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True):
            got += "".join(c.delta.content or "" for c in chunk.choices)
    assert got.startswith("one")


def test_mid_stream_upstream_error_event_reaches_responses_clients_as_response_failed(env):
    gw, mock = env
    mock.enqueue(MidStreamError(after_events=2, reply=Reply([Text("partial answer here", chunks=4)])))
    with httpx.stream("POST", gw.url + "/v1/responses", json={"model": "m-anthropic", "input": "hi", "stream": True}) as r:
        raw = r.read().decode()
    types = [json.loads(l[6:])["type"] for l in raw.splitlines() if l.startswith("data: ")]
    assert types[0] == "response.created" and types[-1] == "response.failed"
    assert "response.completed" not in types


def test_idle_timeout_mid_stream_becomes_an_error_event(mock_upstream, gateway_factory):
    cfg = matrix_config(mock_upstream.root_url) + "server:\n  timeouts: {idle: 0.5}\n"
    gw = gateway_factory(cfg)
    mock_upstream.enqueue(Stall(5, after_events=2, reply=Reply([Text("a b c d e f", chunks=6)])))
    t0 = time.monotonic()
    with httpx.stream("POST", gw.url + "/v1/messages", json={**ENDPOINTS["anthropic"][1], "model": "m-chat", "stream": True}) as r:
        raw = r.read().decode()
    assert time.monotonic() - t0 < 4
    assert "event: error" in raw and "idle timeout" in raw


def test_unreachable_upstream_is_a_clear_502(gateway_factory):
    gw = gateway_factory(
        "providers:\n  dead: {type: openai, base_url: 'http://127.0.0.1:9/v1', api_key: k}\n"
        "models:\n  - {name: m, provider: dead}\n"
    )
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    err = _assert_dialect_error(r, "openai_chat", 502)
    assert "cannot connect" in err["message"] and "dead" in err["message"]


def test_client_disconnect_cancels_the_upstream_request(env):
    gw, mock = env
    mock.enqueue(Stall(30, after_events=2, reply=Reply([Text("a b c d e f", chunks=6)])))
    with httpx.stream("POST", gw.url + "/v1/messages", json={**ENDPOINTS["anthropic"][1], "model": "m-chat", "stream": True}) as r:
        for _ in r.iter_bytes():
            break  # read the first bytes, then hang up
    deadline = time.monotonic() + 5
    while not mock.requests[-1].disconnected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mock.requests[-1].disconnected, "antiapi kept the upstream request open after the client left"
    rec = gw.records()[-1]
    assert rec.status == 499 and rec.error == "client disconnected"


def test_failover_to_the_next_deployment_before_the_first_byte(mock_upstream_factory, gateway_factory):
    a, b = mock_upstream_factory("openai_chat"), mock_upstream_factory("anthropic")
    gw = gateway_factory(
        f"providers:\n  a: {{type: openai, base_url: '{a.root_url}/v1', api_key: test-key}}\n"
        f"  b: {{type: anthropic, base_url: '{b.root_url}', api_key: test-key}}\n"
        "models:\n  - {name: m, provider: a, model: gpt-4.1}\n  - {name: m, provider: b, model: claude-sonnet-4-5}\n"
    )
    a.enqueue(Error.rate_limit(retry_after=30))
    b.enqueue(Reply([Text("served by b")]))
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "served by b"
    rec = gw.records()[-1]
    assert rec.provider == "b" and rec.attempts and rec.attempts[0].startswith("a/gpt-4.1: 429")
    # streamed too
    a.enqueue(Error(503, message="upstream busy"))
    b.enqueue(Reply([Text("streamed by b")]))
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        if c.choices
    )
    assert text == "streamed by b"

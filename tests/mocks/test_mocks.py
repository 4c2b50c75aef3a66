"""Tests of the mock upstreams themselves: the official SDKs and raw httpx against MockUpstream."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.mocks import (
    RECORDED_DIR,
    Delay,
    DropAfter,
    Error,
    MidStreamError,
    MockUpstream,
    Raw,
    Recorded,
    RedactedThinking,
    Reply,
    Stall,
    Text,
    Thinking,
    ToolCall,
    Usage,
)
from tests.mocks.fixtures import mock_upstream_factory  # noqa: F401  (fixture)

KEY = "test-key"
ANTH_H = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
OAI_H = {"authorization": f"Bearer {KEY}"}
GEM_H = {"x-goog-api-key": KEY}
USER_HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def server() -> Any:
    with MockUpstream() as m:
        yield m
    _HTTP.close()


@pytest.fixture
def mock(server: MockUpstream) -> Any:
    server.reset()
    yield server
    assert server.errors == []  # nothing blew up inside the mock
    server.reset()


@pytest.fixture
def oai(mock: MockUpstream) -> Any:
    with openai.OpenAI(base_url=mock.openai_base_url, api_key=KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def anth(mock: MockUpstream) -> Any:
    with anthropic.Anthropic(base_url=mock.anthropic_base_url, api_key=KEY, max_retries=0) as client:
        yield client


def frames(raw: bytes) -> list[tuple[str | None, str]]:
    """Independent SSE split: (event name, data) per frame; accepts \\n\\n and \\r\\n\\r\\n."""
    text = raw.decode().replace("\r\n", "\n")
    out = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        out.append((event, "\n".join(data)))
    return out


_HTTP = httpx.Client(timeout=5)


def post(mock: MockUpstream, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return _HTTP.post(mock.root_url + path, json=body, headers=headers)


def anth_body(**kw: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "max_tokens": 2048, "messages": USER_HI, **kw}


# --------------------------------------------------------------------------- OpenAI Chat


def test_chat_non_stream_all_parts(mock: MockUpstream, oai: openai.OpenAI) -> None:
    mock.enqueue(Reply([Thinking("ponder"), Text("Sure."), ToolCall("get_weather", {"city": "Paris"}, id="call_a")],
                       usage=Usage(input_tokens=100, output_tokens=20, cached_tokens=30, reasoning_tokens=5)))
    r = oai.chat.completions.with_raw_response.create(model="gpt-4.1", messages=USER_HI)
    c = r.parse()
    assert r.headers["x-request-id"].startswith("req_")
    assert r.headers["x-ratelimit-remaining-requests"] == "9999"
    msg = c.choices[0].message
    assert msg.content == "Sure."
    assert msg.model_extra["reasoning_content"] == "ponder"
    assert msg.tool_calls[0].id == "call_a"
    assert msg.tool_calls[0].function.name == "get_weather"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"city": "Paris"}
    assert c.choices[0].finish_reason == "tool_calls"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == (100, 20, 120)
    assert c.usage.prompt_tokens_details.cached_tokens == 30
    assert c.usage.completion_tokens_details.reasoning_tokens == 5
    assert c.object == "chat.completion" and c.model == "gpt-4.1"


def test_chat_stream_text_and_include_usage(mock: MockUpstream, oai: openai.OpenAI) -> None:
    mock.enqueue(Reply([Text(["Hel", "lo", "!"])], usage=Usage(input_tokens=7, output_tokens=3)))
    chunks = list(oai.chat.completions.create(model="gpt-4.1", messages=USER_HI, stream=True,
                                              stream_options={"include_usage": True}))
    assert [c.choices[0].delta.content for c in chunks[:-2]] == ["", "Hel", "lo", "!"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-2].usage is None
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (7, 3)


def test_chat_stream_without_include_usage_has_no_usage_and_ends_with_done(mock: MockUpstream) -> None:
    mock.enqueue(Text("ab", chunks=2))
    r = post(mock, "/v1/chat/completions", {"model": "gpt-4.1", "messages": USER_HI, "stream": True}, OAI_H)
    assert r.headers["content-type"].startswith("text/event-stream")
    fr = frames(r.content)
    assert all(ev is None for ev, _ in fr)
    assert fr[-1] == (None, "[DONE]")
    chunks = [json.loads(d) for _, d in fr[:-1]]
    assert all("usage" not in c for c in chunks)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "a", "b", None]
    assert r.content.endswith(b"data: [DONE]\n\n")


def test_chat_stream_parallel_tool_calls_interleaved_by_index(mock: MockUpstream, oai: openai.OpenAI) -> None:
    mock.enqueue(Reply([ToolCall("a", {"x": 1}, id="call_1", chunks=2), ToolCall("b", {"y": 22}, id="call_2", chunks=3)],
                       parallel_interleaved=True))
    r = post(mock, "/v1/chat/completions", {"model": "gpt-4.1", "messages": USER_HI, "stream": True}, OAI_H)
    deltas = [json.loads(d)["choices"][0]["delta"].get("tool_calls") for _, d in frames(r.content)[:-1]]
    order = [tc[0]["index"] for tc in deltas if tc]
    assert order == [0, 1, 0, 1, 0, 1, 1]
    mock.enqueue(Reply([ToolCall("a", {"x": 1}, id="call_1"), ToolCall("b", {"y": 22}, id="call_2")],
                       parallel_interleaved=True))
    with oai.chat.completions.stream(model="gpt-4.1", messages=USER_HI) as s:
        final = s.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [(t.id, t.function.name, t.function.arguments) for t in calls] == [
        ("call_1", "a", '{"x":1}'), ("call_2", "b", '{"y":22}')]
    assert final.choices[0].finish_reason == "tool_calls"


def test_chat_errors_rate_limit_vs_quota(mock: MockUpstream, oai: openai.OpenAI) -> None:
    mock.enqueue(Error.rate_limit(retry_after=7), Error.insufficient_quota())
    with pytest.raises(openai.RateLimitError) as ei:
        oai.chat.completions.create(model="gpt-4.1", messages=USER_HI)
    assert ei.value.response.headers["retry-after"] == "7"
    assert ei.value.code == "rate_limit_exceeded"
    assert ei.value.type == "tokens"
    assert "Please try again in 7s" in ei.value.message
    with pytest.raises(openai.RateLimitError) as ei:
        oai.chat.completions.create(model="gpt-4.1", messages=USER_HI)
    assert ei.value.code == "insufficient_quota" and ei.value.type == "insufficient_quota"
    assert "retry-after" not in ei.value.response.headers
    assert set(ei.value.body) == {"message", "type", "param", "code"}


def test_openai_sdk_retries_after_retry_after(mock: MockUpstream) -> None:
    mock.enqueue(Error(503, retry_after=0.05), Text("second"))
    with openai.OpenAI(base_url=mock.base_url, api_key=KEY, max_retries=1) as client:
        c = client.chat.completions.create(model="gpt-4.1", messages=USER_HI)
    assert c.choices[0].message.content == "second"
    assert [q.status for q in mock.requests] == [503, 200]


def test_chat_drop_after_raises_connection_error(mock: MockUpstream, oai: openai.OpenAI) -> None:
    mock.enqueue(DropAfter(2))
    got = []
    with pytest.raises(openai.APIConnectionError):
        for c in oai.chat.completions.create(model="gpt-4.1", messages=USER_HI, stream=True):
            got.append(c)
    assert len(got) == 2


def test_chat_clean_drop_ends_without_done(mock: MockUpstream) -> None:
    mock.enqueue(DropAfter(99, reply=Text("abc", chunks=3), abrupt=False))
    r = post(mock, "/v1/chat/completions", {"model": "gpt-4.1", "messages": USER_HI, "stream": True}, OAI_H)
    fr = frames(r.content)
    assert (None, "[DONE]") not in fr
    assert json.loads(fr[-1][1])["choices"][0]["finish_reason"] == "stop"  # everything but the terminal


def test_chat_mid_stream_error(mock: MockUpstream, oai: openai.OpenAI) -> None:
    mock.enqueue(MidStreamError(2))
    with pytest.raises(openai.APIError) as ei:
        list(oai.chat.completions.create(model="gpt-4.1", messages=USER_HI, stream=True))
    assert ei.value.body["type"] == "server_error"
    r = post(mock, "/v1/chat/completions", {"model": "gpt-4.1", "messages": USER_HI, "stream": True}, OAI_H)
    assert frames(r.content)[-1] == (None, "[DONE]")  # the queue was consumed: default reply now


def test_chat_validation(mock: MockUpstream, oai: openai.OpenAI) -> None:
    mock.enqueue(Text("kept"))
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="gpt-4.1", messages=[
            {"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "1"}])
    assert "must be a response to a preceeding message with 'tool_calls'" in ei.value.message
    assert ei.value.param == "messages.[1].role"
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="gpt-4.1", messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "1"},
            {"role": "user", "content": "next"}])
    assert ei.value.message.endswith("did not have response messages: call_2")
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="o3-mini", messages=USER_HI, max_tokens=10)
    assert ei.value.body["message"].startswith("Unsupported parameter: 'max_tokens' is not supported with this model.")
    assert ei.value.code == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="gpt-4.1", messages=USER_HI, tools=[
            {"type": "function", "function": {"name": "bad name", "parameters": {}}}])
    assert ei.value.param == "tools[0].function.name"
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="gpt-4.1", messages=USER_HI, extra_body={"thinking": {}})
    assert ei.value.body["message"] == "Unrecognized request argument supplied: thinking"
    # a valid history with results passes, and rejected requests did not consume the script
    c = oai.chat.completions.create(model="gpt-4.1", max_tokens=5, messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "1"}])
    assert c.choices[0].message.content == "kept"


def test_validation_can_be_turned_off(mock_upstream_factory: Any) -> None:  # noqa: F811
    m = mock_upstream_factory("openai_chat", validate=False)
    r = post(m, "/v1/chat/completions", {"model": "o3", "max_tokens": 1, "messages": [
        {"role": "tool", "tool_call_id": "x", "content": "1"}], "bogus": 1}, OAI_H)
    assert r.status_code == 200


# --------------------------------------------------------------------------- OpenAI Responses


def test_responses_stream_full_event_order(mock: MockUpstream, oai: openai.OpenAI) -> None:
    mock.enqueue(Reply([Thinking("plan", signature="enc_abc", chunks=1), Text("Hi", chunks=1),
                        ToolCall("lookup", {"q": "x"}, id="call_9", chunks=1)],
                       usage=Usage(input_tokens=50, output_tokens=12, cached_tokens=8, reasoning_tokens=4)))
    with oai.responses.stream(model="gpt-5", input="hi", include=["reasoning.encrypted_content"]) as s:
        events = list(s)
        final = s.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call"]
    assert final.output[0].encrypted_content == "enc_abc"
    assert final.output[0].summary[0].text == "plan"
    assert final.output_text == "Hi"
    assert (final.output[2].call_id, final.output[2].arguments) == ("call_9", '{"q":"x"}')
    assert final.usage.input_tokens == 50 and final.usage.input_tokens_details.cached_tokens == 8
    assert final.usage.output_tokens_details.reasoning_tokens == 4 and final.usage.total_tokens == 62
    assert final.status == "completed"


def test_responses_raw_framing_and_no_encrypted_content_unless_included(mock: MockUpstream) -> None:
    mock.enqueue(Reply([Thinking("t"), Text("x")]))
    r = post(mock, "/v1/responses", {"model": "gpt-5", "input": "hi", "stream": True}, OAI_H)
    fr = frames(r.content)
    for ev, data in fr:
        assert json.loads(data)["type"] == ev
    done = [json.loads(d) for e, d in fr if e == "response.output_item.done"]
    assert "encrypted_content" not in done[0]["item"]
    assert r.content.endswith(b"\n\n") and b"[DONE]" not in r.content


def test_responses_non_stream_and_incomplete(mock: MockUpstream, oai: openai.OpenAI) -> None:
    mock.enqueue(Text("done text"), Reply([Text("cut")], stop_reason="max_tokens"))
    resp = oai.responses.create(model="gpt-5", input=[{"role": "user", "content": "hi"}], instructions="be brief")
    assert resp.output_text == "done text" and resp.instructions == "be brief"
    resp = oai.responses.create(model="gpt-5", input="hi")
    assert resp.status == "incomplete" and resp.incomplete_details.reason == "max_output_tokens"


def test_responses_mid_stream_failed_and_drop(mock: MockUpstream, oai: openai.OpenAI) -> None:
    mock.enqueue(MidStreamError(2, code="rate_limit_exceeded", message="try again in 1.5s"))
    r = post(mock, "/v1/responses", {"model": "gpt-5", "input": "hi", "stream": True}, OAI_H)
    fr = frames(r.content)
    assert [e for e, _ in fr] == ["response.created", "response.in_progress", "response.failed"]
    failed = json.loads(fr[-1][1])
    assert failed["sequence_number"] == 2
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "rate_limit_exceeded", "message": "try again in 1.5s"}
    mock.enqueue(MidStreamError(2, error_event=True))
    r = post(mock, "/v1/responses", {"model": "gpt-5", "input": "hi", "stream": True}, OAI_H)
    assert [e for e, _ in frames(r.content)][-2:] == ["error", "response.failed"]
    mock.enqueue(DropAfter(4, abrupt=False))
    with pytest.raises(RuntimeError, match="response.completed"):
        with oai.responses.stream(model="gpt-5", input="hi") as s:
            assert len(list(s)) == 4
            s.get_final_response()


def test_responses_validation(mock: MockUpstream, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as ei:
        oai.responses.create(model="gpt-5", input=[
            {"type": "function_call_output", "call_id": "call_zz", "output": "1"}])
    assert ei.value.body["message"] == "No tool call found for function call output with call_id call_zz."
    ok = oai.responses.create(model="gpt-5", input=[
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "call_zz", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_zz", "output": "1"}])
    assert ok.output_text == "mock reply: hi"
    with pytest.raises(openai.BadRequestError) as ei:
        oai.responses.create(model="gpt-5", input="hi", extra_body={"max_tokens": 5})
    assert ei.value.body["message"] == "Unknown parameter: 'max_tokens'."


# --------------------------------------------------------------------------- Anthropic


def test_anthropic_create_all_parts(mock: MockUpstream, anth: anthropic.Anthropic) -> None:
    mock.enqueue(Reply([Thinking("hmm", signature="SIG"), RedactedThinking("opaque"), Text("Answer"),
                        ToolCall("get_time", {"tz": "UTC"}, id="toolu_1")],
                       usage=Usage(input_tokens=100, output_tokens=9, cached_tokens=60, cache_creation_tokens=10)))
    r = anth.messages.with_raw_response.create(**anth_body())
    msg = r.parse()
    assert r.headers["request-id"].startswith("req_")
    assert r.headers["anthropic-ratelimit-requests-remaining"] == "3999"
    assert "anthropic-ratelimit-output-tokens-reset" in r.headers
    assert [b.type for b in msg.content] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert msg.content[0].signature == "SIG" and msg.content[1].data == "opaque"
    assert msg.content[3].input == {"tz": "UTC"} and msg.content[3].id == "toolu_1"
    assert msg.stop_reason == "tool_use"
    u = msg.usage
    assert (u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens, u.output_tokens) == (30, 60, 10, 9)


def test_anthropic_stream_events_and_sdk(mock: MockUpstream, anth: anthropic.Anthropic) -> None:
    reply = Reply([Thinking(["a", "b"], signature="SIG"), Text(["Hel", "lo"]), ToolCall("f", {"k": [1, 2]}, id="toolu_x")])
    mock.enqueue(reply)
    r = post(mock, "/v1/messages", anth_body(stream=True), ANTH_H)
    assert r.headers["content-type"].startswith("text/event-stream")
    fr = frames(r.content)
    for ev, data in fr:
        assert json.loads(data)["type"] == ev
    assert [e for e, _ in fr] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
        "content_block_delta", "content_block_stop", "content_block_start", "content_block_delta",
        "content_block_delta", "content_block_stop", "content_block_start", "content_block_delta",
        "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert json.loads(fr[5][1])["delta"] == {"type": "signature_delta", "signature": "SIG"}
    assert json.loads(fr[-2][1])["delta"]["stop_reason"] == "tool_use"
    mock.enqueue(reply)
    with anth.messages.stream(**anth_body()) as s:
        texts = list(s.text_stream)
        final = s.get_final_message()
    assert texts == ["Hel", "lo"]
    assert final.content[0].thinking == "ab" and final.content[0].signature == "SIG"
    assert final.content[2].input == {"k": [1, 2]}


def test_anthropic_errors(mock: MockUpstream, anth: anthropic.Anthropic) -> None:
    mock.enqueue(Error.rate_limit(retry_after=3), Error(529))
    with pytest.raises(anthropic.RateLimitError) as ei:
        anth.messages.create(**anth_body())
    assert ei.value.response.headers["retry-after"] == "3"
    assert ei.value.body["error"]["type"] == "rate_limit_error"
    assert ei.value.body["request_id"] == ei.value.response.headers["request-id"]
    with pytest.raises(anthropic.InternalServerError) as ei:
        anth.messages.create(**anth_body())
    assert isinstance(ei.value, anthropic.APIStatusError) and ei.value.status_code == 529
    assert ei.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_anthropic_mid_stream_error_and_drop(mock: MockUpstream, anth: anthropic.Anthropic) -> None:
    mock.enqueue(MidStreamError(3))
    with pytest.raises(anthropic.APIStatusError) as ei:
        with anth.messages.stream(**anth_body()) as s:
            list(s)
    assert ei.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    mock.enqueue(DropAfter(3))
    with pytest.raises(Exception) as ex:
        with anth.messages.stream(**anth_body()) as s:
            list(s)
    assert "incomplete chunked read" in str(ex.value)
    mock.enqueue(DropAfter(100, abrupt=False))
    r = post(mock, "/v1/messages", anth_body(stream=True), ANTH_H)
    names = [e for e, _ in frames(r.content)]
    assert names[-1] == "message_delta" and "message_stop" not in names


def test_anthropic_validation(mock: MockUpstream, anth: anthropic.Anthropic) -> None:
    cases = [
        ({"messages": USER_HI, "model": "c"}, "max_tokens: Field required"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, 'messages: first message must use the "user" role'),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
         'messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row'),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
         "messages: text content blocks must be non-empty"),
        ({"messages": [{"role": "user", "content": "a"},
                       {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
                       {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "r"}]}]},
         "unexpected `tool_use_id` found in `tool_result` blocks: toolu_2"),
        ({"messages": [{"role": "user", "content": "a"},
                       {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
                       {"role": "user", "content": "no result"}]},
         "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
        ({"messages": [{"role": "user", "content": "a"},
                       {"role": "assistant", "content": [{"type": "tool_use", "id": "call.1", "name": "f", "input": {}}]}]},
         "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"),
        ({"thinking": {"type": "enabled", "budget_tokens": 512}},
         "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}},
         "`max_tokens` must be greater than `thinking.budget_tokens`"),
    ]
    mock.enqueue(Text("kept"))
    for override, message in cases:
        body = {**anth_body(), **override}
        if "max_tokens" not in override and "model" in override:
            body.pop("max_tokens")
        r = post(mock, "/v1/messages", body, ANTH_H)
        assert r.status_code == 400, message
        err = r.json()
        assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
        assert message in err["error"]["message"]
        assert err["request_id"] == r.headers["request-id"]
    with pytest.raises(anthropic.BadRequestError):
        anth.messages.create(**anth_body(thinking={"type": "enabled", "budget_tokens": 4096}))
    ok = anth.messages.create(**anth_body(thinking={"type": "enabled", "budget_tokens": 1024}))
    assert ok.content[0].text == "kept"


def _tool_loop(first_block: dict[str, Any] | None) -> list[dict[str, Any]]:
    content = ([first_block] if first_block else []) + [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]
    return [{"role": "user", "content": "go"}, {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}]}]


def test_anthropic_thinking_tool_loop_needs_thinking_block(mock: MockUpstream) -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    r = post(mock, "/v1/messages", anth_body(messages=_tool_loop(None), thinking=thinking), ANTH_H)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith(
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`.")
    block = {"type": "thinking", "thinking": "t", "signature": "anything"}
    assert post(mock, "/v1/messages", anth_body(messages=_tool_loop(block), thinking=thinking), ANTH_H).status_code == 200
    assert post(mock, "/v1/messages", anth_body(messages=_tool_loop(None)), ANTH_H).status_code == 200


def test_signature_checks(mock_upstream_factory: Any) -> None:  # noqa: F811
    m = mock_upstream_factory("all", check_signatures=True)
    m.enqueue(Reply([Thinking("t", signature="SIG-ISSUED"), ToolCall("f", {}, id="toolu_1")]))
    assert post(m, "/v1/messages", anth_body(), ANTH_H).status_code == 200
    ok = {"type": "thinking", "thinking": "t", "signature": "SIG-ISSUED"}
    assert post(m, "/v1/messages", anth_body(messages=_tool_loop(ok)), ANTH_H).status_code == 200
    r = post(m, "/v1/messages", anth_body(messages=_tool_loop(dict(ok, signature="forged"))), ANTH_H)
    assert r.json()["error"]["message"] == "messages.1.content.0: Invalid `signature` in `thinking` block"
    # Anthropic's signature is foreign to the Responses and Gemini upstreams
    r = post(m, "/v1/responses", {"model": "gpt-5", "input": [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "SIG-ISSUED"},
        {"role": "user", "content": "hi"}]}, OAI_H)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_encrypted_content"
    gem = {"contents": [{"role": "user", "parts": [{"text": "a"}]},
                        {"role": "model", "parts": [{"text": "b", "thoughtSignature": "SIG-ISSUED"}]},
                        {"role": "user", "parts": [{"text": "c"}]}]}
    r = post(m, "/v1beta/models/gemini-2.5-flash:generateContent", gem, GEM_H)
    assert r.status_code == 400 and r.json()["error"]["message"] == "Corrupted thought signature."


def test_gemini3_current_turn_function_calls_need_signatures(mock: MockUpstream) -> None:
    def body(sig: str | None) -> dict[str, Any]:
        call: dict[str, Any] = {"functionCall": {"name": "f", "args": {}}}
        if sig:
            call["thoughtSignature"] = sig
        return {"contents": [{"role": "user", "parts": [{"text": "go"}]}, {"role": "model", "parts": [call]},
                             {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}

    r = post(mock, "/v1beta/models/gemini-3-pro-preview:generateContent", body(None), GEM_H)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("Function call is missing a thought_signature in functionCall parts.")
    for sig in ("skip_thought_signature_validator", "real-sig"):
        assert post(mock, "/v1beta/models/gemini-3-pro-preview:generateContent", body(sig), GEM_H).status_code == 200
    assert post(mock, "/v1beta/models/gemini-2.5-flash:generateContent", body(None), GEM_H).status_code == 200


def test_anthropic_count_tokens_and_models(mock: MockUpstream, anth: anthropic.Anthropic) -> None:
    n = anth.messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "x" * 40}])
    assert n.input_tokens == 10
    page = anth.models.list()
    assert [m.id for m in page.data][0] == "claude-sonnet-4-6"
    assert page.data[0].type == "model"
    assert mock.requests[-1].dialect == "anthropic"
    assert mock.pending == 0


# --------------------------------------------------------------------------- auth, routing, recording


def test_auth_per_dialect(mock: MockUpstream) -> None:
    r = post(mock, "/v1/chat/completions", {"model": "m", "messages": USER_HI}, {"authorization": "Bearer nope-nope-nope"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key" and r.json()["error"]["type"] == "invalid_request_error"
    r = post(mock, "/v1/responses", {"model": "m", "input": "x"}, {})
    assert r.status_code == 401 and "You didn't provide an API key" in r.json()["error"]["message"]
    r = post(mock, "/v1/messages", anth_body(), {"x-api-key": "wrong", "anthropic-version": "2023-06-01"})
    assert r.status_code == 401
    assert r.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    r = post(mock, "/v1/messages", anth_body(), {"authorization": f"Bearer {KEY}"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "anthropic-version: header is required"
    r = post(mock, "/v1/messages", anth_body(), {"authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"})
    assert r.status_code == 200
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    r = post(mock, "/v1beta/models/gemini-2.5-flash:generateContent", body, {"x-goog-api-key": "bad"})
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    r = post(mock, "/v1beta/models/gemini-2.5-flash:generateContent", body, {})
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    r = post(mock, f"/v1beta/models/gemini-2.5-flash:generateContent?key={KEY}", body, {})
    assert r.status_code == 200
    assert [q.status for q in mock.requests] == [401, 401, 401, 400, 200, 400, 403, 200]


def test_model_lists_check_the_key_like_each_api(mock_upstream_factory: Any) -> None:  # noqa: F811
    """What a gateway sees when it lists an upstream's models with a good, a wrong or no key."""
    oai = mock_upstream_factory("openai_chat", models=["llama3.2:3b", "qwen3"])
    r = httpx.get(oai.openai_base_url + "/models", headers=OAI_H)
    assert r.status_code == 200 and [m["id"] for m in r.json()["data"]] == ["llama3.2:3b", "qwen3"]
    r = httpx.get(oai.openai_base_url + "/models", headers={"authorization": "Bearer sk-wrong-key-1234"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wrong-key-1234" not in r.text  # OpenAI masks the key it echoes
    assert httpx.get(oai.openai_base_url + "/models").status_code == 401
    ant = mock_upstream_factory("anthropic", models=["claude-x"])
    r = httpx.get(ant.root_url + "/v1/models", headers=ANTH_H)
    assert r.status_code == 200 and r.json()["data"][0] == {
        "type": "model", "id": "claude-x", "display_name": "Claude X", "created_at": "2025-09-29T00:00:00Z"}
    r = httpx.get(ant.root_url + "/v1/models", headers={**ANTH_H, "x-api-key": "wrong"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    gem = mock_upstream_factory("gemini", models=["gemini-2.5-flash"])
    r = httpx.get(gem.root_url + f"/v1beta/models?key={KEY}")
    assert r.status_code == 200 and r.json()["models"][0]["name"] == "models/gemini-2.5-flash"
    assert httpx.get(gem.root_url + "/v1beta/models", headers=GEM_H).status_code == 200
    r = httpx.get(gem.root_url + "/v1beta/models", headers={"x-goog-api-key": "bad"})
    assert r.status_code == 400 and r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert httpx.get(gem.root_url + "/v1beta/models").status_code == 403


def test_a_mock_without_a_key_accepts_any_or_none(mock_upstream_factory: Any) -> None:  # noqa: F811
    m = mock_upstream_factory("openai_chat", api_key=None, models=["llama3.2"])
    assert httpx.get(m.openai_base_url + "/models").json()["data"][0]["id"] == "llama3.2"
    assert httpx.get(m.openai_base_url + "/models", headers={"authorization": "Bearer anything"}).status_code == 200
    r = post(m, "/v1/chat/completions", {"model": "llama3.2", "messages": USER_HI}, {})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "mock reply: hi"


def test_requests_are_recorded(mock: MockUpstream) -> None:
    post(mock, "/v1/chat/completions?x=1", {"model": "gpt-4.1", "messages": USER_HI}, {**OAI_H, "X-Custom": "Yes"})
    q = mock.last_request
    assert (q.method, q.path, q.query, q.query_string) == ("POST", "/v1/chat/completions", {"x": "1"}, "x=1")
    assert q.headers["x-custom"] == "Yes" and q.headers["authorization"] == f"Bearer {KEY}"
    assert q.json == {"model": "gpt-4.1", "messages": USER_HI}
    assert json.loads(q.body) == q.json
    assert (q.dialect, q.endpoint, q.model, q.stream, q.status) == ("openai_chat", "chat", "gpt-4.1", False, 200)


def test_unknown_route_and_models(mock: MockUpstream) -> None:
    r = httpx.get(mock.root_url + "/v1/nothing", headers=OAI_H)
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "Invalid URL (GET /v1/nothing)", "type": "invalid_request_error",
                                  "param": None, "code": None}}
    r = httpx.get(mock.base_url + "/models", headers=OAI_H)
    assert r.json()["object"] == "list" and r.json()["data"][0]["object"] == "model"
    r = httpx.get(mock.root_url + "/v1beta/models", headers=GEM_H)
    assert r.json()["models"][0]["name"] == "models/gemini-2.5-flash"


def test_handler_escape_hatch_and_default(mock: MockUpstream, oai: openai.OpenAI) -> None:
    async def handler(req: Any) -> Any:
        if req.model == "boom":
            return Error(500)
        return None

    mock.handler = handler
    mock.enqueue(Text("queued"))
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="boom", messages=USER_HI)
    assert oai.chat.completions.create(model="gpt-4.1", messages=USER_HI).choices[0].message.content == "queued"
    msgs = [{"role": "user", "content": [{"type": "text", "text": "echo me"}]}]
    assert oai.chat.completions.create(model="gpt-4.1", messages=msgs).choices[0].message.content == "mock reply: echo me"
    mock.default = lambda req: Text(f"default for {req.model}")
    assert oai.chat.completions.create(model="m2", messages=USER_HI).choices[0].message.content == "default for m2"


def test_single_dialect_mock_serves_only_its_routes(mock_upstream_factory: Any) -> None:  # noqa: F811
    m = mock_upstream_factory("anthropic")
    assert post(m, "/v1/chat/completions", {"model": "x", "messages": USER_HI}, OAI_H).status_code == 404
    r = httpx.get(m.root_url + "/v1/models", headers=OAI_H)
    assert r.status_code == 400  # Anthropic auth rules: anthropic-version is required
    r = httpx.get(m.root_url + "/v1/models", headers={**OAI_H, "anthropic-version": "2023-06-01"})
    assert r.json()["has_more"] is False  # Anthropic shape with Bearer auth


# --------------------------------------------------------------------------- timing faults


def test_delay_and_stall(mock: MockUpstream) -> None:
    mock.enqueue(Delay(0.3))
    t0 = time.monotonic()
    post(mock, "/v1/chat/completions", {"model": "m", "messages": USER_HI}, OAI_H)
    assert time.monotonic() - t0 >= 0.3
    mock.enqueue(Stall(0.4, after_events=2, reply=Text("abc", chunks=3)))
    stamps = []
    with httpx.stream("POST", mock.root_url + "/v1/chat/completions", headers=OAI_H, timeout=5,
                      json={"model": "m", "messages": USER_HI, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                stamps.append(time.monotonic())
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert gaps[1] >= 0.35 and max(gaps[:1] + gaps[2:]) < 0.2
    mock.enqueue(Stall(5, after_events=1))
    with pytest.raises(httpx.ReadTimeout):
        with httpx.stream("POST", mock.root_url + "/v1/chat/completions", headers=OAI_H,
                          timeout=httpx.Timeout(5, read=0.2),
                          json={"model": "m", "messages": USER_HI, "stream": True}) as r:
            for _ in r.iter_bytes():
                pass
    deadline = time.monotonic() + 2
    while not mock.last_request.disconnected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mock.last_request.disconnected


def test_drop_on_json_body_truncates(mock: MockUpstream) -> None:
    mock.enqueue(DropAfter(0))
    with pytest.raises(httpx.RemoteProtocolError):
        post(mock, "/v1/chat/completions", {"model": "m", "messages": USER_HI}, OAI_H)


def test_bad_handler_is_reported_and_missing_recording_rejected(mock: MockUpstream) -> None:
    mock.handler = lambda req: 1 / 0
    r = post(mock, "/v1/messages", anth_body(), ANTH_H)
    assert r.status_code == 500 and r.json()["error"]["type"] == "api_error"
    assert isinstance(mock.errors.pop(), ZeroDivisionError)
    with pytest.raises(FileNotFoundError):
        mock.enqueue(Recorded("anthropic/nope.chunks.txt"))


def test_raw_reply(mock: MockUpstream) -> None:
    mock.enqueue(Raw(418, "teapot", content_type="text/plain", headers={"x-a": "b"}))
    r = post(mock, "/v1/chat/completions", {"model": "m", "messages": USER_HI}, OAI_H)
    assert (r.status_code, r.text, r.headers["x-a"], r.headers["content-type"]) == (418, "teapot", "b", "text/plain")


# --------------------------------------------------------------------------- Gemini


GEM_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}


def test_gemini_sse_stream(mock: MockUpstream) -> None:
    mock.enqueue(Reply([Thinking("think", signature="TS", chunks=1), Text(["Hello", " world"]),
                        ToolCall("f", {"a": 1}), ToolCall("g", {})],
                       usage=Usage(input_tokens=9, output_tokens=30, reasoning_tokens=10)))
    r = post(mock, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", GEM_BODY, GEM_H)
    assert r.headers["content-type"] == "text/event-stream"
    assert r.content.count(b"\r\n\r\n") == len(frames(r.content)) and b"[DONE]" not in r.content
    chunks = [json.loads(d) for _, d in frames(r.content)]
    parts = [c["candidates"][0]["content"]["parts"] for c in chunks]
    assert parts[0] == [{"text": "think", "thought": True}]
    assert parts[-1] == [{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "TS"},
                         {"functionCall": {"name": "g", "args": {}}}]
    assert ["finishReason" in c["candidates"][0] for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    cands = [c["usageMetadata"]["candidatesTokenCount"] for c in chunks]
    assert cands == sorted(cands) and cands[-1] == 20
    last = chunks[-1]["usageMetadata"]
    assert (last["promptTokenCount"], last["thoughtsTokenCount"], last["totalTokenCount"]) == (9, 10, 39)


def test_gemini_non_stream_array_stream_and_thoughts_hidden(mock: MockUpstream) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    mock.enqueue(Reply([Thinking("secret", signature="TS"), Text("ok")]))
    r = post(mock, "/v1beta/models/gemini-2.5-flash:generateContent", body, GEM_H)
    cand = r.json()["candidates"][0]
    assert cand["content"] == {"parts": [{"text": "ok", "thoughtSignature": "TS"}], "role": "model"}
    assert cand["finishReason"] == "STOP" and r.json()["modelVersion"] == "gemini-2.5-flash"
    mock.enqueue(Text(["a", "b"]))
    r = post(mock, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", body, GEM_H)
    arr = json.loads(r.content)
    assert r.content.startswith(b"[") and r.content.endswith(b"]")
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in arr] == ["a", "b"]


def test_gemini_drop_before_finish_chunk(mock: MockUpstream) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    mock.enqueue(DropAfter(5, reply=Text(["a", "b", "c"]), abrupt=False))
    r = post(mock, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", body, GEM_H)
    chunks = [json.loads(d) for _, d in frames(r.content)]
    assert len(chunks) == 2 and all("finishReason" not in c["candidates"][0] for c in chunks)


def test_gemini_errors_and_validation(mock: MockUpstream) -> None:
    mock.enqueue(Error.rate_limit(retry_after=3))
    r = post(mock, "/v1beta/models/gemini-2.5-flash:generateContent", GEM_BODY, GEM_H)
    err = r.json()["error"]
    assert (r.status_code, err["code"], err["status"]) == (429, 429, "RESOURCE_EXHAUSTED")
    types = [d["@type"] for d in err["details"]]
    assert "type.googleapis.com/google.rpc.QuotaFailure" in types
    assert err["details"][-1] == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}
    assert "retry-after" not in r.headers and "Please retry in 3s." in err["message"]
    bad = [
        ({"contents": [{"role": "user", "parts": []}]}, "contents[0].parts: contents.parts must not be empty"),
        ({"contents": [{"role": "user", "parts": [{"text": "a"}]},
                       {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                       {"role": "user", "parts": [{"functionResponse": {"response": {}}}]}]},
         "contents[2].parts[0].function_response.name: Name cannot be empty."),
        ({"contents": [{"role": "assistant", "parts": [{"text": "a"}]}]}, "Please use a valid role: user, model."),
        ({"contents": [{"role": "user", "parts": [{"text": "a"}]}], "thinking": 1},
         'Unknown name "thinking": Cannot find field.'),
    ]
    for body, message in bad:
        r = post(mock, "/v1beta/models/gemini-2.5-flash:generateContent", body, GEM_H)
        assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert message in r.json()["error"]["message"]
    r = post(mock, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", bad[0][0], GEM_H)
    assert isinstance(r.json(), list) and r.json()[0]["error"]["code"] == 400  # array framing for errors
    r = post(mock, "/v1beta/models/gemini-2.5-flash:countTokens", {"contents": [{"parts": [{"text": "x" * 8}]}]}, GEM_H)
    assert r.json()["totalTokens"] == 2


def test_gemini_mid_stream_error(mock: MockUpstream) -> None:
    mock.enqueue(MidStreamError(1, reply=Text(["a", "b"])))
    r = post(mock, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", GEM_BODY, GEM_H)
    chunks = [json.loads(d) for _, d in frames(r.content)]
    assert chunks[-1] == {"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                                    "status": "UNAVAILABLE"}}


# --------------------------------------------------------------------------- recorded replay

ROUTES = {
    "anthropic": ("/v1/messages", ANTH_H),
    "openai-chat": ("/v1/chat/completions", OAI_H),
    "openai-responses": ("/v1/responses", OAI_H),
    "gemini": ("/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse", GEM_H),
}
REQUESTS = {
    "anthropic": anth_body(stream=True),
    "openai-chat": {"model": "gpt-4.1", "messages": USER_HI, "stream": True},
    "openai-responses": {"model": "gpt-5", "input": "hi", "stream": True},
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}


def _readme_bytes(path: Path) -> bytes:
    """The README's table, implemented independently of tests.mocks.recorded."""
    provider = path.parent.name
    lines = [ln for ln in path.read_text(encoding="utf-8").split("\n") if ln]
    out = ""
    for ln in lines:
        if provider in ("anthropic", "openai-responses"):
            out += f"event: {json.loads(ln)['type']}\ndata: {ln}\n\n"
        else:
            out += f"data: {ln}\n\n"
    if provider == "openai-chat":
        out += "data: [DONE]\n\n"
    return out.encode("utf-8")


_FILES = sorted(RECORDED_DIR.glob("*/*.chunks.txt")) + sorted(RECORDED_DIR.glob("*/*.json"))


@pytest.mark.skipif(not RECORDED_DIR.is_dir(), reason="recorded fixtures folder absent")
@pytest.mark.parametrize("path", _FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recorded_replay_is_byte_faithful(mock: MockUpstream, path: Path) -> None:
    provider = path.parent.name
    route, headers = ROUTES[provider]
    mock.enqueue(Recorded(f"{provider}/{path.name}"))
    r = post(mock, route, REQUESTS[provider], headers)
    assert r.status_code == 200
    if path.name.endswith(".json"):
        assert r.content == path.read_bytes()
        assert r.headers["content-type"] == "application/json"
    else:
        assert r.content == _readme_bytes(path)
        assert r.headers["content-type"].startswith("text/event-stream")


@pytest.mark.skipif(not RECORDED_DIR.is_dir(), reason="recorded fixtures folder absent")
def test_recorded_streams_parse_in_sdks(mock: MockUpstream, anth: anthropic.Anthropic, oai: openai.OpenAI) -> None:
    mock.enqueue(Recorded("anthropic/anthropic-clear-thinking.1.chunks.txt"))
    with anth.messages.stream(**anth_body()) as s:
        msg = s.get_final_message()
    assert msg.content[0].type == "thinking" and msg.content[0].signature.startswith("EvQBCkYICxgC")
    assert msg.content[1].text == "925 ÷ 5 = 185"
    mock.enqueue(Recorded("openai-responses/azure-tool-call.1.chunks.txt"))
    with oai.responses.stream(model="gpt-5.1", input="hi") as s:
        final = s.get_final_response()
    assert final.output[0].arguments == '{"location":"San Francisco"}'
    mock.enqueue(DropAfter(3, reply=Recorded("openai-chat/groq-tool-call.chunks.txt"), abrupt=False))
    r = post(mock, "/v1/chat/completions", REQUESTS["openai-chat"], OAI_H)
    assert len(frames(r.content)) == 3 and b"[DONE]" not in r.content

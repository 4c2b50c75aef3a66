"""openai_chat upstream half: StreamDecoder, decode_response, scan_usage, parse_error.

Golden tests replay the recorded provider streams in /work/shared/fixtures/recorded/openai-chat.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from antiapi.errors import ErrorKind, StreamInterrupted, UpstreamHTTPError
from antiapi.translate import ir
from antiapi.translate import openai_chat as oc
from antiapi.translate.aggregate import Aggregator
from antiapi.wire.sse import SSEDecoder, SSEEvent

RECORDED = Path("/work/shared/fixtures/recorded/openai-chat")


def recorded(name: str) -> list[str]:
    path = RECORDED / name
    if not path.exists():
        pytest.skip(f"recorded fixture {path} is not available")
    return [ln for ln in path.read_text().split("\n") if ln]


def wire_bytes(lines: list[str], done: bool = True) -> bytes:
    raw = b"".join(b"data: " + ln.encode() + b"\n\n" for ln in lines)
    return raw + (b"data: [DONE]\n\n" if done else b"")


def decode_bytes(raw: bytes, out: ir.Outgoing | None = None, splits: list[int] | None = None) -> list[ir.Event]:
    dec = oc.StreamDecoder(out or ir.Outgoing(body={}, stream=True))
    sse = SSEDecoder()
    events: list[ir.Event] = []
    pieces = [raw]
    if splits:
        cuts = sorted({min(max(0, c), len(raw)) for c in splits})
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    for piece in pieces:
        for ev in sse.feed(piece):
            events += dec.feed(ev)
    for ev in sse.flush():
        events += dec.feed(ev)
    return events + dec.finish()


def chunks(*objs: dict, done: bool = True) -> bytes:
    return wire_bytes([json.dumps(o) for o in objs], done)


def chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None, choices: list | None = None) -> dict:
    c: dict = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    c["choices"] = choices if choices is not None else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    if usage is not None:
        c["usage"] = usage
    return c


def aggregate(events: list[ir.Event]) -> ir.Response:
    agg = Aggregator()
    agg.feed_all(events)
    return agg.response()


def kinds(events: list[ir.Event]) -> list[str]:
    return [type(e).__name__ for e in events]


# =========================================================================== golden: recorded streams


def test_deepseek_reasoning_tool_call_cached_tokens():
    events = decode_bytes(wire_bytes(recorded("deepseek-tool-call.chunks.txt")))
    assert events[0] == ir.Start(id="6e77be01-935b-42f6-8b05-d6c763528589", model="deepseek-v4-flash")
    assert events[1] == ir.BlockStart(index=0, kind="reasoning")
    tool_start = events.index(ir.BlockStart(index=1, kind="tool_call", id="call_00_IhCAliIHtM9gKpgfqbBV9873", name="weather"))
    assert events[tool_start - 1] == ir.BlockStop(index=0)
    assert events[-4:] == [
        ir.BlockStop(index=1),
        ir.Finish(reason="tool_use"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=118, output_tokens=61, cache_read_tokens=256, reasoning_tokens=17)),
        ir.End(),
    ]
    args = [e.json for e in events if isinstance(e, ir.ArgsDelta)]
    assert args == ["{", '"', "location", '"', ": ", '"', "San", " Francisco", '"', "}"]
    resp = aggregate(events)
    assert resp == ir.Response(
        id="6e77be01-935b-42f6-8b05-d6c763528589",
        model="deepseek-v4-flash",
        content=[
            ir.ReasoningPart(text="The user asks about the weather in San Francisco. I should use the weather tool."),
            ir.ToolCallPart(id="call_00_IhCAliIHtM9gKpgfqbBV9873", name="weather", arguments='{"location": "San Francisco"}'),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=118, output_tokens=61, cache_read_tokens=256, reasoning_tokens=17),
    )


def test_groq_tool_in_one_delta_usage_on_finish_chunk():
    events = decode_bytes(wire_bytes(recorded("groq-tool-call.chunks.txt")))
    assert events == [
        ir.Start(id="chatcmpl-b610d559-f156-4aca-8827-24b4fe6af54f", model="llama-3.3-70b-versatile"),
        ir.BlockStart(index=0, kind="tool_call", id="tk85n1k4m", name="weather"),
        ir.ArgsDelta(index=0, json="{}"),
        ir.BlockStop(index=0),
        ir.Finish(reason="tool_use"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=210, output_tokens=15)),
        ir.End(),
    ]


def test_azure_empty_choices_prelude_and_content_filter_after_finish():
    events = decode_bytes(wire_bytes(recorded("azure-text.chunks.txt")))
    assert events == [
        ir.Start(id="chatcmpl-test", model="gpt-4"),
        ir.BlockStart(index=0, kind="text"),
        ir.TextDelta(index=0, text="Hello"),
        ir.TextDelta(index=0, text=" World"),
        ir.BlockStop(index=0),
        ir.Finish(reason="end_turn"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=15, output_tokens=5)),
        ir.End(),
    ]


def test_empty_tool_calls_arrays_mean_no_tools():
    events = decode_bytes(wire_bytes(recorded("issue-20203-empty-tool-calls.chunks.txt")))
    assert events == [
        ir.Start(id="chatcmpl-issue-20203", model="test-model"),
        ir.BlockStart(index=0, kind="reasoning"),
        ir.ReasoningDelta(index=0, text="Think "),
        ir.ReasoningDelta(index=0, text="more..."),
        ir.BlockStop(index=0),
        ir.BlockStart(index=1, kind="text"),
        ir.TextDelta(index=1, text="Hello"),
        ir.BlockStop(index=1),
        ir.Finish(reason="end_turn"),
        ir.End(),
    ]


def test_length_with_content_and_usage_in_same_chunk():
    events = decode_bytes(wire_bytes(recorded("issue-19789-live-usage.chunks.txt")))
    assert events == [
        ir.Start(id="sanitized", model="deepseek-v4-flash"),
        ir.BlockStart(index=0, kind="text"),
        ir.TextDelta(index=0, text="sanitized"),
        ir.BlockStop(index=0),
        ir.Finish(reason="max_tokens"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=88, output_tokens=4, reasoning_tokens=4)),
        ir.End(),
    ]


def test_openai_text_json_decode_response():
    path = RECORDED / "openai-text.json"
    if not path.exists():
        pytest.skip("recorded fixture missing")
    body = path.read_bytes()
    text = json.loads(body)["choices"][0]["message"]["content"]
    events = oc.decode_response(body, ir.Outgoing(body={}, stream=False))
    assert events == [
        ir.Start(id="chatcmpl-D8Z5f52zQqikDBEKQMQoYcWMcWPeU", model="gpt-4.1-nano-2025-04-14"),
        ir.BlockStart(index=0, kind="text"),
        ir.TextDelta(index=0, text=text),
        ir.BlockStop(index=0),
        ir.Finish(reason="end_turn"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=16, output_tokens=363)),
        ir.End(),
    ]
    assert "\u2014mirroring" in text
    resp = aggregate(events)
    assert resp.content == [ir.TextPart(text=text)] and resp.stop_reason == "end_turn"


@pytest.mark.parametrize(
    "name",
    [
        "deepseek-tool-call.chunks.txt",
        "groq-tool-call.chunks.txt",
        "azure-text.chunks.txt",
        "issue-20203-empty-tool-calls.chunks.txt",
        "issue-19789-live-usage.chunks.txt",
    ],
)
@settings(max_examples=40, deadline=None)
@given(splits=st.lists(st.integers(0, 20000), max_size=12))
def test_any_byte_split_gives_the_same_events(name, splits):
    raw = wire_bytes(recorded(name)).replace(b"\n\n", b"\r\n\r\n") if len(splits) % 2 else wire_bytes(recorded(name))
    whole = decode_bytes(wire_bytes(recorded(name)))
    assert decode_bytes(raw, splits=splits) == whole


# =========================================================================== hand-made streams


def test_interleaved_parallel_tool_calls():
    raw = chunks(
        chunk({"role": "assistant", "content": None}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "Read", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "Grep", "arguments": '{"q":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path":'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": '"x"}'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"a.py"}'}}]}),
        chunk({}, "tool_calls"),
        chunk(choices=[], usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
    )
    events = decode_bytes(raw)
    assert events == [
        ir.Start(id="chatcmpl-1", model="m"),
        ir.BlockStart(index=0, kind="tool_call", id="call_a", name="Read"),
        ir.BlockStart(index=1, kind="tool_call", id="call_b", name="Grep"),
        ir.ArgsDelta(index=1, json='{"q":'),
        ir.ArgsDelta(index=0, json='{"path":'),
        ir.ArgsDelta(index=1, json='"x"}'),
        ir.ArgsDelta(index=0, json='"a.py"}'),
        ir.BlockStop(index=0),
        ir.BlockStop(index=1),
        ir.Finish(reason="tool_use"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=10, output_tokens=5)),
        ir.End(),
    ]
    assert aggregate(events).content == [
        ir.ToolCallPart(id="call_a", name="Read", arguments='{"path":"a.py"}'),
        ir.ToolCallPart(id="call_b", name="Grep", arguments='{"q":"x"}'),
    ]


def test_text_then_tool_closes_text_and_restores_names_and_ids():
    out = ir.Outgoing(body={}, stream=True, tool_names={"mcp_x_short": "mcp.x/long"}, call_ids={"toolu_1": "toolu:1"})
    raw = chunks(
        chunk({"role": "assistant", "content": "Let me check."}),
        chunk({"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "mcp_x_short", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
    )
    events = decode_bytes(raw, out)
    assert events == [
        ir.Start(id="chatcmpl-1", model="m"),
        ir.BlockStart(index=0, kind="text"),
        ir.TextDelta(index=0, text="Let me check."),
        ir.BlockStop(index=0),
        ir.BlockStart(index=1, kind="tool_call", id="toolu:1", name="mcp.x/long"),
        ir.ArgsDelta(index=1, json="{}"),
        ir.BlockStop(index=1),
        ir.Finish(reason="tool_use"),
        ir.End(),
    ]


def test_name_and_id_in_separate_chunks_buffer_args_until_known():
    raw = chunks(
        chunk({"tool_calls": [{"index": 0, "function": {"name": "Read", "arguments": '{"a"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1"}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "call_late", "function": {"arguments": "}"}}]}),
        chunk({}, "tool_calls"),
    )
    events = decode_bytes(raw)
    assert events[1:4] == [
        ir.BlockStart(index=0, kind="tool_call", id="call_late", name="Read"),
        ir.ArgsDelta(index=0, json='{"a":1}'),
        ir.BlockStop(index=0),
    ]


def test_name_never_arrives_is_synthesised_at_finish():
    raw = chunks(
        chunk({"tool_calls": [{"index": 3, "id": "call_x", "type": "function", "function": {"name": "", "arguments": '{"k":'}}]}),
        chunk({"tool_calls": [{"index": 3, "function": {"arguments": "2}"}}]}),
        chunk({}, "stop"),
    )
    events = decode_bytes(raw)
    assert events == [
        ir.Start(id="chatcmpl-1", model="m"),
        ir.BlockStart(index=0, kind="tool_call", id="call_x", name="tool_3"),
        ir.ArgsDelta(index=0, json='{"k":2}'),
        ir.BlockStop(index=0),
        ir.Finish(reason="tool_use"),
        ir.End(),
    ]


def test_id_never_arrives_is_synthesised():
    events = decode_bytes(chunks(chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]}), chunk({}, "tool_calls")))
    start = events[1]
    assert isinstance(start, ir.BlockStart) and start.name == "f" and start.id.startswith("call_") and len(start.id) > 5


def test_calls_without_index_are_separate():
    raw = chunks(
        chunk({"tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}},
                              {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({}, "stop"),
    )  # fmt: skip
    assert aggregate(decode_bytes(raw)).content == [
        ir.ToolCallPart(id="a", name="f", arguments='{"x":1}'),
        ir.ToolCallPart(id="b", name="g", arguments="{}"),
    ]


def test_parallel_calls_all_numbered_zero_are_split_by_id():
    raw = chunks(
        chunk({"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "b", "type": "function", "function": {"name": "g", "arguments": '{"y":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "2}"}}]}),
        chunk({}, "tool_calls"),
    )
    assert aggregate(decode_bytes(raw)).content == [
        ir.ToolCallPart(id="a", name="f", arguments='{"x":1}'),
        ir.ToolCallPart(id="b", name="g", arguments='{"y":2}'),
    ]


def test_repeated_id_and_name_on_every_fragment_do_not_duplicate():
    frag = lambda a: chunk({"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": a}}]})  # noqa: E731
    raw = chunks(frag('{"x"'), frag(":1}"), chunk({}, "tool_calls"))
    assert aggregate(decode_bytes(raw)).content == [ir.ToolCallPart(id="a", name="f", arguments='{"x":1}')]


def test_finish_says_tool_calls_but_no_tool_was_emitted():
    events = decode_bytes(chunks(chunk({"content": "hi"}), chunk({}, "tool_calls")))
    assert ir.Finish(reason="end_turn") in events


@pytest.mark.parametrize(
    "finish, reason",
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"), ("function_call", "end_turn"), ("weird", "end_turn")],
)
def test_finish_reason_mapping(finish, reason):
    events = decode_bytes(chunks(chunk({"content": "x"}), chunk({}, finish)))
    assert [e for e in events if isinstance(e, ir.Finish)] == [ir.Finish(reason=reason)]


def test_reasoning_field_openrouter_and_content_finish_same_chunk():
    events = decode_bytes(chunks(chunk({"reasoning": "r"}), chunk({"content": "done"}, "stop")))
    assert events == [
        ir.Start(id="chatcmpl-1", model="m"),
        ir.BlockStart(index=0, kind="reasoning"),
        ir.ReasoningDelta(index=0, text="r"),
        ir.BlockStop(index=0),
        ir.BlockStart(index=1, kind="text"),
        ir.TextDelta(index=1, text="done"),
        ir.BlockStop(index=1),
        ir.Finish(reason="end_turn"),
        ir.End(),
    ]


def test_usage_after_finish_is_reported_and_latest_wins():
    raw = chunks(
        chunk({"content": "a"}),
        chunk({}, "stop"),
        chunk(choices=[], usage={"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 60}}),
    )
    events = decode_bytes(raw)
    assert events[-3:] == [
        ir.Finish(reason="end_turn"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=40, output_tokens=7, cache_read_tokens=60)),
        ir.End(),
    ]
    assert aggregate(events).usage == ir.Usage(input_tokens=40, output_tokens=7, cache_read_tokens=60)


def test_done_without_finish_reason_is_end_turn():
    events = decode_bytes(chunks(chunk({"content": "partial?"})))
    assert events[-3:] == [ir.BlockStop(index=0), ir.Finish(reason="end_turn"), ir.End()]


def test_eof_after_finish_without_done_is_a_normal_end():
    events = decode_bytes(chunks(chunk({"content": "x"}), chunk({}, "stop"), done=False))
    assert events[-2:] == [ir.Finish(reason="end_turn"), ir.End()]


def test_drop_before_done_and_before_finish_is_an_error():
    raw = chunks(
        chunk({"content": "half"}),
        chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a'}}]}),
        done=False,
    )
    events = decode_bytes(raw)
    assert events == [
        ir.Start(id="chatcmpl-1", model="m"),
        ir.BlockStart(index=0, kind="text"),
        ir.TextDelta(index=0, text="half"),
        ir.BlockStop(index=0),
        ir.BlockStart(index=1, kind="tool_call", id="c", name="f"),
        ir.ArgsDelta(index=1, json='{"a'),
        ir.BlockStop(index=1),
        ir.Error(kind="api_error", message="upstream stream ended before completion"),
    ]
    agg = Aggregator()
    agg.feed_all(events)
    with pytest.raises(UpstreamHTTPError) as ei:
        agg.response()
    assert ei.value.kind is ErrorKind.API_ERROR


def test_empty_stream_is_an_error():
    assert decode_bytes(b"") == [ir.Error(kind="api_error", message="upstream stream ended before completion")]


def test_only_prelude_then_eof_is_an_error_without_start():
    events = decode_bytes(wire_bytes(recorded("azure-text.chunks.txt")[:1], done=False))
    assert events == [ir.Error(kind="api_error", message="upstream stream ended before completion")]


def test_error_chunk_mid_stream():
    raw = chunks(
        chunk({"content": "hi"}),
        {"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}},
        chunk({"content": "ignored"}),
    )
    events = decode_bytes(raw)
    assert events == [
        ir.Start(id="chatcmpl-1", model="m"),
        ir.BlockStart(index=0, kind="text"),
        ir.TextDelta(index=0, text="hi"),
        ir.BlockStop(index=0),
        ir.Error(kind="api_error", message="openai: The server had an error", status=502, code="server_error"),
    ]


@pytest.mark.parametrize(
    "err, kind, status, code",
    [
        ({"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}, "billing", 402, "insufficient_quota"),
        ({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}, "rate_limit", 429, "rate_limit_exceeded"),
        ({"error": {"message": "Provider returned error", "code": 429}}, "rate_limit", 429, None),
        ({"error": "plain text"}, "api_error", 502, None),
    ],
)
def test_error_chunk_kinds(err, kind, status, code):
    events = decode_bytes(chunks(err))
    assert len(events) == 1
    e = events[0]
    assert isinstance(e, ir.Error) and (e.kind, e.status, e.code) == (kind, status, code)


def test_event_error_line_and_garbage_chunk():
    dec = oc.StreamDecoder(ir.Outgoing(body={}, stream=True))
    assert dec.feed(SSEEvent(event="error", data='{"message":"overloaded","type":"overloaded_error"}')) == [
        ir.Error(kind="overloaded", message="openai: overloaded", status=503, code="overloaded_error")
    ]
    assert dec.feed(SSEEvent(event=None, data='{"choices":[]}')) == []  # after an error nothing more
    dec = oc.StreamDecoder(ir.Outgoing(body={}, stream=True))
    got = dec.feed(SSEEvent(event=None, data="<html>oops"))
    assert len(got) == 1 and isinstance(got[0], ir.Error) and got[0].message.startswith("openai: unreadable stream chunk")
    assert dec.finish() == []


def test_choices_other_than_zero_are_ignored():
    raw = chunks(
        chunk(choices=[{"index": 1, "delta": {"content": "B"}, "finish_reason": None}, {"index": 0, "delta": {"content": "A"}, "finish_reason": None}]),
        chunk({}, "stop"),
    )
    assert aggregate(decode_bytes(raw)).content == [ir.TextPart(text="A")]


def test_refusal_delta_becomes_text_and_refusal_stop():
    events = decode_bytes(chunks(chunk({"refusal": "I can't help with that."}), chunk({}, "stop")))
    resp = aggregate(events)
    assert resp.content == [ir.TextPart(text="I can't help with that.")] and resp.stop_reason == "refusal"


def test_mistral_style_content_list():
    raw = chunks(
        chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]}]}),
        chunk({"content": [{"type": "text", "text": "Answer"}]}, "stop"),
    )
    assert aggregate(decode_bytes(raw)).content == [ir.ReasoningPart(text="hm"), ir.TextPart(text="Answer")]


def test_dict_arguments_and_legacy_function_call_stream():
    raw = chunks(
        chunk({"function_call": {"name": "f", "arguments": ""}}),
        chunk({"function_call": {"arguments": '{"x":1}'}}),
        chunk({}, "function_call"),
    )
    resp = aggregate(decode_bytes(raw))
    assert len(resp.content) == 1
    part = resp.content[0]
    assert isinstance(part, ir.ToolCallPart) and part.name == "f" and part.arguments == '{"x":1}' and resp.stop_reason == "tool_use"


# =========================================================================== decode_response


def test_decode_response_tool_calls_reasoning_and_usage():
    body = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "ok",
                    "reasoning_content": "think",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "short", "arguments": ""}},
                        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 30},
                  "completion_tokens_details": {"reasoning_tokens": 8}},
    }  # fmt: skip
    out = ir.Outgoing(body={}, stream=False, tool_names={"short": "original.name"})
    events = oc.decode_response(json.dumps(body).encode(), out)
    assert events == [
        ir.Start(id="chatcmpl-9", model="m"),
        ir.BlockStart(index=0, kind="reasoning"),
        ir.ReasoningDelta(index=0, text="think"),
        ir.BlockStop(index=0),
        ir.BlockStart(index=1, kind="text"),
        ir.TextDelta(index=1, text="ok"),
        ir.BlockStop(index=1),
        ir.BlockStart(index=2, kind="tool_call", id="c1", name="original.name"),
        ir.BlockStart(index=3, kind="tool_call", id="c2", name="g"),
        ir.ArgsDelta(index=3, json='{"a":1}'),
        ir.BlockStop(index=2),
        ir.BlockStop(index=3),
        ir.Finish(reason="tool_use"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=20, output_tokens=20, cache_read_tokens=30, reasoning_tokens=8)),
        ir.End(),
    ]
    assert aggregate(events).content[2:] == [
        ir.ToolCallPart(id="c1", name="original.name", arguments="{}"),
        ir.ToolCallPart(id="c2", name="g", arguments='{"a":1}'),
    ]


def test_decode_response_error_body_empty_choices_and_garbage():
    out = ir.Outgoing(body={}, stream=False)
    assert oc.decode_response(b'{"error":{"message":"bad","type":"invalid_request_error"}}', out) == [
        ir.Error(kind="invalid_request", message="openai: bad", status=400, code="invalid_request_error")
    ]
    assert oc.decode_response(b'{"id":"x","model":"m","choices":[]}', out) == [
        ir.Start(id="x", model="m"),
        ir.Finish(reason="end_turn"),
        ir.End(),
    ]
    got = oc.decode_response(b"not json", out)
    assert len(got) == 1 and isinstance(got[0], ir.Error) and got[0].kind == "api_error"


def test_decode_response_refusal_and_null_content():
    body = b'{"id":"c","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"No."},"finish_reason":"stop"}]}'
    resp = aggregate(oc.decode_response(body, ir.Outgoing(body={}, stream=False)))
    assert resp.content == [ir.TextPart(text="No.")] and resp.stop_reason == "refusal"


def test_non_stream_and_stream_aggregate_equal():
    """A non-stream body and the equivalent stream build the same Response."""
    lines = recorded("deepseek-tool-call.chunks.txt")
    streamed = aggregate(decode_bytes(wire_bytes(lines)))
    body = {
        "id": streamed.id,
        "model": streamed.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": streamed.content[0].text,
                    "tool_calls": [{"id": "call_00_IhCAliIHtM9gKpgfqbBV9873", "type": "function",
                                    "function": {"name": "weather", "arguments": '{"location": "San Francisco"}'}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": json.loads(lines[-1])["usage"],
    }  # fmt: skip
    assert aggregate(oc.decode_response(json.dumps(body).encode(), ir.Outgoing(body={}, stream=False))) == streamed


# =========================================================================== scan_usage


def test_scan_usage():
    lines = recorded("deepseek-tool-call.chunks.txt")
    assert oc.scan_usage(SSEEvent(event=None, data=lines[0])) is None  # "usage":null
    assert oc.scan_usage(SSEEvent(event=None, data=lines[-1])) == ir.Usage(
        input_tokens=118, output_tokens=61, cache_read_tokens=256, reasoning_tokens=17
    )
    assert oc.scan_usage(SSEEvent(event=None, data="[DONE]")) is None
    assert oc.scan_usage(SSEEvent(event=None, data='{"choices":[]}')) is None
    assert oc.scan_usage(SSEEvent(event=None, data='{"usage": {"prompt_tokens": 3, "completion_tokens": 1}}')) == ir.Usage(
        input_tokens=3, output_tokens=1
    )
    assert oc.scan_usage(SSEEvent(event=None, data='{"usage": garbage')) is None
    # groq: floats in other usage fields do not matter
    assert oc.scan_usage(SSEEvent(event=None, data=recorded("groq-tool-call.chunks.txt")[-1])) == ir.Usage(input_tokens=210, output_tokens=15)


# =========================================================================== parse_error


def test_parse_error_429_rate_limit_vs_insufficient_quota():
    rl = oc.parse_error(
        429,
        {"retry-after": "7", "x-request-id": "req_1"},
        b'{"error":{"message":"Rate limit reached for gpt-4o. Please try again in 20ms.","type":"requests","param":null,"code":"rate_limit_exceeded"}}',
    )
    assert isinstance(rl, UpstreamHTTPError)
    assert (rl.kind, rl.status, rl.code, rl.retry_after, rl.retryable) == (ErrorKind.RATE_LIMIT, 429, "rate_limit_exceeded", 7.0, True)
    assert rl.message == "openai: Rate limit reached for gpt-4o. Please try again in 20ms."
    assert rl.request_id == "req_1" and rl.headers == {"retry-after": "7"}
    q = oc.parse_error(
        429,
        {},
        b'{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}',
    )
    assert (q.kind, q.status, q.code, q.retryable) == (ErrorKind.BILLING, 429, "insufficient_quota", False)


def test_parse_error_retry_after_ms_and_message_hint():
    e = oc.parse_error(429, {"Retry-After-Ms": "1500", "retry-after": "9"}, b'{"error":{"message":"x","code":"rate_limit_exceeded"}}')
    assert e.retry_after == 1.5
    e = oc.parse_error(429, {}, b'{"error":{"message":"Please try again in 1.5s.","code":"rate_limit_exceeded"}}')
    assert e.retry_after == 1.5
    e = oc.parse_error(429, {}, b'{"error":{"message":"Please try again in 20ms.","code":"rate_limit_exceeded"}}')
    assert e.retry_after == 0.02
    e = oc.parse_error(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"{}")
    assert e.retry_after is None and e.headers == {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}


@pytest.mark.parametrize(
    "status, body, kind, code, message",
    [
        (401, b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}',
         ErrorKind.AUTHENTICATION, "invalid_api_key", "openai: Incorrect API key provided"),
        (400, b'{"error":{"message":"maximum context length is 128000 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}',
         ErrorKind.INVALID_REQUEST, "context_length_exceeded", "openai: maximum context length is 128000 tokens"),
        (404, b'{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","code":"model_not_found"}}',
         ErrorKind.NOT_FOUND, "model_not_found", "openai: The model `x` does not exist"),
        (500, b'{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}',
         ErrorKind.API_ERROR, "server_error", "openai: The server had an error"),
        (503, b"<html>Service Unavailable</html>", ErrorKind.OVERLOADED, None, "openai: HTTP 503: <html>Service Unavailable</html>"),
        (502, b"", ErrorKind.API_ERROR, None, "openai: HTTP 502 with no error message"),
        (402, b'{"message":"You have no quota","code":"quota_exceeded"}', ErrorKind.BILLING, "quota_exceeded", "openai: You have no quota"),
        (401, b"unauthorized: token expired", ErrorKind.AUTHENTICATION, None, "openai: HTTP 401: unauthorized: token expired"),
        (429, b'[{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}]',
         ErrorKind.RATE_LIMIT, "RESOURCE_EXHAUSTED", "openai: Resource exhausted"),
        (422, b'{"detail":"Unprocessable"}', ErrorKind.INVALID_REQUEST, None, "openai: Unprocessable"),
    ],
)  # fmt: skip
def test_parse_error_shapes(status, body, kind, code, message):
    e = oc.parse_error(status, {}, body)
    assert (e.kind, e.status, e.code, e.message) == (kind, status, code, message)


def test_parse_error_keeps_param():
    e = oc.parse_error(400, {}, b'{"error":{"message":"bad","type":"invalid_request_error","param":"messages[0]","code":null}}')
    assert e.param == "messages[0]"


def test_stream_interrupted_is_what_aggregator_raises_without_error_event():
    # events cut off before Finish and without finish(): the Aggregator itself complains
    agg = Aggregator()
    agg.feed_all(oc.StreamDecoder(ir.Outgoing(body={}, stream=True)).feed(SSEEvent(event=None, data=json.dumps(chunk({"content": "x"})))))
    with pytest.raises(StreamInterrupted):
        agg.response()

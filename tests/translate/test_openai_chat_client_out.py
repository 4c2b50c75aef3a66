"""openai_chat client output: StreamEncoder, render_response, render_error, models_list.

Produced chunks and bodies are checked byte-for-byte where it matters and also validated with
the official ``openai`` SDK types (``ChatCompletionChunk`` / ``ChatCompletion``), and the
SDK's own stream accumulator rebuilds the expected message.
"""

from __future__ import annotations

import json

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from antiapi.errors import (
    ErrorKind,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    UpstreamHTTPError,
)
from antiapi.translate import ir
from antiapi.translate import openai_chat as oc
from antiapi.translate.aggregate import response_events


def req(**kw) -> ir.Request:
    return ir.Request(model="client-model", **kw)


def frames(data: bytes) -> list[str]:
    """Split encoder output into the JSON payloads of its ``data:`` frames."""
    assert data.endswith(b"\n\n") or data == b""
    out = []
    for frame in data.split(b"\n\n"):
        if not frame:
            continue
        assert frame.startswith(b"data: "), frame
        out.append(frame[6:].decode())
    return out


def encode(events: list[ir.Event], request: ir.Request | None = None, model: str = "gpt-x") -> tuple[bytes, list[bytes]]:
    enc = oc.StreamEncoder(request or req(), model, created=123)
    per_event = [enc.feed(e) for e in events]
    return b"".join(per_event), per_event


TOOL_STREAM: list[ir.Event] = [
    ir.Start(id="msg_01", model="claude-x", usage=ir.Usage(input_tokens=20, cache_read_tokens=5)),
    ir.BlockStart(index=0, kind="reasoning", provider="anthropic"),
    ir.ReasoningDelta(index=0, text="thinking"),
    ir.SignatureDelta(index=0, signature="sig"),
    ir.BlockStop(index=0),
    ir.BlockStart(index=1, kind="text"),
    ir.TextDelta(index=1, text="Checking."),
    ir.BlockStop(index=1),
    ir.BlockStart(index=2, kind="tool_call", id="toolu_a", name="Read"),
    ir.ArgsDelta(index=2, json='{"path":'),
    ir.ArgsDelta(index=2, json='"a.py"}'),
    ir.BlockStop(index=2),
    ir.BlockStart(index=3, kind="tool_call", id="toolu_b", name="Ls"),
    ir.BlockStop(index=3),
    ir.Finish(reason="tool_use"),
    ir.UsageEvent(usage=ir.Usage(output_tokens=57, reasoning_tokens=9)),
    ir.End(),
]


def test_encoder_exact_frames_with_usage():
    data, per_event = encode(TOOL_STREAM, req(include_usage=True))
    pre = '{"id":"chatcmpl-msg_01","object":"chat.completion.chunk","created":123,"model":"gpt-x","choices":'
    assert frames(data) == [
        pre + '[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}',
        pre + '[{"index":0,"delta":{"reasoning_content":"thinking"},"logprobs":null,"finish_reason":null}]}',
        pre + '[{"index":0,"delta":{"content":"Checking."},"logprobs":null,"finish_reason":null}]}',
        pre + '[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"toolu_a","type":"function","function":{"name":"Read","arguments":""}}]},"logprobs":null,"finish_reason":null}]}',
        pre + '[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"path\\":"}}]},"logprobs":null,"finish_reason":null}]}',
        pre + '[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\\"a.py\\"}"}}]},"logprobs":null,"finish_reason":null}]}',
        pre + '[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"toolu_b","type":"function","function":{"name":"Ls","arguments":""}}]},"logprobs":null,"finish_reason":null}]}',
        pre + '[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}',
        pre + '[],"usage":{"prompt_tokens":25,"completion_tokens":57,"total_tokens":82,'
        '"prompt_tokens_details":{"cached_tokens":5},"completion_tokens_details":{"reasoning_tokens":9}}}',
        "[DONE]",
    ]
    # the finish chunk is written at Finish; the usage chunk (with the late usage) at End
    assert frames(per_event[14])[0].endswith('"finish_reason":"tool_calls"}]}')
    assert frames(per_event[15]) == []
    assert frames(per_event[16])[-1] == "[DONE]"


def test_encoder_output_validates_with_the_openai_sdk_and_accumulates():
    data, _ = encode(TOOL_STREAM, req(include_usage=True))
    state = ChatCompletionStreamState()
    for payload in frames(data):
        if payload == "[DONE]":
            continue
        state.handle_chunk(ChatCompletionChunk.model_validate_json(payload))
    done = state.get_final_completion()
    msg = done.choices[0].message
    assert msg.content == "Checking."
    assert [(t.id, t.function.name, t.function.arguments) for t in msg.tool_calls] == [
        ("toolu_a", "Read", '{"path":"a.py"}'),
        ("toolu_b", "Ls", ""),
    ]
    assert done.choices[0].finish_reason == "tool_calls"
    assert done.usage is not None and (done.usage.prompt_tokens, done.usage.completion_tokens) == (25, 57)


def test_encoder_without_include_usage_and_reasoning_opt_out():
    data, _ = encode(TOOL_STREAM, req(include_usage=False, want_reasoning=False))
    payloads = frames(data)
    assert payloads[-1] == "[DONE]"
    assert not any('"usage"' in p for p in payloads)
    assert not any("reasoning_content" in p for p in payloads)


def test_encoder_finish_reason_mapping_and_tool_use_without_tools():
    for reason, expected in [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("context_exceeded", "length"),
        ("tool_use", "stop"),  # no tool block was emitted
    ]:
        data, _ = encode([ir.Start(id="chatcmpl-z"), ir.Finish(reason=reason), ir.End()])
        assert json.loads(frames(data)[1])["choices"][0]["finish_reason"] == expected, reason


def test_encoder_end_without_finish_still_sends_a_finish_chunk():
    data, _ = encode([ir.Start(id="chatcmpl-z"), ir.BlockStart(index=0, kind="text"), ir.TextDelta(index=0, text="x"), ir.End()])
    payloads = frames(data)
    assert json.loads(payloads[-2])["choices"][0]["finish_reason"] == "stop"
    assert payloads[-1] == "[DONE]"
    # id kept from a Chat upstream
    assert json.loads(payloads[0])["id"] == "chatcmpl-z"


def test_encoder_error_ends_stream_without_done():
    events = [
        ir.Start(id="msg_1"),
        ir.BlockStart(index=0, kind="text"),
        ir.TextDelta(index=0, text="par"),
        ir.Error(kind="overloaded", message="anthropic: Overloaded", status=529, code="overloaded_error"),
        ir.End(),
    ]
    data, per_event = encode(events)
    payloads = frames(data)
    assert json.loads(payloads[-1]) == {
        "error": {"message": "anthropic: Overloaded", "type": "server_error", "param": None, "code": "overloaded_error"}
    }
    assert "[DONE]" not in payloads and per_event[-1] == b""


def test_encoder_error_before_start_is_only_the_error():
    data, _ = encode([ir.Error(kind="rate_limit", message="slow", status=429)])
    assert frames(data) == ['{"error":{"message":"slow","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}']


def test_encoder_ids_constant_and_interleaved_tools():
    events: list[ir.Event] = [
        ir.Start(),
        ir.BlockStart(index=0, kind="tool_call", id="a", name="f"),
        ir.BlockStart(index=1, kind="tool_call", id="b", name="g"),
        ir.ArgsDelta(index=1, json="{}"),
        ir.ArgsDelta(index=0, json='{"x":1}'),
        ir.ArgsDelta(index=0, json=""),
        ir.BlockStop(index=0),
        ir.BlockStop(index=1),
        ir.Finish(reason="end_turn"),
        ir.End(),
    ]
    data, _ = encode(events)
    chunks = [ChatCompletionChunk.model_validate_json(p) for p in frames(data) if p != "[DONE]"]
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    calls = [(c.choices[0].delta.tool_calls[0].index, c.choices[0].delta.tool_calls[0].function.arguments)
             for c in chunks if c.choices and c.choices[0].delta.tool_calls]  # fmt: skip
    assert calls == [(0, ""), (1, ""), (1, "{}"), (0, '{"x":1}')]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"  # tool wins


def test_encoder_from_response_events_round_trip():
    resp = ir.Response(
        id="chatcmpl-r",
        model="m",
        content=[ir.TextPart(text="Hello"), ir.ToolCallPart(id="c1", name="f", arguments='{"a":1}')],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=3, output_tokens=4),
    )
    data, _ = encode(response_events(resp), req(include_usage=True))
    state = ChatCompletionStreamState()
    for p in frames(data):
        if p != "[DONE]":
            state.handle_chunk(ChatCompletionChunk.model_validate_json(p))
    final = state.get_final_completion()
    assert final.choices[0].message.content == "Hello"
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"a":1}'
    assert final.usage.total_tokens == 7


# =========================================================================== render_response


def test_render_response_text_tools_reasoning_usage():
    resp = ir.Response(
        id="msg_9",
        model="claude-x",
        content=[
            ir.ReasoningPart(text="hm", signature="s", provider="anthropic"),
            ir.ReasoningPart(redacted="xx", provider="anthropic"),
            ir.TextPart(text="A"),
            ir.TextPart(text="B"),
            ir.ToolCallPart(id="toolu_1", name="Read", arguments='{"p":1}'),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=10, output_tokens=6, cache_read_tokens=4, cache_write_tokens=2, reasoning_tokens=3),
    )
    body = oc.render_response(resp, req(), "gpt-x", created=99)
    assert json.loads(body) == {
        "id": "chatcmpl-msg_9",
        "object": "chat.completion",
        "created": 99,
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "AB",
                    "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "Read", "arguments": '{"p":1}'}}],
                    "reasoning_content": "hm",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 16,
            "completion_tokens": 6,
            "total_tokens": 22,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    }
    ChatCompletion.model_validate_json(body)
    assert "reasoning_content" not in json.loads(oc.render_response(resp, req(want_reasoning=False), "gpt-x"))["choices"][0]["message"]


def test_render_response_tool_only_has_null_content_and_empty_is_empty_string():
    only_tool = ir.Response(id="chatcmpl-1", model="m", content=[ir.ToolCallPart(id="c", name="f", arguments="")], stop_reason="end_turn")
    msg = json.loads(oc.render_response(only_tool, req(), "m"))["choices"][0]
    assert msg["message"]["content"] is None and msg["finish_reason"] == "tool_calls"
    assert msg["message"]["tool_calls"][0]["function"]["arguments"] == "{}"
    empty = ir.Response(id="chatcmpl-2", model="m", content=[], stop_reason="max_tokens")
    body = oc.render_response(empty, req(), "m")
    got = json.loads(body)
    assert got["id"] == "chatcmpl-2" and got["choices"][0]["message"]["content"] == "" and got["choices"][0]["finish_reason"] == "length"
    assert "tool_calls" not in got["choices"][0]["message"]
    ChatCompletion.model_validate_json(body)


# =========================================================================== render_error / models_list


@pytest.mark.parametrize(
    "err, expected",
    [
        (InvalidRequest("messages[1].role: must be one of ...", param="messages[1].role"),
         {"message": "messages[1].role: must be one of ...", "type": "invalid_request_error", "param": "messages[1].role", "code": None}),
        (ModelNotFound("nope", ["a", "b"]),
         {"message": "The model 'nope' is not served here. Models available: a, b. Add it to the config file's model_list or ask for one of these.",
          "type": "not_found_error", "param": "model", "code": "model_not_found"}),
        (UpstreamHTTPError("openai: slow down", kind=ErrorKind.RATE_LIMIT, status=429),
         {"message": "openai: slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}),
        (UpstreamHTTPError("openai: quota", kind=ErrorKind.BILLING, status=429, code="insufficient_quota"),
         {"message": "openai: quota", "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}),
        (UpstreamHTTPError("anthropic: prompt is too long", kind=ErrorKind.INVALID_REQUEST, status=400, code="context_length_exceeded"),
         {"message": "anthropic: prompt is too long", "type": "invalid_request_error", "param": None, "code": "context_length_exceeded"}),
        (GatewayError("bad key", kind=ErrorKind.AUTHENTICATION),
         {"message": "bad key", "type": "authentication_error", "param": None, "code": "invalid_api_key"}),
        (GatewayError("no", kind=ErrorKind.PERMISSION),
         {"message": "no", "type": "permission_error", "param": None, "code": "permission_denied"}),
        (GatewayError("slow", kind=ErrorKind.TIMEOUT),
         {"message": "slow", "type": "timeout_error", "param": None, "code": "timeout"}),
        (GatewayError("busy", kind=ErrorKind.OVERLOADED),
         {"message": "busy", "type": "server_error", "param": None, "code": "service_unavailable"}),
        (GatewayError("boom"), {"message": "boom", "type": "server_error", "param": None, "code": None}),
    ],
)  # fmt: skip
def test_render_error(err, expected):
    assert json.loads(oc.render_error(err)) == {"error": expected}


def test_models_list_exact_bytes():
    assert oc.models_list(["a", "b"]) == (
        b'{"object":"list","data":[{"id":"a","object":"model","created":0,"owned_by":"antiapi"},'
        b'{"id":"b","object":"model","created":0,"owned_by":"antiapi"}]}'
    )
    assert oc.models_list([]) == b'{"object":"list","data":[]}'


def test_encoder_without_start_opens_with_the_role_chunk():
    data, per_event = encode([ir.UsageEvent(usage=ir.Usage(input_tokens=2)), ir.TextDelta(index=0, text="hi"), ir.End()], req(include_usage=True))
    assert per_event[0] == b""
    payloads = [json.loads(p) for p in frames(data)[:-1]]
    assert [p["choices"][0]["delta"] for p in payloads[:2]] == [{"role": "assistant", "content": ""}, {"content": "hi"}]
    assert payloads[2]["choices"][0]["finish_reason"] == "stop"
    assert payloads[3]["usage"]["prompt_tokens"] == 2

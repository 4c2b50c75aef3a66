"""openai_chat dialect: parse_request (client -> IR) and render_request (IR -> Chat upstream)."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antiapi.errors import InvalidRequest
from antiapi.translate import ir
from antiapi.translate import openai_chat as oc
from antiapi.wire import openai_chat as wire


def parse(obj: dict) -> ir.Request:
    return oc.parse_request(json.dumps(obj).encode())


def bad(obj: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as ei:
        oc.parse_request(json.dumps(obj).encode() if not isinstance(obj, bytes) else obj)
    return ei.value


# =========================================================================== parse_request


def test_minimal_request():
    req = parse({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert req.model == "gpt-4o"
    assert req.source == "openai_chat"
    assert req.messages == [ir.Message(role="user", content=[ir.TextPart(text="hi")])]
    assert req.system == []
    assert req.stream is False and req.include_usage is False
    assert req.extras == {}


def test_leading_system_and_developer_go_to_system_later_ones_stay_in_place():
    req = parse(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]},
                {"role": "user", "content": "q"},
                {"role": "system", "content": "reminder"},
                {"role": "user", "content": "q2"},
            ],
        }
    )
    assert req.system == [ir.TextPart(text="You are terse."), ir.TextPart(text="A"), ir.TextPart(text="B")]
    assert req.messages == [
        ir.Message(role="user", content=[ir.TextPart(text="q")]),
        ir.Message(role="system", content=[ir.TextPart(text="reminder")]),
        ir.Message(role="user", content=[ir.TextPart(text="q2")]),
    ]


def test_user_parts_images_files_audio():
    req = parse(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO", "detail": "high"}},
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
                        {"type": "file", "file": {"file_id": "file-1"}},
                        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
                    ],
                }
            ],
        }
    )
    assert req.messages[0].content == [
        ir.TextPart(text="look"),
        ir.ImagePart(data="iVBO", media_type="image/png", detail="high"),
        ir.ImagePart(url="https://x.test/a.jpg"),
        ir.DocumentPart(data="JVBE", media_type="application/pdf", filename="a.pdf"),
        ir.RawPart(dialect="openai_chat", data={"type": "file", "file": {"file_id": "file-1"}}),
        ir.RawPart(dialect="openai_chat", data={"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}),
    ]


def test_assistant_tool_calls_and_tool_results_grouped_with_following_user_text():
    req = parse(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "reasoning_content": "secret thoughts",
                    "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "Read", "arguments": '{"p":"a"}'}},
                        {"id": "call_b", "type": "function", "function": {"name": "Ls", "arguments": ""}},
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": "AAA"},
                {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "B1"}, {"type": "text", "text": "B2"}]},
                {"role": "user", "content": "and now?"},
            ],
        }
    )
    assert req.messages == [
        ir.Message(role="user", content=[ir.TextPart(text="go")]),
        ir.Message(
            role="assistant",
            content=[
                ir.TextPart(text="Checking."),
                ir.ToolCallPart(id="call_a", name="Read", arguments='{"p":"a"}'),
                ir.ToolCallPart(id="call_b", name="Ls", arguments="{}"),
            ],
        ),
        ir.Message(
            role="user",
            content=[
                ir.ToolResultPart(call_id="call_a", content=[ir.TextPart(text="AAA")], name="Read"),
                ir.ToolResultPart(call_id="call_b", content=[ir.TextPart(text="B1"), ir.TextPart(text="B2")], name="Ls"),
                ir.TextPart(text="and now?"),
            ],
        ),
    ]


def test_consecutive_same_role_messages_merge():
    req = parse(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
                {"role": "assistant", "content": "d"},
            ],
        }
    )
    assert req.messages == [
        ir.Message(role="user", content=[ir.TextPart(text="a"), ir.TextPart(text="b")]),
        ir.Message(role="assistant", content=[ir.TextPart(text="c"), ir.TextPart(text="d")]),
    ]


def test_legacy_functions_and_function_call():
    req = parse(
        {
            "model": "m",
            "functions": [{"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}],
            "function_call": {"name": "f"},
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"x":"1"}'}},
                {"role": "function", "name": "f", "content": "result"},
            ],
        }
    )
    assert req.tools == [ir.Tool(name="f", parameters={"type": "object", "properties": {"x": {"type": "string"}}})]
    assert req.tool_choice == ir.ToolChoice(mode="tool", name="f")
    assert req.messages[1].content == [ir.ToolCallPart(id="call_fn_1", name="f", arguments='{"x":"1"}')]
    assert req.messages[2].content == [ir.ToolResultPart(call_id="call_fn_1", content=[ir.TextPart(text="result")], name="f")]


def test_scalar_fields_and_extras():
    req = parse(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 100,
            "max_completion_tokens": 200,
            "temperature": 0.5,
            "top_p": 1,
            "stop": "END",
            "n": 2,
            "seed": 7,
            "user": "u1",
            "metadata": {"k": "v"},
            "reasoning_effort": "high",
            "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": True}},
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [
                {"type": "function", "function": {"name": "t", "description": "d", "parameters": {"type": "object"}, "strict": False}},
                {"type": "web_search_preview"},
            ],
            "tool_choice": {"type": "function", "function": {"name": "t"}},
            "parallel_tool_calls": False,
            "prompt_cache_key": "abc",
            "store": False,
            "service_tier": "flex",
            "logprobs": True,
        }
    )
    assert req.max_output_tokens == 200
    assert req.temperature == 0.5 and req.top_p == 1.0
    assert req.stop == ["END"]
    assert (req.n, req.seed, req.user, req.metadata) == (2, 7, "u1", {"k": "v"})
    assert req.reasoning == ir.Reasoning(effort="high")
    assert req.response_format == ir.ResponseFormat(type="json_schema", name="r", schema={"type": "object"}, strict=True)
    assert req.stream is True and req.include_usage is True
    assert req.tools == [
        ir.Tool(name="t", description="d", parameters={"type": "object"}, strict=False),
        ir.Tool(name="web_search_preview", kind="builtin", raw={"type": "web_search_preview"}, dialect="openai_chat"),
    ]
    assert req.tool_choice == ir.ToolChoice(mode="tool", name="t")
    assert req.parallel_tool_calls is False
    assert req.extras == {"prompt_cache_key": "abc", "store": False, "service_tier": "flex", "logprobs": True}


def test_max_tokens_legacy_and_stop_list_and_tool_choice_strings():
    req = parse(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 50, "stop": ["a", "b"], "tool_choice": "required"}
    )
    assert req.max_output_tokens == 50
    assert req.stop == ["a", "b"]
    assert req.tool_choice == ir.ToolChoice(mode="required")
    req = parse({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "none"})
    assert req.reasoning == ir.Reasoning(effort="none", enabled=False)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{nope", "body: not valid JSON"),
        ([1, 2], "body: expected a JSON object"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model: required"),
        ({"model": "m"}, "messages: required; send a non-empty list"),
        ({"model": "m", "messages": []}, "messages: required; send a non-empty list"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "bot", "content": "y"}]},
            "messages[1].role: must be one of system, developer, user, assistant, tool",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content: expected a string or a list"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]}, "messages[0].content[0].text: expected a string"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0].type: required"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id: required"),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}]},
            "messages[0].tool_calls[0].function.name: required",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "10"}, "max_tokens: expected an integer"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": True}, "temperature: expected a number"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"}, "reasoning_effort: must be one of"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, "tools[0].function: required"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "any"}, "tool_choice: must be auto, none, required"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop[0]: expected a string"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}, "response_format.type: must be one of"),
        ({"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]}, "messages[0].content[0]: system messages accept only text parts"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:nonsense"}}]}]},
            "messages[0].content[0].image_url.url: not a valid data URL",
        ),
    ],
)
def test_invalid_requests_name_the_path(body, message):
    err = bad(body)
    assert err.message.startswith(message), err.message
    assert err.status == 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "x", None])
part = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "file", "input_audio", "refusal", "weird", None])},
    optional={"text": json_values, "image_url": json_values, "file": json_values, "refusal": json_values},
)
message = st.fixed_dictionaries(
    {"role": roles},
    optional={
        "content": st.none() | st.text(max_size=5) | st.lists(part, max_size=3) | json_values,
        "tool_calls": st.lists(
            st.fixed_dictionaries({}, optional={"id": json_values, "type": json_values, "function": json_values}), max_size=2
        )
        | json_values,
        "tool_call_id": json_values,
        "name": json_values,
        "function_call": json_values,
    },
)
request = st.fixed_dictionaries(
    {"model": st.text(max_size=3) | json_values, "messages": st.lists(message, max_size=4) | json_values},
    optional={
        k: json_values
        for k in (
            "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "n", "seed", "user", "metadata",
            "reasoning_effort", "response_format", "stream", "stream_options", "tools", "functions", "function_call",
            "tool_choice", "parallel_tool_calls",
        )
    },
)  # fmt: skip


good_text = st.text(min_size=1, max_size=8)
good_part = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, good_text),
    st.just({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}),
    st.just({"type": "image_url", "image_url": "https://x.test/a.png"}),
    st.just({"type": "file", "file": {"filename": "a.pdf", "file_data": "JVBE"}}),
    st.just({"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}),
)
good_call = st.builds(
    lambda i, n, a: {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}},
    st.integers(0, 3),
    st.sampled_from(["Read", "a.b", "x" * 70]),
    st.sampled_from(["", "{}", '{"a":1}', '{"a":']),
)
good_message = st.one_of(
    st.builds(lambda c: {"role": "system", "content": c}, good_text),
    st.builds(lambda c: {"role": "developer", "content": [{"type": "text", "text": c}]}, good_text),
    st.builds(lambda c: {"role": "user", "content": c}, good_text | st.lists(good_part, min_size=1, max_size=3)),
    st.builds(lambda c, t: {"role": "assistant", "content": c, "tool_calls": t}, st.none() | good_text, st.lists(good_call, max_size=2)),
    st.builds(lambda i, c: {"role": "tool", "tool_call_id": f"call_{i}", "content": c}, st.integers(0, 3), good_text),
)
good_request = st.fixed_dictionaries(
    {"model": good_text, "messages": st.lists(good_message, min_size=1, max_size=6)},
    optional={
        "stream": st.booleans(),
        "stream_options": st.just({"include_usage": True}),
        "max_tokens": st.integers(1, 100),
        "stop": st.lists(good_text, max_size=6),
        "reasoning_effort": st.sampled_from(["low", "high", "none"]),
        "tools": st.lists(
            st.builds(lambda n: {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}, good_text),
            max_size=2,
        ),
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "parallel_tool_calls": st.booleans(),
        "prompt_cache_key": good_text,
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(good_request, st.booleans(), st.booleans())
def test_well_formed_requests_parse_and_render(obj, reasoning_model, images_in_tool_results):
    req = oc.parse_request(json.dumps(obj).encode())
    assert req.model == obj["model"] and req.source == "openai_chat"
    out = oc.render_request(req, ir.Target(model="up", reasoning_model=reasoning_model, images_in_tool_results=images_in_tool_results))
    msgspec.convert(out.body, wire.ChatRequest)
    body = out.body
    assert body["model"] == "up"
    assert len(body.get("stop", [])) <= 4
    assert body.get("stream_options") == ({"include_usage": True} if obj.get("stream") else None)
    for m in body["messages"]:
        for call in m.get("tool_calls", []):
            assert call["function"]["arguments"] != ""
            assert len(call["function"]["name"]) <= 64
    # tool results of a turn are rendered before that turn's user text, never after it
    for prev, m in zip(body["messages"], body["messages"][1:]):
        if m["role"] == "tool":
            assert prev["role"] != "user"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(request | json_values)
def test_parse_request_fuzz_only_raises_invalid_request(obj):
    try:
        req = oc.parse_request(json.dumps(obj).encode())
    except InvalidRequest as e:
        assert ": " in e.message
        return
    # whatever parsed must render for an upstream without crashing
    oc.render_request(req, ir.Target(model="up"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=40))
def test_parse_request_fuzz_bytes(body):
    try:
        oc.parse_request(body)
    except InvalidRequest:
        pass


# =========================================================================== render_request


def render(req: ir.Request, **target) -> ir.Outgoing:
    out = oc.render_request(req, ir.Target(model=target.pop("model", "up-model"), **target))
    # the body must have the Chat request shape
    msgspec.convert(out.body, wire.ChatRequest)
    return out


def test_render_from_anthropic_like_request_full_turn():
    req = ir.Request(
        model="claude-x",
        source="anthropic",
        system=[
            ir.TextPart(text="x-anthropic-billing-header: cc_version=2.0; cc_entrypoint=cli;"),
            ir.TextPart(text="You are Claude Code.", cache={"type": "ephemeral"}),
            ir.TextPart(text="Be brief."),
        ],
        messages=[
            ir.Message(role="user", content=[ir.TextPart(text="read a.py")]),
            ir.Message(
                role="assistant",
                content=[
                    ir.ReasoningPart(text="hmm", signature="sig", provider="anthropic"),
                    ir.TextPart(text="Reading."),
                    ir.ToolCallPart(id="toolu_1", name="Read", arguments='{"path":"a.py"}'),
                    ir.ToolCallPart(id="toolu_2", name="Ls", arguments=""),
                ],
            ),
            ir.Message(
                role="user",
                content=[
                    ir.ToolResultPart(call_id="toolu_1", content=[ir.TextPart(text="print(1)")]),
                    ir.ToolResultPart(call_id="toolu_2", content=[ir.TextPart(text="boom")], is_error=True),
                    ir.TextPart(text="thanks"),
                ],
            ),
        ],
        metadata={"user_id": "u"},
        extras={"context_management": {}},
    )
    out = render(req)
    assert out.body["messages"] == [
        {"role": "system", "content": "You are Claude Code.\n\nBe brief."},
        {"role": "user", "content": "read a.py"},
        {
            "role": "assistant",
            "content": "Reading.",
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "Read", "arguments": '{"path":"a.py"}'}},
                {"id": "toolu_2", "type": "function", "function": {"name": "Ls", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "print(1)"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: boom"},
        {"role": "user", "content": "thanks"},
    ]
    assert "metadata" not in out.body and "context_management" not in out.body
    assert out.stream is False and "stream" not in out.body


def test_render_tool_only_assistant_has_null_content_and_mid_system_in_place():
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(role="user", content=[ir.TextPart(text="a")]),
            ir.Message(role="system", content=[ir.TextPart(text="remember")]),
            ir.Message(role="assistant", content=[ir.ToolCallPart(id="c1", name="f")]),
            ir.Message(role="user", content=[ir.ToolResultPart(call_id="c1", content=[])]),
        ],
    )
    msgs = render(req).body["messages"]
    assert msgs == [
        {"role": "user", "content": "a"},
        {"role": "system", "content": "remember"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": ""},
    ]


def test_render_tool_result_images_move_to_following_user_message_unless_supported():
    result = ir.ToolResultPart(
        call_id="c1", content=[ir.TextPart(text="see"), ir.ImagePart(data="AAA", media_type="image/png")]
    )
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(role="assistant", content=[ir.ToolCallPart(id="c1", name="shot")]),
            ir.Message(role="user", content=[result, ir.TextPart(text="what is it?")]),
        ],
    )
    msgs = render(req).body["messages"][1:]
    assert msgs == [
        {"role": "tool", "tool_call_id": "c1", "content": "see"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                {"type": "text", "text": "what is it?"},
            ],
        },
    ]
    msgs = render(req, images_in_tool_results=True).body["messages"][1:]
    assert msgs == [
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}],
        },
        {"role": "user", "content": "what is it?"},
    ]


def test_render_user_documents_images_and_raw_parts():
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(
                role="user",
                content=[
                    ir.TextPart(text="a"),
                    ir.ImagePart(url="https://x.test/i.png", detail="low"),
                    ir.DocumentPart(data="JVBE", media_type="application/pdf", filename="r.pdf"),
                    ir.DocumentPart(data="aGVsbG8=", media_type="text/plain", filename="n.txt"),
                    ir.RawPart(dialect="openai_chat", data={"type": "input_audio", "input_audio": {"data": "A", "format": "wav"}}),
                    ir.RawPart(dialect="anthropic", data={"type": "search_result"}),
                ],
            )
        ],
    )
    assert render(req).body["messages"][0]["content"] == [
        {"type": "text", "text": "a"},
        {"type": "image_url", "image_url": {"url": "https://x.test/i.png", "detail": "low"}},
        {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "text", "text": "[document: n.txt]\nhello"},
        {"type": "input_audio", "input_audio": {"data": "A", "format": "wav"}},
    ]


def test_render_several_text_parts_join_into_one_string():
    req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(text="<r>x</r>"), ir.TextPart(text="do it")])])
    assert render(req).body["messages"] == [{"role": "user", "content": "<r>x</r>\n\ndo it"}]


def test_render_tools_names_choice_and_maps():
    long = "mcp__some_server_with_a_long_name__a_tool_with_an_even_longer_name_here"
    req = ir.Request(
        model="m",
        tools=[
            ir.Tool(name=long, description="d", parameters={"type": "object"}),
            ir.Tool(name="bad.name", parameters={"type": "object", "properties": {"a": {"type": "string"}}}, strict=True),
            ir.Tool(name="web_search", kind="builtin", raw={"type": "web_search_20250305"}, dialect="anthropic"),
            ir.Tool(name="web_search_preview", kind="builtin", raw={"type": "web_search_preview"}, dialect="openai_chat"),
            ir.Tool(name="apply_patch", kind="custom", description="patch"),
        ],
        tool_choice=ir.ToolChoice(mode="tool", name=long),
        parallel_tool_calls=False,
        messages=[
            ir.Message(role="user", content=[ir.TextPart(text="x")]),
            ir.Message(role="assistant", content=[ir.ToolCallPart(id="id with space", name=long, arguments="{}")]),
            ir.Message(role="user", content=[ir.ToolResultPart(call_id="id with space", content=[ir.TextPart(text="ok")])]),
        ],
    )
    out = render(req)
    short = out.body["tools"][0]["function"]["name"]
    assert len(short) == 64 and out.tool_names == {short: long, "bad_name": "bad.name"}
    assert out.call_ids == {"id_with_space": "id with space"}
    assert out.body["tools"] == [
        {"type": "function", "function": {"name": short, "description": "d", "parameters": {"type": "object", "properties": {}}}},
        {
            "type": "function",
            "function": {"name": "bad_name", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}, "strict": True},
        },
        {"type": "web_search_preview"},
        {
            "type": "function",
            "function": {
                "name": "apply_patch",
                "description": "patch",
                "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
            },
        },
    ]
    assert out.body["tool_choice"] == {"type": "function", "function": {"name": short}}
    assert out.body["parallel_tool_calls"] is False
    assert out.body["messages"][1]["tool_calls"][0]["id"] == "id_with_space"
    assert out.body["messages"][1]["tool_calls"][0]["function"]["name"] == short
    assert out.body["messages"][2]["tool_call_id"] == "id_with_space"


def test_render_tool_choice_modes_and_no_choice_without_tools():
    base = dict(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(text="x")])])
    for mode in ("auto", "none", "required"):
        out = render(ir.Request(**base, tools=[ir.Tool(name="t")], tool_choice=ir.ToolChoice(mode=mode)))
        assert out.body["tool_choice"] == mode
    out = render(ir.Request(**base, tool_choice=ir.ToolChoice(mode="required"), parallel_tool_calls=True))
    assert "tool_choice" not in out.body and "parallel_tool_calls" not in out.body and "tools" not in out.body


def test_render_sampling_limits_reasoning_and_streaming():
    req = ir.Request(
        model="m",
        messages=[ir.Message(role="user", content=[ir.TextPart(text="x")])],
        max_output_tokens=1000,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop=["a", "b", "c", "d", "e"],
        reasoning=ir.Reasoning(enabled=True, budget_tokens=16000),
        response_format=ir.ResponseFormat(type="json_object"),
        user="u",
        n=1,
        seed=3,
        stream=True,
        include_usage=False,
    )
    plain = render(req).body
    assert {k: v for k, v in plain.items() if k != "messages"} == {
        "model": "up-model",
        "max_tokens": 1000,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["a", "b", "c", "d"],
        "response_format": {"type": "json_object"},
        "user": "u",
        "n": 1,
        "seed": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    reasoning = render(req, reasoning_model=True).body
    assert reasoning["max_completion_tokens"] == 1000 and "max_tokens" not in reasoning
    assert reasoning["reasoning_effort"] == "high"
    assert "temperature" not in reasoning and "top_p" not in reasoning


@pytest.mark.parametrize(
    "reasoning, effort",
    [
        (ir.Reasoning(effort="low"), "low"),
        (ir.Reasoning(budget_tokens=1024), "low"),
        (ir.Reasoning(budget_tokens=8000), "medium"),
        (ir.Reasoning(enabled=True), "medium"),
        (ir.Reasoning(adaptive=True), "medium"),
        (ir.Reasoning(enabled=False), None),
        (None, None),
    ],
)
def test_render_reasoning_effort(reasoning, effort):
    req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(text="x")])], reasoning=reasoning)
    assert render(req, reasoning_model=True).body.get("reasoning_effort") == effort
    assert "reasoning_effort" not in render(req).body


def test_render_json_schema_response_format():
    req = ir.Request(
        model="m",
        messages=[ir.Message(role="user", content=[ir.TextPart(text="x")])],
        response_format=ir.ResponseFormat(type="json_schema", name="out", schema={"type": "object"}, strict=True),
    )
    assert render(req).body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }


def test_chat_client_round_trip_keeps_extras_and_metadata():
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
        "metadata": {"a": "b"},
        "prompt_cache_key": "k",
        "logprobs": True,
        "stream": True,
    }
    out = render(parse(body))
    assert out.body == {
        "model": "up-model",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "metadata": {"a": "b"},
        "prompt_cache_key": "k",
        "logprobs": True,
    }

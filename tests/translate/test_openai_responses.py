"""OpenAI Responses dialect: request parsing/rendering and error handling (unit tests)."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antiapi.errors import ErrorKind, GatewayError, InvalidRequest, UpstreamHTTPError
from antiapi.translate import ir
from antiapi.translate import openai_responses as orr


def _parse(obj: dict) -> ir.Request:
    return orr.parse_request(json.dumps(obj).encode())


OPENAI = ir.Target(model="gpt-5.1", provider="openai")
CODEX = ir.Target(model="gpt-5.5", provider="codex")

# --------------------------------------------------------------------------- parse_request


def test_parse_instructions_and_string_input():
    req = _parse({"model": "gpt-5", "instructions": "Be terse.", "input": "Say hi", "stream": True})
    assert req.model == "gpt-5"
    assert req.source == "openai_responses"
    assert req.stream is True
    assert req.include_usage is True
    assert req.system == [ir.TextPart(text="Be terse.")]
    assert req.messages == [ir.Message(role="user", content=[ir.TextPart(text="Say hi")])]
    assert req.want_reasoning is False
    assert req.extras == {}


def test_parse_codex_style_history():
    body = {
        "model": "gpt-5.5",
        "instructions": "base",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev rules"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix it"}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "A"}, {"type": "summary_text", "text": "B"}],
             "encrypted_content": "gAAA-blob"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
            {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{\"cmd\":\"ls\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "shell", "arguments": ""},
            {"type": "function_call_output", "call_id": "call_1", "output": "a.py"},
            {"type": "function_call_output", "call_id": "call_2", "output": "b.py"},
            {"role": "developer", "content": "mid reminder"},
            {"role": "user", "content": "thanks"},
        ],
    }
    req = _parse(body)
    assert req.system == [ir.TextPart(text="base"), ir.TextPart(text="dev rules")]
    assert req.messages == [
        ir.Message(role="user", content=[ir.TextPart(text="fix it")]),
        ir.Message(
            role="assistant",
            content=[
                ir.ReasoningPart(text="A\n\nB", signature="gAAA-blob", provider="openai"),
                ir.TextPart(text="Looking."),
                ir.ToolCallPart(id="call_1", name="shell", arguments="{\"cmd\":\"ls\"}"),
                ir.ToolCallPart(id="call_2", name="shell", arguments="{}"),
            ],
        ),
        ir.Message(
            role="user",
            content=[
                ir.ToolResultPart(call_id="call_1", content=[ir.TextPart(text="a.py")]),
                ir.ToolResultPart(call_id="call_2", content=[ir.TextPart(text="b.py")]),
            ],
        ),
        ir.Message(role="system", content=[ir.TextPart(text="mid reminder")]),
        ir.Message(role="user", content=[ir.TextPart(text="thanks")]),
    ]


def test_parse_foreign_signature_is_unwrapped():
    req = _parse({
        "model": "m",
        "input": [{"type": "reasoning", "summary": [], "encrypted_content": "antiapi.anthropic.EqQBsig"}],
    })
    assert req.messages[0].content == [ir.ReasoningPart(text="", signature="EqQBsig", provider="anthropic")]


def test_parse_reasoning_without_encrypted_content_has_no_provider():
    req = _parse({"model": "m", "input": [{"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "x"}]}]})
    assert req.messages[0].content == [ir.ReasoningPart(text="x")]


def test_parse_content_parts():
    req = _parse({
        "model": "m",
        "input": [{
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "high"},
                {"type": "input_image", "image_url": "https://x/y.png"},
                {"type": "input_image", "file_id": "file-1"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
                {"type": "input_file", "file_url": "https://x/a.pdf"},
                {"type": "input_audio", "data": "zz"},
            ],
        }],
    })
    assert req.messages[0].content == [
        ir.TextPart(text="look"),
        ir.ImagePart(data="AAAA", media_type="image/png", detail="high"),
        ir.ImagePart(url="https://x/y.png"),
        ir.RawPart(dialect="openai_responses", data={"type": "input_image", "file_id": "file-1"}),
        ir.DocumentPart(data="JVBE", media_type="application/pdf", filename="a.pdf"),
        ir.DocumentPart(url="https://x/a.pdf"),
        ir.RawPart(dialect="openai_responses", data={"type": "input_audio", "data": "zz"}),
    ]


def test_parse_tool_output_list_and_custom_tools():
    req = _parse({
        "model": "m",
        "tools": [
            {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object", "properties": {"a": {}}}, "strict": False},
            {"type": "custom", "name": "apply_patch", "description": "patch", "format": {"type": "grammar"}},
            {"type": "web_search"},
            {"type": "local_shell"},
        ],
        "input": [
            {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin\n\"x\""},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
            {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c2", "output": [
                {"type": "input_text", "text": "see"},
                {"type": "input_image", "image_url": "data:image/jpeg;base64,QQ=="},
            ]},
        ],
    })
    assert req.tools[0] == ir.Tool(name="f", description="d", parameters={"type": "object", "properties": {"a": {}}}, strict=False)
    assert req.tools[1] == ir.Tool(
        name="apply_patch",
        description="patch",
        parameters={"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
        kind="custom",
        raw={"type": "custom", "name": "apply_patch", "description": "patch", "format": {"type": "grammar"}},
        dialect="openai_responses",
    )
    assert req.tools[2] == ir.Tool(name="web_search", kind="builtin", raw={"type": "web_search"}, dialect="openai_responses")
    assert req.tools[3].kind == "builtin" and req.tools[3].raw == {"type": "local_shell"}
    assert req.messages == [
        ir.Message(role="assistant", content=[ir.ToolCallPart(id="c1", name="apply_patch", arguments='{"input":"*** Begin\\n\\"x\\""}')]),
        ir.Message(role="user", content=[ir.ToolResultPart(call_id="c1", content=[ir.TextPart(text="done")])]),
        ir.Message(role="assistant", content=[ir.ToolCallPart(id="c2", name="f", arguments="{}")]),
        ir.Message(role="user", content=[ir.ToolResultPart(call_id="c2", content=[
            ir.TextPart(text="see"), ir.ImagePart(data="QQ==", media_type="image/jpeg"),
        ])]),
    ]
    assert json.loads(req.messages[0].content[0].arguments) == {"input": "*** Begin\n\"x\""}


def test_parse_unknown_items_become_raw_parts():
    shell = {"type": "local_shell_call", "id": "ls_1", "call_id": "s1", "status": "completed",
             "action": {"type": "exec", "command": ["ls"]}}
    out = {"type": "local_shell_call_output", "call_id": "s1", "output": "a"}
    ref = {"type": "item_reference", "id": "msg_9"}
    req = _parse({"model": "m", "input": [shell, out, ref]})
    assert req.messages == [
        ir.Message(role="assistant", content=[ir.RawPart(dialect="openai_responses", data=shell)]),
        ir.Message(role="user", content=[
            ir.RawPart(dialect="openai_responses", data=out), ir.RawPart(dialect="openai_responses", data=ref),
        ]),
    ]


def test_parse_options_and_extras():
    req = _parse({
        "model": "m",
        "input": [],
        "tool_choice": {"type": "function", "name": "f"},
        "parallel_tool_calls": False,
        "reasoning": {"effort": "high", "summary": "auto"},
        "max_output_tokens": 500,
        "temperature": 0.5,
        "top_p": 1,
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True},
                 "verbosity": "low"},
        "user": "u1",
        "metadata": {"k": "v"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "sess",
        "client_metadata": {"x": "y"},
        "previous_response_id": "resp_1",
        "service_tier": "priority",
        "truncation": "auto",
    })
    assert req.tool_choice == ir.ToolChoice(mode="tool", name="f")
    assert req.parallel_tool_calls is False
    assert req.reasoning == ir.Reasoning(enabled=True, effort="high", summary="auto")
    assert req.want_reasoning is True
    assert (req.max_output_tokens, req.temperature, req.top_p) == (500, 0.5, 1.0)
    assert req.response_format == ir.ResponseFormat(type="json_schema", name="out", schema={"type": "object"}, strict=True)
    assert req.user == "u1" and req.metadata == {"k": "v"}
    assert req.extras == {
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "sess",
        "client_metadata": {"x": "y"},
        "previous_response_id": "resp_1",
        "service_tier": "priority",
        "truncation": "auto",
        "text": {"verbosity": "low"},
    }


@pytest.mark.parametrize(
    ("choice", "expected", "extra"),
    [
        ("auto", ir.ToolChoice(mode="auto"), None),
        ("none", ir.ToolChoice(mode="none"), None),
        ("required", ir.ToolChoice(mode="required"), None),
        ({"type": "custom", "name": "apply_patch"}, ir.ToolChoice(mode="tool", name="apply_patch"), None),
        ({"type": "allowed_tools", "mode": "required", "tools": []}, ir.ToolChoice(mode="required"),
         {"type": "allowed_tools", "mode": "required", "tools": []}),
        ({"type": "web_search"}, ir.ToolChoice(mode="required"), {"type": "web_search"}),
    ],
)
def test_parse_tool_choice(choice, expected, extra):
    req = _parse({"model": "m", "input": "x", "tool_choice": choice})
    assert req.tool_choice == expected
    assert req.extras.get("tool_choice") == extra


@pytest.mark.parametrize(
    ("reasoning", "want", "enabled"),
    [({"effort": "none"}, False, False), ({"summary": "none", "effort": "low"}, False, True), ({"summary": "detailed"}, True, None)],
)
def test_parse_reasoning_flags(reasoning, want, enabled):
    req = _parse({"model": "m", "input": "x", "reasoning": reasoning})
    assert req.want_reasoning is want
    assert req.reasoning is not None and req.reasoning.enabled is enabled


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": 3, "input": "x"}, "model"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "input": [5]}, "input[0]"),
        ({"model": "m", "input": [{"content": "x"}]}, "input[0].type"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"role": "user"}]}, "input[0]"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]}, "input[0].content[0].text"),
        ({"model": "m", "input": [{"role": "user", "content": [{"text": "x"}]}]}, "input[0].content[0].type"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input[0].content[0]"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0]"),
        ({"model": "m", "input": [{"type": "function_call_output", "call_id": 1}]}, "input[0].call_id"),
        ({"model": "m", "input": [{"type": "reasoning", "summary": "x"}]}, "input[0].summary"),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0]"),
        ({"model": "m", "input": "x", "tools": [{"type": "function", "name": ""}]}, "tools[0].name"),
        ({"model": "m", "input": "x", "tools": ["f"]}, "tools[0]"),
        ({"model": "m", "input": "x", "tool_choice": "always"}, "tool_choice"),
        ({"model": "m", "input": "x", "tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"model": "m", "input": "x", "reasoning": {"effort": 3}}, "reasoning.effort"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"model": "m", "input": "x", "max_output_tokens": "many"}, "max_output_tokens"),
        ({"model": "m", "input": "x", "stream": "yes"}, "stream"),
    ],
)
def test_parse_errors_name_the_path(body, param):
    with pytest.raises(InvalidRequest) as ei:
        _parse(body)
    assert ei.value.param == param
    assert ei.value.message.startswith(param + ": ")
    assert ei.value.status == 400


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b"null", b'"x"'])
def test_parse_rejects_non_object_bodies(raw):
    with pytest.raises(InvalidRequest) as ei:
        orr.parse_request(raw)
    assert ei.value.message.startswith("body: ")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(["type", "role", "content", "text", "call_id", "name", "arguments", "output", "summary",
                         "encrypted_content", "image_url", "file_id", "file_data", "input", "parameters"])
_vals = st.one_of(
    _json,
    st.sampled_from(["message", "function_call", "function_call_output", "reasoning", "custom_tool_call",
                     "input_text", "input_image", "input_file", "user", "assistant", "developer", "function", "custom"]),
)
_item = st.dictionaries(_keys, st.one_of(_vals, st.lists(st.dictionaries(_keys, _vals, max_size=4), max_size=3)), max_size=6)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    top=st.dictionaries(
        st.sampled_from(["model", "input", "tools", "tool_choice", "reasoning", "text", "instructions", "stream", "x"]),
        st.one_of(_json, st.lists(_item, max_size=4), _item),
        max_size=6,
    ),
    model=st.booleans(),
)
def test_parse_request_fuzz_only_raises_invalid_request(top, model):
    if model:
        top["model"] = "m"
    try:
        req = orr.parse_request(msgspec.json.encode(top))
    except InvalidRequest as e:
        assert e.param is None or isinstance(e.param, str)
        return
    assert isinstance(req, ir.Request)
    # whatever parsed must render for both upstream flavours without crashing
    orr.render_request(req, OPENAI)
    orr.render_request(req, CODEX)


# --------------------------------------------------------------------------- render_request


def _anthropic_style_request(**kw) -> ir.Request:
    long_id = "toolu_" + "x" * 80
    return ir.Request(
        model="claude-sonnet",
        source="anthropic",
        system=[ir.TextPart(text="You are Claude Code."), ir.TextPart(text="Be brief.")],
        messages=[
            ir.Message(role="user", content=[ir.TextPart(text="read a.py"), ir.ImagePart(data="AAAA", media_type="image/png")]),
            ir.Message(role="assistant", content=[
                ir.ReasoningPart(text="anthropic thought", signature="EqQB", provider="anthropic"),
                ir.ReasoningPart(text="openai thought", signature="gAAA", provider="openai"),
                ir.ReasoningPart(redacted="zzz", provider="anthropic"),
                ir.TextPart(text="Reading."),
                ir.ToolCallPart(id=long_id, name="mcp.fs/read", arguments='{"path":"a.py"}'),
                ir.ToolCallPart(id="toolu_2", name="Bash", arguments=""),
            ]),
            ir.Message(role="user", content=[
                ir.TextPart(text="and then?"),
                ir.ToolResultPart(call_id=long_id, content=[ir.TextPart(text="print(1)"), ir.ImagePart(url="https://i/x.png")]),
                ir.ToolResultPart(call_id="toolu_2", content=[ir.TextPart(text="boom")], is_error=True),
            ]),
            ir.Message(role="system", content=[ir.TextPart(text="reminder")]),
        ],
        tools=[
            ir.Tool(name="mcp.fs/read", description="Read", parameters={"type": "object", "$schema": "x"}),
            ir.Tool(name="Bash", parameters={"type": "object", "properties": {"c": {"type": "string"}}}, strict=True),
            ir.Tool(name="web_search", kind="builtin", raw={"type": "web_search_20250305", "name": "web_search"}, dialect="anthropic"),
            ir.Tool(name="computer", kind="builtin", raw={"type": "computer_20250124"}, dialect="anthropic"),
        ],
        tool_choice=ir.ToolChoice(mode="tool", name="mcp.fs/read"),
        parallel_tool_calls=False,
        max_output_tokens=1000,
        temperature=0.2,
        top_p=0.9,
        top_k=5,
        stop=["END"],
        reasoning=ir.Reasoning(enabled=True, budget_tokens=20000),
        response_format=ir.ResponseFormat(type="json_schema", name="o", schema={"type": "object"}, strict=True),
        stream=True,
        user="u",
        extras={"anthropic_only": 1},
        **kw,
    )


def test_render_request_openai_full():
    req = _anthropic_style_request()
    out = orr.render_request(req, ir.Target(model="gpt-5.1", provider="openai"))
    long_id = "toolu_" + "x" * 80
    short_id = next(iter(out.call_ids))
    assert out.call_ids == {short_id: long_id} and len(short_id) == 64
    assert out.tool_names == {"mcp_fs_read": "mcp.fs/read"}
    assert out.stream is True
    assert out.body == {
        "model": "gpt-5.1",
        "instructions": "You are Claude Code.\n\nBe brief.",
        "input": [
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "read a.py"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
            ]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "openai thought"}], "encrypted_content": "gAAA"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Reading."}]},
            {"type": "function_call", "call_id": short_id, "name": "mcp_fs_read", "arguments": '{"path":"a.py"}'},
            {"type": "function_call", "call_id": "toolu_2", "name": "Bash", "arguments": "{}"},
            {"type": "function_call_output", "call_id": short_id, "output": [
                {"type": "input_text", "text": "print(1)"},
                {"type": "input_image", "image_url": "https://i/x.png", "detail": "auto"},
            ]},
            {"type": "function_call_output", "call_id": "toolu_2", "output": "Error: boom"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and then?"}]},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "reminder"}]},
        ],
        "tools": [
            {"type": "function", "name": "mcp_fs_read", "description": "Read",
             "parameters": {"type": "object", "properties": {}}, "strict": False},
            {"type": "function", "name": "Bash", "parameters": {"type": "object", "properties": {"c": {"type": "string"}}},
             "strict": True},
            {"type": "web_search"},
        ],
        "tool_choice": {"type": "function", "name": "mcp_fs_read"},
        "parallel_tool_calls": False,
        "max_output_tokens": 1000,
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "u",
        "text": {"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"}, "strict": True}},
        "stream": True,
    }


def test_render_request_reasoning_model_gets_effort_and_stateless_include():
    req = _anthropic_style_request()
    out = orr.render_request(req, ir.Target(model="gpt-5.1", provider="openai", reasoning_model=True))
    b = out.body
    assert b["reasoning"] == {"effort": "high", "summary": "auto"}
    assert b["store"] is False
    assert b["include"] == ["reasoning.encrypted_content"]
    assert "temperature" not in b and "top_p" not in b
    assert b["max_output_tokens"] == 1000


def test_render_request_codex():
    req = _anthropic_style_request()
    req.stream = False
    out = orr.render_request(req, CODEX)
    b = out.body
    assert b["instructions"] == ""
    assert b["input"][0] == {"type": "message", "role": "developer", "content": [
        {"type": "input_text", "text": "You are Claude Code."}, {"type": "input_text", "text": "Be brief."},
    ]}
    assert b["store"] is False and b["stream"] is True and out.stream is True
    assert b["include"] == ["reasoning.encrypted_content"]
    assert b["parallel_tool_calls"] is True
    assert b["reasoning"] == {"effort": "high", "summary": "auto"}
    for k in ("max_output_tokens", "temperature", "top_p", "user", "metadata", "anthropic_only"):
        assert k not in b


def test_render_request_codex_without_tools_or_system():
    req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(text="hi")])],
                     want_reasoning=False, source="openai_chat")
    b = orr.render_request(req, CODEX).body
    assert b == {
        "model": "gpt-5.5",
        "instructions": "",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "stream": True,
        "store": False,
        "include": ["reasoning.encrypted_content"],
    }


def test_render_request_same_dialect_round_trip_to_codex_and_openai():
    body = {
        "model": "gpt-5.5",
        "instructions": "official prompt",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "patch it"}]},
            {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-exact=="},
            {"type": "custom_tool_call", "call_id": "call_9", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "call_9", "output": "ok"},
            {"type": "local_shell_call", "call_id": "s1", "action": {"type": "exec", "command": ["ls"]}},
            {"type": "local_shell_call_output", "call_id": "s1", "output": "x"},
        ],
        "tools": [
            {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "x"}},
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "sess-1",
        "text": {"verbosity": "low"},
        "truncation": "auto",
        "service_tier": "flex",
        "max_output_tokens": 99,
    }
    req = _parse(body)
    codex = orr.render_request(req, CODEX).body
    assert codex["input"][0] == {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "official prompt"}]}
    assert codex["input"][1:] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "patch it"}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-exact=="},
        {"type": "custom_tool_call", "call_id": "call_9", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_9", "output": "ok"},
        body["input"][4],
        body["input"][5],
    ]
    assert codex["tools"] == [
        {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
        body["tools"][1],
        body["tools"][2],
    ]
    assert codex["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert codex["prompt_cache_key"] == "sess-1"
    assert codex["text"] == {"verbosity": "low"}
    assert "truncation" not in codex and "service_tier" not in codex and "max_output_tokens" not in codex

    openai = orr.render_request(req, OPENAI).body
    assert openai["instructions"] == "official prompt"
    assert openai["truncation"] == "auto" and openai["service_tier"] == "flex"
    assert openai["max_output_tokens"] == 99 and openai["parallel_tool_calls"] is False
    assert openai["store"] is False and openai["include"] == ["reasoning.encrypted_content"]
    assert openai["reasoning"] == {"effort": "medium", "summary": "auto"}


def test_render_request_custom_tool_from_foreign_history():
    req = ir.Request(
        model="m",
        source="openai_chat",
        tools=[ir.Tool(name="apply_patch", kind="custom", parameters={"type": "object"})],
        tool_choice=ir.ToolChoice(mode="tool", name="apply_patch"),
        messages=[
            ir.Message(role="assistant", content=[ir.ToolCallPart(id="c1", name="apply_patch", arguments='{"input":"P"}')]),
            ir.Message(role="user", content=[ir.ToolResultPart(call_id="c1", content=[])]),
        ],
    )
    b = orr.render_request(req, OPENAI).body
    assert b["input"] == [
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "P"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": ""},
    ]
    assert b["tools"] == [{"type": "custom", "name": "apply_patch"}]
    assert b["tool_choice"] == {"type": "custom", "name": "apply_patch"}


@pytest.mark.parametrize(
    ("reasoning", "expected"),
    [
        (ir.Reasoning(effort="low"), {"effort": "low", "summary": "auto"}),
        (ir.Reasoning(budget_tokens=1024), {"effort": "low", "summary": "auto"}),
        (ir.Reasoning(enabled=True), {"effort": "medium", "summary": "auto"}),
        (ir.Reasoning(enabled=False), {"summary": "auto"}),
    ],
)
def test_render_request_reasoning_effort(reasoning, expected):
    req = ir.Request(model="m", reasoning=reasoning, source="anthropic")
    assert orr.render_request(req, ir.Target(model="o3", reasoning_model=True)).body["reasoning"] == expected


def test_render_request_no_reasoning_for_plain_models():
    req = ir.Request(model="m", reasoning=ir.Reasoning(effort="high"), source="anthropic")
    b = orr.render_request(req, ir.Target(model="gpt-4o")).body
    assert "reasoning" not in b and "include" not in b and "store" not in b


# --------------------------------------------------------------------------- errors


def test_render_error_envelope():
    err = InvalidRequest("input[0].role: unknown role 'robot'", param="input[0].role")
    assert orr.render_error(err) == (
        b'{"error":{"message":"input[0].role: unknown role \'robot\'","type":"invalid_request_error",'
        b'"param":"input[0].role","code":null}}'
    )
    rl = GatewayError("slow down", kind=ErrorKind.RATE_LIMIT)
    assert json.loads(orr.render_error(rl)) == {
        "error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}
    }
    own = GatewayError("ctx", kind=ErrorKind.INVALID_REQUEST, code="context_length_exceeded")
    assert json.loads(orr.render_error(own))["error"]["code"] == "context_length_exceeded"


def test_render_error_validates_with_openai_sdk_shape():
    from openai.types.shared import ErrorObject

    for kind in ErrorKind:
        body = json.loads(orr.render_error(GatewayError("m", kind=kind)))
        ErrorObject.model_validate(body["error"])


def _perr(status, body, headers=None) -> UpstreamHTTPError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return orr.parse_error(status, headers or {}, raw)


def test_parse_error_openai_rate_limit_with_headers():
    e = _perr(429, {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
              {"Retry-After": "7", "x-request-id": "req_1"})
    assert (e.kind, e.status, e.code, e.retry_after, e.request_id) == (ErrorKind.RATE_LIMIT, 429, "rate_limit_exceeded", 7.0, "req_1")
    assert e.message == "openai: Rate limit reached"
    assert e.retryable is True


def test_parse_error_retry_after_ms():
    e = _perr(429, {"error": {"message": "x", "code": None}}, {"retry-after-ms": "1500"})
    assert e.retry_after == 1.5 and e.kind == ErrorKind.RATE_LIMIT


def test_parse_error_insufficient_quota_is_billing():
    e = _perr(429, {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}})
    assert (e.kind, e.status, e.code, e.retryable) == (ErrorKind.BILLING, 429, "insufficient_quota", False)


def test_parse_error_codex_detail():
    e = _perr(400, {"detail": "Store must be set to false"})
    assert (e.kind, e.status, e.message, e.code) == (ErrorKind.INVALID_REQUEST, 400, "openai: Store must be set to false", None)
    e = _perr(401, {"detail": "Unauthorized"})
    assert e.kind == ErrorKind.AUTHENTICATION and e.message == "openai: Unauthorized"


def test_parse_error_codex_usage_limit():
    e = _perr(429, {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                              "plan_type": "plus", "resets_at": 1777936568, "eligible_promo": None,
                              "resets_in_seconds": 13872}})
    assert (e.kind, e.code, e.retry_after) == (ErrorKind.RATE_LIMIT, "usage_limit_reached", 13872.0)
    assert e.message == "openai: The usage limit has been reached"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, {"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}, ErrorKind.INVALID_REQUEST),
        (503, {"error": {"code": "server_is_overloaded", "message": "busy"}}, ErrorKind.OVERLOADED),
        (429, {"error": {"type": "usage_not_included", "message": "plan"}}, ErrorKind.BILLING),
        (500, {"error": {"message": "boom", "type": "server_error", "code": None}}, ErrorKind.API_ERROR),
        (404, {"error": {"message": "nope", "type": "invalid_request_error", "code": "model_not_found"}}, ErrorKind.NOT_FOUND),
        (403, b"<html>Cloudflare 1010</html>", ErrorKind.PERMISSION),
        (502, b"", ErrorKind.API_ERROR),
    ],
)
def test_parse_error_kinds(status, body, kind):
    e = _perr(status, body)
    assert e.kind == kind and e.status == status
    assert e.message.startswith("openai: ")


def test_parse_error_non_json_keeps_text():
    assert _perr(403, b"<html>Cloudflare 1010</html>").message == "openai: <html>Cloudflare 1010</html>"
    assert _perr(502, b"").message == "openai: HTTP 502"

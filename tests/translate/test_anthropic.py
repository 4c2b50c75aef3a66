"""Anthropic dialect: request parsing/rendering, non-stream bodies, errors, models list.

Stream decoding/encoding lives in test_anthropic_stream.py.
"""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antiapi.errors import ErrorKind, GatewayError, InvalidRequest, UpstreamHTTPError, UpstreamTimeout
from antiapi.translate import anthropic as am
from antiapi.translate import ir


def body(**kw: object) -> bytes:
    base: dict = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    base.update(kw)
    return json.dumps(base).encode()


def target(**kw: object) -> ir.Target:
    return ir.Target(model="claude-up", provider="anthropic", **kw)  # type: ignore[arg-type]


# =========================================================================== parse_request


class TestParseRequest:
    def test_minimal(self) -> None:
        req = am.parse_request(body())
        assert req.model == "claude-x"
        assert req.max_output_tokens == 100
        assert req.source == "anthropic"
        assert req.messages == [ir.Message(role="user", content=[ir.TextPart(text="hi")])]
        assert req.stream is False
        assert req.extras == {}

    def test_system_string_and_blocks_with_cache(self) -> None:
        assert am.parse_request(body(system="be brief")).system == [ir.TextPart(text="be brief")]
        req = am.parse_request(
            body(system=[{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}])
        )
        assert req.system == [ir.TextPart(text="a"), ir.TextPart(text="b", cache={"type": "ephemeral"})]

    def test_scalars(self) -> None:
        req = am.parse_request(
            body(stop_sequences=["END"], temperature=0.5, top_p=0.9, top_k=40, stream=True, metadata={"user_id": "u1"})
        )
        assert (req.stop, req.temperature, req.top_p, req.top_k, req.stream, req.user) == (
            ["END"], 0.5, 0.9, 40, True, "u1"
        )  # fmt: skip
        # metadata itself is kept for an Anthropic upstream
        assert req.extras == {"metadata": {"user_id": "u1"}}

    def test_extras_keep_unknown_top_level_fields(self) -> None:
        req = am.parse_request(
            body(context_management={"edits": []}, output_config={"effort": "high"}, container="c1", service_tier="auto")
        )
        assert req.extras == {
            "context_management": {"edits": []},
            "output_config": {"effort": "high"},
            "container": "c1",
            "service_tier": "auto",
        }

    def test_blocks(self) -> None:
        msgs = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}, "title": "a.pdf"},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "SIG"},
                    {"type": "redacted_thinking", "data": "RED"},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a \"q\""}},
                    {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {"query": "q"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "file body"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "boom"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "BBB"}},
                        ],
                    },
                ],
            },
        ]
        req = am.parse_request(body(messages=msgs))
        u, a, r = req.messages
        assert u.content == [
            ir.TextPart(text="look", cache={"type": "ephemeral"}),
            ir.ImagePart(data="AAA", media_type="image/png"),
            ir.ImagePart(url="https://x/y.png"),
            ir.DocumentPart(data="JVBE", media_type="application/pdf", filename="a.pdf"),
            ir.DocumentPart(data="aGVsbG8=", media_type="text/plain"),
        ]
        assert a.content == [
            ir.ReasoningPart(text="hmm", signature="SIG", provider="anthropic"),
            ir.ReasoningPart(redacted="RED", provider="anthropic"),
            ir.TextPart(text="calling"),
            ir.ToolCallPart(id="toolu_1", name="Read", arguments='{"path":"a \\"q\\""}'),
            ir.RawPart(dialect="anthropic", data=msgs[1]["content"][4]),  # type: ignore[index]
        ]
        assert json.loads(a.content[3].arguments) == {"path": 'a "q"'}  # type: ignore[union-attr]
        assert r.content == [
            ir.ToolResultPart(call_id="toolu_1", content=[ir.TextPart(text="file body")]),
            ir.ToolResultPart(
                call_id="toolu_2",
                is_error=True,
                content=[ir.TextPart(text="boom"), ir.ImagePart(data="BBB", media_type="image/jpeg")],
            ),
        ]

    def test_tool_use_without_input_is_empty_object(self) -> None:
        msgs = [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n"}]}]
        assert am.parse_request(body(messages=msgs)).messages[0].content == [ir.ToolCallPart(id="t", name="n", arguments="{}")]

    def test_foreign_signature_is_unwrapped(self) -> None:
        sig = ir.wrap_signature("openai", "gAAAenc", "anthropic")
        msgs = [{"role": "assistant", "content": [{"type": "thinking", "thinking": "", "signature": sig}]}]
        part = am.parse_request(body(messages=msgs)).messages[0].content[0]
        assert part == ir.ReasoningPart(text="", signature="gAAAenc", provider="openai")

    def test_system_role_inside_messages(self) -> None:
        msgs = [{"role": "user", "content": "a"}, {"role": "system", "content": "reminder"}]
        assert am.parse_request(body(messages=msgs)).messages[1] == ir.Message(
            role="system", content=[ir.TextPart(text="reminder")]
        )

    def test_unknown_block_becomes_raw(self) -> None:
        blk = {"type": "search_result", "source": "s", "title": "t", "content": []}
        req = am.parse_request(body(messages=[{"role": "user", "content": [blk]}]))
        assert req.messages[0].content == [ir.RawPart(dialect="anthropic", data=blk)]

    def test_tools_custom_and_server(self) -> None:
        schema = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
        ws = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
        bash = {"type": "bash_20250124", "name": "bash"}
        req = am.parse_request(
            body(
                tools=[
                    {"name": "Read", "description": "read", "input_schema": schema, "cache_control": {"type": "ephemeral"}},
                    {"type": "custom", "name": "Write", "input_schema": {"type": "object"}},
                    ws,
                    bash,
                ]
            )
        )
        assert req.tools == [
            ir.Tool(name="Read", description="read", parameters=schema, cache={"type": "ephemeral"}),
            ir.Tool(name="Write", parameters={"type": "object"}),
            ir.Tool(name="web_search", kind="builtin", raw=ws, dialect="anthropic"),
            ir.Tool(name="bash", kind="builtin", raw=bash, dialect="anthropic"),
        ]

    @pytest.mark.parametrize(
        ("tc", "choice", "parallel"),
        [
            ({"type": "auto"}, ir.ToolChoice(mode="auto"), None),
            ({"type": "any"}, ir.ToolChoice(mode="required"), None),
            ({"type": "none"}, ir.ToolChoice(mode="none"), None),
            ({"type": "tool", "name": "Read"}, ir.ToolChoice(mode="tool", name="Read"), None),
            ({"type": "auto", "disable_parallel_tool_use": True}, ir.ToolChoice(mode="auto"), False),
            ({"type": "any", "disable_parallel_tool_use": False}, ir.ToolChoice(mode="required"), None),
        ],
    )
    def test_tool_choice(self, tc: dict, choice: ir.ToolChoice, parallel: bool | None) -> None:
        req = am.parse_request(body(tool_choice=tc))
        assert req.tool_choice == choice
        assert req.parallel_tool_calls is parallel

    @pytest.mark.parametrize(
        ("thinking", "output_config", "expected"),
        [
            ({"type": "enabled", "budget_tokens": 2048}, None, ir.Reasoning(enabled=True, budget_tokens=2048)),
            ({"type": "adaptive"}, {"effort": "high"}, ir.Reasoning(enabled=True, adaptive=True, effort="high")),
            ({"type": "adaptive"}, {"effort": "max"}, ir.Reasoning(enabled=True, adaptive=True, effort="xhigh")),
            ({"type": "disabled"}, None, ir.Reasoning(enabled=False)),
            (None, {"effort": "low"}, ir.Reasoning(effort="low")),
            (None, None, None),
        ],
    )
    def test_thinking(self, thinking: dict | None, output_config: dict | None, expected: ir.Reasoning | None) -> None:
        kw: dict = {}
        if thinking is not None:
            kw["thinking"] = thinking
        if output_config is not None:
            kw["output_config"] = output_config
        assert am.parse_request(body(**kw)).reasoning == expected


class TestParseRequestErrors:
    @pytest.mark.parametrize(
        ("raw", "param", "fragment"),
        [
            (b"{not json", None, "not valid JSON"),
            (b"[1,2]", None, "expected a JSON object"),
            (json.dumps({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}).encode(), "model", "required"),
            (body(model=""), "model", "non-empty"),
            (body(model=5), "model", "expected `str | null`"),
            (json.dumps({"model": "m", "max_tokens": 5}).encode(), "messages", "required"),
            (body(messages=[]), "messages", "must not be empty"),
            (body(messages={"role": "user"}), "messages", "expected `array | null`"),
            (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role", "expected \"user\""),
            (body(messages=[{"role": "user", "content": 5}]), "messages[0].content", "expected a string or a list of content blocks"),
            (body(messages=[{"role": "user"}]), "messages[0].content", "required field is missing"),
            (body(messages=[{"role": "user", "content": ["x"]}]), "messages[0].content[0]", "expected `object`"),
            (body(messages=[{"role": "user", "content": [{"text": "x"}]}]), "messages[0].content[0].type", "required"),
            (body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content[0].text", "required"),
            (
                body(messages=[{"role": "user", "content": [{"type": "image", "source": "x"}]}]),
                "messages[0].content[0].source",
                "expected an object",
            ),
            (body(max_tokens=None), "max_tokens", "required"),
            (body(max_tokens=0), "max_tokens", "positive integer"),
            (body(max_tokens=-3), "max_tokens", "positive integer"),
            (body(max_tokens="100"), "max_tokens", "expected `int | null`"),
            (body(max_tokens=1.5), "max_tokens", "expected `int | null`"),
            (body(system=[{"type": "image"}]), "system[0].type", "only text"),
            (body(system=7), "system", "expected a string or a list of text blocks"),
            (body(tool_choice={"type": "sometimes"}), "tool_choice.type", "expected"),
            (body(tool_choice={"type": "tool"}), "tool_choice.name", "required"),
            (body(thinking={"type": "enabled"}), "thinking.budget_tokens", "required"),
            (body(thinking={"type": "maybe"}), "thinking.type", "expected"),
            (body(tools=[{"description": "no name"}]), "tools[0].name", "required"),
            (body(temperature="hot"), "temperature", "expected `float | null`"),
            (body(metadata={"user_id": 3}), "metadata.user_id", "expected a string"),
        ],
    )
    def test_invalid(self, raw: bytes, param: str | None, fragment: str) -> None:
        with pytest.raises(InvalidRequest) as ei:
            am.parse_request(raw)
        err = ei.value
        assert err.status == 400
        assert err.kind is ErrorKind.INVALID_REQUEST
        assert fragment in err.message
        if param is not None:
            assert err.param == param
            assert err.message.startswith(param + ": ")

    def test_count_request_needs_no_max_tokens(self) -> None:
        raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "a"}]}).encode()
        req = am.parse_count_request(raw)
        assert req.max_output_tokens is None
        assert [t.name for t in req.tools] == ["a"]
        assert req.extras == {}
        with pytest.raises(InvalidRequest, match="max_tokens"):
            am.parse_request(raw)

    def test_count_request_ignores_max_tokens_and_stream(self) -> None:
        req = am.parse_count_request(body(stream=True, max_tokens=10))
        assert req.extras == {}
        assert req.stream is False

    def test_count_request_still_validates(self) -> None:
        with pytest.raises(InvalidRequest, match="messages"):
            am.parse_count_request(json.dumps({"model": "m"}).encode())


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)
_block_type = st.sampled_from(
    ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "weird", None]
)
_block = st.fixed_dictionaries(
    {"type": _block_type},
    optional={
        "text": _json,
        "source": st.one_of(
            _json,
            st.fixed_dictionaries({"type": st.sampled_from(["base64", "url", "text", "file"])}, optional={"data": _json, "url": _json, "media_type": _json}),
        ),
        "id": _json,
        "name": _json,
        "input": _json,
        "tool_use_id": _json,
        "content": st.one_of(_json, st.lists(st.fixed_dictionaries({"type": _block_type}, optional={"text": _json, "source": _json}), max_size=3)),
        "is_error": _json,
        "thinking": _json,
        "signature": _json,
        "data": _json,
        "cache_control": _json,
    },
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool"])},
    optional={"content": st.one_of(_json, st.lists(_block, max_size=4))},
)
_request = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.text(max_size=5), _json),
        "max_tokens": st.one_of(st.integers(-5, 10**6), _json),
        "messages": st.one_of(st.lists(_message, max_size=3), _json),
        "system": st.one_of(st.text(), st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "x"])}, optional={"text": _json, "cache_control": _json})), _json),
        "tools": st.one_of(st.lists(st.fixed_dictionaries({}, optional={"type": _json, "name": _json, "input_schema": _json, "cache_control": _json})), _json),
        "tool_choice": st.one_of(st.fixed_dictionaries({"type": st.sampled_from(["auto", "any", "tool", "none", "x"])}, optional={"name": _json, "disable_parallel_tool_use": _json}), _json),
        "thinking": st.one_of(st.fixed_dictionaries({"type": st.sampled_from(["enabled", "adaptive", "disabled", "x"])}, optional={"budget_tokens": _json}), _json),
        "output_config": _json,
        "metadata": st.one_of(st.fixed_dictionaries({}, optional={"user_id": _json}), _json),
        "stop_sequences": _json,
        "temperature": _json,
        "top_k": _json,
        "stream": _json,
    },
)

_s = st.text(min_size=1, max_size=6)
_good_block = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=6)}, optional={"cache_control": st.just({"type": "ephemeral"})}),
    st.fixed_dictionaries({"type": st.just("image"), "source": st.one_of(
        st.fixed_dictionaries({"type": st.just("base64"), "media_type": st.just("image/png"), "data": _s}),
        st.fixed_dictionaries({"type": st.just("url"), "url": _s}),
    )}),
    st.fixed_dictionaries({"type": st.just("document"), "source": st.fixed_dictionaries(
        {"type": st.sampled_from(["base64", "text", "url", "content"]), "data": _s, "url": _s})}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": _s, "name": _s, "input": st.dictionaries(_s, _json, max_size=2)}),
    st.fixed_dictionaries({"type": st.just("tool_result"), "tool_use_id": _s}, optional={
        "content": st.one_of(st.text(max_size=5), st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image", "document"]), "text": _s}), max_size=2)),
        "is_error": st.booleans()}),
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": st.text(max_size=5)}, optional={"signature": st.sampled_from(["S", "antiapi.openai.X", "antiapi.bogus.Y", ""])}),
    st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": _s}),
    st.fixed_dictionaries({"type": st.sampled_from(["server_tool_use", "container_upload"])}, optional={"id": _json}),
    _block,
)
_good_request = st.fixed_dictionaries(
    {
        "model": _s,
        "max_tokens": st.one_of(st.integers(1, 64000), _json),
        "messages": st.lists(
            st.fixed_dictionaries({
                "role": st.sampled_from(["user", "assistant", "system"]),
                "content": st.one_of(st.text(max_size=6), st.lists(_good_block, max_size=4)),
            }),
            min_size=1,
            max_size=4,
        ),
    },
    optional={
        "system": st.one_of(st.text(max_size=5), st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=5)}), max_size=2)),
        "tools": st.lists(st.one_of(
            st.fixed_dictionaries({"name": _s}, optional={"input_schema": st.just({"type": "object"}), "description": _s}),
            st.fixed_dictionaries({"type": st.sampled_from(["web_search_20250305", "bash_20250124"]), "name": _s}),
        ), max_size=3),
        "tool_choice": st.fixed_dictionaries({"type": st.sampled_from(["auto", "any", "none", "tool"]), "name": _s},
                                             optional={"disable_parallel_tool_use": st.booleans()}),
        "thinking": st.one_of(
            st.fixed_dictionaries({"type": st.just("enabled"), "budget_tokens": st.integers(0, 40000)}),
            st.fixed_dictionaries({"type": st.sampled_from(["adaptive", "disabled"])}),
        ),
        "output_config": st.fixed_dictionaries({}, optional={"effort": st.sampled_from(["low", "medium", "high", "max"])}),
        "metadata": st.fixed_dictionaries({}, optional={"user_id": _s}),
        "stop_sequences": st.lists(_s, max_size=2),
        "temperature": st.floats(0, 2),
        "top_k": st.integers(1, 100),
        "stream": st.booleans(),
        "context_management": _json,
    },
)


def test_fuzz_strategies_reach_the_parser() -> None:
    """Guard: the valid-ish strategy must mostly parse, or the fuzz test below proves little."""
    from hypothesis import find

    find(_good_request, lambda d: _parses(d) and len(d["messages"]) >= 3)


def _parses(doc: object) -> bool:
    try:
        am.parse_request(json.dumps(doc).encode())
    except InvalidRequest:
        return False
    return True


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.one_of(_good_request, _request, _json))
def test_parse_request_fuzz_only_raises_invalid_request(doc: object) -> None:
    raw = json.dumps(doc).encode()
    for fn in (am.parse_request, am.parse_count_request):
        try:
            req = fn(raw)
        except InvalidRequest as exc:
            assert exc.status == 400
            assert exc.message
            continue
        # Whatever parsed must also render for an Anthropic upstream without crashing.
        am.render_request(req, target())


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=64))
def test_parse_request_fuzz_bytes(raw: bytes) -> None:
    try:
        am.parse_request(raw)
    except InvalidRequest:
        pass


# =========================================================================== render_request


def _req(*messages: ir.Message, **kw: object) -> ir.Request:
    return ir.Request(model="gpt-client", messages=list(messages), source="openai_chat", **kw)  # type: ignore[arg-type]


def U(*parts: ir.Part) -> ir.Message:
    return ir.Message(role="user", content=list(parts))


def A(*parts: ir.Part) -> ir.Message:
    return ir.Message(role="assistant", content=list(parts))


def T(text: str, **kw: object) -> ir.TextPart:
    return ir.TextPart(text=text, **kw)  # type: ignore[arg-type]


class TestRenderRequest:
    def test_basic_shape(self) -> None:
        out = am.render_request(_req(U(T("hi")), max_output_tokens=50, stream=True, stop=["X"]), target())
        assert out.body == {
            "model": "claude-up",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "max_tokens": 50,
            "stop_sequences": ["X"],
            "stream": True,
        }
        assert out.stream is True

    def test_default_max_tokens(self) -> None:
        out = am.render_request(_req(U(T("hi"))), target(default_max_tokens=4096))
        assert out.body["max_tokens"] == 4096
        assert "stream" not in out.body

    def test_system_hoisted_and_mid_conversation_system_to_user(self) -> None:
        req = _req(
            U(T("q1")),
            A(T("a1")),
            ir.Message(role="system", content=[T("reminder")]),
            U(T("q2")),
            system=[T("sys1", cache={"type": "ephemeral"}), T(""), T("sys2")],
        )
        body = am.render_request(req, target()).body
        assert body["system"] == [
            {"type": "text", "text": "sys1", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "sys2"},
        ]
        assert body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "q1"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "a1"}]},
            {"role": "user", "content": [{"type": "text", "text": "reminder"}, {"type": "text", "text": "q2"}]},
        ]

    def test_tool_results_merged_first_and_ids_sanitised(self) -> None:
        req = _req(
            U(T("go")),
            A(T("calling"), ir.ToolCallPart(id="functions.Bash:0", name="mcp.server/tool", arguments='{"a":1}'),
              ir.ToolCallPart(id="call_b", name="Read", arguments="")),
            U(ir.ToolResultPart(call_id="functions.Bash:0", content=[T("r1")])),
            U(T("and also"), ir.ToolResultPart(call_id="call_b", content=[T("r2")], is_error=True)),
            tools=[ir.Tool(name="mcp.server/tool"), ir.Tool(name="Read")],
        )  # fmt: skip
        out = am.render_request(req, target())
        msgs = out.body["messages"]
        assert msgs[1] == {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "functions_Bash_0", "name": "mcp_server_tool", "input": {"a": 1}},
                {"type": "tool_use", "id": "call_b", "name": "Read", "input": {}},
            ],
        }
        assert msgs[2] == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "functions_Bash_0", "content": [{"type": "text", "text": "r1"}]},
                {"type": "tool_result", "tool_use_id": "call_b", "content": [{"type": "text", "text": "r2"}], "is_error": True},
                {"type": "text", "text": "and also"},
            ],
        }
        assert len(msgs) == 3
        assert out.call_ids == {"functions_Bash_0": "functions.Bash:0"}
        assert out.tool_names == {"mcp_server_tool": "mcp.server/tool"}
        assert out.body["tools"][0] == {"name": "mcp_server_tool", "input_schema": {"type": "object", "properties": {}}}

    def test_long_tool_name_shortened_consistently(self) -> None:
        long = "mcp__" + "x" * 80
        req = _req(
            U(T("go")),
            A(ir.ToolCallPart(id="c1", name=long)),
            U(ir.ToolResultPart(call_id="c1", content=[T("ok")])),
            tools=[ir.Tool(name=long)],
            tool_choice=ir.ToolChoice(mode="tool", name=long),
        )
        out = am.render_request(req, target())
        short = out.body["tools"][0]["name"]
        assert len(short) == 64
        assert out.body["messages"][1]["content"][0]["name"] == short
        assert out.body["tool_choice"] == {"type": "tool", "name": short}
        assert out.tool_names == {short: long}

    def test_invalid_arguments_repaired_to_object(self) -> None:
        req = _req(U(T("go")), A(ir.ToolCallPart(id="c", name="n", arguments='{"a": [1, 2')), U(ir.ToolResultPart(call_id="c")))
        blocks = am.render_request(req, target()).body["messages"][1]["content"]
        assert blocks[0]["input"] == {"a": [1, 2]}
        req = _req(U(T("go")), A(ir.ToolCallPart(id="c", name="n", arguments="[1]")), U(ir.ToolResultPart(call_id="c")))
        assert am.render_request(req, target()).body["messages"][1]["content"][0]["input"] == {"_raw": "[1]"}

    def test_tool_result_images_and_cache_lifted(self) -> None:
        req = _req(
            U(T("go")),
            A(ir.ToolCallPart(id="c", name="n")),
            U(ir.ToolResultPart(call_id="c", content=[T("see", cache={"type": "ephemeral"}), ir.ImagePart(url="data:image/jpeg;base64,QUJD")])),
        )
        tr = am.render_request(req, target()).body["messages"][2]["content"][0]
        assert tr == {
            "type": "tool_result",
            "tool_use_id": "c",
            "content": [
                {"type": "text", "text": "see"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
            ],
            "cache_control": {"type": "ephemeral"},
        }

    def test_images_and_documents(self) -> None:
        req = _req(
            U(
                ir.ImagePart(url="https://e/x.png"),
                ir.ImagePart(data="AAA", media_type="image/gif"),
                ir.DocumentPart(data="JVBE", media_type="application/pdf", filename="a.pdf"),
                ir.DocumentPart(data="aGVsbG8=", media_type="text/plain"),
            )
        )
        assert am.render_request(req, target()).body["messages"][0]["content"] == [
            {"type": "image", "source": {"type": "url", "url": "https://e/x.png"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "AAA"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}, "title": "a.pdf"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}},
        ]

    def test_first_message_must_be_user_and_empty_text_dropped(self) -> None:
        body = am.render_request(_req(A(T("")), A(T("prefill  \n")), U(T("  "))), target()).body
        assert body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "(continue)"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "prefill"}]},
        ]

    def test_empty_conversation_gets_a_user_turn(self) -> None:
        body = am.render_request(_req(system=[T("s")]), target()).body
        assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "(continue)"}]}]

    def test_prefill_trailing_whitespace_stripped(self) -> None:
        body = am.render_request(_req(U(T("q")), A(T("Sure: "), T("  "))), target()).body
        assert body["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": "Sure:"}]}

    def test_consecutive_same_role_merged(self) -> None:
        body = am.render_request(_req(U(T("a")), U(T("b")), A(T("c")), A(T("d")), U(T("e"))), target()).body
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert body["messages"][0]["content"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]

    def test_reasoning_parts_only_anthropic(self) -> None:
        req = _req(
            U(T("q")),
            A(
                ir.ReasoningPart(text="mine", signature="S1", provider="anthropic"),
                ir.ReasoningPart(text="theirs", signature="enc", provider="openai"),
                ir.ReasoningPart(text="gem", signature="g", provider="gemini"),
                ir.ReasoningPart(redacted="R", provider="anthropic"),
                ir.ReasoningPart(text="unsigned", provider="anthropic"),
                T("answer"),
            ),
            U(T("more")),
        )
        assert am.render_request(req, target()).body["messages"][1]["content"] == [
            {"type": "thinking", "thinking": "mine", "signature": "S1"},
            {"type": "redacted_thinking", "data": "R"},
            {"type": "text", "text": "answer"},
        ]

    def test_raw_parts_and_builtin_tools_only_for_anthropic(self) -> None:
        raw_am = ir.RawPart(dialect="anthropic", data={"type": "search_result", "x": 1})
        raw_oa = ir.RawPart(dialect="openai_responses", data={"type": "item_reference"})
        ws = {"type": "web_search_20250305", "name": "web_search"}
        req = _req(
            U(T("q"), raw_am, raw_oa),
            tools=[
                ir.Tool(name="web_search", kind="builtin", raw=ws, dialect="anthropic"),
                ir.Tool(name="web_search", kind="builtin", raw={"type": "web_search"}, dialect="openai_responses"),
            ],
        )
        body = am.render_request(req, target()).body
        assert body["messages"][0]["content"] == [{"type": "text", "text": "q"}, {"type": "search_result", "x": 1}]
        assert body["tools"] == [ws]

    def test_custom_tool_exposed_with_string_input(self) -> None:
        body = am.render_request(_req(U(T("q")), tools=[ir.Tool(name="apply_patch", description="d", kind="custom")]), target()).body
        assert body["tools"] == [
            {
                "name": "apply_patch",
                "description": "d",
                "input_schema": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
            }
        ]

    def test_schema_without_properties_gets_them(self) -> None:
        body = am.render_request(_req(U(T("q")), tools=[ir.Tool(name="n", parameters={"type": "object"})]), target()).body
        assert body["tools"][0]["input_schema"] == {"type": "object", "properties": {}}

    @pytest.mark.parametrize(
        ("choice", "parallel", "expected"),
        [
            (ir.ToolChoice(mode="auto"), None, {"type": "auto"}),
            (ir.ToolChoice(mode="required"), None, {"type": "any"}),
            (ir.ToolChoice(mode="none"), None, {"type": "none"}),
            (ir.ToolChoice(mode="tool", name="Read"), None, {"type": "tool", "name": "Read"}),
            (ir.ToolChoice(mode="required"), False, {"type": "any", "disable_parallel_tool_use": True}),
            (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
            (None, True, None),
            (None, None, None),
        ],
    )
    def test_tool_choice(self, choice: ir.ToolChoice | None, parallel: bool | None, expected: dict | None) -> None:
        req = _req(U(T("q")), tools=[ir.Tool(name="Read")], tool_choice=choice, parallel_tool_calls=parallel)
        body = am.render_request(req, target()).body
        assert body.get("tool_choice") == expected

    def test_tool_choice_omitted_without_tools(self) -> None:
        body = am.render_request(_req(U(T("q")), tool_choice=ir.ToolChoice(mode="required")), target()).body
        assert "tool_choice" not in body and "tools" not in body

    def test_sampling_params(self) -> None:
        body = am.render_request(_req(U(T("q")), temperature=1.7, top_k=5), target()).body
        assert body["temperature"] == 1.0
        assert body["top_k"] == 5
        body = am.render_request(_req(U(T("q")), top_p=0.8), target()).body
        assert body["top_p"] == 0.8
        # newer Claude models reject temperature together with top_p
        body = am.render_request(_req(U(T("q")), temperature=0.2, top_p=0.8), target()).body
        assert body["temperature"] == 0.2 and "top_p" not in body

    def test_n_greater_than_one_rejected(self) -> None:
        with pytest.raises(InvalidRequest) as ei:
            am.render_request(_req(U(T("q")), n=2), target())
        assert ei.value.param == "n"
        assert am.render_request(_req(U(T("q")), n=1), target()).body["messages"]

    def test_user_to_metadata(self) -> None:
        assert am.render_request(_req(U(T("q")), user="u9"), target()).body["metadata"] == {"user_id": "u9"}

    def test_response_format_instruction(self) -> None:
        schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
        req = _req(U(T("q")), system=[T("sys")], response_format=ir.ResponseFormat(type="json_schema", name="s", schema=schema))
        system = am.render_request(req, target()).body["system"]
        assert system[0] == {"type": "text", "text": "sys"}
        assert '{"type":"object","properties":{"x":{"type":"integer"}}}' in system[1]["text"]
        req = _req(U(T("q")), response_format=ir.ResponseFormat(type="json_object"))
        assert "JSON object" in am.render_request(req, target()).body["system"][0]["text"]


class TestRenderThinking:
    def test_effort_to_budget_and_max_tokens_raised(self) -> None:
        req = _req(U(T("q")), reasoning=ir.Reasoning(effort="high"), max_output_tokens=1000, temperature=0.3, top_k=3,
                   tools=[ir.Tool(name="Read")], tool_choice=ir.ToolChoice(mode="tool", name="Read"),
                   parallel_tool_calls=False)  # fmt: skip
        body = am.render_request(req, target()).body
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 24576}
        assert body["max_tokens"] == 24576 + 1000
        assert "temperature" not in body and "top_k" not in body
        assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}

    def test_budget_minimum_and_below_max_tokens(self) -> None:
        body = am.render_request(_req(U(T("q")), reasoning=ir.Reasoning(enabled=True, budget_tokens=100), max_output_tokens=5000), target()).body
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
        assert body["max_tokens"] == 5000

    @pytest.mark.parametrize("effort", ["none", "minimal"])
    def test_low_efforts_disable_thinking(self, effort: str) -> None:
        body = am.render_request(_req(U(T("q")), reasoning=ir.Reasoning(effort=effort), temperature=0.5), target()).body
        assert "thinking" not in body
        assert body["temperature"] == 0.5

    def test_enabled_without_effort_uses_medium(self) -> None:
        body = am.render_request(_req(U(T("q")), reasoning=ir.Reasoning(enabled=True)), target()).body
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192}

    def test_disabled(self) -> None:
        body = am.render_request(_req(U(T("q")), reasoning=ir.Reasoning(enabled=False)), target()).body
        assert "thinking" not in body

    def test_thinking_off_with_prefill(self) -> None:
        body = am.render_request(_req(U(T("q")), A(T("{")), reasoning=ir.Reasoning(effort="high")), target()).body
        assert "thinking" not in body

    def test_thinking_off_when_tool_turn_lost_its_thinking(self) -> None:
        msgs = (U(T("q")), A(ir.ToolCallPart(id="c", name="n")), U(ir.ToolResultPart(call_id="c", content=[T("r")])))
        body = am.render_request(_req(*msgs, reasoning=ir.Reasoning(effort="low")), target()).body
        assert "thinking" not in body
        signed = A(ir.ReasoningPart(text="t", signature="S", provider="anthropic"), ir.ToolCallPart(id="c", name="n"))
        body = am.render_request(_req(msgs[0], signed, msgs[2], reasoning=ir.Reasoning(effort="low")), target()).body
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


class TestAnthropicRoundTrip:
    """An Anthropic client's request rendered for an Anthropic upstream keeps its meaning."""

    def test_round_trip(self) -> None:
        src = {
            "model": "claude-x",
            "max_tokens": 32000,
            "stream": True,
            "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "t", "signature": "SIG"},
                        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"p": 1}},
                    ],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}]},
            ],
            "tools": [{"name": "Read", "input_schema": {"type": "object", "properties": {"p": {"type": "integer"}}}},
                      {"type": "web_search_20250305", "name": "web_search"}],
            "tool_choice": {"type": "auto"},
            "thinking": {"type": "enabled", "budget_tokens": 4000},
            "metadata": {"user_id": "u"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
            "output_config": {"effort": "high"},
        }  # fmt: skip
        req = am.parse_request(json.dumps(src).encode())
        body = am.render_request(req, target()).body
        assert body["model"] == "claude-up"
        assert body["system"] == src["system"]
        assert body["messages"][1]["content"] == src["messages"][1]["content"]  # type: ignore[index]
        assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "r"}]}]
        assert body["tools"] == src["tools"]
        assert body["thinking"] == src["thinking"]
        assert body["max_tokens"] == 32000
        assert body["metadata"] == {"user_id": "u"}
        assert body["context_management"] == src["context_management"]
        assert body["output_config"] == {"effort": "high"}
        assert body["stream"] is True

    def test_adaptive_and_effort_only(self) -> None:
        req = am.parse_request(body(thinking={"type": "adaptive"}, output_config={"effort": "max"}))
        out = am.render_request(req, target()).body
        assert out["thinking"] == {"type": "adaptive"}
        assert out["output_config"] == {"effort": "max"}
        req = am.parse_request(body(output_config={"effort": "low"}))
        out = am.render_request(req, target()).body
        assert "thinking" not in out and out["output_config"] == {"effort": "low"}

    def test_extras_not_sent_for_other_sources(self) -> None:
        req = _req(U(T("q")), extras={"context_management": {}})
        assert "context_management" not in am.render_request(req, target()).body


# =========================================================================== render_response & co.


class TestRenderResponse:
    def test_full_message(self) -> None:
        resp = ir.Response(
            id="chatcmpl-1",
            model="gpt-up",
            content=[
                ir.ReasoningPart(text="think", signature="S", provider="anthropic"),
                ir.ReasoningPart(text="", signature="enc", provider="openai"),
                ir.ReasoningPart(redacted="R", provider="anthropic"),
                ir.TextPart(text="hello"),
                ir.ToolCallPart(id="call_1", name="Read", arguments='{"path":"a"}'),
            ],
            stop_reason="end_turn",
            usage=ir.Usage(input_tokens=10, output_tokens=5, cache_read_tokens=3, cache_write_tokens=2),
        )
        data = json.loads(am.render_response(resp, ir.Request(model="m"), "claude-alias"))
        assert data["id"].startswith("msg_")
        assert data["type"] == "message" and data["role"] == "assistant"
        assert data["model"] == "claude-alias"
        assert data["content"] == [
            {"type": "thinking", "thinking": "think", "signature": "S"},
            {"type": "thinking", "thinking": "", "signature": "antiapi.openai.enc"},
            {"type": "redacted_thinking", "data": "R"},
            {"type": "text", "text": "hello"},
            {"type": "tool_use", "id": "call_1", "name": "Read", "input": {"path": "a"}},
        ]
        assert data["stop_reason"] == "tool_use"
        assert data["stop_sequence"] is None
        assert data["usage"] == {
            "input_tokens": 10,
            "cache_creation_input_tokens": 2,
            "cache_read_input_tokens": 3,
            "output_tokens": 5,
        }

    @pytest.mark.parametrize(
        ("reason", "expected"),
        [
            ("end_turn", "end_turn"),
            ("max_tokens", "max_tokens"),
            ("tool_use", "end_turn"),  # no tool block -> never tool_use
            ("refusal", "refusal"),
            ("pause_turn", "pause_turn"),
            ("context_exceeded", "model_context_window_exceeded"),
        ],
    )
    def test_stop_reasons(self, reason: ir.StopReason, expected: str) -> None:
        resp = ir.Response(id="msg_abc", model="x", content=[ir.TextPart(text="t")], stop_reason=reason)
        data = json.loads(am.render_response(resp, ir.Request(model="m"), "m"))
        assert data["stop_reason"] == expected
        assert data["id"] == "msg_abc"

    def test_stop_sequence(self) -> None:
        resp = ir.Response(id="msg_1", model="x", stop_reason="stop_sequence", stop_sequence="END")
        data = json.loads(am.render_response(resp, ir.Request(model="m"), "m"))
        assert (data["stop_reason"], data["stop_sequence"], data["content"]) == ("stop_sequence", "END", [])


class TestErrors:
    @pytest.mark.parametrize(
        ("kind", "etype"),
        [
            (ErrorKind.INVALID_REQUEST, "invalid_request_error"),
            (ErrorKind.AUTHENTICATION, "authentication_error"),
            (ErrorKind.BILLING, "billing_error"),
            (ErrorKind.PERMISSION, "permission_error"),
            (ErrorKind.NOT_FOUND, "not_found_error"),
            (ErrorKind.REQUEST_TOO_LARGE, "request_too_large"),
            (ErrorKind.RATE_LIMIT, "rate_limit_error"),
            (ErrorKind.API_ERROR, "api_error"),
            (ErrorKind.OVERLOADED, "overloaded_error"),
            (ErrorKind.TIMEOUT, "api_error"),
        ],
    )
    def test_render_error(self, kind: ErrorKind, etype: str) -> None:
        raw = am.render_error(GatewayError("went wrong", kind=kind))
        assert json.loads(raw) == {"type": "error", "error": {"type": etype, "message": "went wrong"}}

    def test_render_error_request_id(self) -> None:
        raw = am.render_error(UpstreamTimeout("slow", request_id="req_1"))
        assert json.loads(raw) == {"type": "error", "error": {"type": "api_error", "message": "slow"}, "request_id": "req_1"}

    def test_parse_error_anthropic_body(self) -> None:
        b = b'{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests exceeded"},"request_id":"req_9"}'
        err = am.parse_error(429, {"Retry-After": "17", "content-type": "application/json"}, b)
        assert isinstance(err, UpstreamHTTPError)
        assert err.kind is ErrorKind.RATE_LIMIT
        assert err.status == 429
        assert err.message == "anthropic: Number of requests exceeded"
        assert err.code == "rate_limit_error"
        assert err.retry_after == 17.0
        assert err.request_id == "req_9"
        assert err.retryable is True
        assert err.headers == {"retry-after": "17"}

    def test_parse_error_overloaded_and_prompt_too_long(self) -> None:
        err = am.parse_error(529, {}, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
        assert (err.kind, err.status, err.code) == (ErrorKind.OVERLOADED, 529, "overloaded_error")
        err = am.parse_error(
            400, {"request-id": "req_h"}, b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}'
        )
        assert err.kind is ErrorKind.INVALID_REQUEST and err.status == 400
        assert err.message == "anthropic: prompt is too long: 210000 tokens > 200000 maximum"
        assert err.request_id == "req_h"
        assert err.retryable is False

    def test_parse_error_non_json(self) -> None:
        err = am.parse_error(502, {}, b"<html>Bad Gateway</html>")
        assert (err.kind, err.status, err.code) == (ErrorKind.API_ERROR, 502, None)
        assert err.message == "anthropic: <html>Bad Gateway</html>"
        err = am.parse_error(503, {"retry-after": "soon"}, b"")
        assert (err.kind, err.message, err.retry_after) == (ErrorKind.OVERLOADED, "anthropic: HTTP 503", None)
        err = am.parse_error(401, {}, b'{"error": "nope"}')
        assert err.kind is ErrorKind.AUTHENTICATION

    def test_count_tokens_response(self) -> None:
        assert am.count_tokens_response(1234) == b'{"input_tokens":1234}'

    def test_models_list(self) -> None:
        data = json.loads(am.models_list(["claude-a", "claude-b"]))
        assert data == {
            "data": [
                {"type": "model", "id": "claude-a", "display_name": "claude-a", "created_at": "1970-01-01T00:00:00Z"},
                {"type": "model", "id": "claude-b", "display_name": "claude-b", "created_at": "1970-01-01T00:00:00Z"},
            ],
            "has_more": False,
            "first_id": "claude-a",
            "last_id": "claude-b",
        }
        assert json.loads(am.models_list([])) == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_public_names() -> None:
    for name in (
        "parse_request", "parse_count_request", "StreamEncoder", "render_response", "render_error",
        "count_tokens_response", "render_request", "StreamDecoder", "decode_response", "parse_error",
        "scan_usage", "models_list",
    ):  # fmt: skip
        assert hasattr(am, name), name


def test_wire_is_msgspec() -> None:
    from antiapi.wire import anthropic as wire

    assert issubclass(wire.MessagesRequest, msgspec.Struct)
    assert issubclass(wire.MessagesRequest, wire.CountTokensRequest)

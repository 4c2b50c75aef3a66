"""Gemini upstream dialect: request rendering, schema cleaning, countTokens, errors."""

from __future__ import annotations

import msgspec
import pytest

from antiapi.errors import ErrorKind, UpstreamHTTPError
from antiapi.translate import dialect, gemini, ir
from antiapi.wire import gemini as wire

T = ir.Target(model="gemini-3-pro-preview", provider="gemini")


def _req(*messages: ir.Message, **kw) -> ir.Request:
    return ir.Request(model="m", messages=list(messages), **kw)


def _user(*parts: ir.Part) -> ir.Message:
    return ir.Message(role="user", content=list(parts))


def _asst(*parts: ir.Part) -> ir.Message:
    return ir.Message(role="assistant", content=list(parts))


def _body(req: ir.Request) -> dict:
    out = gemini.render_request(req, T)
    # the body must have the documented wire shape
    msgspec.convert(out.body, wire.GenerateContentRequest)
    return out.body


# --------------------------------------------------------------------------- contract


def test_module_exposes_upstream_contract() -> None:
    mod = dialect.load("gemini")
    for name in ("render_request", "StreamDecoder", "decode_response", "parse_error", "scan_usage",
                 "render_count_request", "parse_count_response"):
        assert hasattr(mod, name), name


def test_basic_body_has_no_model_and_stream_flag_from_request() -> None:
    out = gemini.render_request(_req(_user(ir.TextPart(text="hi")), stream=True), T)
    assert out.stream is True
    assert out.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert gemini.render_request(_req(_user(ir.TextPart(text="hi"))), T).stream is False


# --------------------------------------------------------------------------- roles / system


def test_system_goes_to_system_instruction_and_billing_header_dropped() -> None:
    req = _req(
        _user(ir.TextPart(text="q")),
        system=[
            ir.TextPart(text="x-anthropic-billing-header: cc_version=1"),
            ir.TextPart(text="You are terse."),
            ir.TextPart(text=""),
            ir.TextPart(text="Be nice."),
        ],
    )
    assert _body(req)["systemInstruction"] == {"parts": [{"text": "You are terse."}, {"text": "Be nice."}]}


def test_mid_conversation_system_becomes_user_text_merged() -> None:
    req = _req(
        _user(ir.TextPart(text="a")),
        _asst(ir.TextPart(text="b")),
        ir.Message(role="system", content=[ir.TextPart(text="reminder")]),
        _user(ir.TextPart(text="c")),
    )
    assert _body(req)["contents"] == [
        {"role": "user", "parts": [{"text": "a"}]},
        {"role": "model", "parts": [{"text": "b"}]},
        {"role": "user", "parts": [{"text": "reminder"}, {"text": "c"}]},
    ]


def test_empty_text_parts_skipped_and_empty_messages_dropped() -> None:
    req = _req(
        _user(ir.TextPart(text=""), ir.TextPart(text="x")),
        _asst(ir.TextPart(text="")),
        _user(ir.TextPart(text="y")),
    )
    assert _body(req)["contents"] == [{"role": "user", "parts": [{"text": "x"}, {"text": "y"}]}]


def test_first_content_must_be_user() -> None:
    req = _req(_asst(ir.TextPart(text="hello")), _user(ir.TextPart(text="hi")))
    assert _body(req)["contents"] == [
        {"role": "user", "parts": [{"text": "…"}]},
        {"role": "model", "parts": [{"text": "hello"}]},
        {"role": "user", "parts": [{"text": "hi"}]},
    ]


def test_trailing_model_turn_with_unanswered_call_is_stripped() -> None:
    req = _req(
        _user(ir.TextPart(text="go")),
        _asst(ir.TextPart(text="calling"), ir.ToolCallPart(id="c1", name="f", arguments='{"a":1}')),
    )
    assert _body(req)["contents"] == [{"role": "user", "parts": [{"text": "go"}]}]


def test_trailing_model_prefill_without_call_is_kept() -> None:
    req = _req(_user(ir.TextPart(text="go")), _asst(ir.TextPart(text="Sure,")))
    assert _body(req)["contents"][-1] == {"role": "model", "parts": [{"text": "Sure,"}]}


# --------------------------------------------------------------------------- media


def test_images_and_documents() -> None:
    req = _req(
        _user(
            ir.ImagePart(data="iVBORw0KGgoAAA"),
            ir.ImagePart(data="AAAA", media_type="image/webp"),
            ir.ImagePart(url="data:image/gif;base64,R0lGODlh"),
            ir.ImagePart(url="gs://bucket/cat.PNG"),
            ir.ImagePart(url="https://example.com/x"),
            ir.DocumentPart(data="JVBERi0xLjQ"),
            ir.DocumentPart(data="aGVsbG8=", media_type="text/plain"),
        )
    )
    assert _body(req)["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgoAAA"}},
        {"inlineData": {"mimeType": "image/webp", "data": "AAAA"}},
        {"inlineData": {"mimeType": "image/gif", "data": "R0lGODlh"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.PNG"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/x"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0xLjQ"}},
        {"inlineData": {"mimeType": "text/plain", "data": "aGVsbG8="}},
    ]


# --------------------------------------------------------------------------- tool calls / results


def test_tool_call_signature_replayed_else_sentinel() -> None:
    req = _req(
        _user(ir.TextPart(text="q")),
        _asst(
            ir.ToolCallPart(id="a", name="weather", arguments='{"location":"SF"}', signature="SIG1"),
            ir.ToolCallPart(id="b", name="weather", arguments=""),
        ),
        _user(
            ir.ToolResultPart(call_id="a", content=[ir.TextPart(text="sunny")]),
            ir.ToolResultPart(call_id="b", content=[ir.TextPart(text="rain")]),
        ),
    )
    model = _body(req)["contents"][1]
    assert model == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "weather", "args": {"location": "SF"}}, "thoughtSignature": "SIG1"},
            {"functionCall": {"name": "weather", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"},
        ],
    }
    assert gemini.SIGNATURE_SENTINEL == "skip_thought_signature_validator"


def test_tool_result_name_from_earlier_call_and_error_and_images() -> None:
    req = _req(
        _user(ir.TextPart(text="q")),
        _asst(
            ir.ToolCallPart(id="t1", name="read_file", arguments="{}"),
            ir.ToolCallPart(id="t2", name="shot", arguments="{}"),
        ),
        _user(
            ir.ToolResultPart(call_id="t1", content=[ir.TextPart(text="no such file")], is_error=True),
            ir.ToolResultPart(
                call_id="t2",
                content=[ir.TextPart(text="line1"), ir.ImagePart(data="iVBORw0KGgo"), ir.TextPart(text="line2")],
            ),
            ir.TextPart(text="continue"),
            ir.ToolResultPart(call_id="t9", name="explicit", content=[ir.TextPart(text="ok")]),
        ),
    )
    user = _body(req)["contents"][2]
    assert user == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "read_file", "response": {"error": "no such file"}}},
            {"functionResponse": {"name": "shot", "response": {"result": "line1\nline2"}}},
            {"functionResponse": {"name": "explicit", "response": {"result": "ok"}}},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo"}},
            {"text": "continue"},
        ],
    }


def test_results_split_over_messages_merge_into_one_user_turn() -> None:
    req = _req(
        _user(ir.TextPart(text="q")),
        _asst(ir.ToolCallPart(id="a", name="f"), ir.ToolCallPart(id="b", name="g")),
        _user(ir.ToolResultPart(call_id="a", content=[ir.TextPart(text="1")])),
        _user(ir.ToolResultPart(call_id="b", content=[ir.TextPart(text="2")])),
    )
    contents = _body(req)["contents"]
    assert len(contents) == 3
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"result": "1"}}},
        {"functionResponse": {"name": "g", "response": {"result": "2"}}},
    ]


def test_tool_result_with_unknown_name_becomes_text() -> None:
    req = _req(_user(ir.ToolResultPart(call_id="zz", content=[ir.TextPart(text="out")])))
    assert _body(req)["contents"][0]["parts"] == [{"text": "Result of tool call zz:\nout"}]


def test_tool_names_normalised_consistently_with_reverse_map() -> None:
    long = "mcp__server__" + "x" * 70
    req = _req(
        _user(ir.TextPart(text="q")),
        _asst(ir.ToolCallPart(id="a", name="9lives/ok", arguments="{}")),
        _user(ir.ToolResultPart(call_id="a", content=[ir.TextPart(text="r")])),
        tools=[ir.Tool(name="9lives/ok"), ir.Tool(name=long)],
        tool_choice=ir.ToolChoice(mode="tool", name=long),
    )
    out = gemini.render_request(req, T)
    decl_names = [d["name"] for d in out.body["tools"][0]["functionDeclarations"]]
    assert decl_names[0] == "_9lives_ok"
    assert len(decl_names[1]) == 64 and decl_names[1].startswith("mcp__server__")
    assert out.tool_names == {"_9lives_ok": "9lives/ok", decl_names[1]: long}
    assert out.body["contents"][1]["parts"][0]["functionCall"]["name"] == "_9lives_ok"
    assert out.body["contents"][2]["parts"][0]["functionResponse"]["name"] == "_9lives_ok"
    assert out.body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [decl_names[1]]}}


# --------------------------------------------------------------------------- reasoning replay


def test_reasoning_replay_only_for_gemini() -> None:
    req = _req(
        _user(ir.TextPart(text="q")),
        _asst(
            ir.ReasoningPart(text="claude thinking", signature="ant", provider="anthropic"),
            ir.ReasoningPart(redacted="xx", provider="anthropic"),
            ir.ReasoningPart(text="gem thought", signature="GS", provider="gemini"),
            ir.ReasoningPart(text="unsigned thought", provider="gemini"),
            ir.TextPart(text="answer"),
            ir.ReasoningPart(text="", signature="TAIL", provider="gemini"),
            ir.RawPart(dialect="anthropic", data={"type": "server_tool_use"}),
            ir.RawPart(dialect="gemini", data={"executableCode": {"code": "print(1)"}}),
        ),
        _user(ir.TextPart(text="next")),
    )
    assert _body(req)["contents"][1]["parts"] == [
        {"text": "gem thought", "thought": True, "thoughtSignature": "GS"},
        {"text": "unsigned thought", "thought": True},
        {"text": "answer", "thoughtSignature": "TAIL"},
        {"executableCode": {"code": "print(1)"}},
    ]


def test_signature_carrier_without_host_is_an_empty_signed_part() -> None:
    req = _req(
        _user(ir.TextPart(text="q")),
        _asst(ir.ReasoningPart(text="", signature="S", provider="gemini")),
        _user(ir.TextPart(text="next")),
    )
    assert _body(req)["contents"][1]["parts"] == [{"text": "", "thoughtSignature": "S"}]


def test_decoded_stream_round_trips_to_same_gemini_parts() -> None:
    """text + signature on the final empty part -> IR -> back: signature lands on the text."""
    from antiapi.translate.aggregate import Aggregator
    from antiapi.wire.sse import SSEEvent

    dec = gemini.StreamDecoder(ir.Outgoing(body={}, stream=True))
    evs = dec.feed(SSEEvent(None, '{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"}}]}'))
    evs += dec.feed(SSEEvent(None, '{"candidates":[{"content":{"parts":[{"text":"","thoughtSignature":"SG"}],"role":"model"},"finishReason":"STOP"}]}'))
    evs += dec.finish()
    agg = Aggregator()
    agg.feed_all(evs)
    resp = agg.response()
    req = _req(_user(ir.TextPart(text="q")), _asst(*resp.content), _user(ir.TextPart(text="again")))
    assert _body(req)["contents"][1] == {"role": "model", "parts": [{"text": "Hi", "thoughtSignature": "SG"}]}


# --------------------------------------------------------------------------- tools / tool_choice


def test_function_declarations_and_builtins_dropped() -> None:
    req = _req(
        _user(ir.TextPart(text="q")),
        tools=[
            ir.Tool(
                name="get",
                description="Get a thing",
                parameters={
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"id": {"type": "string"}},
                    "required": ["id"],
                    "additionalProperties": False,
                },
            ),
            ir.Tool(name="noargs", parameters={"type": "object", "properties": {}}),
            ir.Tool(name="web_search", kind="builtin", raw={"type": "web_search_20250305"}, dialect="anthropic"),
        ],
    )
    assert _body(req)["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get",
                    "description": "Get a thing",
                    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
                },
                {"name": "noargs"},
            ]
        }
    ]


def test_only_builtin_tools_means_no_tools_and_no_tool_config() -> None:
    req = _req(
        _user(ir.TextPart(text="q")),
        tools=[ir.Tool(name="ws", kind="builtin", raw={}, dialect="anthropic")],
        tool_choice=ir.ToolChoice(mode="required"),
    )
    body = _body(req)
    assert "tools" not in body and "toolConfig" not in body


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ir.ToolChoice(mode="auto"), {"mode": "AUTO"}),
        (ir.ToolChoice(mode="none"), {"mode": "NONE"}),
        (ir.ToolChoice(mode="required"), {"mode": "ANY"}),
        (ir.ToolChoice(mode="tool", name="f"), {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_tool_choice(choice: ir.ToolChoice, expected: dict) -> None:
    req = _req(_user(ir.TextPart(text="q")), tools=[ir.Tool(name="f")], tool_choice=choice)
    assert _body(req)["toolConfig"] == {"functionCallingConfig": expected}


def test_no_tool_choice_no_tool_config() -> None:
    req = _req(_user(ir.TextPart(text="q")), tools=[ir.Tool(name="f")])
    assert "toolConfig" not in _body(req)


# --------------------------------------------------------------------------- schema cleaning


def test_schema_ref_defs_inlined() -> None:
    schema = {
        "type": "object",
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
        "properties": {"p": {"$ref": "#/$defs/Point", "description": "a point"}},
    }
    assert gemini.clean_schema(schema) == {
        "type": "object",
        "properties": {
            "p": {"type": "object", "description": "a point", "properties": {"x": {"type": "number"}}, "required": ["x"]}
        },
    }


def test_schema_definitions_and_recursive_ref() -> None:
    schema = {
        "type": "object",
        "definitions": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/definitions/Node"}, "v": {"type": "integer"}}}},
        "properties": {"root": {"$ref": "#/definitions/Node"}, "ext": {"$ref": "other.json#/X"}},
    }
    assert gemini.clean_schema(schema) == {
        "type": "object",
        "properties": {
            "root": {"type": "object", "properties": {"child": {"type": "object"}, "v": {"type": "integer"}}},
            "ext": {"type": "object"},
        },
    }


def test_schema_removes_unsupported_keywords_but_not_property_names() -> None:
    schema = {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "patternProperties": {"^x": {"type": "string"}},
        "propertyNames": {"pattern": "^[a-z]+$"},
        "properties": {
            "format": {"type": "string", "format": "uri", "default": "x", "examples": ["a"]},
            "const": {"type": "string", "const": "fixed"},
            "when": {"type": "string", "format": "date-time"},
            "n": {"type": "integer", "format": "int64", "minimum": 1, "exclusiveMaximum": 5, "multipleOf": 2},
            "additionalProperties": {"type": "boolean"},
        },
    }
    assert gemini.clean_schema(schema) == {
        "type": "object",
        "properties": {
            "format": {"type": "string"},
            "const": {"type": "string", "enum": ["fixed"]},
            "when": {"type": "string", "format": "date-time"},
            "n": {"type": "integer", "minimum": 1, "format": "int64"},
            "additionalProperties": {"type": "boolean"},
        },
    }


def test_schema_nullable_type_lists_and_anyof_null() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "maybe int"},
            "c": {"oneOf": [{"type": "string"}, {"type": "number"}]},
            "d": {"type": "null"},
            "e": {"type": ["integer", "string"]},
            "f": {"enum": ["x", None]},
        },
    }
    assert gemini.clean_schema(schema)["properties"] == {
        "a": {"type": "string", "nullable": True},
        "b": {"description": "maybe int", "type": "integer", "nullable": True},
        "c": {"anyOf": [{"type": "string"}, {"type": "number"}]},
        "d": {"nullable": True},
        "e": {"type": "integer"},
        "f": {"enum": ["x"], "type": "string", "nullable": True},
    }


def test_schema_required_must_exist_and_arrays_need_items() -> None:
    schema = {
        "type": "object",
        "properties": {"tags": {"type": "array"}, "pairs": {"type": "array", "items": [{"type": "integer"}]}},
        "required": ["tags", "ghost", "tags"],
    }
    assert gemini.clean_schema(schema) == {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}},
            "pairs": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["tags"],
    }


def test_schema_enums_stringified_boolean_enums_dropped_allof_merged() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"level": {"type": "integer", "enum": [1, 2, 3.0]}}, "required": ["level"]},
            {"properties": {"flag": {"type": "boolean", "const": True}}, "required": ["flag"]},
        ]
    }
    assert gemini.clean_schema(schema) == {
        "type": "object",
        "properties": {"level": {"type": "string", "enum": ["1", "2", "3"]}, "flag": {"type": "boolean"}},
        "required": ["level", "flag"],
    }


def test_schema_cleaning_does_not_mutate_input() -> None:
    schema = {"type": "object", "properties": {"a": {"type": ["string", "null"], "const": "x"}}, "additionalProperties": False}
    before = msgspec.json.encode(schema)
    gemini.clean_schema(schema)
    assert msgspec.json.encode(schema) == before


def test_tool_parameters_cleaned_in_request() -> None:
    req = _req(
        _user(ir.TextPart(text="q")),
        tools=[ir.Tool(name="f", parameters={"type": "object", "properties": {"x": {"type": ["number", "null"]}}, "required": ["x", "y"]})],
    )
    assert _body(req)["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "object",
        "properties": {"x": {"type": "number", "nullable": True}},
        "required": ["x"],
    }


# --------------------------------------------------------------------------- generation config


def test_generation_config_fields() -> None:
    req = _req(
        _user(ir.TextPart(text="q")),
        max_output_tokens=100,
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        stop=["END"],
        n=2,
        seed=7,
        response_format=ir.ResponseFormat(type="json_schema", schema={"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}),
    )
    assert _body(req)["generationConfig"] == {
        "maxOutputTokens": 100,
        "temperature": 0.5,
        "topP": 0.9,
        "topK": 40,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "seed": 7,
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}},
    }


def test_json_object_mode_and_no_generation_config_when_empty() -> None:
    assert "generationConfig" not in _body(_req(_user(ir.TextPart(text="q"))))
    req = _req(_user(ir.TextPart(text="q")), response_format=ir.ResponseFormat(type="json_object"))
    assert _body(req)["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    ("reasoning", "expected"),
    [
        (None, None),
        (ir.Reasoning(budget_tokens=5000), {"thinkingBudget": 5000, "includeThoughts": True}),
        (ir.Reasoning(effort="high"), {"thinkingBudget": 24576, "includeThoughts": True}),
        (ir.Reasoning(effort="low"), {"thinkingBudget": 2048, "includeThoughts": True}),
        (ir.Reasoning(effort="none"), {"thinkingBudget": 0}),
        (ir.Reasoning(enabled=False), {"thinkingBudget": 0}),
        (ir.Reasoning(enabled=True), {"thinkingBudget": -1, "includeThoughts": True}),
        (ir.Reasoning(adaptive=True), {"thinkingBudget": -1, "includeThoughts": True}),
        (ir.Reasoning(enabled=True, budget_tokens=0), {"thinkingBudget": 0}),
        (ir.Reasoning(), None),
    ],
)
def test_thinking_config(reasoning: ir.Reasoning | None, expected: dict | None) -> None:
    body = _body(_req(_user(ir.TextPart(text="q")), reasoning=reasoning))
    assert body.get("generationConfig", {}).get("thinkingConfig") == expected


# --------------------------------------------------------------------------- countTokens


def test_count_request_forms() -> None:
    plain = _req(_user(ir.TextPart(text="q")))
    assert gemini.render_count_request(plain, T) == {"contents": [{"role": "user", "parts": [{"text": "q"}]}]}
    full = _req(_user(ir.TextPart(text="q")), system=[ir.TextPart(text="S")], tools=[ir.Tool(name="f")], max_output_tokens=5)
    assert gemini.render_count_request(full, T) == {
        "generateContentRequest": {
            "contents": [{"role": "user", "parts": [{"text": "q"}]}],
            "systemInstruction": {"parts": [{"text": "S"}]},
            "tools": [{"functionDeclarations": [{"name": "f"}]}],
            "model": "models/gemini-3-pro-preview",
        }
    }
    t2 = ir.Target(model="models/gemini-2.5-flash", provider="gemini")
    assert gemini.render_count_request(full, t2)["generateContentRequest"]["model"] == "models/gemini-2.5-flash"


def test_parse_count_response() -> None:
    assert gemini.parse_count_response(b'{"totalTokens": 31, "promptTokensDetails": []}') == 31
    assert gemini.parse_count_response(b"{}") == 0
    with pytest.raises(UpstreamHTTPError) as ei:
        gemini.parse_count_response(b"<html>")
    assert ei.value.kind is ErrorKind.API_ERROR


# --------------------------------------------------------------------------- errors

RPC_429 = (
    b'{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. '
    b'Please retry in 3.56s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure",'
    b'"violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count",'
    b'"quotaId":"GenerateContentPaidTierInputTokensPerModelPerMinute","quotaDimensions":{"model":"gemini-2.5-pro","location":"global"},'
    b'"quotaValue":"2000000"}]},{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more",'
    b'"url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]}}'
)


def test_parse_error_rpc_429_retry_info() -> None:
    err = gemini.parse_error(429, {}, RPC_429)
    assert isinstance(err, UpstreamHTTPError)
    assert err.kind is ErrorKind.RATE_LIMIT
    assert err.status == 429
    assert err.retry_after == 3.0
    assert err.code == "RESOURCE_EXHAUSTED"
    assert err.message.startswith("gemini: You exceeded your current quota")
    assert err.retryable is True


def test_parse_error_fractional_retry_delay() -> None:
    body = b'{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3.5s"}]}}'
    assert gemini.parse_error(429, {}, body).retry_after == 3.5


@pytest.mark.parametrize(
    ("http", "status", "kind"),
    [
        (400, "INVALID_ARGUMENT", ErrorKind.INVALID_REQUEST),
        (400, "FAILED_PRECONDITION", ErrorKind.INVALID_REQUEST),
        (403, "PERMISSION_DENIED", ErrorKind.PERMISSION),
        (401, "UNAUTHENTICATED", ErrorKind.AUTHENTICATION),
        (404, "NOT_FOUND", ErrorKind.NOT_FOUND),
        (503, "UNAVAILABLE", ErrorKind.OVERLOADED),
        (504, "DEADLINE_EXCEEDED", ErrorKind.TIMEOUT),
        (500, "INTERNAL", ErrorKind.API_ERROR),
    ],
)
def test_parse_error_status_kinds(http: int, status: str, kind: ErrorKind) -> None:
    body = msgspec.json.encode({"error": {"code": http, "message": "boom", "status": status}})
    err = gemini.parse_error(http, {}, body)
    assert (err.kind, err.status, err.message, err.code, err.retry_after) == (kind, http, "gemini: boom", status, None)


def test_parse_error_non_json_body_uses_http_status_and_header() -> None:
    err = gemini.parse_error(503, {"Retry-After": "7"}, b"upstream connect error")
    assert (err.kind, err.status, err.retry_after) == (ErrorKind.OVERLOADED, 503, 7.0)
    assert err.message == "gemini: HTTP 503: upstream connect error"


def test_parse_error_array_body_and_api_key_invalid() -> None:
    body = (
        b'[{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",'
        b'"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}]'
    )
    err = gemini.parse_error(400, {}, body)
    assert (err.kind, err.status, err.code) == (ErrorKind.AUTHENTICATION, 401, "API_KEY_INVALID")
    assert err.message == "gemini: API key not valid. Please pass a valid API key."


def test_parse_error_context_exceeded_code() -> None:
    body = b'{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}'
    err = gemini.parse_error(400, {}, body)
    assert (err.kind, err.code) == (ErrorKind.INVALID_REQUEST, "context_length_exceeded")


# --------------------------------------------------------------------------- schema cleaning property

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ALLOWED = {
    "type", "format", "title", "description", "pattern", "nullable", "enum", "properties", "required", "items",
    "anyOf", "minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties",
}
_KEYWORDS = [
    "type", "properties", "items", "required", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "const",
    "enum", "format", "additionalProperties", "nullable", "description", "default", "minimum", "patternProperties",
]
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5),
                       st.sampled_from(["string", "null", "object", "array", "integer", "#/$defs/A", "#/definitions/A"]))
_schemaish = st.recursive(
    _json_leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(_KEYWORDS), st.sampled_from(["A", "x", "type"])), kids, max_size=5),
    ),
    max_leaves=30,
)


def _check_node(node: dict) -> None:
    assert set(node) <= _ALLOWED, set(node) - _ALLOWED
    if "enum" in node:
        assert node["enum"] and all(isinstance(v, str) for v in node["enum"]) and node["type"] == "string"
    if node.get("type") == "array":
        assert isinstance(node["items"], dict) and node["items"]
    if "required" in node:
        assert set(node["required"]) <= set(node["properties"])
    for sub in (node.get("properties") or {}).values():
        _check_node(sub)
    if "items" in node:
        _check_node(node["items"])
    for sub in node.get("anyOf", []):
        _check_node(sub)


@settings(max_examples=300, deadline=None)
@given(_schemaish)
def test_clean_schema_output_is_always_in_gemini_subset(schema: object) -> None:
    before = msgspec.json.encode(schema)
    out = gemini.clean_schema(schema)
    assert isinstance(out, dict)
    _check_node(out)
    assert msgspec.json.encode(schema) == before  # input untouched


def test_clean_schema_invariants_hold_after_merge_and_hoist() -> None:
    # found by the property test: keywords brought in by allOf / a single anyOf variant
    assert gemini.clean_schema({"type": "object", "allOf": [{"const": 3}]}) == {"type": "string", "enum": ["3"]}
    assert gemini.clean_schema({"type": ["object"], "anyOf": [{"const": 0}]}) == {"type": "string", "enum": ["0"]}
    assert gemini.clean_schema({"type": "string", "allOf": [{"items": {"type": "integer"}}]}) == {"type": "string"}

"""Gemini upstream dialect: stream / non-stream decoding, golden recorded fixtures, usage scan."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from antiapi.errors import UpstreamHTTPError
from antiapi.translate import gemini, ir
from antiapi.translate.aggregate import Aggregator
from antiapi.wire.sse import SSEDecoder, SSEEvent

FIXTURES = Path("/work/shared/fixtures/recorded/gemini")
OUT = ir.Outgoing(body={}, stream=True)
CALL_ID = re.compile(r"^call_[a-zA-Z0-9_-]+$")


def _fixture_lines(name: str) -> list[str]:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"recorded fixture {path} is absent")
    return [line for line in path.read_text().split("\n") if line.strip()]


def _wire(lines: list[str], sep: bytes = b"\n\n") -> bytes:
    return b"".join(b"data: " + line.encode() + sep for line in lines)


def _decode_bytes(raw: bytes, chunks: list[bytes] | None = None, out: ir.Outgoing = OUT) -> list[ir.Event]:
    sse = SSEDecoder()
    dec = gemini.StreamDecoder(out)
    evs: list[ir.Event] = []
    for piece in chunks if chunks is not None else [raw]:
        for e in sse.feed(piece):
            evs += dec.feed(e)
    for e in sse.flush():
        evs += dec.feed(e)
    return evs + dec.finish()


def _decode_datas(datas: list[str], out: ir.Outgoing = OUT) -> list[ir.Event]:
    dec = gemini.StreamDecoder(out)
    evs: list[ir.Event] = []
    for d in datas:
        evs += dec.feed(SSEEvent(None, d))
    return evs + dec.finish()


def _stable(evs: list[ir.Event]) -> list[ir.Event]:
    """Replace synthetic tool-call ids by ID0, ID1... after checking their shape/uniqueness."""
    ids: dict[str, str] = {}
    out: list[ir.Event] = []
    for ev in evs:
        if isinstance(ev, ir.BlockStart) and ev.kind == "tool_call":
            assert ev.id and CALL_ID.match(ev.id), ev.id
            assert ev.id not in ids, "tool call ids must be unique"
            ids[ev.id] = f"ID{len(ids)}"
            ev = msgspec.structs.replace(ev, id=ids[ev.id])
        out.append(ev)
    return out


def _check_grammar(evs: list[ir.Event]) -> None:
    """Start (blocks | usage)* [Finish] [Usage]* End, or ... Error; blocks never nest here."""
    assert isinstance(evs[0], ir.Start)
    open_idx: int | None = None
    seen: set[int] = set()
    finished = False
    for ev in evs[1:-1]:
        assert not isinstance(ev, (ir.Start, ir.End, ir.Error))
        if isinstance(ev, ir.BlockStart):
            assert open_idx is None and not finished and ev.index not in seen
            assert ev.index == len(seen)
            open_idx = ev.index
            seen.add(ev.index)
        elif isinstance(ev, ir.BlockStop):
            assert ev.index == open_idx
            open_idx = None
        elif isinstance(ev, (ir.TextDelta, ir.ReasoningDelta, ir.ArgsDelta, ir.SignatureDelta)):
            assert ev.index == open_idx
        elif isinstance(ev, ir.Finish):
            assert open_idx is None
            finished = True
        elif isinstance(ev, ir.UsageEvent):
            assert open_idx is None
    assert isinstance(evs[-1], (ir.End, ir.Error))
    if isinstance(evs[-1], ir.End):
        assert finished


def _aggregate(evs: list[ir.Event]) -> ir.Response:
    agg = Aggregator()
    agg.feed_all(evs)
    return agg.response()


def _sig(lines: list[str], line_no: int, part_no: int = 0) -> str:
    return json.loads(lines[line_no])["candidates"][0]["content"]["parts"][part_no]["thoughtSignature"]


# =========================================================================== golden fixtures


def test_google_text_signature_on_final_empty_part() -> None:
    lines = _fixture_lines("google-text.chunks.txt")
    evs = _decode_bytes(_wire(lines))
    _check_grammar(evs)
    assert evs == [
        ir.Start(id="bH6LaZW8Fp_3nsEPqtaSwQ4", model="gemini-3-pro-preview", usage=ir.Usage(input_tokens=9)),
        ir.BlockStart(index=0, kind="text"),
        ir.TextDelta(index=0, text="There are **3**"),
        ir.TextDelta(index=0, text=' "r"s in strawberry.\n\nst**r**awbe**rr**y'),
        ir.BlockStop(index=0),
        ir.BlockStart(index=1, kind="reasoning", provider="gemini"),
        ir.SignatureDelta(index=1, signature=_sig(lines, 2)),
        ir.BlockStop(index=1),
        ir.Finish(reason="end_turn"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=9, output_tokens=208, reasoning_tokens=185)),
        ir.End(),
    ]
    resp = _aggregate(evs)
    assert resp.id == "bH6LaZW8Fp_3nsEPqtaSwQ4" and resp.model == "gemini-3-pro-preview"
    assert resp.content == [
        ir.TextPart(text='There are **3** "r"s in strawberry.\n\nst**r**awbe**rr**y'),
        ir.ReasoningPart(text="", signature=_sig(lines, 2), provider="gemini"),
    ]
    assert resp.stop_reason == "end_turn"
    assert resp.usage == ir.Usage(input_tokens=9, output_tokens=208, reasoning_tokens=185)


@pytest.mark.parametrize(
    ("name", "rid", "text", "usage"),
    [
        (
            "google-reasoning.chunks.txt",
            "dX6LadKVC7SZ28oPr9yJoQs",
            'There are **3** "r"s in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.',
            ir.Usage(input_tokens=9, output_tokens=29 + 256, reasoning_tokens=256),
        ),
        (
            "google-reasoning-gemini3.chunks.txt",
            "M3iLaY-AI7zTxN8P3Piw4Qg",
            'There are **3** "r"s in strawberry.\n\nSt**r**awbe**rr**y',
            ir.Usage(input_tokens=9, output_tokens=23 + 302, reasoning_tokens=302),
        ),
    ],
)
def test_google_reasoning_fixtures(name: str, rid: str, text: str, usage: ir.Usage) -> None:
    lines = _fixture_lines(name)
    evs = _decode_bytes(_wire(lines))
    _check_grammar(evs)
    resp = _aggregate(evs)
    assert resp.id == rid
    assert resp.content == [
        ir.TextPart(text=text),
        ir.ReasoningPart(text="", signature=_sig(lines, len(lines) - 1), provider="gemini"),
    ]
    assert resp.stop_reason == "end_turn"
    assert resp.usage == usage


def test_google_tool_call_signature_on_function_call_part() -> None:
    lines = _fixture_lines("google-tool-call.chunks.txt")
    evs = _stable(_decode_bytes(_wire(lines)))
    _check_grammar(evs)
    sig = _sig(lines, 0)
    assert evs == [
        ir.Start(id="b36LacjwM668nsEP2tbsgQQ", model="gemini-3-pro-preview", usage=ir.Usage(input_tokens=29)),
        ir.BlockStart(index=0, kind="tool_call", id="ID0", name="weather"),
        ir.ArgsDelta(index=0, json='{"location":"San Francisco"}'),
        ir.SignatureDelta(index=0, signature=sig),
        ir.BlockStop(index=0),
        ir.Finish(reason="tool_use"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=29, output_tokens=60, reasoning_tokens=45)),
        ir.End(),
    ]
    resp = _aggregate(evs)
    assert resp.content == [ir.ToolCallPart(id="ID0", name="weather", arguments='{"location":"San Francisco"}', signature=sig)]
    assert resp.stop_reason == "tool_use"


def test_google_tool_call_name_restored_through_outgoing_map() -> None:
    lines = _fixture_lines("google-tool-call.chunks.txt")
    out = ir.Outgoing(body={}, stream=True, tool_names={"weather": "mcp/weather"})
    resp = _aggregate(_decode_bytes(_wire(lines), out=out))
    assert [p.name for p in resp.content] == ["mcp/weather"]  # type: ignore[union-attr]


def test_google_stream_no_args_and_streamed_partial_args() -> None:
    lines = _fixture_lines("google-stream-no-args-tool-call.chunks.txt")
    evs = _stable(_decode_bytes(_wire(lines)))
    _check_grammar(evs)
    thought = json.loads(lines[0])["candidates"][0]["content"]["parts"][0]["text"]
    theme_sig = _sig(lines, 1)
    assert evs == [
        ir.Start(id="_vr4aYiWEJnYodAPkujX0QM", model="gemini-3-flash-preview"),
        ir.BlockStart(index=0, kind="reasoning", provider="gemini"),
        ir.ReasoningDelta(index=0, text=thought),
        ir.BlockStop(index=0),
        ir.BlockStart(index=1, kind="tool_call", id="ID0", name="read_theme"),
        ir.SignatureDelta(index=1, signature=theme_sig),
        ir.BlockStop(index=1),
        ir.BlockStart(index=2, kind="tool_call", id="ID1", name="read_screen"),
        ir.ArgsDelta(index=2, json='{"id":"A"}'),
        ir.BlockStop(index=2),
        ir.BlockStart(index=3, kind="tool_call", id="ID2", name="read_screen"),
        ir.ArgsDelta(index=3, json='{"id":"B"}'),
        ir.BlockStop(index=3),
        ir.BlockStart(index=4, kind="tool_call", id="ID3", name="read_screen"),
        ir.ArgsDelta(index=4, json='{"id":"C"}'),
        ir.BlockStop(index=4),
        ir.Finish(reason="tool_use"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=249, output_tokens=58 + 183, reasoning_tokens=183)),
        ir.End(),
    ]
    resp = _aggregate(evs)
    assert resp.content == [
        ir.ReasoningPart(text=thought, provider="gemini"),
        ir.ToolCallPart(id="ID0", name="read_theme", arguments="{}", signature=theme_sig),
        ir.ToolCallPart(id="ID1", name="read_screen", arguments='{"id":"A"}'),
        ir.ToolCallPart(id="ID2", name="read_screen", arguments='{"id":"B"}'),
        ir.ToolCallPart(id="ID3", name="read_screen", arguments='{"id":"C"}'),
    ]
    assert resp.stop_reason == "tool_use"


def test_google_text_json_non_stream() -> None:
    path = FIXTURES / "google-text.json"
    if not path.exists():
        pytest.skip("recorded fixture absent")
    body = path.read_bytes()
    sig = json.loads(body)["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    evs = gemini.decode_response(body, ir.Outgoing(body={}, stream=False))
    _check_grammar(evs)
    text = "There are **3** r's in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y."
    assert evs == [
        ir.Start(id="Un6LacrVMcjUxs0PmJfWoQc", model="gemini-3-pro-preview", usage=ir.Usage(input_tokens=9)),
        ir.BlockStart(index=0, kind="text"),
        ir.TextDelta(index=0, text=text),
        ir.BlockStop(index=0),
        ir.BlockStart(index=1, kind="reasoning", provider="gemini"),
        ir.SignatureDelta(index=1, signature=sig),
        ir.BlockStop(index=1),
        ir.Finish(reason="end_turn"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=9, output_tokens=28 + 244, reasoning_tokens=244)),
        ir.End(),
    ]


ALL_STREAMS = [
    "google-text.chunks.txt",
    "google-reasoning.chunks.txt",
    "google-reasoning-gemini3.chunks.txt",
    "google-tool-call.chunks.txt",
    "google-stream-no-args-tool-call.chunks.txt",
]


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_crlf_framing_gives_same_events(name: str) -> None:
    lines = _fixture_lines(name)
    lf = _stable(_decode_bytes(_wire(lines, b"\n\n")))
    crlf = _stable(_decode_bytes(_wire(lines, b"\r\n\r\n")))
    assert lf == crlf
    assert isinstance(lf[-1], ir.End)


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_truncated_fixture_ends_with_error(name: str) -> None:
    lines = _fixture_lines(name)
    evs = _decode_bytes(_wire(lines[:-1]))
    assert evs[-1] == ir.Error(kind="api_error", message="upstream stream ended before completion", status=502)
    assert not any(isinstance(e, (ir.Finish, ir.End)) for e in evs)
    with pytest.raises(UpstreamHTTPError, match="ended before completion"):
        _aggregate(evs)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_chunk_splits_give_same_events(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(ALL_STREAMS))
    lines = _fixture_lines(name)
    sep = data.draw(st.sampled_from([b"\n\n", b"\r\n\r\n"]))
    raw = _wire(lines, sep)
    cuts = sorted(set(data.draw(st.lists(st.integers(min_value=1, max_value=len(raw) - 1), max_size=40))))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    assert _stable(_decode_bytes(raw, pieces)) == _stable(_decode_bytes(raw))


# =========================================================================== decoder rules


def _chunk(parts: list[dict], finish: str | None = None, usage: dict | None = None, **top) -> str:
    cand: dict = {"content": {"role": "model", "parts": parts}}
    if finish:
        cand["finishReason"] = finish
    body: dict = {"candidates": [cand], **top}
    if usage:
        body["usageMetadata"] = usage
    return json.dumps(body)


def test_thought_parts_then_text_and_signature_closes_reasoning() -> None:
    evs = _decode_datas(
        [
            _chunk([{"text": "think ", "thought": True}], responseId="r1", modelVersion="gemini-2.5-pro"),
            _chunk([{"text": "more", "thought": True, "thoughtSignature": "S1"}]),
            _chunk([{"text": "after", "thought": True}]),
            _chunk([{"text": "Answer"}], finish="STOP"),
        ]
    )
    assert evs == [
        ir.Start(id="r1", model="gemini-2.5-pro"),
        ir.BlockStart(index=0, kind="reasoning", provider="gemini"),
        ir.ReasoningDelta(index=0, text="think "),
        ir.ReasoningDelta(index=0, text="more"),
        ir.SignatureDelta(index=0, signature="S1"),
        ir.BlockStop(index=0),
        ir.BlockStart(index=1, kind="reasoning", provider="gemini"),
        ir.ReasoningDelta(index=1, text="after"),
        ir.BlockStop(index=1),
        ir.BlockStart(index=2, kind="text"),
        ir.TextDelta(index=2, text="Answer"),
        ir.BlockStop(index=2),
        ir.Finish(reason="end_turn"),
        ir.End(),
    ]


def test_empty_signed_part_goes_on_open_reasoning_block() -> None:
    evs = _decode_datas([_chunk([{"text": "t", "thought": True}, {"text": "", "thoughtSignature": "S"}], finish="STOP")])
    assert evs[1:6] == [
        ir.BlockStart(index=0, kind="reasoning", provider="gemini"),
        ir.ReasoningDelta(index=0, text="t"),
        ir.SignatureDelta(index=0, signature="S"),
        ir.BlockStop(index=0),
        ir.Finish(reason="end_turn"),
    ]


def test_start_id_synthesized_when_missing() -> None:
    evs = _decode_datas([_chunk([{"text": "x"}], finish="STOP")])
    assert isinstance(evs[0], ir.Start) and evs[0].id and evs[0].id.startswith("gemini_") and evs[0].model is None


@pytest.mark.parametrize(
    ("reason", "stop"),
    [
        ("STOP", "end_turn"),
        ("FINISH_REASON_UNSPECIFIED", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "refusal"),
        ("RECITATION", "refusal"),
        ("BLOCKLIST", "refusal"),
        ("PROHIBITED_CONTENT", "refusal"),
        ("SPII", "refusal"),
        ("SOMETHING_NEW", "end_turn"),
    ],
)
def test_finish_reasons(reason: str, stop: str) -> None:
    evs = _decode_datas([_chunk([{"text": "x"}], finish=reason)])
    assert evs[-2:] == [ir.Finish(reason=stop), ir.End()]  # type: ignore[arg-type]


def test_max_tokens_with_tool_call_stays_max_tokens() -> None:
    evs = _decode_datas([_chunk([{"functionCall": {"name": "f", "args": {"a": 1}}}], finish="MAX_TOKENS")])
    assert evs[-2:] == [ir.Finish(reason="max_tokens"), ir.End()]


def test_malformed_function_call_is_error_and_no_end() -> None:
    dec = gemini.StreamDecoder(OUT)
    evs = dec.feed(SSEEvent(None, json.dumps({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL", "finishMessage": "bad json"}]})))
    assert evs[1:] == [
        ir.Error(kind="api_error", message="gemini: the model stopped with MALFORMED_FUNCTION_CALL: bad json", status=502, code="MALFORMED_FUNCTION_CALL")
    ]
    assert dec.finish() == []
    assert dec.feed(SSEEvent(None, _chunk([{"text": "late"}]))) == []


def test_error_object_in_chunk() -> None:
    dec = gemini.StreamDecoder(OUT)
    first = dec.feed(SSEEvent(None, _chunk([{"text": "partial"}])))
    assert [type(e) for e in first] == [ir.Start, ir.BlockStart, ir.TextDelta]
    evs = dec.feed(SSEEvent(None, '{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}'))
    assert evs == [ir.Error(kind="overloaded", message="gemini: The model is overloaded.", status=503, code="UNAVAILABLE")]
    assert dec.finish() == []


def test_unreadable_chunk_is_error() -> None:
    dec = gemini.StreamDecoder(OUT)
    evs = dec.feed(SSEEvent(None, '{"candidates": 5}'))
    assert len(evs) == 1 and isinstance(evs[0], ir.Error) and evs[0].kind == "api_error"


def test_prompt_blocked_is_refusal() -> None:
    evs = _decode_datas(['{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":7,"totalTokenCount":7}}'])
    assert evs[1:] == [ir.Finish(reason="refusal"), ir.UsageEvent(usage=ir.Usage(input_tokens=7)), ir.End()]
    assert isinstance(evs[0], ir.Start) and evs[0].usage == ir.Usage(input_tokens=7)


def test_usage_mapping_with_cache_and_tool_prompt() -> None:
    usage = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 600,
        "candidatesTokenCount": 50,
        "thoughtsTokenCount": 20,
        "toolUsePromptTokenCount": 5,
        "totalTokenCount": 1075,
    }
    evs = _decode_datas([_chunk([{"text": "x"}], finish="STOP", usage=usage)])
    expected = ir.Usage(input_tokens=405, output_tokens=70, cache_read_tokens=600, reasoning_tokens=20)
    assert evs[0] == ir.Start(id=evs[0].id, usage=ir.Usage(input_tokens=405, cache_read_tokens=600))  # type: ignore[union-attr]
    assert evs[-2] == ir.UsageEvent(usage=expected)
    assert gemini.scan_usage(SSEEvent(None, _chunk([], usage=usage))) == expected


def test_scan_usage_ignores_chunks_without_counts() -> None:
    assert gemini.scan_usage(SSEEvent(None, _chunk([{"text": "x"}]))) is None
    assert gemini.scan_usage(SSEEvent(None, '{"usageMetadata":{"trafficType":"ON_DEMAND"}}')) is None
    assert gemini.scan_usage(SSEEvent(None, "not json usageMetadata")) is None


def test_late_usage_chunk_after_finish() -> None:
    evs = _decode_datas(
        [
            _chunk([{"text": "x"}], finish="STOP", usage={"promptTokenCount": 3, "candidatesTokenCount": 1}),
            json.dumps({"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}),
        ]
    )
    assert evs[-4:] == [
        ir.Finish(reason="end_turn"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=3, output_tokens=1)),
        ir.UsageEvent(usage=ir.Usage(input_tokens=3, output_tokens=2)),
        ir.End(),
    ]


def test_only_first_candidate_is_used() -> None:
    body = json.dumps(
        {
            "candidates": [
                {"index": 1, "content": {"parts": [{"text": "second"}]}, "finishReason": "STOP"},
                {"index": 0, "content": {"parts": [{"text": "first"}]}, "finishReason": "STOP"},
            ]
        }
    )
    resp = _aggregate(_decode_datas([body]))
    assert resp.content == [ir.TextPart(text="first")]


def test_upstream_call_id_kept_when_safe_and_parallel_calls_in_one_chunk() -> None:
    evs = _decode_datas(
        [
            _chunk(
                [
                    {"functionCall": {"id": "fc-1", "name": "a", "args": {"x": 1}}, "thoughtSignature": "S"},
                    {"functionCall": {"id": "bad id!", "name": "b", "args": {}}},
                ],
                finish="STOP",
            )
        ]
    )
    starts = [e for e in evs if isinstance(e, ir.BlockStart)]
    assert starts[0] == ir.BlockStart(index=0, kind="tool_call", id="fc-1", name="a")
    assert starts[1].name == "b" and starts[1].id and CALL_ID.match(starts[1].id)
    assert ir.ArgsDelta(index=1, json="{}") not in evs  # empty args -> no delta
    assert evs[-2:] == [ir.Finish(reason="tool_use"), ir.End()]


def test_nested_partial_args_numbers_and_missing_terminal_call() -> None:
    """Vertex streamed args: nested paths, arrays, numbers, bools, nulls, split strings; the
    last call has no closing empty functionCall (finishReason closes it)."""
    fc = lambda **kw: _chunk([{"functionCall": kw}])  # noqa: E731
    datas = [
        _chunk([{"functionCall": {"name": "cook", "willContinue": True}, "thoughtSignature": "SIG"}]),
        fc(partialArgs=[{"jsonPath": "$.recipe.ingredients[0].amount", "stringValue": "16 ", "willContinue": True}], willContinue=True),
        fc(partialArgs=[{"jsonPath": "$.recipe.ingredients[0].amount", "stringValue": "oz", "willContinue": True}], willContinue=True),
        fc(partialArgs=[{"jsonPath": "$.recipe.ingredients[0].amount", "stringValue": ""}], willContinue=True),
        fc(willContinue=True),
        fc(partialArgs=[{"jsonPath": "$.recipe.ingredients[1].name", "stringValue": "Beef"}], willContinue=True),
        fc(partialArgs=[{"jsonPath": "$.recipe['serves']", "numberValue": 4}, {"jsonPath": "$.vegan", "boolValue": False}], willContinue=True),
        fc(partialArgs=[{"jsonPath": "$.note", "nullValue": None}, {"jsonPath": "$.price", "numberValue": 0.5}]),
        _chunk([{"functionCall": {"name": "write", "willContinue": True}}]),
        fc(partialArgs=[{"jsonPath": "$.ops[0]", "stringValue": "add"}], willContinue=True),
        _chunk([{"text": ""}], finish="STOP"),
    ]
    resp = _aggregate(_stable(_decode_datas(datas)))
    assert resp.content == [
        ir.ToolCallPart(
            id="ID0",
            name="cook",
            arguments='{"recipe":{"ingredients":[{"amount":"16 oz"},{"name":"Beef"}],"serves":4},"vegan":false,"note":null,"price":0.5}',
            signature="SIG",
        ),
        ir.ToolCallPart(id="ID1", name="write", arguments='{"ops":["add"]}'),
    ]
    assert resp.stop_reason == "tool_use"


def test_new_named_call_flushes_unterminated_previous_one() -> None:
    datas = [
        _chunk([{"functionCall": {"name": "a", "willContinue": True}}]),
        _chunk([{"functionCall": {"partialArgs": [{"jsonPath": "$.k", "stringValue": "v"}], "willContinue": True}}]),
        _chunk([{"functionCall": {"name": "b", "args": {"z": True}}}], finish="STOP"),
    ]
    resp = _aggregate(_stable(_decode_datas(datas)))
    assert resp.content == [
        ir.ToolCallPart(id="ID0", name="a", arguments='{"k":"v"}'),
        ir.ToolCallPart(id="ID1", name="b", arguments='{"z":true}'),
    ]


# =========================================================================== non-stream


def test_decode_response_array_body_and_missing_finish() -> None:
    body = ("[" + _chunk([{"text": "a"}], responseId="x") + ",\n" + _chunk([{"text": "b"}]) + "]").encode()
    evs = gemini.decode_response(body, ir.Outgoing(body={}, stream=False))
    _check_grammar(evs)
    resp = _aggregate(evs)
    assert (resp.id, resp.content, resp.stop_reason) == ("x", [ir.TextPart(text="ab")], "end_turn")


def test_decode_response_empty_candidate_is_valid_empty_message() -> None:
    evs = gemini.decode_response(b'{"candidates":[{"content":{"parts":[]},"finishReason":"STOP"}]}', OUT)
    assert [type(e) for e in evs] == [ir.Start, ir.Finish, ir.End]


def test_decode_response_error_and_garbage() -> None:
    evs = gemini.decode_response(b'{"error":{"code":500,"message":"Internal error","status":"INTERNAL"}}', OUT)
    assert evs == [ir.Error(kind="api_error", message="gemini: Internal error", status=500, code="INTERNAL")]
    bad = gemini.decode_response(b"<html>", OUT)
    assert len(bad) == 1 and isinstance(bad[0], ir.Error)


def test_decode_response_tool_call_with_thought() -> None:
    body = json.dumps(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "plan", "thought": True},
                            {"functionCall": {"name": "f", "args": {"q": "x"}}, "thoughtSignature": "SG"},
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 3},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "abc",
        }
    ).encode()
    resp = _aggregate(_stable(gemini.decode_response(body, OUT)))
    assert resp == ir.Response(
        id="abc",
        model="gemini-2.5-flash",
        content=[ir.ReasoningPart(text="plan", provider="gemini"), ir.ToolCallPart(id="ID0", name="f", arguments='{"q":"x"}', signature="SG")],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=10, output_tokens=8, reasoning_tokens=3),
    )

"""The real Claude Code CLI (npm, pinned) -> antiapi -> faithful mock upstreams.

Claude Code speaks Anthropic Messages (``POST /v1/messages?beta=true``, streamed). Each test lets it
run a real agent turn: the mock model asks for the ``Write`` tool, Claude Code executes it (the file
really appears on disk), sends the tool result back through antiapi, and prints the final answer.
The mocks validate requests the way the real APIs do (history rules, signatures), so a translation
mistake shows up as a 400 and a failing run.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.cli_helpers import (
    anthropic_has_tool_result,
    chat_has_tool_result,
    claude_work_dir,
    gemini_has_tool_result,
    responses_has_tool_result,
    run_claude,
    tool_names,
    tool_round_trip_handler,
)
from tests.mocks import Reply, Text, Thinking, ToolCall, Usage

pytestmark = [pytest.mark.e2e, pytest.mark.cli]

#: Claude Code's own default model name: what a user who only sets ANTHROPIC_BASE_URL sends.
MODEL = "claude-opus-5-5"
FILE_TEXT = "written through antiapi"
FINAL = "Done: file written"


def _config(provider_block: str, upstream_model: str) -> str:
    return f"""
providers:
  up: {provider_block}
models:
  - {{name: {MODEL}, provider: up, model: {upstream_model}}}
"""


def _assert_success(run, final: str = FINAL) -> dict:
    assert not run.timed_out, run.describe()
    assert run.returncode == 0, run.describe()
    out = run.json
    assert out["type"] == "result", run.describe()
    assert out["is_error"] is False, run.describe()
    assert out["subtype"] == "success", run.describe()
    assert out["result"] == final, run.describe()
    return out


def _split_main(mock, has_result):
    """(requests of the main turn before the tool ran, requests carrying the tool result)."""
    main = [r for r in mock.requests if isinstance(r.json, dict) and "Write" in tool_names(r.json)]
    before = [r for r in main if not has_result(r.json)]
    after = [r for r in main if has_result(r.json)]
    return before, after


def test_claude_code_via_openai_chat_upstream_writes_a_file(mock_upstream_factory, gateway_factory, tmp_path):
    mock = mock_upstream_factory("openai_chat")
    gw = gateway_factory(_config(f'{{type: openai, base_url: "{mock.root_url}/v1", api_key: test-key}}', "gpt-4.1"))
    target = claude_work_dir(tmp_path) / "hello.txt"
    call = Reply(
        [Text("I'll write the file."), ToolCall("Write", {"file_path": str(target), "content": FILE_TEXT},
                                                 id="call_e2e_write_1", chunks=4)],
        usage=Usage(input_tokens=900, output_tokens=40),
    )
    mock.handler = tool_round_trip_handler("openai_chat", "Write", call,
                                           Reply([Text(FINAL, chunks=3)], usage=Usage(input_tokens=950, output_tokens=6)))

    run = run_claude(gw.url, "Create hello.txt saying 'written through antiapi'.", tmp_path, model=MODEL)

    out = _assert_success(run)
    assert target.read_text() == FILE_TEXT
    assert out["num_turns"] == 2
    assert mock.errors == []

    before, after = _split_main(mock, chat_has_tool_result)
    assert len(before) == 1 and len(after) == 1, [r.json.get("messages", [])[-1:] for r in mock.requests]
    first, second = before[0].json, after[0].json
    assert first["model"] == "gpt-4.1" and first["stream"] is True
    # Claude Code's system prompt became the leading system message; Anthropic tools became functions
    assert first["messages"][0]["role"] == "system" and "Claude" in first["messages"][0]["content"]
    assert {"Write", "Bash", "Read", "Edit"} <= set(tool_names(first))
    assert all(t["type"] == "function" for t in first["tools"])
    # the tool result came back in OpenAI shape, answering the call by its id
    msgs = second["messages"]
    assistant, tool = msgs[-2], msgs[-1]
    assert assistant["role"] == "assistant"
    [tc] = assistant["tool_calls"]
    assert tc["id"] == "call_e2e_write_1" and tc["function"]["name"] == "Write"
    assert json.loads(tc["function"]["arguments"]) == {"file_path": str(target), "content": FILE_TEXT}
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_e2e_write_1"
    assert str(target) in tool["content"]

    recs = gw.records(at_least=len(mock.requests))
    assert len(recs) == len(mock.requests) >= 2
    assert [r.status for r in recs] == [200] * len(recs)
    assert {(r.model, r.provider, r.upstream_dialect, r.client_dialect) for r in recs} == {
        (MODEL, "up", "openai_chat", "anthropic")}
    assert [r.output_tokens for r in recs[-2:]] == [40, 6]


def test_claude_code_via_anthropic_upstream_fast_path_keeps_fields_and_signatures(
        mock_upstream_factory, gateway_factory, tmp_path):
    mock = mock_upstream_factory("anthropic", check_signatures=True)
    gw = gateway_factory(_config(f'{{type: anthropic, base_url: "{mock.root_url}", api_key: test-key}}',
                                 "claude-sonnet-4-5"))
    target = claude_work_dir(tmp_path) / "hello.txt"
    thought = Thinking("The user wants a file; the Write tool does that.", chunks=2)
    call = Reply([thought, Text("Writing it now."),
                  ToolCall("Write", {"file_path": str(target), "content": FILE_TEXT}, id="toolu_e2e_write_1")])
    final = Reply([Thinking("The file exists now; report back."), Text(FINAL, chunks=2)])
    mock.handler = tool_round_trip_handler("anthropic", "Write", call, final)

    run = run_claude(gw.url, "Create hello.txt saying 'written through antiapi'.", tmp_path, model=MODEL)

    _assert_success(run)
    assert target.read_text() == FILE_TEXT
    assert mock.errors == []

    ok = [r for r in mock.requests if r.status == 200]
    before, after = _split_main(mock, anthropic_has_tool_result)
    assert [r.status for r in after] == [200]
    # Claude Code's own fields reached the upstream untouched; only the model was rewritten
    for req in ok:
        body = req.json
        assert body["model"] == "claude-sonnet-4-5"
        for key in ("context_management", "output_config", "thinking", "metadata", "system", "tools"):
            assert key in body, (key, sorted(body))
        assert body["thinking"]["type"] == "adaptive"
        assert "claude-code-20250219" in req.headers.get("anthropic-beta", "")
        assert req.query.get("beta") in (None, "true")
    # the thinking block (with the mock's own signature, checked by the mock) and the tool call came back
    msgs = after[0].json["messages"]
    assistant, result = msgs[-2], msgs[-1]
    assert assistant["role"] == "assistant"
    assert [b["type"] for b in assistant["content"]] == ["thinking", "text", "tool_use"]
    assert assistant["content"][0]["signature"] == thought.sig
    assert assistant["content"][2]["id"] == "toolu_e2e_write_1"
    [block] = [b for b in result["content"] if b.get("type") == "tool_result"]
    assert block["tool_use_id"] == "toolu_e2e_write_1"
    assert str(target) in json.dumps(block["content"])

    # Claude Code 2.1.x first tries mid-conversation `role: system` turns; an upstream that rejects them
    # answers 400 and Claude Code retries without. antiapi must pass that 400 through verbatim (same
    # dialect) for Claude Code to recognise it. Any rejected request must be exactly that case.
    for req in mock.requests:
        if req.status != 200:
            assert req.status == 400
            assert any(m.get("role") == "system" for m in req.json["messages"]), req.json["messages"]
    recs = gw.records(at_least=len(mock.requests))
    assert len(recs) == len(mock.requests)
    assert [r.status for r in recs] == [r.status for r in mock.requests]
    for rec in recs:
        assert (rec.model, rec.upstream_dialect, rec.upstream_model) == (MODEL, "anthropic", "claude-sonnet-4-5")
        if rec.status == 400:
            assert "role" in (rec.error or ""), rec


def test_claude_code_via_gemini_upstream_tool_round_trip(mock_upstream_factory, gateway_factory, tmp_path):
    mock = mock_upstream_factory("gemini", check_signatures=True)
    gw = gateway_factory(_config(f'{{type: gemini, base_url: "{mock.root_url}", api_key: test-key}}',
                                 "gemini-2.5-pro"))
    target = claude_work_dir(tmp_path) / "hello.txt"
    call = Reply([Thinking("A Write call creates it."), Text("Writing."),
                  ToolCall("Write", {"file_path": str(target), "content": FILE_TEXT})])
    mock.handler = tool_round_trip_handler("gemini", "Write", call, Reply([Text(FINAL)]))

    run = run_claude(gw.url, "Create hello.txt saying 'written through antiapi'.", tmp_path, model=MODEL)

    _assert_success(run)
    assert target.read_text() == FILE_TEXT
    assert mock.errors == []
    before, after = _split_main(mock, gemini_has_tool_result)
    assert len(before) == 1 and len(after) == 1
    assert before[0].path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    contents = after[0].json["contents"]
    model_turn, result_turn = contents[-2], contents[-1]
    assert model_turn["role"] == "model"
    [fc] = [p for p in model_turn["parts"] if "functionCall" in p]
    assert fc["functionCall"]["name"] == "Write"
    assert fc["functionCall"]["args"] == {"file_path": str(target), "content": FILE_TEXT}
    # Gemini requires the call's thoughtSignature back; the mock checks it is the one it issued
    assert fc.get("thoughtSignature")
    [fr] = [p["functionResponse"] for p in result_turn["parts"] if "functionResponse" in p]
    assert fr["name"] == "Write" and str(target) in json.dumps(fr["response"])

    recs = gw.records(at_least=len(mock.requests))
    assert [r.status for r in recs] == [200] * len(mock.requests)
    assert {r.upstream_dialect for r in recs} == {"gemini"}


def test_claude_code_plain_answer_via_gemini(mock_upstream_factory, gateway_factory, tmp_path):
    mock = mock_upstream_factory("gemini")
    gw = gateway_factory(_config(f'{{type: gemini, base_url: "{mock.root_url}", api_key: test-key}}',
                                 "gemini-2.5-flash"))
    mock.default = Reply([Text("Paris is the capital of France.", chunks=4)])

    run = run_claude(gw.url, "What is the capital of France?", tmp_path, model=MODEL, allowed_tools=None)

    _assert_success(run, "Paris is the capital of France.")
    assert mock.errors == []
    assert all(r.status == 200 for r in mock.requests)
    body = mock.requests[-1].json
    assert "What is the capital of France?" in json.dumps(body["contents"])
    assert "Claude" in json.dumps(body["systemInstruction"])


def test_claude_code_parallel_tool_calls_via_openai_chat(mock_upstream_factory, gateway_factory, tmp_path):
    """Two interleaved streamed tool calls in one turn: both run, both results go back as two
    consecutive ``tool`` messages (one per call id) right after the assistant message."""
    mock = mock_upstream_factory("openai_chat")
    gw = gateway_factory(_config(f'{{type: openai, base_url: "{mock.root_url}/v1", api_key: test-key}}', "gpt-4.1"))
    work = claude_work_dir(tmp_path)
    a, b = work / "a.txt", work / "b.txt"
    call = Reply([ToolCall("Write", {"file_path": str(a), "content": "first"}, id="call_par_a", chunks=5),
                  ToolCall("Write", {"file_path": str(b), "content": "second"}, id="call_par_b", chunks=5)],
                 parallel_interleaved=True)
    mock.handler = tool_round_trip_handler("openai_chat", "Write", call, "Both files written.")

    run = run_claude(gw.url, "Write a.txt and b.txt.", tmp_path, model=MODEL)

    _assert_success(run, "Both files written.")
    assert (a.read_text(), b.read_text()) == ("first", "second")
    _, after = _split_main(mock, chat_has_tool_result)
    assert len(after) == 1
    msgs = after[0].json["messages"]
    assistant = msgs[-3]
    assert [tc["id"] for tc in assistant["tool_calls"]] == ["call_par_a", "call_par_b"]
    assert [(m["role"], m["tool_call_id"]) for m in msgs[-2:]] == [("tool", "call_par_a"), ("tool", "call_par_b")]
    assert str(a) in msgs[-2]["content"] and str(b) in msgs[-1]["content"]
    assert all(r.status == 200 for r in gw.records(at_least=len(mock.requests)))


def test_claude_code_via_openai_responses_reasoning_round_trip(mock_upstream_factory, gateway_factory, tmp_path):
    """Claude Code on a Responses reasoning model: its adaptive thinking becomes ``reasoning``, the
    model's encrypted reasoning travels to Claude Code as a thinking signature and comes back as the
    same ``encrypted_content`` (the mock rejects any it did not issue)."""
    mock = mock_upstream_factory("openai_responses", check_signatures=True)
    gw = gateway_factory(_config(
        f'{{type: openai, api: responses, base_url: "{mock.root_url}/v1", api_key: test-key, reasoning_models: [gpt-5.2]}}',
        "gpt-5.2"))
    target = claude_work_dir(tmp_path) / "hello.txt"
    thought = Thinking("Use Write for this.")
    call = Reply([thought, Text("Writing."), ToolCall("Write", {"file_path": str(target), "content": FILE_TEXT})])
    mock.handler = tool_round_trip_handler("openai_responses", "Write", call, Reply([Text(FINAL)]))

    run = run_claude(gw.url, "Create hello.txt saying 'written through antiapi'.", tmp_path, model=MODEL)

    _assert_success(run)
    assert target.read_text() == FILE_TEXT
    assert mock.errors == [] and all(r.status == 200 for r in mock.requests)
    [second] = [r.json for r in mock.requests if responses_has_tool_result(r.json)]
    assert second["reasoning"]["effort"] in ("medium", "high", "xhigh")
    assert second["include"] == ["reasoning.encrypted_content"]
    kinds = [i.get("type") for i in second["input"]]
    r_at = kinds.index("reasoning")
    assert kinds[r_at:] == ["reasoning", "message", "function_call", "function_call_output"]
    assert second["input"][r_at]["encrypted_content"] == thought.sig
    fc, out = second["input"][-2], second["input"][-1]
    assert fc["name"] == "Write" and out["call_id"] == fc["call_id"] and str(target) in out["output"]


def test_claude_code_gemini_function_call_signature_is_replayed(mock_upstream_factory, gateway_factory, tmp_path):
    mock = mock_upstream_factory("gemini", check_signatures=True)
    gw = gateway_factory(_config(f'{{type: gemini, base_url: "{mock.root_url}", api_key: test-key}}',
                                 "gemini-2.5-pro"))
    target = claude_work_dir(tmp_path) / "hello.txt"
    call = Reply([Thinking("A Write call creates it."),
                  ToolCall("Write", {"file_path": str(target), "content": FILE_TEXT})])
    mock.handler = tool_round_trip_handler("gemini", "Write", call, Reply([Text(FINAL)]))

    run = run_claude(gw.url, "Create hello.txt.", tmp_path, model=MODEL)

    _assert_success(run)
    _, after = _split_main(mock, gemini_has_tool_result)
    [fc] = [p for p in after[0].json["contents"][-2]["parts"] if "functionCall" in p]
    assert fc["thoughtSignature"] in mock.issued_signatures["gemini"]

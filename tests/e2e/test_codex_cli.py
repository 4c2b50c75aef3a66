"""The real Codex CLI (npm, pinned) -> antiapi -> faithful mock upstreams.

Codex speaks only the OpenAI Responses API (``POST /v1/responses``, streamed) and runs shell commands
through its ``exec_command`` function tool. antiapi translates that to Anthropic Messages or Chat
Completions upstreams; the mocks validate requests the way the real APIs do (Anthropic: roles
alternate, every tool_result answers the preceding tool_use).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.cli_helpers import (
    anthropic_has_tool_result,
    codex_work_dir,
    run_codex,
    tool_names,
    tool_round_trip_handler,
)
from tests.mocks import Error, Reply, Stall, Text, ToolCall, Usage

pytestmark = [pytest.mark.e2e, pytest.mark.cli]

MODEL = "e2e-codex-model"
CMD = "echo antiapi-tool-ok > out.txt"


def _served(rec) -> bool:
    """The record of a request whose answer Codex received in full (Codex hangs up as soon as it
    reads ``response.completed``; that is a complete answer, not a disconnect)."""
    return rec.status == 200


def _assert_ok(run, final: str) -> None:
    assert not run.timed_out, run.describe()
    assert run.returncode == 0, run.describe()
    # `codex exec` prints only the final agent message on stdout (progress goes to stderr)
    assert run.stdout.strip() == final, run.describe()
    assert run.extra["last_message"].strip() == final


def test_codex_via_anthropic_upstream_runs_a_command(mock_upstream_factory, gateway_factory, tmp_path):
    mock = mock_upstream_factory("anthropic")
    gw = gateway_factory(f"""
providers:
  claude: {{type: anthropic, base_url: "{mock.root_url}", api_key: test-key}}
models:
  - {{name: {MODEL}, provider: claude, model: claude-sonnet-4-5}}
""")
    call = Reply([Text("Running it."), ToolCall("exec_command", {"cmd": CMD}, id="toolu_e2e_exec_1", chunks=3)],
                 usage=Usage(input_tokens=700, output_tokens=30))
    mock.handler = tool_round_trip_handler("anthropic", "exec_command", call, Reply([Text("All done")]))

    run = run_codex(gw.url, "Write antiapi-tool-ok into out.txt using the shell.", tmp_path, model=MODEL)

    _assert_ok(run, "All done")
    out = codex_work_dir(tmp_path) / "out.txt"
    assert out.read_text() == "antiapi-tool-ok\n"
    assert mock.errors == []
    assert [r.status for r in mock.requests] == [200, 200], [(r.status, r.body[:300]) for r in mock.requests]

    first, second = (r.json for r in mock.requests)
    assert first["model"] == "claude-sonnet-4-5" and first["stream"] is True
    assert "exec_command" in tool_names(first)
    [spec] = [t for t in first["tools"] if t["name"] == "exec_command"]
    assert "cmd" in spec["input_schema"]["properties"]
    # Codex's instructions went to the Anthropic system prompt
    assert "Codex" in json.dumps(first["system"])
    # Responses-only tool kinds (web_search builtin, namespace) are not sent as fake functions
    assert all("input_schema" in t for t in first["tools"])
    assert not anthropic_has_tool_result(first)

    msgs = second["messages"]
    assert [m["role"] for m in msgs[-3:]] == ["user", "assistant", "user"]
    assistant, result = msgs[-2], msgs[-1]
    assert [b["type"] for b in assistant["content"]] == ["text", "tool_use"]
    tool_use = assistant["content"][1]
    assert (tool_use["id"], tool_use["name"], tool_use["input"]) == ("toolu_e2e_exec_1", "exec_command", {"cmd": CMD})
    [block] = [b for b in result["content"] if b["type"] == "tool_result"]
    assert block["tool_use_id"] == "toolu_e2e_exec_1"
    assert "Process exited with code 0" in json.dumps(block["content"])

    recs = gw.records(at_least=2)
    assert len(recs) == 2 and all(_served(r) for r in recs), recs
    assert [(r.client_dialect, r.upstream_dialect, r.model) for r in recs] == [
        ("openai_responses", "anthropic", MODEL)] * 2
    assert recs[0].output_tokens == 30


def test_codex_via_openai_chat_upstream_plain_answer(mock_upstream_factory, gateway_factory, tmp_path):
    mock = mock_upstream_factory("openai_chat")
    gw = gateway_factory(f"""
providers:
  chat: {{type: openai, base_url: "{mock.root_url}/v1", api_key: test-key}}
models:
  - {{name: {MODEL}, provider: chat, model: gpt-4.1}}
""")
    answer = "Hello from a Chat Completions upstream."
    mock.default = Reply([Text(answer, chunks=5)], usage=Usage(input_tokens=500, output_tokens=9))

    run = run_codex(gw.url, "Say hello.", tmp_path, model=MODEL)

    _assert_ok(run, answer)
    assert mock.errors == []
    assert [r.status for r in mock.requests] == [200]
    body = mock.requests[0].json
    assert body["model"] == "gpt-4.1" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["role"] == "system" and "Codex" in body["messages"][0]["content"]
    assert body["messages"][-1] == {"role": "user", "content": "Say hello."}
    assert "exec_command" in tool_names(body)
    assert all(t["type"] == "function" for t in body["tools"])
    [rec] = gw.records()
    assert _served(rec) and (rec.upstream_dialect, rec.output_tokens) == ("openai_chat", 9), rec


def test_codex_gets_a_prompt_rate_limit_error_when_no_deployment_is_left(
        mock_upstream_factory, gateway_factory, tmp_path):
    mock = mock_upstream_factory("openai_chat")
    gw = gateway_factory(f"""
providers:
  chat: {{type: openai, base_url: "{mock.root_url}/v1", api_key: test-key}}
models:
  - {{name: {MODEL}, provider: chat, model: gpt-4.1}}
""")
    mock.default = Error.rate_limit(retry_after=1)

    # Codex's default policy: up to 5 stream retries, each waiting the retry-after it was given.
    run = run_codex(gw.url, "Say hello.", tmp_path, model=MODEL, timeout=60)

    assert not run.timed_out, run.describe()
    assert run.returncode != 0, run.describe()
    assert run.seconds < 30, run.describe()
    assert "429 Too Many Requests" in run.stderr, run.describe()
    assert run.stdout.strip() == ""
    statuses = [r.status for r in mock.requests]
    assert statuses and set(statuses) == {429}
    # antiapi passed the upstream's retry-after on: Codex waited ~1 s between its retries
    times = [r.received_at for r in mock.requests]
    assert all(b - a >= 0.8 for a, b in zip(times, times[1:])), times
    recs = gw.records(at_least=2)
    assert len(recs) >= 2 and all(r.status == 429 for r in recs), recs
    assert all("Rate limit" in (r.error or "") for r in recs)


def test_codex_rate_limit_errors_when_retries_disabled_exit_at_once(mock_upstream_factory, gateway_factory, tmp_path):
    mock = mock_upstream_factory("openai_chat")
    gw = gateway_factory(f"""
providers:
  chat: {{type: openai, base_url: "{mock.root_url}/v1", api_key: test-key}}
models:
  - {{name: {MODEL}, provider: chat, model: gpt-4.1}}
""")
    mock.default = Error.rate_limit(retry_after=30)

    run = run_codex(gw.url, "Say hello.", tmp_path, model=MODEL, retries=0, timeout=60)

    assert not run.timed_out and run.returncode != 0, run.describe()
    assert run.seconds < 15, run.describe()
    assert "429 Too Many Requests" in run.stderr, run.describe()
    assert [r.status for r in mock.requests] == [429]
    [rec] = gw.records()
    assert rec.status == 429 and rec.attempts == ["chat/gpt-4.1: 429 rate_limit"]


def test_codex_fails_over_to_the_second_deployment_on_429(mock_upstream_factory, gateway_factory, tmp_path):
    limited = mock_upstream_factory("openai_chat")
    healthy = mock_upstream_factory("anthropic")
    gw = gateway_factory(f"""
providers:
  first: {{type: openai, base_url: "{limited.root_url}/v1", api_key: test-key}}
  second: {{type: anthropic, base_url: "{healthy.root_url}", api_key: test-key}}
models:
  - {{name: {MODEL}, provider: first, model: gpt-4.1}}
  - {{name: {MODEL}, provider: second, model: claude-sonnet-4-5}}
""")
    limited.default = Error.rate_limit(retry_after=30)
    healthy.default = Reply([Text("Answer from the second deployment.")])

    run = run_codex(gw.url, "Say hello.", tmp_path / "run1", model=MODEL)

    _assert_ok(run, "Answer from the second deployment.")
    assert [r.status for r in limited.requests] == [429]
    assert [r.status for r in healthy.requests] == [200]
    [rec] = gw.records()
    assert _served(rec) and (rec.provider, rec.upstream_model) == ("second", "claude-sonnet-4-5"), rec
    assert rec.attempts == ["first/gpt-4.1: 429 rate_limit"]



def test_codex_next_run_skips_the_deployment_cooling_down_after_429(mock_upstream_factory, gateway_factory, tmp_path):
    limited = mock_upstream_factory("openai_chat")
    healthy = mock_upstream_factory("anthropic")
    gw = gateway_factory(f"""
providers:
  first: {{type: openai, base_url: "{limited.root_url}/v1", api_key: test-key}}
  second: {{type: anthropic, base_url: "{healthy.root_url}", api_key: test-key}}
models:
  - {{name: {MODEL}, provider: first, model: gpt-4.1}}
  - {{name: {MODEL}, provider: second, model: claude-sonnet-4-5}}
""")
    limited.default = Error.rate_limit(retry_after=30)
    healthy.default = Reply([Text("Served.")])
    for i in range(2):
        run = run_codex(gw.url, "Say hello.", tmp_path / f"run{i}", model=MODEL)
        _assert_ok(run, "Served.")
    # the second run comes well inside the 30 s retry-after: the limited deployment must be skipped
    assert [r.status for r in limited.requests] == [429]
    assert [r.status for r in healthy.requests] == [200, 200]
    assert gw.records(at_least=2)[-1].attempts == []


_UPSTREAM_BLOCKS = {
    "chat": "{{type: openai, base_url: \"{root}/v1\", api_key: test-key}}",
    "responses": "{{type: openai, api: responses, base_url: \"{root}/v1\", api_key: test-key}}",
    "anthropic": "{{type: anthropic, base_url: \"{root}\", api_key: test-key}}",
}


@pytest.mark.parametrize("upstream", list(_UPSTREAM_BLOCKS))
def test_codex_completed_answer_is_logged_200_even_if_upstream_lingers(
        mock_upstream_factory, gateway_factory, tmp_path, upstream):
    mock = mock_upstream_factory("all")
    gw = gateway_factory(f"""
providers:
  up: {_UPSTREAM_BLOCKS[upstream].format(root=mock.root_url)}
models:
  - {{name: {MODEL}, provider: up, model: gpt-4.1}}
""")
    # the upstream sends its whole answer (terminal event included), then keeps the body open 3 s
    mock.default = Stall(3, after_events=10**6, reply=Reply([Text("Complete answer.")], usage=Usage(output_tokens=3)))

    run = run_codex(gw.url, "Say hello.", tmp_path, model=MODEL)

    _assert_ok(run, "Complete answer.")
    assert run.seconds < 3  # Codex did not wait for the upstream's end of body
    [rec] = gw.records(timeout=5)
    assert (rec.status, rec.error, rec.output_tokens) == (200, None, 3)

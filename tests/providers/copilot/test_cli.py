"""The real Claude Code and Codex CLIs -> antiapi -> the GitHub/Copilot mock (signed-in account)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.cli_helpers import (
    chat_has_tool_result,
    claude_work_dir,
    codex_work_dir,
    run_claude,
    run_codex,
    tool_names,
    tool_round_trip_handler,
)
from tests.mocks import Reply, Text, ToolCall, Usage
from tests.providers.copilot.conftest import sign_in, template_config

pytestmark = [pytest.mark.e2e, pytest.mark.cli]

FILE_TEXT = "written through copilot"


def test_claude_code_tool_round_trip_on_copilot(copilot_mock, gateway_factory, tmp_path):
    gw = gateway_factory(template_config(copilot_mock), prepare=sign_in(copilot_mock, "alice"))
    target = claude_work_dir(tmp_path) / "hello.txt"
    call = Reply([Text("Writing the file."), ToolCall("Write", {"file_path": str(target), "content": FILE_TEXT},
                                                      id="call_cp_write_1", chunks=4)],
                 usage=Usage(input_tokens=900, output_tokens=40))
    copilot_mock.handler = tool_round_trip_handler("openai_chat", "Write", call, Reply([Text("Done: file written", chunks=2)]))

    run = run_claude(gw.url, "Create hello.txt saying 'written through copilot'.", tmp_path, model="claude-sonnet-4-5")

    assert not run.timed_out and run.returncode == 0, run.describe()
    out = run.json
    assert (out["is_error"], out["result"]) == (False, "Done: file written"), run.describe()
    assert target.read_text() == FILE_TEXT
    assert copilot_mock.errors == []
    main = [r for r in copilot_mock.requests if isinstance(r.json, dict) and "Write" in tool_names(r.json)]
    before = [r for r in main if not chat_has_tool_result(r.json)]
    after = [r for r in main if chat_has_tool_result(r.json)]
    assert len(before) == 1 and len(after) == 1
    assert before[0].path == after[0].path == "/api-individual/chat/completions"
    assert before[0].json["model"] == "claude-sonnet-4.5" and before[0].json["stream"] is True
    # the question is a premium request; the tool-result turn is the agent's continuation (free)
    assert (before[0].headers["x-initiator"], after[0].headers["x-initiator"]) == ("user", "agent")
    user_turns = [r for r in copilot_mock.requests if r.path.endswith("/chat/completions") and r.status == 200
                  and r.headers["x-initiator"] == "user"]
    assert copilot_mock.accounts["alice"].premium_used == len(user_turns)
    tool_msg = after[0].json["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_cp_write_1"
    recs = gw.records(at_least=2)
    assert {(r.provider, r.upstream_dialect, r.client_dialect) for r in recs} == {("copilot:alice", "openai_chat", "anthropic")}


def test_codex_cli_runs_a_command_through_copilot(copilot_mock, gateway_factory, tmp_path):
    gw = gateway_factory(template_config(copilot_mock), prepare=sign_in(copilot_mock, "alice"))
    cmd = "echo copilot-tool-ok > out.txt"
    call = Reply([Text("Running it."), ToolCall("exec_command", {"cmd": cmd}, id="call_cp_exec_1", chunks=3)])
    copilot_mock.handler = tool_round_trip_handler("openai_chat", "exec_command", call, Reply([Text("All done")]))

    run = run_codex(gw.url, "Write copilot-tool-ok into out.txt using the shell.", tmp_path, model="gpt-4.1")

    assert not run.timed_out and run.returncode == 0, run.describe()
    assert run.stdout.strip() == "All done", run.describe()
    assert (codex_work_dir(tmp_path) / "out.txt").read_text() == "copilot-tool-ok\n"
    assert copilot_mock.errors == []
    posts = [r for r in copilot_mock.requests if r.path.endswith("/chat/completions")]
    assert [r.status for r in posts] == [200, 200], [(r.status, r.body[:300]) for r in posts]
    first, second = posts
    assert first.json["model"] == "gpt-4.1" and first.headers["x-initiator"] == "user"
    assert "exec_command" in tool_names(first.json)
    assert second.headers["x-initiator"] == "agent"
    result = second.json["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == "call_cp_exec_1"
    assert "Process exited with code 0" in json.dumps(result["content"])
    recs = gw.records(at_least=2)
    assert [(r.status, r.client_dialect, r.upstream_dialect, r.provider) for r in recs] == [
        (200, "openai_responses", "openai_chat", "copilot:alice")] * 2

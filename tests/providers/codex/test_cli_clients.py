"""The real Codex CLI and Claude Code CLI -> antiapi -> the Codex backend mock, each running a real
tool call (a shell command / a file write) through a signed-in ChatGPT account."""

from __future__ import annotations

import json

import pytest

from antiapi.accounts import CredentialStore
from tests.e2e.cli_helpers import claude_work_dir, codex_work_dir, run_claude, run_codex, tool_names
from tests.mocks import Reply, Text, Thinking, ToolCall, Usage
from tests.providers.codex.conftest import A, signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.cli]


def _has_output(body: dict) -> bool:
    return any(isinstance(i, dict) and i.get("type") in ("function_call_output", "custom_tool_call_output")
               for i in body.get("input") or [])


def _handler(tool: str, call: Reply, final: Reply, other: Reply):
    def handle(req):
        body = req.json
        if _has_output(body):
            return final
        if tool in tool_names(body):
            return call
        return other

    return handle


def _main_turns(mock, tool: str) -> list:
    return [r for r in mock.responses_requests() if isinstance(r.json, dict) and tool in tool_names(r.json)]


def test_codex_cli_runs_a_command_through_a_chatgpt_account(codex_mock, gateway_factory, tmp_path):
    gw = gateway_factory("providers:\n" + codex_mock.provider_yaml("codex"), prepare=signed_in(codex_mock, A))
    stored = CredentialStore(gw.data_dir).load("codex", A)
    cmd = "echo codex-via-antiapi > out.txt"
    call = Reply([Thinking("I should run the command."), Text("Running it."),
                  ToolCall("exec_command", {"cmd": cmd}, id="call_cli_1", chunks=3)],
                 usage=Usage(input_tokens=900, output_tokens=40))
    codex_mock.handler = _handler("exec_command", call, Reply([Text("All done")]), Reply([Text("OK")]))

    run = run_codex(gw.url, "Write codex-via-antiapi into out.txt using the shell.", tmp_path, model="gpt-5.5-high")

    assert not run.timed_out and run.returncode == 0, run.describe()
    assert run.stdout.strip() == "All done", run.describe()
    assert (codex_work_dir(tmp_path) / "out.txt").read_text() == "codex-via-antiapi\n"
    assert codex_mock.errors == []
    main = _main_turns(codex_mock, "exec_command")
    assert [r.status for r in main] == [200, 200], [(r.status, r.body[:400]) for r in main]
    first, second = (r.json for r in main)
    for r in main:
        assert r.headers["authorization"] == f"Bearer {stored['access_token']}"
        assert r.headers["chatgpt-account-id"] == stored["account_id"]
        assert r.headers["session_id"] == r.json["prompt_cache_key"]
    assert first["model"] == "gpt-5.5" and first["reasoning"]["effort"] == "high"   # alias -> model + effort
    assert first["store"] is False and first["stream"] is True and first["instructions"] == ""
    # Codex's own (long) instructions travel as a developer message
    assert first["input"][0]["role"] == "developer" and "Codex" in json.dumps(first["input"][0])
    [fc] = [i for i in second["input"] if i.get("type") == "function_call"]
    [out] = [i for i in second["input"] if i.get("type") == "function_call_output"]
    assert (fc["name"], json.loads(fc["arguments"])) == ("exec_command", {"cmd": cmd})
    assert out["call_id"] == fc["call_id"] == "call_cli_1"
    [rs] = [i for i in second["input"] if i.get("type") == "reasoning"]
    assert rs["encrypted_content"] in codex_mock.issued_signatures
    # Codex CLI's own prompt_cache_key is kept across its turns
    assert first["prompt_cache_key"] == second["prompt_cache_key"]


def test_claude_code_writes_a_file_through_a_chatgpt_account(codex_mock, gateway_factory, tmp_path):
    model = "claude-opus-5-5"
    config = ("providers:\n" + codex_mock.provider_yaml("chatgpt", account=A)
              + f"models:\n  - {{name: {model}, provider: chatgpt, model: gpt-5.5}}\n")
    gw = gateway_factory(config, prepare=signed_in(codex_mock, A))
    target = claude_work_dir(tmp_path) / "hello.txt"
    call = Reply([Thinking("Write the file."), Text("I'll write the file."),
                  ToolCall("Write", {"file_path": str(target), "content": "written via codex"}, id="call_cc_1", chunks=4)],
                 usage=Usage(input_tokens=1200, output_tokens=50))
    codex_mock.handler = _handler("Write", call, Reply([Text("Done: file written")]), Reply([Text("OK")]))

    run = run_claude(gw.url, "Create hello.txt saying 'written via codex'.", tmp_path, model=model)

    assert not run.timed_out and run.returncode == 0, run.describe()
    out = run.json
    assert out["is_error"] is False and out["result"] == "Done: file written", run.describe()
    assert target.read_text() == "written via codex"
    assert codex_mock.errors == []
    main = _main_turns(codex_mock, "Write")
    assert [r.status for r in main] == [200, 200], [(r.status, r.body[:400]) for r in main]
    first, second = (r.json for r in main)
    assert first["model"] == "gpt-5.5" and first["store"] is False
    assert first["input"][0]["role"] == "developer"            # Claude Code's system prompt
    [fc] = [i for i in second["input"] if i.get("type") == "function_call"]
    [res] = [i for i in second["input"] if i.get("type") == "function_call_output"]
    assert fc["name"] == "Write" and res["call_id"] == fc["call_id"]
    # Claude Code's thinking (from the codex reasoning item) came back as a valid reasoning item
    [rs] = [i for i in second["input"] if i.get("type") == "reasoning"]
    assert rs["encrypted_content"] in codex_mock.issued_signatures
    assert first["prompt_cache_key"] == second["prompt_cache_key"]
    recs = [r for r in gw.records(at_least=2) if r.model == model]
    assert {(r.status, r.provider) for r in recs} == {(200, "chatgpt")}

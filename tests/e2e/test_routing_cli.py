"""The real Codex CLI and Claude Code through flows: failover across providers, cooldown across
runs, and one conversation kept on one account (session affinity)."""

from __future__ import annotations

import pytest

from tests.e2e.cli_helpers import (
    anthropic_has_tool_result,
    claude_work_dir,
    codex_work_dir,
    run_claude,
    run_codex,
    tool_names,
    tool_round_trip_handler,
)
from tests.mocks import Error, Reply, Text, Thinking, ToolCall, Usage

pytestmark = [pytest.mark.e2e, pytest.mark.cli]

CMD = "echo antiapi-flow-ok > out.txt"


def test_codex_through_a_flow_fails_over_across_providers_and_skips_the_cooling_entry_next_run(
        mock_upstream_factory, gateway_factory, tmp_path):
    limited = mock_upstream_factory("openai_chat")
    healthy = mock_upstream_factory("anthropic")
    gw = gateway_factory(f"""
providers:
  official: {{type: openai, base_url: "{limited.root_url}/v1", api_key: test-key}}
  claude: {{type: anthropic, base_url: "{healthy.root_url}", api_key: test-key}}
flows:
  fast:
    - {{provider: official, model: gpt-4.1}}
    - {{provider: anthropic, model: claude-flow-model}}
""")
    limited.default = Error.rate_limit(retry_after=60)
    call = Reply([Text("Running it."), ToolCall("exec_command", {"cmd": CMD}, id="toolu_flow_1", chunks=2)],
                 usage=Usage(input_tokens=600, output_tokens=20))
    healthy.handler = tool_round_trip_handler("anthropic", "exec_command", call, Reply([Text("Flow done")]))

    run = run_codex(gw.url, "Write antiapi-flow-ok into out.txt using the shell.", tmp_path / "r1", model="fast")

    assert not run.timed_out and run.returncode == 0, run.describe()
    assert run.stdout.strip() == "Flow done", run.describe()
    assert (codex_work_dir(tmp_path / "r1") / "out.txt").read_text() == "antiapi-flow-ok\n"
    assert [r.status for r in limited.requests] == [429]
    assert [r.status for r in healthy.requests] == [200, 200]
    assert all(r.json["model"] == "claude-flow-model" for r in healthy.requests)
    first, second = gw.records(at_least=2)
    assert first.attempts == ["official/gpt-4.1: 429 rate_limit"] and first.provider == "claude"
    # the conversation stays where it moved (session affinity: Codex's session id / prompt_cache_key)
    assert second.attempts == [] and second.route == ["claude/claude-flow-model: served"]
    assert anthropic_has_tool_result(healthy.requests[1].json)

    # a second run comes inside the retry-after: the limited entry is not even asked
    healthy.handler = None
    healthy.default = Reply([Text("Second run via the flow.")])
    run2 = run_codex(gw.url, "Say hello.", tmp_path / "r2", model="route:fast")
    assert not run2.timed_out and run2.returncode == 0, run2.describe()
    assert run2.stdout.strip() == "Second run via the flow."
    assert [r.status for r in limited.requests] == [429]
    third = gw.records(at_least=3)[-1]
    assert third.provider == "claude" and third.route[0].startswith("official/gpt-4.1: skipped (cooling down for ")
    assert "429 rate_limit" in third.route[0]


def test_claude_code_through_a_round_robin_flow_keeps_its_session_on_one_account(
        mock_upstream_factory, gateway_factory, tmp_path):
    mocks = [mock_upstream_factory("anthropic"), mock_upstream_factory("anthropic")]
    gw = gateway_factory(f"""
providers:
  acct-a: {{type: anthropic, base_url: "{mocks[0].root_url}", api_key: test-key}}
  acct-b: {{type: anthropic, base_url: "{mocks[1].root_url}", api_key: test-key}}
flows:
  coding:
    strategy: round_robin
    entries: [{{provider: anthropic, model: claude-upstream}}]
routing:
  background_model: route:coding
""")
    target = claude_work_dir(tmp_path) / "flow.txt"
    call = Reply([Thinking("Use the Write tool."), Text("Writing it."),
                  ToolCall("Write", {"file_path": str(target), "content": "via a flow"}, id="toolu_flow_cc_1")])
    final = Reply([Thinking("Written."), Text("Done via flow")])
    for m in mocks:
        m.handler = tool_round_trip_handler("anthropic", "Write", call, final)

    run = run_claude(gw.url, "Write 'via a flow' into flow.txt.", tmp_path, model="route:coding")

    assert not run.timed_out and run.returncode == 0, run.describe()
    out = run.json
    assert out["is_error"] is False and out["result"] == "Done via flow", run.describe()
    assert target.read_text() == "via a flow"
    main = [(i, r) for i, m in enumerate(mocks) for r in m.requests if "Write" in tool_names(r.json or {})]
    assert len([r for _, r in main if r.status == 200]) >= 2
    # round robin alone would alternate: the session header kept the conversation on one account
    assert len({i for i, _ in main}) == 1, [(i, r.path) for i, r in main]
    assert all(r.json["model"] == "claude-upstream" for _, r in main)
    recs = gw.records(at_least=len(main))
    assert {r.provider for r in recs if r.status == 200 and r.model == "route:coding"} == {f"acct-{'ab'[main[0][0]]}"}

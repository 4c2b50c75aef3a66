"""Pure view-model functions (antiapi.tui.viewmodels) and the shared contract helpers."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from antiapi.tui import viewmodels as vm
from antiapi.wire import admin as w
from tests.tui.fakes import T0, FakeBackend, sample_records

UTC = dt.timezone.utc


@pytest.mark.parametrize(("secs", "text"), [
    (0, "0s"), (0.2, "1s"), (59, "59s"), (60, "1m 00s"), (125, "2m 05s"), (3600, "1h 00m"), (7500, "2h 05m"),
    (86400, "1d 00h"), (4 * 86400 + 3 * 3600, "4d 03h"), (-5, "0s"),
])
def test_format_duration(secs, text):
    assert vm.format_duration(secs) == text


def test_numbers():
    assert [vm.format_ms(x) for x in (None, 95, 1830)] == ["—", "95ms", "1.83s"]
    assert [vm.format_count(x) for x in (None, 310, 1200, 2_500_000)] == ["—", "310", "1.2k", "2.5M"]


def test_status_line_states():
    st = w.Status(version="0.1.0", url="http://127.0.0.1:8964", started_at=0, uptime_s=7380, requests_per_min=12.4, errors_per_min=1)
    assert vm.status_line(st, connected=True) == "● live │ http://127.0.0.1:8964 │ up 2h 03m │ 12 req/min │ 1 err/min │ antiapi 0.1.0"
    assert vm.status_line(st, connected=False, error="lost the event stream").startswith("✗ lost the event stream │ http://")
    assert vm.status_line(None, connected=False, url="http://x") == "… connecting │ http://x"
    assert vm.status_line(None, connected=False, error="401 refused") == "✗ 401 refused"


def test_quota_row_uses_the_most_used_window_and_shows_cooldowns():
    b = FakeBackend()
    codex = vm.quota_row(b.quota["codex:me@example.com"], T0)
    assert (codex.fraction, codex.percent_text, codex.level) == (0.42, "42%", "ok")
    assert codex.reset_text == "resets in 2h 05m"
    assert codex.windows_text == "5h 42% · weekly 18%"
    assert codex.provider == "codex · plus" and codex.cooldown_text == ""
    cop = vm.quota_row(b.quota["copilot:octo"], T0)
    assert (cop.level, cop.status, cop.remaining_text) == ("high", "cooling down", "27/300 left")
    assert cop.cooldown_text == "cooling down 30s (429 rate_limit)"
    # the cooldown is over 31 s later
    assert vm.quota_row(b.quota["copilot:octo"], T0 + 31).cooldown_text == ""
    none = vm.quota_row(b.quota["openai"], T0)
    assert (none.fraction, none.percent_text, none.windows_text) == (None, "—", "")
    limited = w.AccountQuota(account="a", type="codex", limited_until=T0 + 90, used_percent=100,
                             windows=[w.QuotaWindow(name="5h", used_percent=100, resets_at=T0 + 90)])
    assert vm.quota_row(limited, T0).reset_text == "limited, resets in 1m 30s"
    off = w.AccountQuota(account="a", type="codex", enabled=False, used_percent=10)
    assert (vm.quota_row(off, T0).level, vm.quota_row(off, T0).status) == ("off", "disabled")
    warn = w.AccountQuota(account="b", type="codex", label="me@x", used_percent=75)
    assert vm.quota_row(warn, T0).level == "warn" and vm.quota_row(warn, T0).title == "b (me@x)"


@pytest.mark.parametrize(("fraction", "width", "cells"), [
    (None, 10, (0, 10)), (0.0, 10, (0, 10)), (0.001, 10, (1, 9)), (0.42, 50, (21, 29)), (1.0, 10, (10, 0)), (1.5, 4, (4, 0)),
])
def test_bar_cells(fraction, width, cells):
    assert vm.bar_cells(fraction, width) == cells


def test_request_rows_and_detail():
    ok, failed = sample_records(T0)
    row = vm.request_row(ok, UTC)
    assert row.key == "req_a1" and row.ok
    assert row.cells == ("08:52:50", "200", "claude-sonnet-4", "me@example.com", "gpt-5", "1.83s", "1.2k→310")
    assert vm.request_row(failed, UTC).cells[1:4] == ("429", "gpt-4.1", "openai")
    fields, steps = vm.request_detail(failed, UTC)
    d = dict(fields)
    assert d["Status"] == "429 failed" and d["Error"] == "rate limited by every account"
    assert d["Endpoint"] == "/v1/chat/completions (openai_chat)" and d["TTFT"] == "—"
    assert steps == ["openai/gpt-4.1: 429 rate_limit", "copilot:octo/gpt-4.1: cooling down for 30 s"]
    fields, _ = vm.request_detail(ok, UTC)
    assert dict(fields)["Account"] == "codex:me@example.com" and dict(fields)["Upstream"] == "gpt-5 via openai_responses"
    bare = w.RequestRecord(time=T0, request_id="r", status=200, provider="openai", upstream_model="m")
    assert vm.request_detail(bare, UTC)[1] == ["openai/m: served"]


def test_parse_filter():
    q = vm.parse_filter("model=gpt-4.1 account=openai status=error since=10m limit=20")
    assert (q.model, q.account, q.status, q.since, q.limit) == ("gpt-4.1", "openai", "error", -600.0, 20)
    assert vm.parse_filter("claude-sonnet-4").model == "claude-sonnet-4"
    assert vm.parse_filter("") == w.RequestQuery()
    for bad, msg in [("color=red", "unknown key"), ("status=meh", "status"), ("since=soon", "since="),
                     ("limit=0", "limit="), ("model=", "needs a value"), ('model="x', "filter:")]:
        with pytest.raises(ValueError, match=msg):
            vm.parse_filter(bad)


def test_request_matches():
    ok, failed = sample_records(T0)
    assert w.request_matches(ok, w.RequestQuery(model="GPT-5"))  # upstream model, any case
    assert not w.request_matches(ok, w.RequestQuery(status="error"))
    assert w.request_matches(failed, w.RequestQuery(status="4xx", account="openai"))
    assert not w.request_matches(failed, w.RequestQuery(since=T0))


def test_validate_chain():
    targets = ["openai", "codex", "codex:me@x"]
    assert w.validate_chain("flow", "coding", [w.Entry("codex", "gpt-5")], "ordered", targets) == []
    assert w.validate_chain("chain", "gpt-4.1", [], None, targets) == []  # Smart Switch
    assert w.validate_chain("chain", "meta/llama-3", [w.Entry("openai")], "least_used", targets) == []
    assert w.validate_chain("flow", "x", [], None) == ["a flow needs at least one entry"]
    assert w.validate_chain("flow", "route:x", [w.Entry("codex", "m")])[0].startswith("flow name 'route:x'")
    assert w.validate_chain("chain", "", [])[0] == "the chain needs a model id"
    probs = w.validate_chain("flow", "f", [w.Entry("codex", "m"), w.Entry("codex", "m"), w.Entry(" ", "m")], "fast", targets)
    assert probs == ["strategy 'fast': use one of ordered, round_robin, least_used", "entry 2: duplicates an earlier entry",
                     "entry 3: choose an account or provider type"]


def test_move_and_route_rows():
    e = [w.Entry("a"), w.Entry("b"), w.Entry("c")]
    assert vm.move(e, 0, 1) == ([w.Entry("b"), w.Entry("a"), w.Entry("c")], 1)
    assert vm.move(e, 2, 1) == (e, 2)
    assert vm.move(e, 0, -1) == (e, 0)
    assert vm.move([], 0, 1) == ([], 0)
    view = w.RoutingView(strategy="ordered", flows=[w.Flow(name="f", entries=e)], chains=[w.Chain(model="m", strategy="least_used")])
    assert vm.route_rows(view) == [("flow:f", "flow", ("flow", "f", "(ordered)", "3")),
                                   ("chain:m", "chain", ("chain", "m", "least_used", "smart"))]
    assert vm.entry_text(w.Entry("codex", "gpt-5", "me@x")) == "codex [me@x] → gpt-5"


def test_settings_patch_sends_only_changes():
    old = w.Settings(default_model="gpt-4.1", background_model="mini", background_patterns=["*haiku*"])
    same = vm.settings_patch(old, default_model="gpt-4.1", background_model="mini", background_patterns="*haiku*",
                             auto_start_tunnel=False, auto_open=False)
    assert vm.patch_is_empty(same)
    p = vm.settings_patch(old, default_model=" gpt-5 ", background_model="", background_patterns="*haiku*, *mini*",
                          auto_start_tunnel=True, auto_open=False)
    assert (p.default_model, p.background_model, p.background_patterns, p.auto_start_tunnel) == ("gpt-5", None, ["*haiku*", "*mini*"], True)
    assert p.auto_open is w.UNSET


def test_signin_lines():
    flow = w.SignInFlow(flow_id="f", provider="copilot", user_code="ABCD-1234", verification_uri="https://github.com/login/device",
                        expires_at=T0 + 600)
    assert vm.signin_lines(flow, T0) == ["Open  https://github.com/login/device", "Code  ABCD-1234",
                                         "Waiting for you to sign in… (expires in 10m 00s)"]
    done = w.SignInFlow(flow_id="f", provider="codex", status="done", label="me@x", url="https://a")
    assert vm.signin_lines(done, T0)[-1] == "✓ Signed in as me@x."
    failed = w.SignInFlow(flow_id="f", provider="codex", status="failed", error="expired")
    assert vm.signin_lines(failed, T0) == ["✗ Sign-in failed: expired"]


# ---------------------------------------------------------------------------------------- remote access


@pytest.mark.parametrize(("text", "value"), [("", None), ("-", None), (" 60 ", 60), ("2k", 2000), ("1.5m", 1_500_000),
                                             ("2,000", 2000)])
def test_parse_limit(text, value):
    assert vm.parse_limit(text, "rpm") == value


@pytest.mark.parametrize("text", ["0", "abc", "1.5", "-3", "0.0001k"])
def test_parse_limit_refuses_what_is_not_a_positive_whole_number(text):
    with pytest.raises(ValueError, match="rpm"):
        vm.parse_limit(text, "rpm")


def test_key_row_and_patch():
    k = w.ClientKeyInfo(id=4, name="ci", prefix="aa-QrStUvWx", created_at=T0 - 90000, last_used_at=T0 - 3 * 86400,
                        rpm_limit=30, tokens_per_day=2_000_000, requests_today=3, tokens_today=1500)
    assert vm.key_row(k, T0, UTC) == ("4", "ci", "aa-QrSt…", dt.datetime.fromtimestamp(T0 - 3 * 86400, UTC).strftime("%Y-%m-%d"),
                                      "3 · 1.5k", "30/min · 2.0M tok/d", "active")
    assert vm.key_row(w.ClientKeyInfo(id=1, name="x", prefix="aa-x", created_at=T0, revoked=True), T0)[3:] == (
        "never", "—", "—", "revoked")
    # only what changed is sent; empty removes a limit
    patch = vm.key_patch(k, "30", "")
    assert patch.rpm_limit is msgspec.UNSET and patch.tokens_per_day is None
    assert vm.key_patch(k, "60", "2m") == w.KeyPatch(rpm_limit=60)


def test_remote_lines_spell_out_every_state():
    tools = [w.TunnelTool(kind="cloudflared", installed=True), w.TunnelTool(kind="ngrok", install="Install ngrok from x")]
    local = vm.remote_lines(w.RemoteView(tools=tools))
    assert local[0] == ("Listening on 127.0.0.1: this machine only (others: SSH port-forward)", "")
    assert "not required" in local[1][0] and local[2][0].startswith("Tunnel: ○ stopped · tool: none chosen (t)")
    locked = vm.remote_lines(w.RemoteView(host="0.0.0.0", exposed=True, keys_required=True, provider="ngrok", tools=tools))
    assert locked[0][1] == "warn" and locked[1] == (
        "Client keys: required, but none exists: every request is refused (n: create one)", "bad")
    assert ("  Install ngrok from x", "warn") in locked  # the chosen tool is missing
    assert ("ngrok authtoken: not saved (t), or set in ngrok config", "") in locked
    running = vm.remote_lines(w.RemoteView(keys_required=True, active_keys=1, provider="cloudflared", auto_start=True, tools=tools,
                                           tunnel=w.TunnelStatus(kind="cloudflared", state="restarting", restarts=2,
                                                                 url="https://a.trycloudflare.com", error="exited (status 3)\nmore")))
    assert ("Tunnel: cloudflared ↻ restarting (restarted 2×)", "warn") in running
    assert ("  Public URL: https://a.trycloudflare.com", "warn") in running
    assert ("  exited (status 3)", "warn") in running
    failed = vm.remote_lines(w.RemoteView(tunnel=w.TunnelStatus(kind="ngrok", state="failed", error="ngrok is not installed")))
    assert ("Tunnel: ngrok ✗ failed", "bad") in failed and ("  ngrok is not installed", "bad") in failed
    stopped_auto = vm.remote_lines(w.RemoteView(provider="cloudflared", auto_start=True))
    assert any(t.endswith("starts with the server") for t, _ in stopped_auto)


def test_status_line_shows_keys_and_tunnel():
    st = w.Status(version="0.1.0", url="http://127.0.0.1:8964", started_at=0, uptime_s=60, keys_required=True,
                  tunnel_url="https://a.trycloudflare.com")
    assert vm.status_line(st, connected=True) == (
        "● live │ http://127.0.0.1:8964 │ 🔒 keys │ ⇄ https://a.trycloudflare.com │ up 1m 00s │ 0 req/min │ 0 err/min │ antiapi 0.1.0")


def test_usage_row():
    a = w.UsageAggregate(key=None, requests=3, errors=1, input_tokens=1200, output_tokens=30, avg_latency_ms=812.0)
    assert vm.usage_row(a) == ("—", "3", "1", "1.2k", "30", "0", "812ms", "—")

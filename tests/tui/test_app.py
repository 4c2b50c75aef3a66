"""The dashboard driven by Textual's Pilot against a REAL admin server (Litestar + FakeBackend
under uvicorn) through the real HTTP client: live events, edits reaching the backend."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from textual.widgets import DataTable, Input, Static, Switch

from antiapi.tui.app import AntiapiApp
from antiapi.tui.client import HttpAdminClient
from antiapi.tui.screens.accounts import ApiKeyScreen, SignInScreen
from antiapi.tui.screens.requests import RequestDetailScreen
from antiapi.tui.screens.routing import ChainEditorScreen, EntryScreen
from antiapi.tui.widgets.quota import QuotaList
from antiapi.tui.widgets.status import StatusLine
from antiapi.wire import admin as w
from tests.tui.fakes import T0


async def until(pilot, cond: Callable[[], bool], timeout: float = 3.0) -> float:
    """Wait (letting the app run) until ``cond()``; returns the seconds it took."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.02)
    return time.monotonic() - t0


def make_app(server, **kw) -> AntiapiApp:
    return AntiapiApp(HttpAdminClient(server.url, server.token), close_client=True, **kw)


def text_of(widget) -> str:
    return str(widget.render())


async def connected(pilot, app: AntiapiApp) -> None:
    await until(pilot, lambda: app.connected and app.query_one(QuotaList).bar("openai") is not None)


async def test_status_line_and_live_quota_bars(admin_server):
    backend = admin_server.backend
    app = make_app(admin_server)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await until(pilot, lambda: "● live" in text_of(app.query_one(StatusLine)))
        status = text_of(app.query_one(StatusLine))
        assert status == f"● live │ {admin_server.url} │ up 2h 03m │ 12 req/min │ 1 err/min │ antiapi 0.1.0"
        quotas = app.query_one(QuotaList)
        bar = quotas.bar("codex:me@example.com")
        assert bar is not None
        assert bar.row.fraction == pytest.approx(0.42)
        # the bar is drawn at its default width first, then at the laid-out width
        await until(pilot, lambda: text_of(bar).count("█") == 21, timeout=3.0)
        first = text_of(bar)
        assert "42%" in first and first.count("█") == 21  # 42% of a 50-cell bar
        backend.set_quota("codex:me@example.com", 88.0)  # pushed as a quota event
        took = await until(pilot, lambda: bar.row.percent_text == "88%", timeout=2.0)
        assert took < 1.0
        assert quotas.bar("codex:me@example.com") is bar  # updated in place, not remounted
        await until(pilot, lambda: text_of(bar).count("█") == 44, timeout=3.0)
        moved = text_of(bar)
        assert "88%" in moved and moved.count("█") == 44
        assert bar.row.level == "warn"
        # a burst of updates ends on the last value
        for used in (90.0, 95.0, 99.0):
            backend.set_quota("copilot:octo", used)
        await until(pilot, lambda: quotas.bar("copilot:octo").row.percent_text == "99%")


async def test_new_request_appears_in_the_log_within_a_second_and_opens_details(admin_server):
    backend = admin_server.backend
    app = make_app(admin_server)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("2")
        table = app.request_table()
        await until(pilot, lambda: table.row_count == 2)
        assert app.focused is table
        rec = w.RequestRecord(
            time=time.time(), request_id="req_live1", endpoint="/v1/messages", client_dialect="anthropic", model="claude-haiku-4",
            target="gpt-4.1-mini", status=200, latency_ms=640.0, ttft_ms=120.0, provider="copilot:octo", account="octo",
            upstream_model="gpt-4.1-mini", input_tokens=50, output_tokens=7,
            route=["codex:me@example.com/gpt-4.1-mini: skipped: cooling down for 12 s", "copilot:octo/gpt-4.1-mini: served"],
        )
        t0 = time.monotonic()
        backend.add_record(rec)
        await until(pilot, lambda: table.row_count == 3, timeout=1.0)
        assert time.monotonic() - t0 < 1.0
        assert table.get_row_at(2)[2:5] == ["claude-haiku-4", "octo", "gpt-4.1-mini"]
        assert table.cursor_row == 2  # following the tail
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RequestDetailScreen))
        body = text_of(app.screen.query_one("#detail-body", Static))
        assert "Routed as  gpt-4.1-mini" in body
        assert "1. codex:me@example.com/gpt-4.1-mini: skipped: cooling down for 12 s" in body
        assert "2. copilot:octo/gpt-4.1-mini: served" in body
        assert "TTFT       120ms" in body and "in 50 · out 7" in body
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, RequestDetailScreen))
        # filter: only errors (server-side query, and live records are filtered too)
        await pilot.press("slash")
        await pilot.press(*"status=error", "enter")
        await until(pilot, lambda: table.row_count == 1)
        backend.add_record(w.RequestRecord(time=time.time(), request_id="req_ok2", status=200, model="m"))
        backend.add_record(w.RequestRecord(time=time.time(), request_id="req_bad2", status=503, model="m", error="down"))
        await until(pilot, lambda: table.row_count == 2)
        assert table.get_row_at(1)[1].plain == "503"


async def test_routing_edit_reorders_and_adds_entries_then_saves(admin_server):
    backend = admin_server.backend
    app = make_app(admin_server)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("3")
        routes = app.query_one("#routing-table", DataTable)
        await until(pilot, lambda: routes.row_count == 2 and app.focused is routes)
        await pilot.press("e")  # the flow "coding" (first row)
        await until(pilot, lambda: isinstance(app.screen, ChainEditorScreen))
        editor = app.screen
        assert [e.provider for e in editor.entries] == ["codex", "copilot:octo", "openai"]
        await pilot.press("J")  # move codex down
        assert [e.provider for e in editor.entries] == ["copilot:octo", "codex", "openai"]
        await pilot.press("x")  # remove codex: the cursor followed it
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, EntryScreen))
        await pilot.press(*"codex", "enter")
        app.screen.query_one("#entry-model", Input).value = "gpt-5-mini"
        app.screen.query_one("#entry-account", Input).value = "me@example.com"
        await pilot.press("enter", "enter")
        await until(pilot, lambda: app.screen is editor)
        await pilot.press("t")  # ordered -> round_robin
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any(c[0] == "put_flow" for c in backend.calls))
        assert backend.calls[-1] == ("put_flow", "coding", [
            w.Entry("copilot:octo", "claude-sonnet-4"), w.Entry("openai", "gpt-4.1"), w.Entry("codex", "gpt-5-mini", "me@example.com"),
        ], "round_robin")
        await until(pilot, lambda: app.screen is not editor)
        # the pane shows the saved flow (routing event + reload)
        await until(pilot, lambda: "3. codex [me@example.com] → gpt-5-mini" in text_of(app.query_one("#routing-entries", Static)))


async def test_routing_validation_blocks_bad_edits_and_smart_switch_toggles(admin_server):
    backend = admin_server.backend
    app = make_app(admin_server)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("3")
        routes = app.query_one("#routing-table", DataTable)
        await until(pilot, lambda: routes.row_count == 2 and app.focused is routes)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ChainEditorScreen))
        await pilot.press(*"bad name", "ctrl+s")
        err = app.screen.query_one("#editor-error", Static)
        await until(pilot, lambda: "a flow needs at least one entry" in text_of(err))
        assert "flow name 'bad name'" in text_of(err)
        await pilot.press("enter", "a")  # enter: from the name to the entries
        await until(pilot, lambda: isinstance(app.screen, EntryScreen))
        await pilot.press(*"nowhere", "enter", "enter", "enter")
        entry_err = app.screen.query_one("#entry-error", Static)
        await until(pilot, lambda: "'nowhere' is neither an account nor a provider type" in text_of(entry_err))
        assert "name the upstream model" in text_of(entry_err)
        await pilot.press("escape", "escape")
        await until(pilot, lambda: not isinstance(app.screen, (ChainEditorScreen, EntryScreen)))
        assert not [c for c in backend.calls if c[0] in ("put_flow", "put_chain")]
        # the chain (second row): remove its second entry and save
        await pilot.press("down", "e")
        await until(pilot, lambda: isinstance(app.screen, ChainEditorScreen))
        await pilot.press("down", "x", "ctrl+s")
        await until(pilot, lambda: any(c[0] == "put_chain" for c in backend.calls))
        assert backend.calls[-1] == ("put_chain", "gpt-4.1", [w.Entry("openai")], "round_robin")
        await until(pilot, lambda: not isinstance(app.screen, ChainEditorScreen))
        await pilot.press("s")
        await until(pilot, lambda: ("update_routing", {"smart_switch": False}) in backend.calls)
        await until(pilot, lambda: "Smart Switch OFF" in text_of(app.query_one("#routing-switches", Static)))
        await pilot.press("t")
        await until(pilot, lambda: ("update_routing", {"strategy": "round_robin"}) in backend.calls)


async def test_accounts_toggle_sign_in_and_api_key_note(admin_server):
    backend = admin_server.backend
    app = make_app(admin_server)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("4")
        table = app.query_one("#accounts-table", DataTable)
        await until(pilot, lambda: table.row_count == 3 and app.focused is table)
        await pilot.press("space")
        await until(pilot, lambda: ("set_account_enabled", "codex:me@example.com", False) in backend.calls)
        await until(pilot, lambda: table.get_row_at(0)[3].plain == "no")
        # Copilot: device code shown, then done once approved
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, SignInScreen))
        body = app.screen.query_one("#signin-body", Static)
        await until(pilot, lambda: "Code  ABCD-1234" in text_of(body))
        assert "Open  https://github.com/login/device" in text_of(body)
        backend.approve_signin()
        await until(pilot, lambda: "✓ Signed in as octocat." in text_of(body))
        await pilot.press("escape")
        await until(pilot, lambda: table.row_count == 4)
        assert table.get_row_at(3)[0] == "copilot:octocat"
        # Codex browser sign-in: URL and a paste box
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, SignInScreen))
        body = app.screen.query_one("#signin-body", Static)
        await until(pilot, lambda: "https://auth.example.com/authorize?state=s1" in text_of(body))
        paste = app.screen.query_one("#signin-paste", Input)
        assert paste.display
        paste.focus()
        paste.value = "http://localhost:1455/auth/callback?code=c1&state=s1"  # a paste
        await pilot.press("enter")
        await until(pilot, lambda: "✓ Signed in as new@example.com." in text_of(body))
        await pilot.press("escape")
        # API keys: the backend's note is shown
        await until(pilot, lambda: not isinstance(app.screen, SignInScreen))
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, ApiKeyScreen))
        app.screen.query_one("#key-name", Input).value = "work"
        app.screen.query_one("#key-value", Input).value = "sk-test"
        await pilot.press("ctrl+s")
        err = app.screen.query_one("#key-error", Static)
        await until(pilot, lambda: "config file" in text_of(err))
        assert ("add_api_key", "openai", "work") in backend.calls


async def test_settings_edit_and_save(admin_server):
    backend = admin_server.backend
    app = make_app(admin_server)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("5")
        default = app.query_one("#set-default", Input)
        await until(pilot, lambda: app.focused is default and default.value == "gpt-4.1")
        await pilot.press("end", *["backspace"] * 3, *"5")  # gpt-4.1 -> gpt-5
        assert default.value == "gpt-5"
        app.query_one("#set-open", Switch).focus()
        await pilot.press("space")
        assert text_of(app.query_one("#set-open-text", Static)) == "on"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any(c[0] == "update_settings" for c in backend.calls))
        assert backend.calls[-1] == ("update_settings", {"default_model": "gpt-5", "auto_open": True})
        await until(pilot, lambda: not app.query_one("#settings-pane").dirty)


async def test_a_wrong_token_shows_in_the_status_line(admin_server):
    app = AntiapiApp(HttpAdminClient(admin_server.url, "wrong"), close_client=True, reconnect_max=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        line = app.query_one(StatusLine)
        await until(pilot, lambda: "admin token" in text_of(line))
        assert "✗" in text_of(line) and not app.connected
        assert admin_server.backend.status_calls == 0


async def test_the_dashboard_reconnects_after_the_stream_drops(admin_server):
    app = make_app(admin_server, reconnect_max=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        subs = admin_server.backend.hub
        await until(pilot, lambda: subs.subscribers == 1)
        # end every subscription server-side: the stream closes, the app reconnects
        admin_server.backend.drop_subscribers()
        await until(pilot, lambda: not app.connected, timeout=5)
        await until(pilot, lambda: subs.subscribers == 1 and app.connected, timeout=5)
        admin_server.backend.set_quota("openai", 5.0)
        await until(pilot, lambda: app.query_one(QuotaList).bar("openai").row.percent_text == "5%")
        assert T0  # fixed data, live connection

"""The Remote and Usage screens under Pilot against a REAL admin server (Litestar + FakeBackend
under uvicorn) through the real HTTP client."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Select, Static

from antiapi.tui.screens.common import ConfirmScreen
from antiapi.tui.screens.remote import KeyCreateScreen, KeyLimitsScreen, KeyShownScreen, RemotePane, TunnelSettingsScreen
from antiapi.tui.screens.usage import UsagePane
from antiapi.tui.widgets.status import StatusLine
from antiapi.wire import admin as w
from tests.tui.fakes import T0
from tests.tui.test_app import connected, make_app, text_of, until


async def _remote(pilot, app) -> tuple[RemotePane, DataTable]:
    await connected(pilot, app)
    await pilot.press("6")
    pane = app.query_one(RemotePane)
    table = app.query_one("#keys-table", DataTable)
    await until(pilot, lambda: pane.view is not None and table.row_count == 3 and app.focused is table)
    return pane, table


async def test_remote_shows_exposure_tunnel_and_keys(admin_server):
    app = make_app(admin_server)
    async with app.run_test(size=(80, 24)) as pilot:
        pane, table = await _remote(pilot, app)
        await pilot.press("u")
        assert app.clipboard == "https://calm-words-here.trycloudflare.com"
        info = text_of(app.query_one("#remote-info", Static))
        assert "Listening on 127.0.0.1: this machine only" in info
        assert "Client keys: required on every request (2 active keys)" in info
        assert "Tunnel: cloudflared ● running (restarted 1×)\n  Public URL: https://calm-words-here.trycloudflare.com" in info
        assert "cloudflared ✓ · ngrok ✗ not installed · localtunnel ✗ not installed" in info
        rows = [table.get_row_at(i) for i in range(3)]
        assert rows[0][:3] == ["1", "laptop", "aa-AbCd…"]
        assert rows[0][4] == "12 · 34.5k"
        assert rows[1][5] == "30/min · 2.0M tok/d"
        assert rows[2][6].plain == "revoked"


async def test_new_key_is_shown_once_then_listed(admin_server):
    backend = admin_server.backend
    app = make_app(admin_server)
    async with app.run_test(size=(100, 30)) as pilot:
        pane, table = await _remote(pilot, app)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, KeyCreateScreen))
        await pilot.press("ctrl+s")
        err = app.screen.query_one("#newkey-error", Static)
        await until(pilot, lambda: "Give the key a name" in text_of(err))
        await pilot.press(*"tablet", "enter", *"abc", "enter", "enter")
        await until(pilot, lambda: "requests per minute: type a whole number" in text_of(err))
        app.screen.query_one("#newkey-rpm", Input).value = "60"
        app.screen.query_one("#newkey-tpd", Input).value = "2m"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, KeyShownScreen))
        assert ("create_key", "tablet", 60, 2_000_000) in backend.calls
        shown = app.screen.query_one("#keyshown-secret", Input)
        assert shown.value == backend.last_secret
        await pilot.press("ctrl+y")
        assert app.clipboard == backend.last_secret
        assert f"ANTHROPIC_BASE_URL={admin_server.url}" in text_of(app.screen.query_one(".hint", Static))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, KeyShownScreen))
        await until(pilot, lambda: table.row_count == 4)
        assert table.get_row_at(3)[1] == "tablet"
        # the secret is nowhere on the screen any more
        assert backend.last_secret not in text_of(app.query_one("#remote-info", Static))
        assert all(backend.last_secret not in str(c) for r in range(4) for c in table.get_row_at(r))
        # a duplicate name is refused by the server; the dialog says why
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, KeyCreateScreen))
        await pilot.press(*"tablet", "ctrl+s")
        err = app.screen.query_one("#newkey-error", Static)
        await until(pilot, lambda: "already named 'tablet'" in text_of(err))


async def test_limits_and_revoke(admin_server):
    backend = admin_server.backend
    app = make_app(admin_server)
    async with app.run_test(size=(100, 30)) as pilot:
        pane, table = await _remote(pilot, app)
        await pilot.press("down", "l")  # the key "ci"
        await until(pilot, lambda: isinstance(app.screen, KeyLimitsScreen))
        assert app.screen.query_one("#limits-rpm", Input).value == "30"
        app.screen.query_one("#limits-rpm", Input).value = ""
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any(c[0] == "update_key" for c in backend.calls))
        assert ("update_key", "2", {"rpm_limit": None}) in backend.calls  # only what changed
        await until(pilot, lambda: table.get_row_at(1)[5] == "2.0M tok/d")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: ("revoke_key", "2") in backend.calls)
        await until(pilot, lambda: table.get_row_at(1)[6].plain == "revoked")
        await until(pilot, lambda: "(1 active key)" in text_of(app.query_one("#remote-info", Static)))


async def test_tunnel_stop_settings_and_start(admin_server):
    backend = admin_server.backend
    app = make_app(admin_server)
    async with app.run_test(size=(100, 30)) as pilot:
        pane, _ = await _remote(pilot, app)
        info = app.query_one("#remote-info", Static)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: "Tunnel: ○ stopped · tool: cloudflared" in text_of(info))
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, TunnelSettingsScreen))
        app.screen.query_one("#tunnel-tool", Select).value = "ngrok"
        app.screen.query_one("#tunnel-authtoken", Input).value = "2secret_authtoken"
        assert app.screen.query_one("#tunnel-authtoken", Input).password
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any(c[0] == "update_remote" for c in backend.calls))
        assert ("update_remote", {"provider": "ngrok", "authtoken": "***"}) in backend.calls
        await until(pilot, lambda: "ngrok authtoken: saved" in text_of(info))
        assert "Install ngrok" not in text_of(info) or "ngrok ✗" in text_of(info)
        await pilot.press("s")
        await until(pilot, lambda: ("start_tunnel", None) in backend.calls)
        await until(pilot, lambda: "https://fresh-ngrok.trycloudflare.com" in text_of(info))


async def test_start_without_a_key_explains_the_fix(admin_server):
    backend = admin_server.backend
    backend.key_list = [k for k in backend.key_list if k.revoked]
    backend.remote_state = w.RemoteView(active_keys=0, provider="cloudflared",
                                        tools=[w.TunnelTool(kind="cloudflared", installed=True)])
    app = make_app(admin_server)
    async with app.run_test(size=(100, 30)) as pilot:
        await connected(pilot, app)
        await pilot.press("6")
        pane = app.query_one(RemotePane)
        await until(pilot, lambda: pane.view is not None)
        assert "Client keys: not required" in text_of(app.query_one("#remote-info", Static))
        notes: list[str] = []
        original = app.notify

        def notify(message, **kw):
            notes.append(str(message))
            return original(message, **kw)

        app.notify = notify  # type: ignore[method-assign]
        await pilot.press("s")
        await until(pilot, lambda: any("create one first" in n for n in notes))


async def test_status_line_shows_exposure(admin_server):
    backend = admin_server.backend
    original = backend.status

    async def status():
        import msgspec

        return msgspec.structs.replace(await original(), keys_required=True, tunnel_url="https://x.trycloudflare.com")

    backend.status = status  # type: ignore[method-assign]
    app = make_app(admin_server)
    async with app.run_test(size=(120, 24)) as pilot:
        await connected(pilot, app)
        line = app.query_one(StatusLine)
        await until(pilot, lambda: "🔒 keys │ ⇄ https://x.trycloudflare.com" in text_of(line), timeout=10)


async def test_usage_screen_groups_and_periods(admin_server):
    backend = admin_server.backend
    app = make_app(admin_server, clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("7")
        assert app.query_one(UsagePane).group == "account"
        table = app.query_one("#usage-table", DataTable)
        await until(pilot, lambda: table.row_count == 2 and app.focused is table)
        title = app.query_one("#usage-title", Static)
        assert "Usage by account, last 24 h: 2 requests" in text_of(title)
        assert sorted(table.get_row_at(i)[0] for i in range(2)) == ["codex:me@example.com", "openai"]
        await pilot.press("g")
        await until(pilot, lambda: "Usage by model" in text_of(title))
        assert backend.calls[-1][:2] == ("usage", "model")
        await pilot.press("p")
        await until(pilot, lambda: "last 7 days" in text_of(title))
        since = backend.calls[-1][2]
        assert since == pytest.approx(app.clock() - 7 * 86400, abs=5)
        # a finished request marks the table stale; it reloads within the refresh interval
        n = len([c for c in backend.calls if c[0] == "usage"])
        backend.add_record(w.RequestRecord(time=app.clock(), request_id="req_u1", status=200, model="m", provider="openai"))
        await until(pilot, lambda: len([c for c in backend.calls if c[0] == "usage"]) > n, timeout=5)

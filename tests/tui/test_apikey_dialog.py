"""The dashboard's "add an API key" dialog (Accounts, ``k``) under Textual's Pilot, against a REAL
gateway (tests/harness) whose upstream is a mock (tests/mocks): the server's errors are shown in
the dialog, and a provider added there is served at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from textual.widgets import DataTable, Input, Static

from antiapi.tui.app import AntiapiApp
from antiapi.tui.client import HttpAdminClient
from antiapi.tui.screens.accounts import ApiKeyScreen

pytestmark = pytest.mark.e2e


async def until(pilot, cond: Callable[[], bool], timeout: float = 8.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.02)


def text_of(widget) -> str:
    return str(widget.render())


def visible(app: AntiapiApp, widget) -> bool:
    r, size = widget.region, app.size
    return r.height > 0 and r.y >= 0 and r.bottom <= size.height and r.right <= size.width


async def test_the_dialog_shows_the_servers_errors_then_adds_a_provider_served_at_once(mock_upstream_factory,
                                                                                       gateway_factory):
    up = mock_upstream_factory("openai_chat", api_key="good-key", models=["qwen3", "llama3.2"])
    gw = gateway_factory("providers: {}\n")
    token = (gw.data_dir / "admin_token").read_text().strip()
    app = AntiapiApp(HttpAdminClient(gw.url, token), close_client=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.connected)
        await pilot.press("4")
        table = app.query_one("#accounts-table", DataTable)
        await until(pilot, lambda: app.focused is table)
        hint = text_of(app.query_one("#accounts-hint", Static))
        assert "k add an API key: OpenAI(-compatible), Anthropic, Gemini — served at once" in hint
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, ApiKeyScreen))
        dialog = app.screen
        field = {k: dialog.query_one(f"#key-{k}", Input) for k in ApiKeyScreen.FIELDS}
        err = dialog.query_one("#key-error", Static)
        assert field["value"].password  # the key is never shown
        assert app.focused is field["name"]
        # the note for the chosen type comes from the gateway (GET /admin/providers)
        note = dialog.query_one("#key-note", Static)
        await until(pilot, lambda: "OpenAI-compatible server" in text_of(note))
        field["type"].value = "anthropic"
        await until(pilot, lambda: "Anthropic key" in text_of(note))

        # checked before sending: an Anthropic provider needs a key
        await pilot.press(*"ollama")
        field["base"].value = up.openai_base_url
        await pilot.press("ctrl+s")
        await until(pilot, lambda: text_of(err).startswith("Fill in: API key"))
        assert up.requests == []

        # a wrong key: the gateway asks the upstream, which refuses it; the dialog stays open
        field["type"].value = "openai"
        field["value"].value = "bad-key-123"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "the upstream refused the key" in text_of(err))
        await pilot.pause(0.1)  # laid out
        assert isinstance(app.screen, ApiKeyScreen) and visible(app, err)
        assert "bad-key-123" not in text_of(err) and "bad-key-123" not in text_of(field["value"])
        assert [(q.method, q.path) for q in up.requests] == [("GET", "/v1/models")]

        # the right key: added, the dialog closes, the account is listed and served
        field["value"].value = "good-key"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ApiKeyScreen))
        await until(pilot, lambda: table.row_count == 1 and table.get_row_at(0)[0] == "ollama")
        r = await asyncio.to_thread(httpx.post, gw.url + "/v1/chat/completions",
                                    json={"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200 and up.requests[-1].headers["authorization"] == "Bearer good-key"

        # models typed in the dialog skip the upstream check; a taken name is the server's 409
        n = len(up.requests)
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, ApiKeyScreen))
        dialog = app.screen
        dialog.query_one("#key-name", Input).value = "ollama"
        dialog.query_one("#key-value", Input).value = "good-key"
        dialog.query_one("#key-base", Input).value = up.openai_base_url
        dialog.query_one("#key-models", Input).value = "m1, m2 ,, m1"
        await pilot.press("ctrl+s")
        err = dialog.query_one("#key-error", Static)
        await until(pilot, lambda: "'ollama' exists already" in text_of(err))
        dialog.query_one("#key-name", Input).value = "second"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ApiKeyScreen))
        await until(pilot, lambda: table.row_count == 2)
        assert len(up.requests) == n
    routing = gw.app.state.routing
    assert {"m1", "m2", "qwen3", "llama3.2"} <= set(routing.names())
    assert [a.models for a in await gw.app.state.admin.accounts()] == [2, 2]
